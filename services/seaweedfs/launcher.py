"""Start SeaweedFS natively as the stack's S3 data lake, one per region, with SSE-KMS
through OpenBao.

Each region's lake (`Settings.lake_name`: ``seaweedfs`` at home, ``seaweedfs-<region>``
elsewhere) is one `weed server` process running master, volume, filer and the S3 gateway
on loopback, with its own directory, ports, certificates, S3 identities and KMS identity;
it holds the buckets of the projects that may keep data in its region, and its KMS
identity reaches that region's keys only.
S3 serves TLS only (certificate from the stack's PKI); master, volume and filer talk
HTTPS and gRPC with mutual TLS and JWT-signed volume access, so nothing listens in
plaintext. S3 identities (one admin per lake, one per project role) are generated into
OpenBao KV and rendered, with the KMS provider's AppRole, into a 0600 config the server
re-reads on SIGHUP. SSE-KMS wraps each object's data key with the project's transit key
in the lake's region; the provider's data-key cache is off, so shredding a key takes
effect at once.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import botocore.exceptions
import hvac

from safeguards import credentials, keys, openbao, pki, residency
from safeguards import projects as tenancy
from safeguards.errors import ConfigError, SafeguardError, Unavailable
from safeguards.files import write_private
from safeguards.objectstore import (
    PREFIX_ROLES,
    ROLES,
    ZONES,
    S3ObjectStore,
    bucket_name,
    s3_client,
    s3_credentials_path,
    s3_errors,
    zone_key,
)
from safeguards.policies import policy
from safeguards.settings import Settings
from services.launch import Launch
from services.seaweedfs.build import ensure_built

log = logging.getLogger(__name__)

PLATFORM = "platform"
_ACTIONS = {"rw": ("Read", "List", "Write", "Tagging"), "r": ("Read", "List")}
# The KMS provider logs in once and never renews: its token must outlive the process.
KMS_TOKEN_HOURS = 768
_KMS_TTL = f"{KMS_TOKEN_HOURS}h"


def name(settings: Settings) -> str:
    """This lake's server name, which is also its KMS identity's and its directory's."""
    return settings.lake_name(settings.lake_region)


def _dir(settings: Settings) -> Path:
    return settings.data_dir / name(settings)


def _admin(settings: Settings) -> str:
    return f"services/{name(settings)}/admin"


def _port(settings: Settings, listener: str) -> int:
    return settings.lake_port(settings.lake_region, listener)


def provision(settings: Settings, operator: hvac.Client) -> None:
    """As the operator: certificates, security.toml, the platform's keys in this region and
    the S3/KMS config. Run again, it re-renders the S3 identities (of every project that
    may keep data in the region) for a reload."""
    root, lake, region = _dir(settings), name(settings), settings.lake_region
    (root / "data").mkdir(parents=True, exist_ok=True, mode=0o700)
    (root / "logs").mkdir(parents=True, exist_ok=True, mode=0o700)
    root.chmod(0o700)  # s3.sock and filer.sock below are plaintext: the directory is private
    pki.issue_for(operator, settings, lake)
    pki.issue_for(operator, settings, lake, name=f"{lake}-internal", role="internal")
    write_private(root / "security.toml", _security_toml(settings, operator).encode())
    # One volume per bucket to start with (not seven): each bucket is its own collection.
    (root / "master.toml").write_text(
        "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 2\ncopy_3 = 3\ncopy_other = 1\n"
    )
    platform = residency.write(operator, settings, PLATFORM, [region], grow=True)
    keys.create_project(operator, settings, PLATFORM, platform)
    openbao.ensure_identity(
        operator,
        settings,
        lake,
        [lake],
        rendered={lake: policy("seaweedfs", regions=[region])},
        token_ttl=_KMS_TTL,
        token_max_ttl=_KMS_TTL,
    )
    render_s3_config(settings, operator)


def prepare(settings: Settings) -> Launch:
    binary = ensure_built()
    root, lake = _dir(settings), name(settings)
    key, cert = pki.server_files(settings, lake)
    s3 = settings.port("seaweedfs")
    return Launch(
        [
            str(binary),
            f"-logdir={root / 'logs'}",
            f"-config_dir={root}",
            "server",
            f"-dir={root / 'data'}",
            # The components listen on, and reach each other over, loopback (on the compose
            # stack, the container's own); only the S3 port is for clients.
            f"-ip={settings.host}",
            f"-ip.bind={settings.host}",
            f"-s3.ip.bind={settings.bind_host}",
            f"-master.port={_port(settings, 'master')}",
            f"-master.port.grpc={_port(settings, 'master-grpc')}",
            f"-volume.port={_port(settings, 'volume')}",
            f"-volume.port.grpc={_port(settings, 'volume-grpc')}",
            f"-filer.port={_port(settings, 'filer')}",
            f"-filer.port.grpc={_port(settings, 'filer-grpc')}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=1024",
            "-volume.max=500",
            "-volume.preStopSeconds=1",
            "-disableHttp",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={_port(settings, 's3-grpc')}",
            f"-s3.config={root / 's3.json'}",
            f"-s3.cert.file={cert}",
            f"-s3.key.file={key}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.iam=false",
            f"-s3.localSocket={root / 's3.sock'}",
            f"-filer.localSocket={root / 'filer.sock'}",
        ]
    )


def _security_toml(settings: Settings, operator: hvac.Client) -> str:
    jwt = {
        jwt: credentials.ensure_generated(operator, f"services/{name(settings)}/jwt-{jwt}", "key")
        for jwt in ("signing", "signing-read", "filer-signing", "filer-signing-read")
    }
    key, cert = pki.server_files(settings, name(settings), f"{name(settings)}-internal")
    ca = settings.ca_bundle
    sections = [
        f'[jwt.signing]\nkey = "{jwt["signing"]}"',
        f'[jwt.signing.read]\nkey = "{jwt["signing-read"]}"',
        f'[jwt.filer_signing]\nkey = "{jwt["filer-signing"]}"',
        f'[jwt.filer_signing.read]\nkey = "{jwt["filer-signing-read"]}"',
        "[access]\nui = false",
        # Every HTTPS and gRPC listener, S3 included: TLS 1.2 with ECDHE-AEAD suites, or
        # 1.3. gRPC's advancedtls refuses a minimum without a maximum.
        "[tls]\n"
        'min_version = "TLS 1.2"\n'
        'max_version = "TLS 1.3"\n'
        f'cipher_suites = "{",".join(pki.AEAD_SUITES)}"',
        "[filer.expose_directory_metadata]\nenabled = false",
        f'[grpc]\nca = "{ca}"',
        *(
            f'[grpc.{c}]\ncert = "{cert}"\nkey = "{key}"'
            for c in ("master", "volume", "filer", "s3", "client")
        ),
        f'[https.client]\nenabled = true\ncert = "{cert}"\nkey = "{key}"\nca = "{ca}"',
        *(
            f'[https.{c}]\ncert = "{cert}"\nkey = "{key}"\nca = "{ca}"'
            for c in ("master", "volume", "filer")
        ),
    ]
    return "\n\n".join(sections) + "\n"


def render_s3_config(settings: Settings, operator: hvac.Client) -> None:
    """Write the identities (admin + each role of each project that may keep data in the
    region) and the KMS provider, 0600."""
    path = _dir(settings) / "s3.json"
    kms_login = openbao.identity_credentials(settings, name(settings))
    admin = credentials.ensure_s3_identity(operator, _admin(settings))
    identities: list[dict[str, Any]] = [
        _identity("admin", admin, ["Admin", "Read", "Write", "List", "Tagging"])
    ]
    # A suspended project's identities are left out: its S3 keys stop working at the reload.
    resting = tenancy.resting(operator)
    for project in keys.projects(operator, settings.lake_region):
        if project in resting:
            continue
        try:
            identities.extend(_project_identities(operator, project))
        except ConfigError as exc:
            # One project's broken record must not lock every other project out.
            log.error("project left out of the S3 identities", extra={"error": str(exc)})
    config = {
        "identities": identities,
        "kms": {
            "default_provider": "openbao",
            "providers": {
                "openbao": {
                    "type": "openbao",
                    "address": settings.openbao_url,
                    "role_id": kms_login["role_id"],
                    "secret_id": kms_login["secret_id"],
                    "transit_path": "transit",
                    "ca_cert": str(settings.ca_bundle),
                    "request_timeout": 10,
                    "cache_enabled": False,
                }
            },
        },
    }
    write_private(path, json.dumps(config, indent=1).encode())


def _project_identities(operator: hvac.Client, project: str) -> list[dict[str, Any]]:
    """The S3 identities of `project`, one per role, each limited to its zones."""
    grants: dict[str, list[str]] = {
        role: [
            f"{action}:{bucket_name(project, zone)}"
            for zone, mode in zones.items()
            for action in _ACTIONS[mode]
        ]
        for role, zones in ROLES.items()
    }
    for role, (zone, prefix) in PREFIX_ROLES.items():
        grants[role] += [f"{a}:{bucket_name(project, zone)}/{prefix}*" for a in ("Read", "Write")]
    return [
        _identity(
            f"{role}-{project}",
            credentials.ensure_s3_identity(operator, s3_credentials_path(project, role)),
            actions,
        )
        for role, actions in grants.items()
    ]


def _identity(name: str, creds: dict[str, str], actions: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "credentials": [{"accessKey": creds["access_key"], "secretKey": creds["secret_key"]}],
        "actions": actions,
    }


def in_region(settings: Settings, region: str) -> Settings:
    """`settings` as `region`'s lake has them."""
    return settings.model_copy(update={"region": region})


def admin_client(settings: Settings, operator: hvac.Client) -> Any:
    """The admin of this settings' lake (`in_region` for another region's)."""
    admin = credentials.read(operator, _admin(settings))
    return s3_client(settings.s3_url, admin["access_key"], admin["secret_key"], settings.ca_bundle)


def create_buckets(settings: Settings, operator: hvac.Client, project: str) -> None:
    """The project's zone buckets in this settings' lake, each with default encryption
    SSE-KMS under its zone's key in the lake's region (raw PHI under
    ``<region>.phi-<project>``, models under ``<region>.models-<project>``, the others under
    ``<region>.proj-<project>``) and a policy that refuses any write naming another key or
    another kind of encryption."""
    admin = admin_client(settings, operator)
    region = settings.lake_region
    for zone in ZONES:
        bucket = bucket_name(project, zone)
        rule = {
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": zone_key(project, zone, region),
            }
        }
        with s3_errors(f"creating bucket {bucket}"):
            try:
                admin.head_bucket(Bucket=bucket)
            except botocore.exceptions.ClientError:
                admin.create_bucket(Bucket=bucket)
            admin.put_bucket_encryption(
                Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]}
            )
            admin.put_bucket_policy(
                Bucket=bucket,
                Policy=json.dumps(bucket_policy(bucket, zone_key(project, zone, region))),
            )


def remove_buckets(
    settings: Settings, operator: hvac.Client, project: str, regions: Sequence[str]
) -> int:
    """Empty and delete the project's zone buckets in each of `regions`, as each lake's
    admin; how many objects went."""
    removed = 0
    for region in regions:
        removed += _empty(admin_client(in_region(settings, region), operator), project)
    return removed


def _empty(admin: Any, project: str) -> int:
    removed = 0
    for zone in ZONES:
        bucket = bucket_name(project, zone)
        with s3_errors(f"emptying bucket {bucket}"):
            try:
                admin.head_bucket(Bucket=bucket)
            except botocore.exceptions.ClientError:
                continue
            for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    admin.delete_object(Bucket=bucket, Key=obj["Key"])
                    removed += 1
            admin.delete_bucket(Bucket=bucket)
    return removed


def bucket_policy(bucket: str, key: str) -> dict[str, Any]:
    """Writes into `bucket` may ask for SSE-KMS under `key` or for nothing (the bucket's
    default, the same key, applies); naming another key, SSE-S3 or a customer key, or
    copying an object in (which could carry its source's key), is denied to everyone.

    `ForAnyValue:` makes a condition on a header the request does not send false, so a
    write without encryption headers is not caught by the first two statements."""
    objects = f"arn:aws:s3:::{bucket}/*"
    writes = ["s3:PutObject", "s3:CreateMultipartUpload"]

    def deny(sid: str, condition: dict[str, Any]) -> dict[str, Any]:
        return {
            "Sid": sid,
            "Effect": "Deny",
            "Principal": "*",
            "Action": writes,
            "Resource": objects,
            "Condition": condition,
        }

    return {
        "Version": "2012-10-17",
        "Statement": [
            deny(
                "OnlyTheZoneKey",
                {
                    "ForAnyValue:StringNotEquals": {
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": key
                    }
                },
            ),
            deny(
                "OnlySseKms",
                {"ForAnyValue:StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            ),
            deny(
                "NoCustomerKeys",
                {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}},
            ),
            deny("NoCopies", {"Null": {"s3:x-amz-copy-source": "false"}}),
        ],
    }


def provision_project(
    settings: Settings,
    operator: hvac.Client,
    project: str,
    reload: Callable[[], None],
    regions: Sequence[str] | None = None,
    timeout: float = 60.0,
) -> None:
    """Give `project` its keys and S3 identities, and zone buckets in the lake of each of
    its `regions` (by default: as recorded, else the home region), and wait until it can
    write in each.

    `reload` makes the running lakes take the new identities: it provisions them again
    (which re-renders them) and signals them."""
    if regions is None:
        try:
            regions = residency.allowed(operator, project)
        except ConfigError:
            regions = [settings.home_region]
    keys.create_project(operator, settings, project, regions)
    creds = credentials.ensure_s3_identity(operator, s3_credentials_path(project, "workload"))
    reload()
    for region in regions:
        lake = in_region(settings, region)
        client = s3_client(lake.s3_url, creds["access_key"], creds["secret_key"], lake.ca_bundle)
        _wait_writable(lake, operator, S3ObjectStore(client, project, region), timeout)


def _wait_writable(
    lake: Settings, operator: hvac.Client, store: S3ObjectStore, timeout: float
) -> None:
    marker = f"health/{secrets.token_hex(4)}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            create_buckets(lake, operator, store.project)
            store.put("artifacts", marker, b"ok")
            store.delete("artifacts", marker)
            return
        except SafeguardError as exc:
            # Until the reload lands and the volumes are allocated: denied, 5xx, refused.
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"{name(lake)} did not accept writes within {timeout:.0f} s"
                ) from exc
        time.sleep(0.5)


def platform_store(settings: Settings, operator: hvac.Client) -> S3ObjectStore:
    """The platform's own zones in this settings' lake, through its workload's S3 identity
    (its objects under the platform's keys, by SSE-KMS)."""
    creds = credentials.ensure_s3_identity(operator, s3_credentials_path(PLATFORM, "workload"))
    client = s3_client(
        settings.s3_url, creds["access_key"], creds["secret_key"], settings.ca_bundle
    )
    return S3ObjectStore(client, PLATFORM, settings.lake_region)


def after_start(settings: Settings, operator: hvac.Client) -> None:
    """The platform's buckets in this lake; waits until a real SSE-KMS write succeeds
    (/healthz answers before writes work)."""
    _wait_writable(settings, operator, platform_store(settings, operator), timeout=120)

"""Start SeaweedFS natively as the stack's S3 data lake, with SSE-KMS through OpenBao.

One `weed server` process runs master, volume, filer and the S3 gateway on loopback.
S3 serves TLS only (certificate from the stack's PKI); master, volume and filer talk
HTTPS and gRPC with mutual TLS and JWT-signed volume access, so nothing listens in
plaintext. S3 identities (one admin, one per project) are generated into OpenBao KV and
rendered, with the KMS provider's AppRole, into a 0600 config the server re-reads on
SIGHUP. SSE-KMS wraps each object's data key with the project's transit key; the
provider's data-key cache is off, so shredding a key takes effect at once.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.exceptions
import hvac

from safeguards import credentials, keys, openbao, pki
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
from safeguards.settings import Settings
from services.launch import Launch
from services.seaweedfs.build import ensure_built

log = logging.getLogger(__name__)

ADMIN = "services/seaweedfs/admin"
# The KMS provider's own identity (policy `seaweedfs`): project keys' data keys only.
KMS = "seaweedfs"
PLATFORM = "platform"
# Internal listeners, above the S3 port (base + 2): master, volume, filer and their gRPC.
_INTERNAL = {"master": 10, "volume": 11, "filer": 12}
_GRPC = {"master": 13, "volume": 14, "filer": 15, "s3": 16}
_ACTIONS = {"rw": ("Read", "List", "Write", "Tagging"), "r": ("Read", "List")}
# The KMS provider logs in once and never renews: its token must outlive the process.
_KMS_TTL = "768h"


def _dir(settings: Settings) -> Path:
    return settings.data_dir / "seaweedfs"


def _port(settings: Settings, offset: int) -> int:
    return settings.port_base + offset


def provision(settings: Settings, operator: hvac.Client) -> None:
    """As the operator: certificates, security.toml, the platform's keys and the S3/KMS
    config. Run again, it re-renders the S3 identities (every project's) for a reload."""
    root = _dir(settings)
    (root / "data").mkdir(parents=True, exist_ok=True, mode=0o700)
    (root / "logs").mkdir(parents=True, exist_ok=True, mode=0o700)
    root.chmod(0o700)  # s3.sock and filer.sock below are plaintext: the directory is private
    pki.issue_for(operator, settings, "seaweedfs")
    pki.issue_for(operator, settings, "seaweedfs", name="seaweedfs-internal", role="internal")
    write_private(root / "security.toml", _security_toml(settings, operator).encode())
    # One volume per bucket to start with (not seven): each bucket is its own collection.
    (root / "master.toml").write_text(
        "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 2\ncopy_3 = 3\ncopy_other = 1\n"
    )
    keys.create_project(operator, settings, PLATFORM)
    openbao.ensure_identity(
        operator, settings, KMS, [KMS], token_ttl=_KMS_TTL, token_max_ttl=_KMS_TTL
    )
    render_s3_config(settings, operator)


def prepare(settings: Settings) -> Launch:
    binary = ensure_built()
    root = _dir(settings)
    key, cert = pki.server_files(settings, "seaweedfs")
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
            f"-master.port={_port(settings, _INTERNAL['master'])}",
            f"-master.port.grpc={_port(settings, _GRPC['master'])}",
            f"-volume.port={_port(settings, _INTERNAL['volume'])}",
            f"-volume.port.grpc={_port(settings, _GRPC['volume'])}",
            f"-filer.port={_port(settings, _INTERNAL['filer'])}",
            f"-filer.port.grpc={_port(settings, _GRPC['filer'])}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=1024",
            "-volume.max=500",
            "-volume.preStopSeconds=1",
            "-disableHttp",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={_port(settings, _GRPC['s3'])}",
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
        name: credentials.ensure_generated(operator, f"services/seaweedfs/jwt-{name}", "key")
        for name in ("signing", "signing-read", "filer-signing", "filer-signing-read")
    }
    key, cert = pki.server_files(settings, "seaweedfs", "seaweedfs-internal")
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
    """Write the identities (admin + one per project) and the KMS provider, 0600."""
    path = _dir(settings) / "s3.json"
    kms_login = openbao.identity_credentials(settings, KMS)
    admin = credentials.ensure_s3_identity(operator, ADMIN)
    identities: list[dict[str, Any]] = [
        _identity("admin", admin, ["Admin", "Read", "Write", "List", "Tagging"])
    ]
    # A suspended project's identities are left out: its S3 keys stop working at the reload.
    resting = tenancy.resting(operator)
    for project in keys.projects(operator):
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


def admin_client(settings: Settings, operator: hvac.Client) -> Any:
    admin = credentials.read(operator, ADMIN)
    return s3_client(settings.s3_url, admin["access_key"], admin["secret_key"], settings.ca_bundle)


def create_buckets(settings: Settings, operator: hvac.Client, project: str) -> None:
    """The project's zone buckets, each with default encryption SSE-KMS under its zone's key
    (raw PHI under ``phi-<project>``, models under ``models-<project>``, the others under
    ``proj-<project>``) and a policy that refuses any write naming another key or another
    kind of encryption."""
    admin = admin_client(settings, operator)
    for zone in ZONES:
        bucket = bucket_name(project, zone)
        rule = {
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": zone_key(project, zone),
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
                Bucket=bucket, Policy=json.dumps(bucket_policy(bucket, zone_key(project, zone)))
            )


def remove_buckets(settings: Settings, operator: hvac.Client, project: str) -> int:
    """Empty and delete the project's zone buckets, as the admin; how many objects went."""
    admin = admin_client(settings, operator)
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
    timeout: float = 60.0,
) -> None:
    """Give `project` its S3 identity and zone buckets, and wait until it can write.

    `reload` makes the running server take the new identities: it provisions the server
    again (which re-renders them) and signals it."""
    keys.create_project(operator, settings, project)
    creds = credentials.ensure_s3_identity(operator, s3_credentials_path(project, "workload"))
    reload()
    client = s3_client(
        settings.s3_url, creds["access_key"], creds["secret_key"], settings.ca_bundle
    )
    store = S3ObjectStore(client, project)
    marker = f"health/{secrets.token_hex(4)}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            create_buckets(settings, operator, project)
            store.put("artifacts", marker, b"ok")
            store.delete("artifacts", marker)
            return
        except SafeguardError as exc:
            # Until the reload lands and the volumes are allocated: denied, 5xx, refused.
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"SeaweedFS did not accept writes within {timeout:.0f} s"
                ) from exc
        time.sleep(0.5)


def after_start(settings: Settings, operator: hvac.Client) -> None:
    """The platform's buckets; waits until a real SSE-KMS write succeeds (/healthz answers
    before writes work)."""
    provision_project(settings, operator, PLATFORM, reload=lambda: None, timeout=120)

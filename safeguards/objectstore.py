"""One object-store interface for every stage, over S3 with SSE-KMS or a sealed directory.

`S3ObjectStore` talks to one region's S3 endpoint (that region's SeaweedFS, or AWS S3)
with boto3, verifying TLS with the stack's CA bundle. Every write asks for SSE-KMS under
its zone's key in that region (raw PHI has its own) and is refused if the server does not
confirm it. `LocalObjectStore` is the sandbox's twin: files under the region's directory,
each sealed by envelope encryption under the same zone key and bound to its region,
bucket and name. Both write atomically: a reader sees the whole object or none of it.

A store reaches one region: the project's primary, or the one the process is pinned to
if the project may keep data there (`safeguards.residency`); `replicate` copies into
another of the project's regions, re-encrypting under that region's keys.

Buckets are named ``<project>-<zone>`` in every region's lake; keys are relative paths
without ``..``. Under ``HIPAA_MLOPS_LAKE=s3`` (`AwsObjectStore`) the lake is Amazon S3 as
``terraform/`` makes it: buckets ``<prefix>-<project>-<AWS region>-<zone>``, each zone
under the KMS key that ``alias/hipaa-mlops/<AWS region>/<kind>-<project>`` names, and the
credentials of the task's role (the AWS default chain), never keys kept in OpenBao.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import boto3
import botocore.config
import botocore.exceptions
import hvac
from boto3.s3.transfer import TransferConfig

from safeguards import credentials, envelope, keys, openbao, residency
from safeguards.errors import (
    AccessDenied,
    ConfigError,
    IntegrityError,
    NotFound,
    ServerError,
    Unavailable,
)
from safeguards.settings import Settings

ZONES = ("raw-phi", "deidentified", "synthetic", "artifacts", "models")
RAW_ZONE = "raw-phi"
# MLflow's artifacts of the project: runs' files and models (`safeguards.artifacts`).
MODELS_ZONE = "models"
# Which zones each role reaches: the S3 actions and the sandbox's keys follow this table.
# The workload (training, monitoring) reads data, writes artifacts and models; only the
# data steward (ingestion) reaches raw PHI and writes datasets; the serving endpoint
# reads models.
ROLES = {
    "workload": {"deidentified": "r", "synthetic": "r", "artifacts": "rw", MODELS_ZONE: "rw"},
    "ingest": {"raw-phi": "rw", "deidentified": "rw", "synthetic": "rw"},
    "serving": {MODELS_ZONE: "r"},
}
# Roles confined to one prefix of one zone as well: the serving endpoint writes (and
# checks) its captured features, and reaches nothing else in the lake.
PREFIX_ROLES = {"serving": ("artifacts", "capture/")}
_IDENTITY_OF_ROLE = {
    "workload": keys.identity,
    "ingest": keys.ingest_identity,
    "serving": keys.serving_identity,
}
# Under HIPAA_MLOPS_LAKE=s3, the kind of KMS key each zone is under (terraform/modules/
# data_lake's zones); the other zones are under the project key.
KMS_KINDS = {RAW_ZONE: "phi", MODELS_ZONE: "models"}
_KEY = re.compile(r"^[A-Za-z0-9!_.*'()/-]{1,1024}$")
# Multipart above 16 MiB: an interrupted upload is never visible as an object.
MULTIPART = TransferConfig(multipart_threshold=16 * 1024**2, multipart_chunksize=16 * 1024**2)


def bucket_name(project: str, zone: str) -> str:
    if zone not in ZONES:
        raise ConfigError(f"unknown zone; zones are {', '.join(ZONES)}")
    return f"{keys.validate_project(project)}-{zone}"


def zone_key(project: str, zone: str, region: str) -> str:
    """The transit key objects of `zone` are encrypted under in `region`: raw PHI has its
    own, and so do models (the serving endpoint opens those, and nothing else of the
    project)."""
    if zone == RAW_ZONE:
        return keys.phi_key_name(project, region)
    if zone == MODELS_ZONE:
        return keys.models_key_name(project, region)
    return keys.key_name(project, region)


def validate_key(key: str) -> str:
    parts = key.split("/")
    if not _KEY.match(key) or any(not p or p.startswith(".") for p in parts):
        raise ConfigError(
            "an object key is a relative path of letters, digits and -_.!*'()/, "
            "with no empty or dot-first segment"
        )
    return key


class ObjectStore(Protocol):
    """What every stage uses; implemented for S3 and for the sandbox's directory."""

    project: str
    region: str

    def put(self, zone: str, key: str, data: bytes) -> None: ...
    def get(self, zone: str, key: str) -> bytes: ...
    def list(self, zone: str, prefix: str = "") -> list[str]: ...
    def delete(self, zone: str, key: str) -> None: ...


_S3_ERRORS = {
    "AccessDenied": AccessDenied,
    "InvalidAccessKeyId": AccessDenied,
    "SignatureDoesNotMatch": AccessDenied,
    "NoSuchBucket": NotFound,
    "NoSuchKey": NotFound,
    "404": NotFound,
    "403": AccessDenied,
}


@contextmanager
def s3_errors(action: str) -> Iterator[None]:
    """Translate boto3 failures into the safeguards hierarchy, without object contents."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        raise _S3_ERRORS.get(code, ServerError)(f"{action}: {code or 'refused'}") from exc
    except botocore.exceptions.SSLError as exc:
        raise Unavailable(f"{action}: TLS verification of the object store failed") from exc
    except (
        botocore.exceptions.NoCredentialsError,
        botocore.exceptions.CredentialRetrievalError,
    ) as exc:
        raise AccessDenied(f"{action}: no AWS credentials (the task's role gave none)") from exc
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectionClosedError,
        botocore.exceptions.ReadTimeoutError,
    ) as exc:
        raise Unavailable(f"{action}: the object store is unreachable") from exc


def s3_client(endpoint: str, access_key: str, secret_key: str, ca_bundle: Path) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        verify=str(ca_bundle),
        config=botocore.config.Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


class S3ObjectStore:
    def __init__(self, client: Any, project: str, region: str) -> None:
        self.client = client
        self.project = keys.validate_project(project)
        self.region = keys.validate_region(region)

    def bucket(self, zone: str) -> str:
        return bucket_name(self.project, zone)

    def kms_key(self, zone: str) -> str:
        """The key id a write of `zone` asks for, and the one its object must report."""
        return zone_key(self.project, zone, self.region)

    def put(self, zone: str, key: str, data: bytes) -> None:
        bucket, key = self.bucket(zone), validate_key(key)
        kms_key = self.kms_key(zone)
        with s3_errors(f"writing an object to {bucket}"):
            self.client.upload_fileobj(
                io.BytesIO(data),
                bucket,
                key,
                Config=MULTIPART,
                ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key},
            )
            head = self.client.head_object(Bucket=bucket, Key=key)
        if head.get("ServerSideEncryption") != "aws:kms" or head.get("SSEKMSKeyId") != kms_key:
            with s3_errors(f"removing an unencrypted object from {bucket}"):
                self.client.delete_object(Bucket=bucket, Key=key)
            raise IntegrityError(f"{bucket} did not store the object under SSE-KMS; removed it")

    def get(self, zone: str, key: str) -> bytes:
        bucket, key = self.bucket(zone), validate_key(key)
        with s3_errors(f"reading an object from {bucket}"):
            return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())

    def list(self, zone: str, prefix: str = "") -> list[str]:
        bucket = self.bucket(zone)
        names: list[str] = []
        with s3_errors(f"listing {bucket}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                names.extend(obj["Key"] for obj in page.get("Contents", []))
        return names

    def delete(self, zone: str, key: str) -> None:
        bucket, key = self.bucket(zone), validate_key(key)
        with s3_errors(f"deleting an object from {bucket}"):
            self.client.delete_object(Bucket=bucket, Key=key)


class AwsObjectStore(S3ObjectStore):
    """Amazon S3 as terraform/modules/data_lake makes it, reached with the credentials of
    the AWS default chain (an ECS task's role) in `region`'s AWS region. A write names its
    zone's key by ARN, as the buckets' policies demand; the ARN is looked up once through
    the key's alias."""

    def __init__(self, settings: Settings, project: str, region: str) -> None:
        if region not in settings.aws_region_map:
            raise ConfigError("HIPAA_MLOPS_AWS_REGIONS names no AWS region for the region")
        self.aws_region = settings.aws_region_map[region]
        session = boto3.Session(region_name=self.aws_region)
        config = botocore.config.Config(
            retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60
        )
        with s3_errors("connecting to S3"):
            super().__init__(session.client("s3", config=config), project, region)
            self._kms = session.client("kms", config=config)
        self.prefix = settings.s3_bucket_prefix

    def bucket(self, zone: str) -> str:
        if zone not in ZONES:
            raise ConfigError(f"unknown zone; zones are {', '.join(ZONES)}")
        return f"{self.prefix}-{self.project}-{self.aws_region}-{zone}"

    def kms_key(self, zone: str) -> str:
        return self._key_arn(kms_alias(self.project, zone, self.aws_region))

    @cache  # noqa: B019 (one store per process and project; a key's ARN never changes)
    def _key_arn(self, alias: str) -> str:
        with s3_errors("looking up a zone's KMS key"):
            return str(self._kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"])


def kms_alias(project: str, zone: str, aws_region: str) -> str:
    """The alias terraform/modules/kms gives `zone`'s key of `project` in `aws_region`."""
    return f"alias/hipaa-mlops/{aws_region}/{KMS_KINDS.get(zone, 'proj')}-{project}"


def misencrypted(client: Any, project: str, region: str) -> dict[str, int]:
    """Per zone, how many of the project's objects are not under SSE-KMS with that zone's
    key in `region`, read object by object with `client` (one of `region`'s lake that may
    list and read every bucket). The check behind the buckets' policies, for any S3
    store, and for objects older than them. A zone without a bucket holds nothing."""
    found: dict[str, int] = {}
    with s3_errors("listing the buckets"):
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for zone in ZONES:
        bucket, key = bucket_name(project, zone), zone_key(project, zone, region)
        if bucket not in existing:
            continue
        with s3_errors(f"checking the encryption of {bucket}"):
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    head = client.head_object(Bucket=bucket, Key=obj["Key"])
                    if (
                        head.get("ServerSideEncryption") != "aws:kms"
                        or head.get("SSEKMSKeyId") != key
                    ):
                        found[zone] = found.get(zone, 0) + 1
    return found


class LocalObjectStore:
    """The sandbox's store: envelope-sealed files, written by rename so never half-seen.
    `lake` holds a directory per region; this store reaches `region`'s."""

    def __init__(self, lake: Path, bao: hvac.Client, project: str, region: str) -> None:
        self.root = lake / keys.validate_region(region)
        self.bao = bao
        self.project = keys.validate_project(project)
        self.region = region

    def sealed_path(self, zone: str, key: str) -> Path:
        """Where object `key` of `zone` rests, sealed: for checks of the bytes at rest."""
        return self.root / bucket_name(self.project, zone) / validate_key(key)

    def _identity(self, zone: str, key: str) -> str:
        """What a sealed object is bound to: moved to another region, zone or name, it
        won't open."""
        return f"{self.region}/{bucket_name(self.project, zone)}/{key}"

    def put(self, zone: str, key: str, data: bytes) -> None:
        path = self.sealed_path(zone, key)
        sealed = envelope.seal(
            self.bao, zone_key(self.project, zone, self.region), self._identity(zone, key), data
        )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(sealed)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    def get(self, zone: str, key: str) -> bytes:
        path = self.sealed_path(zone, key)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no such object in {bucket_name(self.project, zone)}") from exc
        return envelope.open_sealed(self.bao, self._identity(zone, key), sealed)

    def list(self, zone: str, prefix: str = "") -> list[str]:
        base = self.root / bucket_name(self.project, zone)
        if not base.is_dir():
            return []
        names = (
            p.relative_to(base).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )
        return sorted(n for n in names if n.startswith(prefix))

    def delete(self, zone: str, key: str) -> None:
        self.sealed_path(zone, key).unlink(missing_ok=True)


def open_store(settings: Settings, project: str, role: str = "workload") -> ObjectStore:
    """The project's store for the configured profile, logged in as `role` of the project:
    ``workload`` (training, monitoring; no raw PHI), ``ingest`` (raw PHI,
    de-identification) or ``serving`` (models to read, its capture to write).
    """
    return store_with(settings, openbao.login(settings, identity_of(role, project)), project, role)


def identity_of(role: str, project: str) -> str:
    """The AppRole that `role` of `project` logs in as."""
    if role not in _IDENTITY_OF_ROLE:
        raise ConfigError(f"unknown role; roles are {', '.join(_IDENTITY_OF_ROLE)}")
    return _IDENTITY_OF_ROLE[role](project)


def store_with(
    settings: Settings,
    bao: hvac.Client,
    project: str,
    role: str,
    region: str | None = None,
) -> ObjectStore:
    """The project's store, through `bao`: a client logged in as `role` of the project. It
    reaches `region`, else the region `residency.region_for` gives; a region the project
    may not keep data in is refused, and the refusal audited."""
    if region is None:
        region = residency.region_for(settings, bao, project)
    elif region not in residency.allowed(bao, project):
        residency.refuse(settings, bao, project, region, "reach")
    if settings.profile == "sandbox":
        return LocalObjectStore(settings.data_dir / "lake", bao, project, region)
    if settings.lake == "s3":
        return AwsObjectStore(settings, project, region)
    path = s3_credentials_path(project, role)
    creds = credentials.require(credentials.read(bao, path), path, "access_key", "secret_key")
    client = s3_client(
        settings.lake_url(region), creds["access_key"], creds["secret_key"], settings.ca_bundle
    )
    return S3ObjectStore(client, project, region)


def replicate(
    settings: Settings, bao: hvac.Client, source: ObjectStore, role: str, region: str, zone: str
) -> int:
    """Copy every object of `zone` from `source` into the same zone in `region`, each
    opened in its region and sealed again under `region`'s key (no key crosses a region);
    refused, and audited, unless `region` is one of the project's. How many were copied."""
    if region not in residency.allowed(bao, source.project):
        residency.refuse(settings, bao, source.project, region, "replicate")
    target = store_with(settings, bao, source.project, role, region)
    names = source.list(zone)
    for name in names:
        target.put(zone, name, source.get(zone, name))
    return len(names)


def s3_credentials_path(project: str, role: str) -> str:
    """Where a role's S3 keys live in KV: each readable by that role's identity (and, for
    the serving role's, by the project's workload), written by the operator only."""
    prefix = {"workload": "projects", "ingest": "ingest", "serving": "serving"}[role]
    return f"{prefix}/{keys.validate_project(project)}/s3"

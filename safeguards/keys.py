"""A project's transit keys (its CMKs), one set per region it may keep data in, and the
data keys they wrap.

A key belongs to one region and is named ``<region>.<kind>-<project>`` (a dot cannot
occur in a region or project name, so no policy that names one region's keys by prefix
reaches another's): like a KMS key without multi-region replicas, no key is usable in
two regions. Key names are validated before any call. The operator identity manages keys
but never decrypts; a project's own identity asks for data keys and unwraps them.
Destroying a project's keys (crypto-shredding) makes every object sealed under them
unreadable.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import hvac
import hvac.exceptions

from safeguards import audit, files, openbao, residency
from safeguards.errors import ConfigError, IntegrityError, KeyUnavailable
from safeguards.openbao import (
    create_approle,
    credentials_path,
    openbao_errors,
    save_credentials,
)
from safeguards.policies import policy
from safeguards.settings import PROJECT, REGION, Settings

_PROJECT = re.compile(rf"^{PROJECT}$")
# The kinds of a project's data keys, each one per region: the project key (de-identified,
# synthetic, artifacts), raw PHI's, models', and the pseudonyms' HMAC key.
KINDS = ("proj", "phi", "models", "pseudonym")


def validate_project(project: str) -> str:
    if not _PROJECT.match(project):
        raise ConfigError(
            "a project name is 3-32 characters of lowercase letters, digits and dashes, "
            "starting with a letter"
        )
    return project


def validate_region(region: str) -> str:
    if not re.match(REGION, region):
        raise ConfigError("a region is 2-32 lowercase letters, digits and dashes")
    return region


def _key(kind: str, project: str, region: str) -> str:
    return f"{validate_region(region)}.{kind}-{validate_project(project)}"


def key_name(project: str, region: str) -> str:
    """The project key in `region`: de-identified and synthetic data, artifacts."""
    return _key("proj", project, region)


def phi_key_name(project: str, region: str) -> str:
    """The key for the project's raw PHI zone, usable by its ingestion identity only."""
    return _key("phi", project, region)


def models_key_name(project: str, region: str) -> str:
    """The key for the project's MLflow artifacts: its workload seals, its endpoint opens."""
    return _key("models", project, region)


def pseudonym_key(project: str, region: str) -> str:
    """The project's HMAC key for pseudonyms; never rotated, so pseudonyms stay stable."""
    return _key("pseudonym", project, region)


def identity(project: str) -> str:
    """The AppRole a project's workloads (training, serving) log in with."""
    return f"project-{validate_project(project)}"


def ingest_identity(project: str) -> str:
    """The AppRole that ingests and de-identifies the project's raw PHI."""
    return f"ingest-{validate_project(project)}"


def serving_identity(project: str) -> str:
    """The AppRole of the project's serving endpoint: champion, API keys, capture only."""
    return f"serving-{validate_project(project)}"


# Each identity of a project, with the policy file it gets.
_IDENTITIES = (("project", identity), ("ingest", ingest_identity), ("serving", serving_identity))
# The identities that append to the audit log, each under a signing key of its own.
SIGNERS = (identity, ingest_identity)


def project_keys(project: str, regions: Sequence[str]) -> list[str]:
    """Every transit key a project owns: data keys, pseudonyms, its audit signing keys."""
    return [
        *data_keys(project, regions),
        *(audit.key_name(signer(project)) for signer in SIGNERS),
    ]


def data_keys(project: str, regions: Sequence[str]) -> list[str]:
    """The keys that shredding destroys: everything the project's data is sealed under,
    in each of `regions`."""
    return [_key(kind, project, region) for region in regions for kind in KINDS]


def project_identities(project: str) -> list[str]:
    return [name(project) for _, name in _IDENTITIES]


def create_project(
    operator: hvac.Client,
    settings: Settings,
    project: str,
    regions: Sequence[str] | None = None,
) -> None:
    """Record the project's regions (`regions`, primary first; by default the platform's
    home), create its keys in each, and its identities with least-privilege policies: the
    workload identity (no raw PHI), the ingestion identity and the serving identity
    (idempotent)."""
    regions = residency.write(operator, settings, project, regions or [settings.home_region])
    with openbao_errors(f"creating project '{project}'"):
        for name in data_keys(project, regions):
            operator.secrets.transit.create_key(name, key_type="aes256-gcm96", exportable=False)
    for signer in SIGNERS:
        audit.create_signing_key(operator, signer(project))
    apply_policies(operator, project, regions)
    with openbao_errors(f"creating the identities of project '{project}'"):
        for who in project_identities(project):
            role_id, secret_id = create_approle(operator, settings, who, [who])
            save_credentials(settings, who, role_id, secret_id)


def projects(operator: hvac.Client, region: str | None = None) -> list[str]:
    """Every project that has a project key (in `region`, or in any)."""
    with openbao_errors("listing project keys"):
        try:
            names = operator.secrets.transit.list_keys()["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            return []
    found = set()
    for name in names:
        where, _, kind_project = name.partition(".")
        if kind_project.startswith("proj-") and region in (None, where):
            found.add(kind_project.removeprefix("proj-"))
    return sorted(found)


def apply_policies(
    operator: hvac.Client, project: str, regions: Sequence[str], suspended: bool = False
) -> None:
    """Write the project's policies from the repository's policy files, each line that
    names a region once for each of `regions`; `suspended`: the policy that grants
    nothing, under each identity's policy name, so that every token the identities hold
    loses every capability at once."""
    with openbao_errors(f"writing the policies of project '{project}'"):
        for template, name in _IDENTITIES:
            text = policy("suspended" if suspended else template, project=project, regions=regions)
            operator.sys.create_or_update_policy(name(project), text)


def remove_identities(operator: hvac.Client, settings: Settings, project: str) -> None:
    """Delete the project's AppRoles (their secret ids with them), their policies and their
    credentials files."""
    with openbao_errors(f"removing the identities of project '{project}'"):
        for who in project_identities(project):
            operator.auth.approle.delete_role(who)
            operator.sys.delete_policy(who)
            credentials_path(settings, who).unlink(missing_ok=True)


def describe(bao: hvac.Client, project: str, region: str) -> dict[str, Any]:
    with openbao_errors(f"reading the key of project '{project}'"):
        try:
            data = bao.secrets.transit.read_key(key_name(project, region))["data"]
        except hvac.exceptions.InvalidPath as exc:
            raise KeyUnavailable(
                f"project '{project}' has no key in region '{region}' (never created, or shredded)"
            ) from exc
    return {
        "project": project,
        "region": region,
        "key": data["name"],
        "latest_version": data["latest_version"],
        "min_decryption_version": data["min_decryption_version"],
        "deletion_allowed": data["deletion_allowed"],
    }


def rotate(operator: hvac.Client, project: str, region: str) -> int:
    """New key version for new data; older versions still decrypt. Returns the new version."""
    with openbao_errors(f"rotating the key of project '{project}'"):
        operator.secrets.transit.rotate_key(key_name(project, region))
    return int(describe(operator, project, region)["latest_version"])


def revoke_below(operator: hvac.Client, project: str, region: str, version: int) -> None:
    """Refuse to decrypt anything wrapped by key versions older than `version`."""
    with openbao_errors(f"revoking old key versions of project '{project}'"):
        operator.secrets.transit.update_key_configuration(
            key_name(project, region), min_decryption_version=version
        )


def shred(operator: hvac.Client, project: str, regions: Sequence[str]) -> None:
    """Destroy the project's data keys in every one of `regions`: all of its data becomes
    unreadable, for good. Its audit signing keys stay, so the history of what it did
    still verifies. A key already gone is skipped, so an interrupted shred completes when
    run again."""
    with openbao_errors(f"shredding the keys of project '{project}'"):
        for name in data_keys(project, regions):
            try:
                operator.secrets.transit.read_key(name)
            except hvac.exceptions.InvalidPath:
                continue
            operator.secrets.transit.update_key_configuration(name, deletion_allowed=True)
            operator.secrets.transit.delete_key(name)


def new_data_key(bao: hvac.Client, key: str) -> tuple[bytes, str]:
    """A fresh AES-256 data key: (plaintext, wrapped by transit key `key`)."""
    with openbao_errors(f"data key under '{key}'"), _key_errors(key):
        data = bao.secrets.transit.generate_data_key(key, key_type="plaintext", bits=256)["data"]
    return base64.b64decode(data["plaintext"]), str(data["ciphertext"])


def unwrap_data_key(bao: hvac.Client, key: str, wrapped: str) -> bytes:
    with openbao_errors(f"unwrapping a data key under '{key}'"), _key_errors(key):
        data = bao.secrets.transit.decrypt_data(key, wrapped)["data"]
    return base64.b64decode(data["plaintext"])


@contextmanager
def _key_errors(key: str) -> Iterator[None]:
    """Tell a destroyed or revoked key, and a foreign wrapped key, apart from other errors."""
    try:
        yield
    except hvac.exceptions.InvalidPath as exc:
        raise KeyUnavailable(f"key '{key}' is destroyed") from exc
    except hvac.exceptions.InvalidRequest as exc:
        message = str(exc).lower()
        if "not found" in message:
            raise KeyUnavailable(f"key '{key}' is destroyed") from exc
        if "disallowed" in message or "too old" in message:
            raise KeyUnavailable(
                f"the version of key '{key}' that wrapped this data is revoked"
            ) from exc
        raise IntegrityError(f"the wrapped data key does not decrypt under key '{key}'") from exc


def pseudonyms(bao: hvac.Client, project: str, region: str, values: list[str]) -> dict[str, str]:
    """A keyed pseudonym (128 bits of HMAC-SHA256 from transit, under the project's key in
    `region`) for each distinct value."""
    key = pseudonym_key(project, region)
    unique = sorted(set(values))
    result: dict[str, str] = {}
    for start in range(0, len(unique), _HMAC_BATCH):
        chunk = unique[start : start + _HMAC_BATCH]
        with (
            openbao_errors(f"pseudonyms for project '{project}'"),
            _key_errors(key),
        ):
            response = bao.write_data(
                f"transit/hmac/{key}",
                data={
                    "algorithm": "sha2-256",
                    "batch_input": [
                        {"input": base64.b64encode(v.encode()).decode()} for v in chunk
                    ],
                },
            )
        for value, item in zip(chunk, response["data"]["batch_results"], strict=True):
            digest = base64.b64decode(item["hmac"].split(":", 2)[2])
            # Hex: no identifier pattern (MRN, SSN, phone, date) can match inside it.
            result[value] = digest[:16].hex()
    return result


# OpenBao refuses bodies with more than about 1000 JSON strings; an HMAC item has two.
_HMAC_BATCH = 400


def provide_job_dir(operator: hvac.Client, settings: Settings, project: str) -> None:
    """What `project`'s jobs need and may hold, in their directory (`openbao.job_settings`):
    the CA bundle, and their workload identity's credentials (kept while live, renewed past
    half their life). The jobs write in that directory, so nothing there is trusted: no
    other identity is looked at, and no read or write follows a link they planted."""
    root, who = openbao.job_settings(settings, project).data_dir, identity(project)
    name = f"credentials/{who}.json"
    try:
        files.write_beneath(root, "tls/ca.pem", settings.ca_bundle.read_bytes(), 0o644)
        raw = files.read_beneath(root, name)
        try:
            current = dict(json.loads(raw)) if raw else None
        except (ValueError, TypeError):
            current = None
        fresh = openbao.kept_or_fresh(operator, who, current)
        if fresh is not None:
            files.write_beneath(root, name, json.dumps(fresh).encode())
    except OSError as exc:
        raise IntegrityError(
            f"the job directory of '{project}' holds a link or an odd file; nothing written"
        ) from exc

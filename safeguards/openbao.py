"""Authenticated, verified connections to OpenBao, and its errors mapped once.

Every client verifies the server against the stack's CA bundle; there is no switch to turn
that off. Workloads log in with their own AppRole: in the sandbox its role id and secret id
come from a 0600 file under the data directory, in production from the orchestrator
(``HIPAA_MLOPS_OPENBAO_ROLE_ID`` / ``_SECRET_ID``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests

from safeguards.errors import AccessDenied, ConfigError, ServerError, Unavailable
from safeguards.files import write_private
from safeguards.policies import policy
from safeguards.settings import Settings


@contextmanager
def openbao_errors(action: str) -> Iterator[None]:
    """Translate hvac and transport failures into the safeguards hierarchy."""
    try:
        yield
    except hvac.exceptions.Forbidden as exc:
        raise AccessDenied(f"{action}: permission denied") from exc
    except hvac.exceptions.VaultDown as exc:
        raise Unavailable(f"{action}: OpenBao is sealed or down") from exc
    except requests.exceptions.SSLError as exc:
        raise Unavailable(f"{action}: TLS verification of OpenBao failed") from exc
    except requests.exceptions.ConnectionError as exc:
        raise Unavailable(f"{action}: OpenBao is unreachable") from exc
    except hvac.exceptions.VaultError as exc:
        raise ServerError(f"{action}: OpenBao refused the request ({type(exc).__name__})") from exc


def credentials_path(settings: Settings, identity: str) -> Path:
    return settings.credentials_dir / f"{identity}.json"


def save_credentials(settings: Settings, identity: str, role_id: str, secret_id: str) -> None:
    payload = json.dumps({"role_id": role_id, "secret_id": secret_id}).encode()
    write_private(credentials_path(settings, identity), payload)


class HealthProbe:
    """Whether OpenBao answers, initialised, unsealed and active, over verified TLS; asked at
    most once every `ttl` seconds, so that a readiness probe does not load it."""

    def __init__(self, settings: Settings, ttl: float = 2.0) -> None:
        self.url = f"{settings.openbao_url}/v1/sys/health"
        self.verify: str | bool = str(settings.ca_bundle) if settings.ca_bundle.is_file() else True
        self.ttl = ttl
        self._checked = -ttl
        self._healthy = False

    def healthy(self) -> bool:
        now = time.monotonic()
        if now - self._checked >= self.ttl:
            try:
                code = requests.get(self.url, verify=self.verify, timeout=2).status_code
            except requests.RequestException:
                code = 0
            self._healthy, self._checked = code == 200, now
        return self._healthy


def _read_credentials(path: Path, identity: str) -> dict[str, str]:
    try:
        creds = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no credentials for identity '{identity}' in the data directory"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the credentials file of identity '{identity}' is unreadable") from exc
    if not isinstance(creds, dict) or not all(
        isinstance(creds.get(k), str) for k in ("role_id", "secret_id")
    ):
        raise ConfigError(f"the credentials file of identity '{identity}' is malformed")
    return creds


def identity_credentials(settings: Settings, identity: str) -> dict[str, str]:
    """`identity`'s role id and secret id from its 0600 file, for a server's own config."""
    return _read_credentials(credentials_path(settings, identity), identity)


def client(settings: Settings, token: str | None = None) -> hvac.Client:
    """An unauthenticated (or token) client that verifies the server with the CA bundle."""
    if settings.openbao_addr is None and not settings.ca_bundle.is_file():
        raise ConfigError("the stack's CA bundle is missing: run `hipaa-mlops stack up` first")
    verify: str | bool = str(settings.ca_bundle) if settings.ca_bundle.is_file() else True
    return hvac.Client(url=settings.openbao_url, token=token, verify=verify, timeout=30)


def login(settings: Settings, identity: str, path: Path | None = None) -> hvac.Client:
    """A client logged in with `identity`'s AppRole: its credentials from the settings, the
    file at `path`, or its file in the data directory."""
    if settings.openbao_role_id and settings.openbao_secret_id and path is None:
        role_id = settings.openbao_role_id.get_secret_value()
        secret_id = settings.openbao_secret_id.get_secret_value()
    else:
        creds = _read_credentials(path or credentials_path(settings, identity), identity)
        role_id, secret_id = creds["role_id"], creds["secret_id"]
    bao = client(settings)
    with openbao_errors(f"AppRole login as '{identity}'"):
        bao.auth.approle.login(role_id=role_id, secret_id=secret_id)
    return bao


# Short-lived tokens; secret ids that expire (`stack up` renews them) and that, like the
# tokens they yield, work only from the stack's own addresses.
SECRET_ID_TTL_HOURS = 720
_ROLE_TOKENS = {
    "token_ttl": "1h",
    "token_max_ttl": "24h",
    "secret_id_ttl": f"{SECRET_ID_TTL_HOURS}h",
    "token_type": "service",
}


def _role_settings(settings: Settings, **token_settings: str) -> dict[str, Any]:
    cidrs = settings.bound_cidrs
    return {
        **_ROLE_TOKENS,
        "secret_id_bound_cidrs": cidrs,
        "token_bound_cidrs": cidrs,
        **token_settings,
    }


def create_approle(
    bao: hvac.Client,
    settings: Settings,
    identity: str,
    policies: list[str],
    **token_settings: str,
) -> tuple[str, str]:
    """Create (or update) `identity`'s AppRole; returns its role id and a fresh secret id."""
    bao.auth.approle.create_or_update_approle(
        identity, token_policies=policies, **_role_settings(settings, **token_settings)
    )
    role_id = bao.auth.approle.read_role_id(identity)["data"]["role_id"]
    secret_id = bao.auth.approle.generate_secret_id(identity)["data"]["secret_id"]
    return str(role_id), str(secret_id)


def ensure_identity(
    operator: hvac.Client,
    settings: Settings,
    identity: str,
    policies: list[str],
    rendered: dict[str, str] | None = None,
    **token_settings: str,
) -> None:
    """A server's own AppRole with `policies` (each from its policy file, or its text in
    `rendered`), and its credentials file (`ensure_credentials`)."""
    with openbao_errors(f"configuring identity '{identity}'"):
        for name in policies:
            operator.sys.create_or_update_policy(name, (rendered or {}).get(name) or policy(name))
        operator.auth.approle.create_or_update_approle(
            identity, token_policies=policies, **_role_settings(settings, **token_settings)
        )
    ensure_credentials(operator, settings, identity)


def ensure_credentials(operator: hvac.Client, settings: Settings, identity: str) -> bool:
    """`identity`'s credentials file, kept while it still logs in (same role id, live
    secret id), else written with a fresh secret id, so a restart does not pile up secret
    ids. False, and nothing written, when the identity does not exist (yet)."""
    path = credentials_path(settings, identity)
    with openbao_errors(f"issuing the credentials of '{identity}'"):
        try:
            role_id = str(operator.auth.approle.read_role_id(identity)["data"]["role_id"])
        except hvac.exceptions.InvalidPath:
            return False
        if path.exists():
            creds = _read_credentials(path, identity)
            if creds["role_id"] == role_id and _secret_id(operator, identity, creds["secret_id"]):
                return True
        secret_id = operator.auth.approle.generate_secret_id(identity)["data"]["secret_id"]
    save_credentials(settings, identity, role_id, str(secret_id))
    return True


def job_settings(settings: Settings, project: str) -> Settings:
    """The control plane's view of `project`'s jobs' data directory (HIPAA_MLOPS_JOB_DIRS):
    the jobs mount it as their whole data directory."""
    return settings.model_copy(update={"data_dir": settings.data_dir / "jobs" / project})


def kept_or_fresh(
    operator: hvac.Client, identity: str, current: dict[str, str] | None
) -> dict[str, str] | None:
    """None while `current` (credentials kept outside the control plane's directory, so
    untrusted) still logs in as `identity` and is not past half its life; else fresh ones,
    the old secret id destroyed if it was one of `identity`'s."""
    with openbao_errors(f"issuing the credentials of '{identity}'"):
        role_id = str(operator.auth.approle.read_role_id(identity)["data"]["role_id"])
        info = None
        if current and current.get("role_id") == role_id and current.get("secret_id"):
            try:
                info = _secret_id(operator, identity, current["secret_id"])
            except hvac.exceptions.InvalidRequest:
                info = None  # not a secret id at all
            if info and not _past_half_life(info["data"]):
                return None
        secret_id = str(operator.auth.approle.generate_secret_id(identity)["data"]["secret_id"])
        if info and current:
            operator.auth.approle.destroy_secret_id(identity, current["secret_id"])
    return {"role_id": role_id, "secret_id": secret_id}


def renew_secret_ids(
    operator: hvac.Client, settings: Settings, skip: frozenset[str] = frozenset()
) -> list[str]:
    """Give every identity with a credentials file a fresh secret id once half of its
    lifetime is gone (and destroy the old one); returns the identities renewed.

    Run by `stack up` as the operator: its own file is renewed like the others, so a
    stack that is started at least every fifteen days never locks itself out."""
    renewed = []
    for path in sorted(settings.credentials_dir.glob("*.json")):
        identity = path.stem
        if identity in skip:
            continue
        creds = _read_credentials(path, identity)
        with openbao_errors(f"renewing the secret id of '{identity}'"):
            try:
                role = bao_role(operator, identity)
            except hvac.exceptions.InvalidPath:
                continue  # the identity was deleted; its file is stale
            info = _secret_id(operator, identity, creds["secret_id"])
            if info and not _past_half_life(info["data"]):
                continue
            operator.auth.approle.create_or_update_approle(
                identity, token_policies=role["token_policies"], **_role_settings(settings)
            )
            secret_id = operator.auth.approle.generate_secret_id(identity)["data"]["secret_id"]
            save_credentials(settings, identity, creds["role_id"], str(secret_id))
            if info:
                operator.auth.approle.destroy_secret_id(identity, creds["secret_id"])
        renewed.append(identity)
    return renewed


def _secret_id(operator: hvac.Client, identity: str, secret_id: str) -> dict[str, Any] | None:
    """What OpenBao knows of a secret id, None if it is not (or no longer) one of
    `identity`'s (OpenBao answers that with an empty 204, which hvac hands back as is)."""
    info = operator.auth.approle.read_secret_id(identity, secret_id)
    return info if isinstance(info, dict) else None


def destroy_secret_ids(operator: hvac.Client, settings: Settings, identity: str) -> int:
    """Destroy every secret id of `identity`'s AppRole, and its credentials file: nobody
    logs in as it any more, and `stack up` does not renew it. Returns how many there were."""
    credentials_path(settings, identity).unlink(missing_ok=True)
    with openbao_errors(f"destroying the secret ids of '{identity}'"):
        try:
            listed = operator.auth.approle.list_secret_id_accessors(identity)["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            return 0
        for accessor in listed:
            operator.auth.approle.destroy_secret_id_accessor(identity, accessor)
    return len(listed)


def bao_role(bao: hvac.Client, identity: str) -> dict[str, Any]:
    return dict(bao.auth.approle.read_role(identity)["data"])


def _past_half_life(info: dict[str, Any]) -> bool:
    expires = info.get("expiration_time") or ""
    created = info.get("creation_time") or ""
    if not expires or expires.startswith("0001-"):
        return True  # an id that never expires is replaced by one that does
    start, end = dt.datetime.fromisoformat(created), dt.datetime.fromisoformat(expires)
    return dt.datetime.now(dt.UTC) > start + (end - start) / 2

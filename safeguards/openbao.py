"""Authenticated, verified connections to OpenBao, and its errors mapped once.

Every client verifies the server against the stack's CA bundle; there is no switch to turn
that off. Workloads log in with their own AppRole: in the sandbox its role id and secret id
come from a 0600 file under the data directory, in production from the orchestrator
(``HIPAA_MLOPS_OPENBAO_ROLE_ID`` / ``_SECRET_ID``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hvac
import hvac.exceptions
import requests

from safeguards.errors import AccessDenied, ConfigError, ServerError, Unavailable
from safeguards.files import write_private
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


def client(settings: Settings, token: str | None = None) -> hvac.Client:
    """An unauthenticated (or token) client that verifies the server with the CA bundle."""
    if settings.openbao_addr is None and not settings.ca_bundle.is_file():
        raise ConfigError("the stack's CA bundle is missing: run `hipaa-mlops stack up` first")
    verify: str | bool = str(settings.ca_bundle) if settings.ca_bundle.is_file() else True
    return hvac.Client(url=settings.openbao_url, token=token, verify=verify, timeout=30)


def login(settings: Settings, identity: str) -> hvac.Client:
    """A client logged in with `identity`'s AppRole."""
    if settings.openbao_role_id and settings.openbao_secret_id:
        role_id = settings.openbao_role_id.get_secret_value()
        secret_id = settings.openbao_secret_id.get_secret_value()
    else:
        path = credentials_path(settings, identity)
        try:
            creds = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(
                f"no credentials for identity '{identity}' in the data directory"
            ) from exc
        role_id, secret_id = creds["role_id"], creds["secret_id"]
    bao = client(settings)
    with openbao_errors(f"AppRole login as '{identity}'"):
        bao.auth.approle.login(role_id=role_id, secret_id=secret_id)
    return bao


# Short-lived tokens; secret ids do not expire in the sandbox (production rotates them).
_ROLE_TOKENS = {
    "token_ttl": "1h",
    "token_max_ttl": "24h",
    "secret_id_ttl": "0",
    "token_type": "service",
}


def create_approle(
    bao: hvac.Client, identity: str, policies: list[str], **token_settings: str
) -> tuple[str, str]:
    """Create (or update) `identity`'s AppRole; returns its role id and a fresh secret id."""
    bao.auth.approle.create_or_update_approle(
        identity, token_policies=policies, **{**_ROLE_TOKENS, **token_settings}
    )
    role_id = bao.auth.approle.read_role_id(identity)["data"]["role_id"]
    secret_id = bao.auth.approle.generate_secret_id(identity)["data"]["secret_id"]
    return str(role_id), str(secret_id)

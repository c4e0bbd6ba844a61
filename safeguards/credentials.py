"""Generated credentials, kept in OpenBao KV v2 and nowhere else.

A service asks for its credential by name; the first caller generates it, every later
caller reads the same value. Values never go to files, `.env` or logs.
"""

from __future__ import annotations

import re
import secrets

import hvac
import hvac.exceptions

from safeguards.errors import ConfigError
from safeguards.openbao import openbao_errors

_NAME = re.compile(r"^[a-z0-9][a-z0-9/_-]{0,120}$")


def ensure_generated(bao: hvac.Client, path: str, field: str = "password", nbytes: int = 32) -> str:
    """The credential at ``secret/<path>``, generated on first use (check-and-set)."""
    if not _NAME.match(path) or ".." in path:
        raise ConfigError("a credential path is lowercase letters, digits, '/', '_' and '-'")
    with openbao_errors(f"reading credential '{path}'"):
        try:
            current = bao.secrets.kv.v2.read_secret_version(
                path, mount_point="secret", raise_on_deleted_version=True
            )["data"]["data"]
            return str(current[field])
        except hvac.exceptions.InvalidPath:
            pass
    value = secrets.token_urlsafe(nbytes)
    with openbao_errors(f"storing credential '{path}'"):
        try:
            bao.secrets.kv.v2.create_or_update_secret(
                path, {field: value}, cas=0, mount_point="secret"
            )
        except hvac.exceptions.InvalidRequest:
            # Another process created it first (cas=0 refused): use theirs.
            return ensure_generated(bao, path, field, nbytes)
    return value

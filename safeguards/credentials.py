"""Generated credentials, kept in OpenBao KV v2 and nowhere else.

A service asks for its credential by name; the first caller generates it, every later
caller reads the same value. Values never go to files, `.env` or logs.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

import hvac
import hvac.exceptions

from safeguards.errors import ConfigError, NotFound
from safeguards.openbao import openbao_errors

_NAME = re.compile(r"^[a-z0-9][a-z0-9/_-]{0,120}$")


def read(bao: hvac.Client, path: str) -> dict[str, str]:
    """Every field of the credential at ``secret/<path>``."""
    with openbao_errors(f"reading credential '{path}'"):
        try:
            data = bao.secrets.kv.v2.read_secret_version(
                path, mount_point="secret", raise_on_deleted_version=True
            )["data"]["data"]
        except hvac.exceptions.InvalidPath as exc:
            raise NotFound(f"no credential at '{path}'") from exc
    return {str(k): str(v) for k, v in data.items()}


def ensure(bao: hvac.Client, path: str, make: Callable[[], dict[str, str]]) -> dict[str, str]:
    """The credential at ``secret/<path>``, made by `make` on first use (check-and-set)."""
    if not _NAME.match(path) or ".." in path:
        raise ConfigError("a credential path is lowercase letters, digits, '/', '_' and '-'")
    try:
        return read(bao, path)
    except NotFound:
        pass
    value = make()
    with openbao_errors(f"storing credential '{path}'"):
        try:
            bao.secrets.kv.v2.create_or_update_secret(path, value, cas=0, mount_point="secret")
        except hvac.exceptions.InvalidRequest:
            # Another process created it first (cas=0 refused): use theirs.
            return read(bao, path)
    return value


def ensure_generated(bao: hvac.Client, path: str, field: str = "password") -> str:
    """A random secret at ``secret/<path>``, generated on first use."""
    return require(ensure(bao, path, lambda: {field: secrets.token_urlsafe(32)}), path, field)[
        field
    ]


def ensure_s3_identity(bao: hvac.Client, path: str) -> dict[str, str]:
    """An S3 access key pair at ``secret/<path>``, generated on first use."""
    pair = ensure(
        bao,
        path,
        lambda: {
            "access_key": "HM" + secrets.token_hex(9).upper(),
            "secret_key": secrets.token_urlsafe(30),
        },
    )
    return require(pair, path, "access_key", "secret_key")


def require(record: dict[str, str], path: str, *fields: str) -> dict[str, str]:
    """`record` if it has every field, else a one-line error naming the path only."""
    if not all(record.get(f) for f in fields):
        raise ConfigError(
            f"the record at secret/{path} is malformed; restore it, or delete it to have it "
            "generated again"
        )
    return record

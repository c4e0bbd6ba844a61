"""API keys of the HTTP services: one per client, bound to one project, stored hashed.

A key reads ``<key id>.<secret>``. The key id is ``<project>_<16 hex digits>``: it names
the project the key is bound to and is not secret (it appears in access logs). The secret
is 256 random bits. OpenBao KV keeps only the SHA-256 of the secret, with the client's
name, at ``secret/projects/<project>/api-keys/<key id>``: the operator writes it, the
project's serving and workload identities read it, no other project's can. The key is printed once,
at creation, and kept nowhere.

Why one SHA-256 and no slow KDF (bcrypt, scrypt, Argon2): a slow hash protects
low-entropy passwords, which an attacker holding the hashes could guess. A 256-bit random
secret cannot be guessed, so a slow hash would add no strength and cost a noticeable
fraction of a second on every request (MLflow's scrypt check takes 0.4 s). Digests are
compared with `hmac.compare_digest`.

Looked-up digests, and unknown key ids, are cached for a short TTL so that a request
does not wait on OpenBao; a revoked key stops working within that TTL. A key bound to
another project is refused with 403 before any lookup: this endpoint's identity cannot
read another project's keys, and need not, since nothing is served either way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio.to_thread
import hvac
import hvac.exceptions

from safeguards import keys, openbao
from safeguards.errors import ConfigError, NotFound, SafeguardError
from safeguards.openbao import openbao_errors
from safeguards.settings import PROJECT, Settings

_KEY_ID = re.compile(rf"({PROJECT})_([0-9a-f]{{16}})")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
_CLIENT = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# Unknown key ids are cached too (so random ids cannot flood OpenBao); the cache is
# emptied when it grows past this many entries.
_CACHE_LIMIT = 10_000
# The workload's OpenBao tokens live an hour: log in again well before.
_RELOGIN_SECONDS = 1800.0


def _path(project: str, key_id: str | None = None) -> str:
    base = f"projects/{keys.validate_project(project)}/api-keys"
    return base if key_id is None else f"{base}/{key_id}"


def bound_project(key_id: str) -> str | None:
    """The project a key id is bound to, or None if it is not a key id."""
    match = _KEY_ID.fullmatch(key_id)
    return match[1] if match else None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(operator: hvac.Client, project: str, client: str) -> tuple[str, str]:
    """A new key for `client` of `project`; returns (key id, key). Only the digest is kept."""
    if not _CLIENT.fullmatch(client):
        raise ConfigError(
            "a client name is 1-64 characters of lowercase letters, digits, '.', '_' and '-'"
        )
    key_id = f"{keys.validate_project(project)}_{secrets.token_hex(8)}"
    secret = secrets.token_urlsafe(32)
    record = {
        "client": client,
        "sha256": digest(secret),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    with openbao_errors(f"storing an API key of project '{project}'"):
        operator.secrets.kv.v2.create_or_update_secret(
            _path(project, key_id), record, cas=0, mount_point="secret"
        )
    return key_id, f"{key_id}.{secret}"


def list_keys(operator: hvac.Client, project: str) -> list[dict[str, str]]:
    """Every key of `project`: its id, client and creation time (never its digest)."""
    with openbao_errors(f"listing the API keys of project '{project}'"):
        try:
            ids = operator.secrets.kv.v2.list_secrets(_path(project), mount_point="secret")
        except hvac.exceptions.InvalidPath:
            return []
        found = []
        for key_id in ids["data"]["keys"]:
            data = operator.secrets.kv.v2.read_secret_version(
                _path(project, key_id), mount_point="secret", raise_on_deleted_version=True
            )["data"]["data"]
            found.append({"key_id": key_id, "client": data["client"], "created": data["created"]})
    return found


def revoke(operator: hvac.Client, project: str, key_id: str) -> None:
    """Delete the key's record for good; the endpoint refuses it once its cache expires."""
    if bound_project(key_id) != project:
        raise ConfigError(f"'{key_id}' is not a key id of project '{project}'")
    with openbao_errors(f"revoking API key {key_id}"):
        try:
            operator.secrets.kv.v2.read_secret_metadata(
                _path(project, key_id), mount_point="secret"
            )
        except hvac.exceptions.InvalidPath:
            raise NotFound(f"project '{project}' has no API key {key_id}") from None
        operator.secrets.kv.v2.delete_metadata_and_all_versions(
            _path(project, key_id), mount_point="secret"
        )


class KeyStore:
    """Reads key digests as `identity` (the project's serving or workload identity),
    logging in again before its token expires."""

    def __init__(self, settings: Settings, project: str, identity: str) -> None:
        self.settings = settings
        self.project = keys.validate_project(project)
        self.identity = identity
        self._client: hvac.Client | None = None
        self._logged_in = 0.0
        self._lock = threading.Lock()

    def _bao(self) -> hvac.Client:
        with self._lock:
            if self._client is None or time.monotonic() - self._logged_in > _RELOGIN_SECONDS:
                self._client = openbao.login(self.settings, self.identity)
                self._logged_in = time.monotonic()
            return self._client

    def digest(self, key_id: str) -> str | None:
        """The stored digest of `key_id`, or None if there is no such key."""
        try:
            bao = self._bao()
            with openbao_errors(f"reading API key {key_id}"):
                try:
                    data = bao.secrets.kv.v2.read_secret_version(
                        _path(self.project, key_id),
                        mount_point="secret",
                        raise_on_deleted_version=True,
                    )["data"]["data"]
                except hvac.exceptions.InvalidPath:
                    return None
        except SafeguardError:
            # The token may have been revoked: log in afresh on the next lookup.
            self._client = None
            raise
        return str(data["sha256"])


@dataclass(frozen=True)
class Verdict:
    """The answer to one request's credentials: HTTP status, a reason usable as a metric
    label, the key id when one was presented, and a message that never repeats the key."""

    status: int
    reason: str
    message: str
    key_id: str | None = None


_MISSING = Verdict(
    401, "missing_key", "send an API key as 'Authorization: Bearer <key id>.<secret>'"
)
_MALFORMED = Verdict(401, "malformed_key", "the API key is malformed")
# Its key id is not kept: unverified, it is whatever the client wrote.
_OTHER_PROJECT = Verdict(403, "other_project", "this API key is bound to another project")


class KeyVerifier:
    """Checks `Authorization` headers against the project's keys, with a TTL cache."""

    def __init__(
        self, project: str, lookup: Callable[[str], str | None], ttl_seconds: float
    ) -> None:
        self.project = keys.validate_project(project)
        self.lookup = lookup
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, str | None]] = {}

    @staticmethod
    def parse(authorization: str | None) -> tuple[str, str] | Verdict:
        """(key id, secret) from a header, or the refusal of a missing or malformed one."""
        if not authorization:
            return _MISSING
        scheme, _, token = authorization.partition(" ")
        key_id, _, secret = token.strip().partition(".")
        if scheme.lower() != "bearer" or not bound_project(key_id) or not _SECRET.fullmatch(secret):
            return _MALFORMED
        return key_id, secret

    def _cached(self, key_id: str) -> tuple[bool, str | None]:
        entry = self._cache.get(key_id)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def _remember(self, key_id: str, stored: str | None) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key_id] = (time.monotonic() + self.ttl, stored)

    async def verify(self, authorization: str | None) -> Verdict:
        """The verdict on a request's `Authorization` header; OpenBao is asked on a miss."""
        parsed = self.parse(authorization)
        if isinstance(parsed, Verdict):
            return parsed
        key_id, secret = parsed
        if bound_project(key_id) != self.project:
            return _OTHER_PROJECT
        hit, stored = self._cached(key_id)
        if not hit:
            try:
                stored = await anyio.to_thread.run_sync(self.lookup, key_id)
            except SafeguardError:
                return Verdict(503, "key_store_unavailable", "API keys cannot be checked now")
            self._remember(key_id, stored)
        if stored is None or not hmac.compare_digest(digest(secret), stored):
            return Verdict(401, "invalid_key", "the API key is not valid", key_id)
        return Verdict(200, "ok", "", key_id)

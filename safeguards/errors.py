"""The one error hierarchy of the security core.

    SafeguardError
    ├── ConfigError          settings missing, malformed or placeholder; bad names
    ├── Unavailable          a server is down, sealed, or its TLS does not verify
    ├── AccessDenied         the identity's policy does not allow the call
    ├── NotFound             a bucket or object does not exist
    ├── KeyUnavailable       the key is destroyed, or its version is revoked
    ├── IntegrityError       ciphertext or envelope was altered, or is not ours
    ├── AuditChainError      the audit log does not verify
    ├── GateRefused          a privacy, de-identification or promotion gate said no
    └── ServerError          any other refusal by OpenBao or the object store

Messages name what failed and never carry the values that were being handled: an error
may end up in a log line or an HTTP body, and the values may be PHI.
"""

from __future__ import annotations


class SafeguardError(Exception):
    """Base of every error raised by the security core."""

    #: HTTP status an edge (CLI, service) renders this error with.
    status: int = 500


class ConfigError(SafeguardError):
    status = 500


class Unavailable(SafeguardError):
    status = 503


class AccessDenied(SafeguardError):
    status = 403


class NotFound(SafeguardError):
    status = 404


class KeyUnavailable(SafeguardError):
    status = 410


class IntegrityError(SafeguardError):
    status = 422


class AuditChainError(SafeguardError):
    status = 500


class ServerError(SafeguardError):
    status = 502


class GateRefused(SafeguardError):
    """A gate (privacy, de-identification, promotion) refused; the message says which check."""

    status = 422

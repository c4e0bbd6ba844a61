"""The one error hierarchy of the security core.

    SafeguardError
    ├── ConfigError          settings missing, malformed or placeholder
    ├── OpenBaoError         any failure talking to OpenBao
    │   ├── Unavailable      connection refused, TLS failure, sealed server
    │   ├── AccessDenied     the identity's policy does not allow the call (403)
    │   └── KeyUnavailable   the key is destroyed, or its version is revoked
    ├── IntegrityError       ciphertext or envelope was altered or is not ours
    └── AuditChainError      the audit log does not verify

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


class OpenBaoError(SafeguardError):
    status = 502


class Unavailable(OpenBaoError):
    status = 503


class AccessDenied(OpenBaoError):
    status = 403


class KeyUnavailable(OpenBaoError):
    status = 410


class IntegrityError(SafeguardError):
    status = 422


class AuditChainError(SafeguardError):
    status = 500

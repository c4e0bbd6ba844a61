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
may end up in a log line or an HTTP body, and the values may be PHI. The command line
renders each as one `error:` line and exit code 1; the servers map the ones they expect
to their own answers.
"""

from __future__ import annotations


class SafeguardError(Exception):
    """Base of every error raised by the security core."""


class ConfigError(SafeguardError):
    pass


class Unavailable(SafeguardError):
    pass


class AccessDenied(SafeguardError):
    pass


class NotFound(SafeguardError):
    pass


class KeyUnavailable(SafeguardError):
    pass


class IntegrityError(SafeguardError):
    pass


class AuditChainError(SafeguardError):
    pass


class ServerError(SafeguardError):
    pass


class GateRefused(SafeguardError):
    """A gate (privacy, de-identification, promotion) refused; the message says which check."""

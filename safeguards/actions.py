"""Operator actions, audited in one place.

Every change an operator makes to a project, its keys or its API keys goes through
`Operator.act`: the action runs, and the audit log records it with its outcome, ``ok``
or ``failed`` with the error's message (which never carries a value). The command line,
the demo and the launchers all act through it, so none of them changes a key without an
audit entry, or fails without one. The operator's OpenBao client is given, not made here:
one login serves every action of a command.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import hvac

from safeguards import apikeys, keys
from safeguards.audit import AuditLog
from safeguards.errors import SafeguardError
from safeguards.settings import Settings

R = TypeVar("R")


class Operator:
    def __init__(self, settings: Settings, bao: hvac.Client, actor: str) -> None:
        self.settings = settings
        self.bao = bao
        self.actor = actor
        self.audit = AuditLog.of(settings, bao)

    def act(
        self,
        action: str,
        resource: str,
        run: Callable[[], R],
        details: dict[str, Any] | None = None,
        described: Callable[[R], dict[str, Any]] = lambda _: {},
    ) -> R:
        """Run `run` and audit it as `action` on `resource`, with `details` and, on success,
        what `described` draws from its result; a SafeguardError is audited, then raised."""
        details = details or {}
        try:
            result = run()
        except SafeguardError as exc:
            self.audit.append(
                self.actor, action, resource, outcome="failed", error=str(exc), **details
            )
            raise
        self.audit.append(self.actor, action, resource, **details, **described(result))
        return result

    def project(self, action: str, project: str, run: Callable[[], R], **details: Any) -> R:
        """An action on project `project` (its name checked first)."""
        resource = f"project/{keys.validate_project(project)}"
        return self.act(action, resource, run, details)

    def rotate_key(self, project: str, region: str) -> int:
        return self.project(
            "keys.rotate", project, lambda: keys.rotate(self.bao, project, region), region=region
        )

    def revoke_below(self, project: str, region: str, version: int) -> None:
        self.project(
            "keys.revoke",
            project,
            lambda: keys.revoke_below(self.bao, project, region, version),
            region=region,
            below=version,
        )

    def shred(self, project: str, regions: Sequence[str]) -> None:
        self.project(
            "keys.shred", project, lambda: keys.shred(self.bao, project, regions), regions=regions
        )

    def create_api_key(self, project: str, client: str) -> tuple[str, str]:
        """A new API key for `client` of `project`: (key id, key); the key id is audited."""
        return self.act(
            "serving.keys.create",
            f"serving/{keys.validate_project(project)}",
            lambda: apikeys.create(self.bao, project, client),
            {"client": client},
            lambda made: {"key_id": made[0]},
        )

    def revoke_api_key(self, project: str, key_id: str) -> None:
        self.act(
            "serving.keys.revoke",
            f"serving/{keys.validate_project(project)}",
            lambda: apikeys.revoke(self.bao, project, key_id),
            {"key_id": key_id},
        )

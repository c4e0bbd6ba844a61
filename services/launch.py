"""What a server's launcher hands the supervisor."""

from __future__ import annotations

from dataclasses import dataclass, field

from safeguards.settings import Settings

_SECRETS = {"openbao_role_id", "openbao_secret_id"}


@dataclass(frozen=True)
class Launch:
    """How to start a server: its command line and what to add to its environment."""

    command: list[str]
    env: dict[str, str] = field(default_factory=dict)


def environment(settings: Settings) -> dict[str, str]:
    """The settings as ``HIPAA_MLOPS_*`` variables for a server that logs in as its
    project's workload identity: secrets (the caller's AppRole credentials) left out."""
    values = settings.model_dump(exclude=_SECRETS, exclude_none=True)
    return {f"HIPAA_MLOPS_{name.upper()}": str(value) for name, value in values.items()}

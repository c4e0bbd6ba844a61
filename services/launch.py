"""What a server's launcher hands the supervisor."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Launch:
    """How to start a server: its command line and what to add to its environment."""

    command: list[str]
    env: dict[str, str] = field(default_factory=dict)

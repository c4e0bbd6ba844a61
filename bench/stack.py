"""Every benchmark's servers: a fresh stack in a temporary directory, stopped afterwards."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from safeguards.settings import Settings
from services.supervisor import Supervisor
from tests.conftest import free_port_base


@contextmanager
def running(profile: str = "sandbox", **overrides: Any) -> Iterator[Settings]:
    """The profile's servers on free loopback ports; scratch space is the data directory's
    parent, removed with it."""
    with tempfile.TemporaryDirectory(prefix="hipaa-mlops-bench-") as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "stack", port_base=free_port_base(), profile=profile, **overrides
        )
        supervisor = Supervisor(settings)
        try:
            supervisor.up(profile, timeout=120)
            yield settings
        finally:
            supervisor.down()

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


def tree_rss_mib(pid: int) -> float:
    """Resident memory of process `pid` and all of its descendants, MiB."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return rss + sum(tree_rss_mib(int(child)) for child in children)

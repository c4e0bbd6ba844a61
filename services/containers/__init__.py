"""Container tooling: a Docker engine, the Compose CLI plugin and the stack's images.

    python -m services.containers.engine up|down|status
    python -m services.containers.cli_plugin
    python -m services.containers.images build|list

Whatever is large (the engine's data root, the Compose binary, the base image's root file
system, the wheelhouse) is cached outside the repository, under the same directory as
SeaweedFS's `weed` binary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

POLICY_RC = Path("/usr/sbin/policy-rc.d")


def can_provision() -> bool:
    """Whether missing tools may be installed here: root on a Debian-like machine."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


@contextlib.contextmanager
def services_not_started(policy: Path = POLICY_RC) -> Iterator[None]:
    """Keep maintainer scripts from starting the services they install (Debian's
    policy-rc.d protocol: exit status 101 denies every start); an existing policy stays."""
    if policy.exists():
        yield
        return
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    try:
        yield
    finally:
        policy.unlink(missing_ok=True)


def apt_install(*packages: str) -> None:
    """Install Debian packages, their recommendations left out, services not started."""
    print(f"installing {' '.join(packages)} with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with services_not_started():
        for command in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        ):
            if subprocess.run(command, env=env, check=False).returncode != 0:
                raise SystemExit(f"`{' '.join(command)}` failed")

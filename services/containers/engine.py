"""Make sure a Docker engine answers, starting one of our own where the machine has none.

The engine the user already has wins: DOCKER_HOST, or the default socket. Where none
answers and we are root on Debian, Debian's `docker.io` is installed if `dockerd` (or the
`docker` CLI) is missing, and `dockerd` is started by hand: data root under
~/.cache/hipaa-mlops/docker/ (kept across restarts, so images survive), exec root, pid file
under /run/hipaa-mlops/docker/, listening on the default socket so that every client
finds it without DOCKER_HOST. `down` stops only a dockerd that `up` started.

    python -m services.containers.engine up|down|status
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from services.containers import apt_install, can_provision
from services.gobuild import cache_dir

DEFAULT_HOST = "unix:///var/run/docker.sock"
RUN_DIR = Path("/run/hipaa-mlops/docker")
PIDFILE = RUN_DIR / "dockerd.pid"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
# The packages that give `dockerd` and the `docker` CLI; dockerd programs iptables for
# its bridge networks.
PACKAGES = ("docker.io", "iptables")


def host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def data_root() -> Path:
    return cache_dir() / "docker" / "data-root"


def log_path() -> Path:
    return cache_dir() / "docker" / "dockerd.log"


def server_version() -> str | None:
    """The engine's version where `docker info` answers, else None."""
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    version = done.stdout.strip()
    return version if done.returncode == 0 and version else None


def our_pid() -> int | None:
    """The pid of the dockerd that `up` started, while it runs."""
    try:
        pid = int(PIDFILE.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if Path(os.fsdecode(cmdline[0])).name == "dockerd" else None


def no_engine(reason: str) -> SystemExit:
    return SystemExit(
        f"{reason}: start a Docker engine (e.g. `sudo systemctl start docker`) or point "
        "DOCKER_HOST at one; this command installs and starts one only as root on Debian"
    )


def wait_for_engine(alive: Callable[[], bool]) -> str:
    """The engine's version once `docker info` answers; a one-line error if dockerd dies."""
    deadline = time.monotonic() + START_TIMEOUT
    while (version := server_version()) is None:
        if not alive():
            raise SystemExit(f"dockerd exited: see {log_path()}")
        if time.monotonic() > deadline:
            raise SystemExit(
                f"dockerd did not answer within {START_TIMEOUT:.0f} s: see {log_path()}"
            )
        time.sleep(0.5)
    return version


def start_dockerd() -> str:
    RUN_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_root().mkdir(parents=True, exist_ok=True, mode=0o700)
    command = [
        "dockerd",
        "--data-root", str(data_root()),
        "--exec-root", str(RUN_DIR / "exec"),
        "--pidfile", str(PIDFILE),
        "-H", DEFAULT_HOST,
    ]  # fmt: skip
    with log_path().open("ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    print(f"started dockerd (pid {process.pid}), log {log_path()}", file=sys.stderr)
    return wait_for_engine(lambda: process.poll() is None)


def describe(version: str) -> str:
    pid = our_pid() if host() == DEFAULT_HOST else None
    owner = f"ours, dockerd pid {pid}" if pid else "the user's"
    return f"Docker engine {version} answers at {host()} ({owner})"


def up() -> None:
    if shutil.which("docker") and (version := server_version()):
        print(describe(version))
        return
    if os.environ.get("DOCKER_HOST"):
        raise no_engine(f"no Docker engine answers at DOCKER_HOST={host()}")
    if not can_provision():
        raise no_engine(f"no Docker engine answers at {host()}")
    if any(shutil.which(name) is None for name in ("docker", "dockerd")):
        apt_install(*PACKAGES)
    pid = our_pid()
    if (version := server_version()) is None:
        # (One that answers once the CLI is installed is the user's, and is used as is.)
        version = wait_for_engine(lambda: our_pid() == pid) if pid else start_dockerd()
    print(describe(version))


def down() -> None:
    pid = our_pid()
    if pid is None:
        print("no dockerd of ours is running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while our_pid() == pid and Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.5)
    print(f"stopped dockerd (pid {pid})")


def status() -> None:
    pid = our_pid()
    ours = f"our dockerd: pid {pid}, data root {data_root()}" if pid else "our dockerd: not running"
    version = server_version() if shutil.which("docker") else None
    print(describe(version) if version else f"no Docker engine answers at {host()}")
    print(ours)
    if version is None:
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.containers.engine",
        description="Make sure a Docker engine answers; start our own dockerd where none does.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("up", help="use the engine that answers, else install and start dockerd")
    commands.add_parser("down", help="stop the dockerd that `up` started (no other)")
    commands.add_parser("status", help="show which engine answers and whether it is ours")
    {"up": up, "down": down, "status": status}[parser.parse_args(argv).command]()


if __name__ == "__main__":
    main()

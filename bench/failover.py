"""How long OpenBao serves nothing when its node stops: the cloud's pair on PostgreSQL
(a standby takes over) against the stack's single raft node (restarted and unsealed).

    python -m bench.failover [--rounds 3]

Each round stops the serving node and times until a node answers 200 on /v1/sys/health:
the standby after the active node is killed (its lock lapses) or stopped cleanly (it
releases the lock); the single node after a kill, started again by the launcher and
unsealed with its key. PostgreSQL is a throwaway cluster on a Unix socket, as root in a
user namespace of its own. Prints the median of each against the single node's restart.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from safeguards.errors import Unavailable
from safeguards.settings import Settings
from services.openbao import launcher
from services.postgres import launcher as postgres
from tests.conftest import free_port_base


def _serving(settings: Settings) -> str:
    try:
        return launcher.status(settings)
    except Unavailable:
        return "down"


class Node:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        launch = launcher.prepare(settings)
        env = {"PATH": os.environ["PATH"], **launch.env}
        self.process = subprocess.Popen(
            launch.command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        while _serving(settings) == "down":
            time.sleep(0.05)

    def stop(self, how: signal.Signals) -> float:
        """Stop the node; when it was stopped."""
        self.process.send_signal(how)
        self.process.wait(30)
        return time.monotonic()


def _until_ready(settings: Settings, since: float) -> float:
    while _serving(settings) != "ready":
        time.sleep(0.05)
    return time.monotonic() - since


@contextmanager
def _database(root: Path) -> Iterator[None]:
    """A PostgreSQL cluster on a Unix socket in `root`, given to OpenBao through libpq's
    variables."""
    data = root / "pg"
    subprocess.run(
        postgres._unprivileged(
            [postgres._binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        ),
        check=True,
        capture_output=True,
    )
    port = str(free_port_base(span=1))
    server = subprocess.Popen(
        postgres._unprivileged(
            [
                postgres._binary("postgres"),
                "-D",
                str(data),
                "-p",
                port,
                "-k",
                str(root),
                "-c",
                "listen_addresses=",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ.update(PGHOST=str(root), PGPORT=port, PGUSER="postgres", PGDATABASE="postgres")
    while subprocess.run(["pg_isready", "-q"], check=False).returncode != 0:
        time.sleep(0.1)
    try:
        yield
    finally:
        server.send_signal(signal.SIGINT)  # a fast shutdown: closes the nodes' sessions
        server.wait(30)


def pair(root: Path, rounds: int, how: signal.Signals) -> list[float]:
    """The cloud's pair: kill or stop the active node, time the standby's takeover, start
    the stopped node again as the new standby."""
    os.environ[launcher.UNSEAL_KEY_ENV] = base64.b64encode(secrets.token_bytes(32)).decode()
    data, database = root / f"pair-{how.name}", f"openbao_{how.name.lower()}"
    subprocess.run(["createdb", database], check=True)  # a pair of its own, a barrier of its own
    os.environ["PGDATABASE"] = database

    started: list[Node] = []

    def node() -> Node:
        started.append(
            Node(
                Settings(
                    data_dir=data,
                    port_base=free_port_base(),
                    openbao_storage="postgresql",
                    openbao_seal="static",
                )
            )
        )
        launcher.on_start(started[-1].settings)
        return started[-1]

    times = []
    try:
        active, standby = node(), node()
        for _ in range(rounds):
            times.append(_until_ready(standby.settings, active.stop(how)))
            active, standby = standby, node()
    finally:
        for each in started:
            each.process.kill()
    return times


def single(root: Path, rounds: int) -> list[float]:
    """The stack's single raft node: killed, started again, unsealed with its key file."""
    settings = Settings(data_dir=root / "single", port_base=free_port_base())
    current = Node(settings)
    times = []
    try:
        launcher.on_start(settings)
        for _ in range(rounds):
            since = current.stop(signal.SIGKILL)
            current = Node(settings)
            launcher.on_start(settings)
            times.append(_until_ready(settings, since))
    finally:
        current.process.kill()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hipaa-mlops-failover-") as tmp:
        root = Path(tmp)
        with _database(root):
            results = {
                "single raft node, killed and restarted (the stack's)": single(root, args.rounds),
                "active killed, standby takes over (AWS)": pair(root, args.rounds, signal.SIGKILL),
                "active stopped, standby takes over (AWS)": pair(root, args.rounds, signal.SIGTERM),
            }
    baseline = statistics.median(next(iter(results.values())))
    table = Table(title=f"OpenBao serving nothing, {args.rounds} rounds each (median)")
    for column in ("case", "seconds", "x single node's restart", "each round"):
        table.add_column(column)
    for case, times in results.items():
        median = statistics.median(times)
        table.add_row(
            case, f"{median:.1f}", f"{median / baseline:.2f}", ", ".join(f"{t:.1f}" for t in times)
        )
    Console().print(table)


if __name__ == "__main__":
    main()

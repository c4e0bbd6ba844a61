"""The compose stack against the native stack, in one run: time to healthy, memory, image
sizes.

- cold: every image of ours removed and rebuilt without Docker's layer cache (the Debian
  root file systems and the wheelhouse stay cached, as on any machine that built once),
  then `stack up` on fresh volumes;
- warm: images built, fresh volumes: `stack up` to all-healthy (OpenBao initialised,
  every certificate issued, the lake's buckets made);
- restart: `stack down` (volumes kept), then `stack up` again: OpenBao unsealed, nothing
  re-initialised;
- down: `stack down` itself;
- memory: the resident memory of every server once healthy and idle: the compose stack's
  per-container figures from `docker stats`, the native stack's the RSS of each server's
  process tree from /proc, both started in this run on the `stack` profile.

Each `stack up` is the CLI's, as `make up` runs it. The machine is shared and noisy: read
the ratios, measured in the same run, more than the absolutes.

    python -m bench.containers [--skip-cold] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.stack import tree_rss_mib
from safeguards.settings import Settings
from services.compose import IMAGES, ComposeStack
from services.containers.images import load_record
from services.supervisor import Supervisor
from services.topology import services_for
from tests.conftest import free_port_base

console = Console(stderr=True)
HIPAA_MLOPS = str(Path(sys.executable).with_name("hipaa-mlops"))


def _timed(step: Callable[[], object]) -> float:
    started = time.monotonic()
    step()
    return time.monotonic() - started


def _cli(settings: Settings, *args: str) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "HIPAA_MLOPS_DATA_DIR": str(settings.data_dir),
        "HIPAA_MLOPS_RUNTIME": "compose",
        "HIPAA_MLOPS_PROFILE": "stack",
        "HIPAA_MLOPS_PORT_BASE": str(settings.port_base),
    }
    subprocess.run([HIPAA_MLOPS, *args], env=env, check=True, capture_output=True)


def _mib(text: str) -> float:
    """docker stats' "123.4MiB / 23.4GiB" as MiB."""
    used = text.split("/")[0].strip()
    for unit, factor in (("GiB", 1024.0), ("MiB", 1.0), ("KiB", 1 / 1024), ("B", 1 / 2**20)):
        if used.endswith(unit):
            return float(used.removesuffix(unit)) * factor
    raise ValueError(f"unreadable memory figure {used!r}")


def compose_memory(stack: ComposeStack) -> dict[str, float]:
    ids = stack.compose("ps", "--quiet").split()
    stats = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{json .}}", *ids],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    by_name = {}
    for line in stats.splitlines():
        entry = json.loads(line)
        service = entry["Name"].removeprefix(f"{stack.project}-").rsplit("-", 1)[0]
        by_name[service] = _mib(entry["MemUsage"])
    return by_name


def native_memory(root: Path) -> dict[str, float]:
    settings = Settings(data_dir=root / "native", port_base=free_port_base(), profile="stack")
    supervisor = Supervisor(settings)
    try:
        supervisor.up("stack", timeout=180)
        time.sleep(10)  # idle, as the compose figures are taken
        return {
            s.name: tree_rss_mib(pid)
            for s in services_for("stack")
            if (pid := supervisor.pid(s.name)) is not None
        }
    finally:
        supervisor.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-cold", action="store_true", help="keep the built images")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hipaa-mlops-bench-") as tmp:
        root = Path(tmp)
        settings = Settings(
            data_dir=root / "compose", runtime="compose", profile="stack",
            port_base=free_port_base(),
        )  # fmt: skip
        stack = ComposeStack(settings)
        try:
            if not args.skip_cold:
                console.print("cold: removing our images, then make images and stack up")
                refs = [load_record()[name]["tag"] for name in IMAGES]
                subprocess.run(["docker", "image", "rm", *refs], check=True, capture_output=True)
                build = [sys.executable, "-m", "services.containers.images", "build", "--no-cache"]
                figures["cold"] = _timed(lambda: subprocess.run(build, check=True))
                figures["cold"] += _timed(lambda: _cli(settings, "stack", "up"))
                stack.remove()
            console.print("warm: stack up on fresh volumes")
            figures["warm"] = _timed(lambda: _cli(settings, "stack", "up"))
            time.sleep(10)
            figures["memory_compose"] = compose_memory(stack)
            figures["down"] = _timed(lambda: _cli(settings, "stack", "down"))
            console.print("restart: stack up on the kept volumes")
            figures["restart"] = _timed(lambda: _cli(settings, "stack", "up"))
        finally:
            stack.remove()
        console.print("native: the stack profile's servers as processes")
        figures["memory_native"] = native_memory(root)
    record = load_record()
    figures["images"] = {
        name: int(
            subprocess.run(
                ["docker", "image", "inspect", "-f", "{{.Size}}", record[name]["tag"]],
                capture_output=True, text=True, check=True,
            ).stdout
        ) / 1e9
        for name in IMAGES
    }  # fmt: skip
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


def report(figures: dict[str, Any]) -> None:
    times = Table("compose stack", "seconds", "vs warm up", title="to all-healthy")
    warm = figures["warm"]
    for step in ("cold", "warm", "restart", "down"):
        if step in figures:
            times.add_row(step, f"{figures[step]:.1f}", f"{figures[step] / warm:.2f}x")
    memory = Table("server", "compose MiB", "native MiB", "ratio", title="resident memory, idle")
    compose, native = figures["memory_compose"], figures["memory_native"]
    for name in [s.name for s in services_for("stack") if not s.per_project]:
        ours, theirs = compose.get(name, 0.0), native.get(name, 0.0)
        ratio = f"{ours / theirs:.2f}x" if theirs else "-"
        memory.add_row(name, f"{ours:.0f}", f"{theirs:.0f}", ratio)
    total_c, total_n = sum(compose.values()), sum(native.values())
    memory.add_row("total", f"{total_c:.0f}", f"{total_n:.0f}", f"{total_c / total_n:.2f}x")
    sizes = Table("image", "GB", title="image sizes")
    for name, size in figures["images"].items():
        sizes.add_row(name, f"{size:.2f}")
    out = Console()
    for table in (times, memory, sizes):
        out.print(table)


if __name__ == "__main__":
    main()

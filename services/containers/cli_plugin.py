"""Build Docker's Compose v2 CLI plugin from its Go module and install it for `docker`.

The wrapper module in compose-cli/ pins Compose and repeats the upstream go.mod's require
and exclude blocks: `go install github.com/docker/compose/v2/cmd@VERSION` refuses a module
with exclude directives. The binary is cached outside the repository, keyed by the pinned
version and go.sum, and installed as ~/.docker/cli-plugins/docker-compose (a symbolic link
to the cache; DOCKER_CONFIG respected) unless `docker compose version` already works.
Needs only the Go toolchain and the Go module proxy.

    python -m services.containers.cli_plugin     # prints the plugin's path
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from services.containers import cache_dir

HERE = Path(__file__).parent / "compose-cli"
MODULE = "github.com/docker/compose/v2"


def pinned_version() -> str:
    match = re.search(rf"^require {re.escape(MODULE)} (\S+)", (HERE / "go.mod").read_text(), re.M)
    if not match:
        raise SystemExit(f"compose-cli/go.mod does not pin {MODULE}")
    return match.group(1)


def binary_path() -> Path:
    digest = hashlib.sha256((HERE / "go.sum").read_bytes()).hexdigest()[:12]
    return cache_dir() / f"docker-compose-{pinned_version()}-{digest}"


def plugin_path() -> Path:
    config = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    return config / "cli-plugins" / "docker-compose"


def compose_version() -> str | None:
    """What `docker compose version --short` prints, or None where the plugin is missing."""
    if shutil.which("docker") is None:
        raise SystemExit("no `docker` CLI on PATH: run `make engine` first")
    done = subprocess.run(
        ["docker", "compose", "version", "--short"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_built() -> Path:
    target = binary_path()
    if target.is_file():
        return target
    if shutil.which("go") is None:
        raise SystemExit("no `go` on PATH: Go 1.24 or later builds the Compose plugin")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    version = pinned_version()
    print(f"building docker-compose {version} (cold: about 2 minutes on 2 cores)", file=sys.stderr)
    started = time.monotonic()
    ldflags = f"-s -w -X {MODULE}/internal.Version={version}"
    subprocess.run(
        ["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(partial), f"{MODULE}/cmd"],
        cwd=HERE,
        check=True,
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"},
    )
    partial.replace(target)
    print(f"built {target} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return target


def install() -> Path:
    """The plugin `docker` runs: the existing one if it works, else the cached build."""
    plugin = plugin_path()
    ours = plugin.is_symlink() and plugin.resolve().parent == cache_dir().resolve()
    working = compose_version()
    if working is not None and not ours:
        print(f"docker compose {working} already works", file=sys.stderr)
        return plugin
    built = ensure_built()
    plugin.parent.mkdir(parents=True, exist_ok=True)
    link = plugin.with_name(plugin.name + ".partial")
    link.unlink(missing_ok=True)
    link.symlink_to(built)
    link.replace(plugin)
    print(f"docker compose {compose_version()} at {plugin}", file=sys.stderr)
    return plugin


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.containers.cli_plugin",
        description=f"Build the Compose v2 CLI plugin ({MODULE} {pinned_version()}, cached) "
        f"and install it as {plugin_path()} unless `docker compose` already works.",
    )
    parser.parse_args(argv)
    print(install())


if __name__ == "__main__":
    main()

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
import os
import shutil
import subprocess
import sys
from pathlib import Path

from services.gobuild import GoBinary, cache_dir

MODULE = "github.com/docker/compose/v2"
COMPOSE = GoBinary(
    name="docker-compose",
    wrapper=Path(__file__).parent / "compose-cli",
    module=MODULE,
    package=f"{MODULE}/cmd",
    cold="about 2 minutes on 2 cores",
    version_flag=f"{MODULE}/internal.Version",
)


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


def install() -> Path:
    """The plugin `docker` runs: the existing one if it works, else the cached build."""
    plugin = plugin_path()
    ours = plugin.is_symlink() and plugin.resolve().parent == cache_dir().resolve()
    working = compose_version()
    if working is not None and not ours:
        print(f"docker compose {working} already works", file=sys.stderr)
        return plugin
    built = COMPOSE.ensure_built()
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
        description=f"Build the Compose v2 CLI plugin ({MODULE} {COMPOSE.pinned_version()}, "
        "cached) "
        f"and install it as {plugin_path()} unless `docker compose` already works.",
    )
    parser.parse_args(argv)
    print(install())


if __name__ == "__main__":
    main()

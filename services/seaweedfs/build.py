"""Build the `weed` binary from its Go module, once per pinned version.

The wrapper module beside this file (go.mod, go.sum) pins SeaweedFS and carries the
replace directives its own go.mod declares, which Go ignores in a dependency. The binary
is cached outside the repository, keyed by the pinned version and go.sum, so it is rebuilt
only when the pin changes. Needs only the Go toolchain and the Go module proxy.

    python -m services.seaweedfs.build     # prints the binary's path
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
MODULE = "github.com/seaweedfs/seaweedfs"


def pinned_version() -> str:
    match = re.search(rf"^\s*{re.escape(MODULE)} (\S+)", (HERE / "go.mod").read_text(), re.M)
    if not match:
        raise SystemExit(f"go.mod does not pin {MODULE}")
    return match.group(1)


def binary_path() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hipaa-mlops"
    digest = hashlib.sha256((HERE / "go.sum").read_bytes()).hexdigest()[:12]
    return cache / f"weed-{pinned_version()}-{digest}"


def ensure_built() -> Path:
    """The pinned binary: the SeaweedFS image's own copy (`HIPAA_MLOPS_WEED_BINARY`), or
    the cached build, built first when missing."""
    installed = os.environ.get("HIPAA_MLOPS_WEED_BINARY")
    if installed:
        return Path(installed)
    target = binary_path()
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    print(f"building weed {pinned_version()} (cold: about 5 minutes on 2 cores)", file=sys.stderr)
    started = time.monotonic()
    subprocess.run(
        ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(partial), f"{MODULE}/weed"],
        cwd=HERE,
        check=True,
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"},
    )
    partial.replace(target)
    print(f"built {target} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return target


if __name__ == "__main__":
    print(ensure_built())

"""Binaries built from Go modules that a wrapper module pins, once per pin.

A wrapper module (its go.mod and go.sum in the repository) pins the upstream module and
repeats the directives Go ignores or refuses in a dependency (`replace`, `exclude`). The
binary is cached outside the repository (~/.cache/hipaa-mlops, XDG_CACHE_HOME respected),
keyed by the pinned version and go.sum, so it is rebuilt only when the pin changes. Needs
only the Go toolchain and the Go module proxy.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hipaa-mlops"


@dataclass(frozen=True)
class GoBinary:
    name: str
    wrapper: Path
    module: str
    package: str
    cold: str
    version_flag: str = ""

    def pinned_version(self) -> str:
        text = (self.wrapper / "go.mod").read_text()
        match = re.search(rf"^\s*(?:require\s+)?{re.escape(self.module)} (\S+)", text, re.M)
        if not match:
            raise SystemExit(f"{self.wrapper.name}/go.mod does not pin {self.module}")
        return match.group(1)

    def path(self) -> Path:
        digest = hashlib.sha256((self.wrapper / "go.sum").read_bytes()).hexdigest()[:12]
        return cache_dir() / f"{self.name}-{self.pinned_version()}-{digest}"

    def ensure_built(self) -> Path:
        target = self.path()
        if target.is_file():
            return target
        if shutil.which("go") is None:
            raise SystemExit(f"no `go` on PATH: Go 1.24 or later builds {self.name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        version = self.pinned_version()
        print(f"building {self.name} {version} (cold: {self.cold})", file=sys.stderr)
        started = time.monotonic()
        ldflags = "-s -w" + (f" -X {self.version_flag}={version}" if self.version_flag else "")
        subprocess.run(
            ["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(partial), self.package],
            cwd=self.wrapper,
            check=True,
            env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"},
        )
        partial.replace(target)
        print(f"built {target} in {time.monotonic() - started:.0f} s", file=sys.stderr)
        return target

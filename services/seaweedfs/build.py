"""Build the `weed` binary from its Go module, once per pinned version.

The wrapper module beside this file (go.mod, go.sum) pins SeaweedFS and carries the
replace directives its own go.mod declares, which Go ignores in a dependency; see
`services.gobuild` for the cache.

    python -m services.seaweedfs.build     # prints the binary's path
"""

from __future__ import annotations

import os
from pathlib import Path

from services.gobuild import GoBinary

WEED = GoBinary(
    name="weed",
    wrapper=Path(__file__).parent,
    module="github.com/seaweedfs/seaweedfs",
    package="github.com/seaweedfs/seaweedfs/weed",
    cold="about 5 minutes on 2 cores",
)


def ensure_built() -> Path:
    """The pinned binary: the SeaweedFS image's own copy (`HIPAA_MLOPS_WEED_BINARY`), or
    the cached build, built first when missing."""
    installed = os.environ.get("HIPAA_MLOPS_WEED_BINARY")
    return Path(installed) if installed else WEED.ensure_built()


if __name__ == "__main__":
    print(ensure_built())

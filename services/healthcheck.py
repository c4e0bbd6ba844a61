"""A container's health check: one request over TLS verified with the stack's CA, on the
standard library alone, so that a check every two seconds in every container stays cheap.

    python -m services.healthcheck [URL [STATUS ...]] [--ready-mark PATH]

Healthy (exit 0) when the server answers URL with one of the statuses (default 200) and,
given a ready mark, that file exists: the server's container writes it once its start-up
step is done. A ``postgresql://HOST:PORT`` URL asks for TLS (SSLRequest) and completes a
verified handshake instead. Without arguments (the images' own HEALTHCHECK) they come
from the container's environment, which the compose file sets per server:
HIPAA_MLOPS_HEALTH_URL, HIPAA_MLOPS_HEALTH_STATUSES (space-separated) and
HIPAA_MLOPS_HEALTH_READY_MARK.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import ssl
import struct
import sys
from pathlib import Path
from urllib.parse import urlsplit

CA_BUNDLE = "/data/tls/ca.pem"
_SSL_REQUEST = struct.pack("!II", 8, 80877103)


def _postgres(host: str, port: int, context: ssl.SSLContext) -> bool:
    with socket.create_connection((host, port), timeout=3) as raw:
        raw.sendall(_SSL_REQUEST)
        if raw.recv(1) != b"S":
            return False
        with context.wrap_socket(raw, server_hostname=host):
            return True


def healthy(url: str, statuses: set[int], ready_mark: Path | None, ca: str = CA_BUNDLE) -> bool:
    if ready_mark is not None and not ready_mark.exists():
        return False
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    context = ssl.create_default_context(cafile=ca)
    try:
        if parts.scheme == "postgresql":
            return _postgres(host, port, context)
        connection = http.client.HTTPSConnection(host, port, context=context, timeout=3)
        try:
            connection.request("GET", parts.path or "/")
            return connection.getresponse().status in statuses
        finally:
            connection.close()
    except (OSError, http.client.HTTPException):
        return False


def main() -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default=env("HIPAA_MLOPS_HEALTH_URL"))
    parser.add_argument(
        "statuses",
        nargs="*",
        type=int,
        default=[int(s) for s in env("HIPAA_MLOPS_HEALTH_STATUSES", "200").split()],
    )
    parser.add_argument("--ready-mark", type=Path, default=env("HIPAA_MLOPS_HEALTH_READY_MARK"))
    args = parser.parse_args()
    if not args.url:
        parser.error("no URL, and HIPAA_MLOPS_HEALTH_URL is not set")
    ready = Path(args.ready_mark) if args.ready_mark else None
    return 0 if healthy(args.url, set(args.statuses), ready) else 1


if __name__ == "__main__":
    sys.exit(main())

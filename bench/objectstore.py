"""The data lake's PUT and GET throughput against its peers, in one run.

For 1 KB, 1 MB and 64 MB objects on the same SeaweedFS server: SSE-KMS under the
project's OpenBao key, the same bucket layout without encryption (the limit), and
client-side envelope encryption (sealed before upload, into the unencrypted bucket).
Each case runs for a bounded time; the table reports medians.

    python -m bench.objectstore [--seconds 2]
"""

from __future__ import annotations

import argparse
import io
import os

from bench import stack
from bench.envelope import timed
from pipeline import projects
from safeguards import envelope, keys, objectstore, openbao
from safeguards.settings import Settings
from services.seaweedfs import launcher as seaweedfs
from services.supervisor import Supervisor

SIZES = {"1 KB": 1024, "1 MB": 1024**2, "64 MB": 64 * 1024**2}
PROJECT = "bench"


def run(settings: Settings, seconds: float) -> list[str]:
    operator = openbao.login(settings, "operator")
    supervisor = Supervisor(settings)
    seaweedfs.provision_project(
        settings, operator, PROJECT, lambda: projects.reload_lakes(settings, supervisor)
    )
    kms = objectstore.open_store(settings, PROJECT)
    assert isinstance(kms, objectstore.S3ObjectStore)
    admin = seaweedfs.admin_client(settings, operator)
    plain_bucket = f"{PROJECT}-plain"
    admin.create_bucket(Bucket=plain_bucket)
    bao = openbao.login(settings, keys.identity(PROJECT))
    transfer = objectstore.MULTIPART  # the store's own multipart settings

    def plain_put(data: bytes) -> None:
        admin.upload_fileobj(io.BytesIO(data), plain_bucket, "obj", Config=transfer)

    def plain_get() -> bytes:
        return bytes(admin.get_object(Bucket=plain_bucket, Key="obj")["Body"].read())

    def sealed_put(data: bytes) -> None:
        plain_put(
            envelope.seal(
                bao, keys.key_name(PROJECT, settings.home_region), f"{plain_bucket}/obj", data
            )
        )

    def sealed_get() -> bytes:
        return envelope.open_sealed(bao, f"{plain_bucket}/obj", plain_get())

    rows = [
        "| object | op | no encryption MB/s | SSE-KMS MB/s | client envelope MB/s"
        " | SSE-KMS / none | envelope / SSE-KMS |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, size in SIZES.items():
        data = os.urandom(size)
        puts = {
            "none": timed(lambda d=data: plain_put(d), seconds, most=200),
            "kms": timed(lambda d=data: kms.put("artifacts", "obj", d), seconds, most=200),
            "env": timed(lambda d=data: sealed_put(d), seconds, most=200),
        }
        gets = {
            "none": timed(plain_get, seconds, most=200),
            "kms": timed(lambda: kms.get("artifacts", "obj"), seconds, most=200),
            "env": timed(sealed_get, seconds, most=200),
        }
        for op, t in (("PUT", puts), ("GET", gets)):
            mbps = {k: size / 1e6 / v for k, v in t.items() if v}
            rows.append(
                f"| {label} | {op} | {mbps['none']:.1f} | {mbps['kms']:.1f} | {mbps['env']:.1f}"
                f" | {mbps['kms'] / mbps['none']:.2f} | {mbps['env'] / mbps['kms']:.2f} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per case")
    args = parser.parse_args()
    with stack.running("stack") as settings:
        rows = run(settings, args.seconds)
    print("\n".join(rows))


if __name__ == "__main__":
    main()

"""Envelope encryption and the audit chain against their peers, in one run.

Peers for sealing an object: raw AES-256-GCM on the same bytes with a local key (the
limit) and sending the whole object through transit encrypt (the naive way). Peers for the
audit log: a plain JSON-lines append with fsync and a local SHA-256 pass (the limits of
an unkeyed log). Each case runs for a bounded time; the table reports medians.

    python -m bench.envelope [--seconds 2]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import hvac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench import stack
from safeguards import envelope, keys, openbao
from safeguards.audit import AuditLog, Event
from safeguards.errors import ServerError, Unavailable

SIZES = {"1 KB": 1024, "1 MB": 1024**2, "64 MB": 64 * 1024**2}


def timed(run: Callable[[], object], seconds: float, most: int = 2000) -> float | None:
    """Median seconds per call over a bounded time; None if the call is refused (OpenBao
    answers an oversized request with an error, or closes the connection mid-upload)."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(samples) < 3 or (time.perf_counter() < deadline and len(samples) < most):
        start = time.perf_counter()
        try:
            run()
        except (ServerError, Unavailable):
            return None
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def naive_transit(bao: hvac.Client, key: str, data: bytes) -> bytes:
    ciphertext = bao.secrets.transit.encrypt_data(key, base64.b64encode(data).decode())["data"][
        "ciphertext"
    ]
    plain = bao.secrets.transit.decrypt_data(key, ciphertext)
    return base64.b64decode(plain["data"]["plaintext"])


def bench_envelope(bao: hvac.Client, key: str, seconds: float) -> list[str]:
    rows = [
        "| object (encrypt + decrypt) | raw AES-GCM MB/s | envelope MB/s | transit MB/s"
        " | envelope / raw | envelope / transit |",
        "|---|---|---|---|---|---|",
    ]
    for label, size in SIZES.items():
        data = os.urandom(size)
        local_key = AESGCM.generate_key(256)

        def raw(data: bytes = data, key: bytes = local_key) -> bytes:
            nonce = os.urandom(12)
            return AESGCM(key).decrypt(nonce, AESGCM(key).encrypt(nonce, data, b"id"), b"id")

        def sealed(data: bytes = data) -> bytes:
            return envelope.open_sealed(
                bao, "bench/obj", envelope.seal(bao, key, "bench/obj", data)
            )

        def naive(data: bytes = data) -> bytes:
            with openbao.openbao_errors("transit encrypt"):
                return naive_transit(bao, key, data)

        t_raw, t_env, t_naive = (timed(f, seconds) for f in (raw, sealed, naive))
        mbps = {
            k: (size / 1e6 / t if t else None)
            for k, t in {"raw": t_raw, "env": t_env, "naive": t_naive}.items()
        }
        naive_cell = f"{mbps['naive']:.1f}" if mbps["naive"] else "refused: over the request limit"
        ratio_naive = f"{mbps['env'] / mbps['naive']:.1f}x" if mbps["naive"] else "-"
        rows.append(
            f"| {label} | {mbps['raw']:.1f} | {mbps['env']:.1f} | {naive_cell} | "
            f"{mbps['env'] / mbps['raw']:.3f} | {ratio_naive} |"
        )
    return rows


# A log appended one entry at a time has one anchor per entry, each read by verify.
_SINGLES = 2000


def bench_audit(bao: hvac.Client, workdir: Path, seconds: float, entries: int) -> list[str]:
    log = AuditLog(workdir / "audit.jsonl", bao, anchor="audit/bench")
    t_single = timed(lambda: log.append("bench", "append", "resource/x"), seconds, most=500)
    batch = [Event("bench", "append", f"resource/{i}") for i in range(1000)]
    t_batch = timed(lambda: log.append_many(batch), seconds, most=20)

    plain = workdir / "plain.jsonl"

    def plain_append() -> None:
        with plain.open("ab") as f:
            f.write(json.dumps({"actor": "bench", "action": "append"}).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())

    t_plain = timed(plain_append, seconds, most=500)

    big = AuditLog(workdir / "big.jsonl", bao, anchor="audit/bench-big")
    for start in range(0, entries, 1000):
        big.append_many(
            [
                Event("bench", "append", f"resource/{i}")
                for i in range(start, min(start + 1000, entries))
            ]
        )
    start = time.perf_counter()
    verified = big.verify()
    t_verify = time.perf_counter() - start
    singles = AuditLog(workdir / "singles.jsonl", bao, anchor="audit/bench-singles")
    for i in range(_SINGLES):
        singles.append("bench", "append", f"resource/{i}")
    start = time.perf_counter()
    assert singles.verify().anchors == _SINGLES
    t_singles = time.perf_counter() - start
    start = time.perf_counter()
    with big.path.open("rb") as f:
        for line in f:
            hashlib.sha256(line).digest()
    t_hash = time.perf_counter() - start
    assert t_single and t_batch and t_plain and verified.entries == entries
    return [
        "| audit log | per second | against the plain log |",
        "|---|---|---|",
        f"| append, one entry per call | {1 / t_single:,.0f} | {t_plain / t_single:.3f} |",
        f"| append_many, 1000 per call | {1000 / t_batch:,.0f} | {1000 * t_plain / t_batch:.2f} |",
        f"| plain JSON-lines append + fsync (peer) | {1 / t_plain:,.0f} | 1 |",
        "",
        f"| verify {entries:,} entries | seconds | against hashing alone |",
        "|---|---|---|",
        f"| `audit verify` (MACs through transit, chain, anchor) | {t_verify:.2f} | "
        f"{t_verify / t_hash:.1f} |",
        f"| SHA-256 of every line (peer) | {t_hash:.2f} | 1 |",
        "",
        f"| verify {_SINGLES:,} entries appended one by one ({_SINGLES:,} anchors) | seconds | "
        "per entry, against the batched log |",
        "|---|---|---|",
        f"| `audit verify` | {t_singles:.2f} | {t_singles * entries / (_SINGLES * t_verify):.1f} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per case")
    parser.add_argument("--entries", type=int, default=100_000, help="audit entries to verify")
    args = parser.parse_args()
    with stack.running() as settings:
        operator = openbao.login(settings, "operator")
        keys.create_project(operator, settings, "bench")
        bao = openbao.login(settings, keys.identity("bench"))
        rows = bench_envelope(bao, keys.key_name("bench", settings.home_region), args.seconds)
        rows += ["", *bench_audit(operator, settings.data_dir.parent, args.seconds, args.entries)]
    print("\n".join(rows))


if __name__ == "__main__":
    main()

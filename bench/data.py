"""The DATA stage at 100k and 1M rows: time and peak memory against a plain pandas pass.

Each step runs in a fresh process so its peak resident memory is its own: synthesis
(copula fit, sampling, privacy gate, identifiers), de-identification (with pseudonyms
from OpenBao transit), versioning (seal, DVC add and push). The reference is a plain
pandas pass over the same raw rows: read the Parquet file, drop the identifier columns,
reduce dates to years and ZIP codes to three digits, and nothing else.

    python -m bench.data [--rows 100000 1000000]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import resource
import time
from pathlib import Path

import pandas as pd

import contract as contracts
from bench import stack
from safeguards import keys, openbao
from safeguards.settings import Settings
from sandbox import deidentify, synth
from sandbox.versions import DatasetRepo, to_parquet

PROJECT = "bench"
DIABETES = contracts.parse(contracts.example("diabetes"))


def peak_mib() -> float:
    """This process's peak resident memory."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def steps_table(
    results: dict[tuple[str, int], tuple[float, float]], steps: list[str], sizes: list[int]
) -> list[str]:
    """Each step's seconds, rows/s and peak MiB, and its time against the plain pandas
    pass of the same size, as Markdown rows."""
    lines = [
        "| step | rows | seconds | rows/s | peak MiB | time / plain pandas pass |",
        "|---|---|---|---|---|---|",
    ]
    for rows in sizes:
        reference = results["plain pandas pass", rows][0]
        for name in steps:
            seconds, peak = results[name, rows]
            lines.append(
                f"| {name} | {rows:,} | {seconds:.2f} | {rows / seconds:,.0f} | "
                f"{peak:,.0f} | {seconds / reference:.1f} |"
            )
    return lines


def step(name: str, rows: int, work: Path, settings: Settings) -> tuple[float, float]:
    """Run one step in this (fresh) process; returns (seconds, peak MiB)."""
    raw_file, clean_file = work / f"raw-{rows}.parquet", work / f"clean-{rows}.parquet"
    start = time.perf_counter()
    if name == "synthesis":
        frame, _ = synth.synthesize(DIABETES, rows, "baseline", seed=1)
        elapsed = time.perf_counter() - start
        raw_file.write_bytes(to_parquet(frame))
        return elapsed, peak_mib()
    if name == "plain pandas pass":
        raw = pd.read_parquet(raw_file)
        identifiers = DIABETES.with_role(contracts.Role.IDENTIFIER, contracts.Role.QUASI_IDENTIFIER)
        out = raw.drop(columns=[c.name for c in identifiers if c.name != "zip"])
        out["zip"] = raw["zip"].str[:3]
        out["admission_year"] = raw["admission_date"].dt.year
        out["discharge_year"] = raw["discharge_date"].dt.year
        return time.perf_counter() - start, peak_mib()
    bao = openbao.login(settings, keys.ingest_identity(PROJECT))
    if name == "de-identification":
        raw = pd.read_parquet(raw_file)
        out, _ = deidentify.deidentify(
            raw, DIABETES, lambda v: keys.pseudonyms(bao, PROJECT, settings.home_region, v)
        )
        elapsed = time.perf_counter() - start
        clean_file.write_bytes(to_parquet(out))
        return elapsed, peak_mib()
    clean = pd.read_parquet(clean_file)
    DatasetRepo(settings, PROJECT, bao).commit(f"bench-{rows}", clean, "synthetic")
    return time.perf_counter() - start, peak_mib()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    steps = ["synthesis", "plain pandas pass", "de-identification", "versioning"]
    results: dict[tuple[str, int], tuple[float, float]] = {}
    spawn = multiprocessing.get_context("spawn")
    with stack.running() as settings:
        keys.create_project(openbao.login(settings, "operator"), settings, PROJECT)
        for rows in args.rows:
            for name in steps:
                with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
                    results[name, rows] = pool.submit(
                        step, name, rows, settings.data_dir.parent, settings
                    ).result()
    print("\n".join(steps_table(results, steps, args.rows)))


if __name__ == "__main__":
    main()

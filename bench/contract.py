"""Bringing a team's table: ingest and de-identify a 30-column contract's CSV file, against
a plain pandas pass over the same file.

The contract has ten identifiers (one pseudonymised, one free text, one a birth date),
three quasi-identifiers (a ZIP code and two dates), fifteen features (an age among them),
a site and the label. Its CSV file is generated once (synthetic, from the contract). Each
step runs in a fresh process, so its peak resident memory is its own:

- plain pandas pass (the floor): `read_csv`, drop the identifiers, keep three ZIP digits,
  reduce the dates to years; no types, no checks, nothing stored;
- ingest (`DataSteward.ingest_file`): every cell read as text, typed and checked by the
  contract (ranges, categories, ZIP shape, dates per column), sealed into the raw-PHI zone;
- de-identify (`DataSteward.deidentify`): the raw table opened, Safe Harbor by role with
  pseudonyms from OpenBao transit, the residual scan, the evidence, sealed and versioned
  in DVC.

    python -m bench.contract [--rows 100000 1000000]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import contract as contracts
from bench import stack
from bench.data import peak_mib, steps_table
from safeguards import keys, openbao
from safeguards.settings import Settings
from sandbox import synth

PROJECT = "bench"
STEPS = ("plain pandas pass", "ingest", "de-identify")


def wide_contract() -> str:
    """The 30-column contract, as a team would write it."""
    identifiers = {
        "patient_name": "names",
        "ssn": "ssn",
        "phone": "telephone",
        "email": "email",
        "street": "geographic",
        "city": "geographic",
        "member_id": "health_plan",
    }
    columns: dict[str, Any] = {
        "mrn": {"role": "identifier", "type": "string", "category": "mrn", "pseudonymize": True},
        **{
            n: {"role": "identifier", "type": "string", "category": c}
            for n, c in identifiers.items()
        },
        "birth_date": {"role": "identifier", "type": "date", "category": "dates"},
        "note": {"role": "identifier", "type": "text", "category": "other"},
        "zip": {"role": "quasi_identifier", "type": "string", "kind": "zip"},
        "admission_date": {"role": "quasi_identifier", "type": "date", "kind": "date"},
        "discharge_date": {"role": "quasi_identifier", "type": "date", "kind": "date"},
        "age": {"role": "feature", "type": "integer", "kind": "age", "range": [18, 110]},
        "sex": {"role": "feature", "type": "category", "categories": ["F", "M"]},
    }
    for i in range(7):
        columns[f"lab_{i}"] = {"role": "feature", "type": "number", "range": [0, 500]}
    for i in range(3):
        columns[f"group_{i}"] = {
            "role": "feature", "type": "category", "categories": ["a", "b", "c", "d"],
        }  # fmt: skip
    for i in range(3):
        columns[f"flag_{i}"] = {"role": "feature", "type": "boolean"}
    columns["site"] = {"role": "site", "type": "category", "categories": ["north", "south"]}
    columns["outcome"] = {"role": "label", "type": "boolean", "meaning": "the outcome"}
    body = {"name": "wide", "description": "d", "intended_use": "u", "columns": columns}
    return json.dumps(body)


def generate(path: Path, rows: int) -> None:
    contract = contracts.parse(wide_contract())
    clinical = synth.contract_population(contract, rows, seed=1)
    synth.add_identifiers(clinical, contract, seed=1).to_csv(path, index=False)


def step(name: str, rows: int, path: Path, settings: Settings) -> tuple[float, float]:
    """Run one step in this (fresh) process; returns (seconds, peak MiB)."""
    import pandas as pd

    from sandbox.steps import DataSteward

    contract = contracts.parse(wide_contract())
    if name == "plain pandas pass":
        start = time.perf_counter()
        raw = pd.read_csv(path)
        gone = contract.with_role(contracts.Role.IDENTIFIER, contracts.Role.QUASI_IDENTIFIER)
        out = raw.drop(columns=[c.name for c in gone])
        out["zip3"] = raw["zip"].astype(str).str[:3]
        for column in ("admission_date", "discharge_date"):
            out[column.replace("_date", "_year")] = pd.to_datetime(raw[column]).dt.year
        return time.perf_counter() - start, peak_mib()
    steward = DataSteward(settings, PROJECT)
    start = time.perf_counter()
    if name == "ingest":
        steward.ingest_file(f"raw-{rows}", path)
    else:
        steward.deidentify(f"clean-{rows}", source=f"raw-{rows}")
    return time.perf_counter() - start, peak_mib()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    results: dict[tuple[str, int], tuple[float, float]] = {}
    spawn = multiprocessing.get_context("spawn")
    with stack.running() as settings:
        operator = openbao.login(settings, "operator")
        keys.create_project(operator, settings, PROJECT)
        contracts.store(operator, PROJECT, wide_contract())
        for rows in args.rows:
            path = settings.data_dir.parent / f"wide-{rows}.csv"
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
                pool.submit(generate, path, rows).result()
            for name in STEPS:
                with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
                    results[name, rows] = pool.submit(step, name, rows, path, settings).result()
    for rows in args.rows:
        both = results["ingest", rows][0] + results["de-identify", rows][0]
        peak = max(results["ingest", rows][1], results["de-identify", rows][1])
        results["ingest + de-identify", rows] = (both, peak)
    print("\n".join(steps_table(results, [*STEPS, "ingest + de-identify"], args.rows)))


if __name__ == "__main__":
    main()

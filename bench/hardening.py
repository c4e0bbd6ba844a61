"""HARDENING: the whole stack attacked and loaded within bounds, as one table of figures.

    python -m bench.hardening [--examples 200] [--fuzz-seconds 300] [--canaries 10000]
                              [--load 5000]

On a fresh stack-profile stack (every server), a project is ingested from a synthetic
table whose identifier columns carry canary identifiers on its first rows, de-identified,
trained, promoted through the gate and served. Then:

- **TLS**: every port scanned as `tests/integration/test_tls_quality.py` scans it (sslyze,
  the usual tool, is AGPL-3.0): protocols below TLS 1.2 accepted, TLS 1.2 suites that are
  not ECDHE+AEAD accepted, chains that fail OpenSSL's strict verification.
- **Fuzz**: schemathesis (MIT, in `.venv-hardening`) over the endpoint's published OpenAPI
  with a valid API key, bounded by `--examples` per operation and `--fuzz-seconds`; from
  its HAR log, responses with a 5xx status and responses that echo a string of 6 or more
  characters the request sent.
- **Canaries**: `--canaries` requests that carry a canary identifier (as an undeclared
  field, as a field's value, as the API key, in the path), interleaved with valid ones;
  then every byte of every file of the data directory (logs, the audit log, MLflow's
  PostgreSQL, SeaweedFS's volumes, reports, capture), every response body and the
  endpoint's metrics are searched for every canary.
- **Load**: `--load` valid requests at concurrency 16 with the key: the error rate and
  the p99 latency.
- **Faults**: kill -9 of each server at a random point (`--seed`) of a retrain under
  load, then the invariants (`bench/faults.py`).

The table goes to stdout; the run exits 1 when a figure passes its bound in
`bench/hardening_bounds.json`. Each run is bounded in time and count and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests

import contract as contracts
from bench import stack
from bench.faults import Faults
from bench.faults import figures as fault_figures
from bench.serving import RECORD
from pipeline import projects
from pipeline.training import ModelSteward
from safeguards import apikeys, openbao
from safeguards.settings import SERVING_PORTS, Settings
from sandbox.steps import DataSteward
from sandbox.versions import from_parquet
from services.serving import launcher as serving
from services.supervisor import Supervisor
from tests.canaries import CANARIES, NAME
from tests.conftest import endpoint
from tests.integration.test_tls_quality import TARGETS, Scanner

PROJECT = "hardening"
BOUNDS = Path(__file__).with_name("hardening_bounds.json")
SCHEMATHESIS = Path(__file__).resolve().parents[1] / ".venv-hardening" / "bin" / "st"
CANARY_VALUES = [*CANARIES.values(), NAME]
# Identifier columns of the diabetes contract, and the canary each carries.
SEEDED = {"name": NAME, "ssn": CANARIES["ssn"], "phone": CANARIES["phone"],
          "email": CANARIES["email"]}  # fmt: skip


def prepare(settings: Settings) -> tuple[str, str]:
    """The project from a canary-seeded table, its champion served; (endpoint URL, key)."""
    operator = openbao.login(settings, "operator")
    projects.create_project(
        operator,
        settings,
        PROJECT,
        contracts.example("diabetes"),
        reload_lake=lambda: projects.reload_lakes(settings, Supervisor(settings)),
    )
    data = DataSteward(settings, PROJECT)
    data.synth("patients", rows=6000, seed=5)
    table = data.repo.read("patients")
    for column, canary in SEEDED.items():
        table.loc[:49, column] = canary
    data.ingest("raw", table)
    # The control: the canaries are in the raw zone (sealed), so a search that finds none
    # elsewhere means something.
    raw = from_parquet(data.store.get("raw-phi", "raw.parquet"))
    if not all(raw[c].eq(v).sum() == 50 for c, v in SEEDED.items()):
        sys.exit("the canaries did not reach the raw zone: the search would prove nothing")
    data.deidentify("clean", source="raw")
    steward = ModelSteward(settings, PROJECT)
    promotion = steward.promote(steward.train("clean").registered.version, "pipeline:hardening")
    if not promotion.decision.approved:
        sys.exit(f"the gate refused the model: {promotion.decision.failed}")
    Supervisor(settings).serve()
    _, key = apikeys.create(operator, PROJECT, "hardening")
    url = serving.url(endpoint(settings, operator, PROJECT))
    deadline = time.monotonic() + 120
    while (
        requests.get(url + "/readyz", verify=str(settings.ca_bundle), timeout=5).status_code != 200
    ):
        if time.monotonic() > deadline:
            sys.exit("the endpoint did not load the champion within 120 s")
        time.sleep(0.5)
    return url, key


# -- TLS ---------------------------------------------------------------------------------


def tls(settings: Settings, url: str) -> dict[str, int]:
    slot = int(url.rsplit(":", 1)[1]) - settings.port_base
    scans = [
        Scanner(settings, replace(t, offset=slot) if t.offset == SERVING_PORTS else t).scan()
        for t in TARGETS
    ]
    return {
        "ports scanned": len(scans),
        "protocols below TLS 1.2 accepted": sum(len(s.legacy) for s in scans),
        "TLS 1.2 suites not ECDHE+AEAD accepted": sum(len(s.tls12_forbidden) for s in scans),
        "TLS 1.3 CCM_8 accepted": sum("TLS_AES_128_CCM_8_SHA256" in s.tls13 for s in scans),
    }


# -- fuzz ----------------------------------------------------------------------------------


def vocabulary(schema: Any) -> set[str]:
    """The API's own words in its OpenAPI document: property names and enum values."""
    words: set[str] = set()
    if isinstance(schema, dict):
        words |= set(schema.get("properties", {}))
        words |= {str(v) for v in schema.get("enum", [])}
        for value in schema.values():
            words |= vocabulary(value)
    elif isinstance(schema, list):
        for value in schema:
            words |= vocabulary(value)
    return words


def _strings(value: Any) -> Iterator[str]:
    """Every string a request sent, names and values."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def fuzz(settings: Settings, url: str, key: str, examples: int, seconds: int) -> dict[str, int]:
    """schemathesis over the published OpenAPI; counted from its HAR log. An echo is a
    string of 6 or more characters the request sent, other than the API's own words,
    found in the response."""
    own = vocabulary(
        requests.get(
            f"{url}/openapi.json",
            headers={"Authorization": f"Bearer {key}"},
            verify=str(settings.ca_bundle),
            timeout=10,
        ).json()
    )
    if not SCHEMATHESIS.is_file():
        sys.exit("schemathesis is not installed: make hardening installs it")
    with tempfile.TemporaryDirectory() as tmp:
        har = Path(tmp) / "fuzz.har"
        subprocess.run(
            [SCHEMATHESIS, "run", f"{url}/openapi.json", "--header", f"Authorization: Bearer {key}",
             "--tls-verify", settings.ca_bundle, "--max-examples", str(examples),
             "--max-time", str(seconds), "--seed", "20261206", "--workers", "1",
             "--report", "har", "--report-har-path", har, "--warnings", "off"],
            capture_output=True, check=False, timeout=seconds + 300, cwd=tmp,
        )  # fmt: skip
        entries = json.loads(har.read_text())["log"]["entries"]
    errors = echoes = 0
    for entry in entries:
        status, body = entry["response"]["status"], entry["response"]["content"].get("text", "")
        errors += status >= 500
        try:
            sent = json.loads(entry["request"].get("postData", {}).get("text", "null"))
        except json.JSONDecodeError:
            sent = None
        echoes += any(len(s) >= 6 and s not in own and s in body for s in _strings(sent))
    return {"requests": len(entries), "5xx responses": errors, "responses echoing input": echoes}


# -- canaries ------------------------------------------------------------------------------


def _canary_request(session: requests.Session, url: str, key: str, n: int) -> requests.Response:
    canary = CANARY_VALUES[n % len(CANARY_VALUES)]
    auth = {"Authorization": f"Bearer {key}"}
    match n % 5:
        case 0:
            return session.post(f"{url}/v1/predict", json={**RECORD, "ssn": canary}, headers=auth)
        case 1:
            return session.post(
                f"{url}/v1/predict", json={**RECORD, "smoking": canary}, headers=auth
            )
        case 2:
            return session.post(
                f"{url}/v1/predict", json=RECORD, headers={"Authorization": f"Bearer {canary}"}
            )
        case 3:
            return session.get(f"{url}/v1/{canary}", headers=auth)
        case _:
            return session.post(f"{url}/v1/predict", json=RECORD, headers=auth)


def canaries(settings: Settings, url: str, key: str, count: int) -> dict[str, int]:
    """Requests carrying canaries, then every byte of the data directory, the responses
    and the metrics searched for them."""
    needles = [c.encode() for c in CANARY_VALUES]
    echoed = 0
    with requests.Session() as session:
        session.verify, session.trust_env = str(settings.ca_bundle), False
        for n in range(count):
            body = _canary_request(session, url, key, n).content
            echoed += any(c in body for c in needles)
        metrics = session.get(f"{url}/metrics", headers={"Authorization": f"Bearer {key}"}).content
    # The capture buffer and the logs reach the disk on their own schedule.
    Supervisor(settings).stop(
        serving.instance(endpoint(settings, openbao.login(settings, "operator"), PROJECT))
    )
    files = found = 0
    for path in (p for p in settings.data_dir.rglob("*") if p.is_file() and not p.is_symlink()):
        files += 1
        data = path.read_bytes()
        found += any(c in data for c in needles)
    return {
        "requests": count,
        "files searched": files,
        "files holding a canary": found,
        "responses echoing a canary": echoed,
        "canaries in the metrics": sum(c in metrics for c in needles),
    }


# -- load ----------------------------------------------------------------------------------


def load(settings: Settings, url: str, key: str, count: int) -> dict[str, float]:
    def one(_: int) -> tuple[bool, float]:
        start = time.perf_counter()
        try:
            ok = requests.post(
                f"{url}/v1/predict", json=RECORD, headers={"Authorization": f"Bearer {key}"},
                verify=str(settings.ca_bundle), timeout=30,
            ).status_code == 200  # fmt: skip
        except requests.RequestException:
            ok = False
        return ok, (time.perf_counter() - start) * 1000

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(count)))
    latencies = [ms for _, ms in results]
    return {
        "requests": count,
        "error rate": sum(not ok for ok, _ in results) / count,
        "p99 ms": statistics.quantiles(latencies, n=100)[98],
    }


# -- the table -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="Fuzz cases per operation.")
    parser.add_argument("--fuzz-seconds", type=int, default=300, help="The fuzzing's budget.")
    parser.add_argument("--canaries", type=int, default=10_000, help="Canary requests.")
    parser.add_argument("--load", type=int, default=5_000, help="Requests of the load.")
    parser.add_argument("--seed", type=int, default=20261207, help="Where the faults land.")
    args = parser.parse_args()
    if shutil.which("openssl") is None:
        sys.exit("the openssl command line tool is needed for the TLS 1.3 scan")
    bounds: dict[str, dict[str, float]] = json.loads(BOUNDS.read_text())
    figures: dict[str, dict[str, float]] = {}
    with stack.running("stack", serving_poll_seconds=1, serving_capture_seconds=2) as settings:
        url, key = prepare(settings)
        figures["TLS"] = tls(settings, url)
        figures["fuzz"] = fuzz(settings, url, key, args.examples, args.fuzz_seconds)
        figures["load"] = load(settings, url, key, args.load)
        figures["faults"] = fault_figures(Faults(settings, PROJECT, url, key, args.seed).all())
        figures["canaries"] = canaries(settings, url, key, args.canaries)
    failed = 0
    print(f"{'area':<10} {'figure':<40} {'value':>10} {'bound':>8}")
    for area, values in figures.items():
        for name, value in values.items():
            bound = bounds.get(area, {}).get(name)
            bad = bound is not None and value > bound
            failed += bad
            shown = f"{value:.4f}" if isinstance(value, float) else f"{value:,}"
            mark = " REGRESSED" if bad else ""
            print(f"{area:<10} {name:<40} {shown:>10} {'' if bound is None else bound:>8}{mark}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

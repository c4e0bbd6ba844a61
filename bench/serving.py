"""DEPLOY: the endpoint against its peers, single-record requests under wrk.

Four ways to score one patient with the same registered version, in one run, one worker
each, on loopback:

- this endpoint: HTTPS, an API key, strict validation, capture
  (`python -m services.serving.server`);
- `mlflow models serve` of the same version (plain HTTP: it has no TLS option);
- a minimal FastAPI app calling the same model over HTTPS (`bench/fastapi_peer.py`);
- the model in this process: `predict_proba` on a one-row frame, in a loop;
- its ONNX twin in this process (the floor): ONNX Runtime on one record's columns, in a
  loop, what the endpoint runs per request.

Each server runs at concurrency 1 and 16 for a bounded time with wrk (one thread, so the
other core is the server's); wrk schedules by its own clock, so a server's stalls show in
its p99 as a real client would see them. Then a sustained load at concurrency 16 on this
endpoint reads the worker's resident memory and the objects tracked by its garbage
collector every 5 s, and reports them at the start and at the end.

Batch: `--batch-rows` rows (the de-identified dataset's features, repeated) through
`serving score` (`pipeline.scoring.score_file`: validation, the champion's twin, the
output file; capture off), against `predict_proba` and the twin over the same rows in this
process.

    python -m bench.serving [--seconds 20] [--soak 180] [--batch-rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import psutil
import requests

import contract as contracts
from bench import stack
from pipeline.scoring import score_file
from pipeline.training import ModelSteward
from safeguards import apikeys, openbao, pki
from safeguards.registry import OnnxScorer, ProjectRegistry
from safeguards.settings import Settings
from services.serving import launcher as serving
from services.supervisor import Supervisor
from tests.conftest import deidentified_project, endpoint

PROJECT = "bench"
# A valid record that is nobody's.
RECORD = {
    "age": 50, "sex": "F", "bmi": 27.0, "fasting_glucose": 100.0, "hba1c": 5.6,
    "systolic_bp": 125, "diastolic_bp": 80, "insulin": 12.0, "pregnancies": 1,
    "family_history": False, "physical_activity": "moderate", "smoking": "never",
}  # fmt: skip
_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, body: dict[str, object], headers: dict[str, str], c: int, s: int) -> dict:
    """req/s, p50 and p99 in ms, and failed requests, from one bounded wrk run."""
    script = "\n".join(
        [
            'wrk.method = "POST"',
            f"wrk.body = {json.dumps(json.dumps(body))}",
            'wrk.headers["Content-Type"] = "application/json"',
            *(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()),
        ]
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        out = subprocess.run(
            ["wrk", "-t1", f"-c{c}", f"-d{s}s", "--latency", "-s", lua.name, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=s + 60,
        ).stdout
    latency = {p: float(v) * _UNITS[u] for p, v, u in _LATENCY.findall(out)}
    failed = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    failed += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {
        "rps": float(re.findall(r"Requests/sec:\s+([\d.]+)", out)[0]),
        "p50": latency["50"],
        "p99": latency["99"],
        "failed": failed,
    }


def in_process(score: Callable[[], object], seconds: int) -> dict:
    """One record scored back to back for `seconds` by `score`."""
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        score()
        times.append((time.perf_counter() - start) * 1000)
    quantiles = statistics.quantiles(times, n=100)
    return {"rps": len(times) / seconds, "p50": quantiles[49], "p99": quantiles[98], "failed": 0}


def batch(settings: Settings, model: Any, served: OnnxScorer, rows: int) -> dict[str, float]:
    """Rows per second of `serving score` and of both models in this process."""
    contract = contracts.load(openbao.login(settings, "operator"), PROJECT)
    frame, _ = ModelSteward(settings, PROJECT).training_data("clean")
    table = pd.concat(
        [frame[contract.features]] * (rows // len(frame) + 1), ignore_index=True
    ).iloc[:rows]
    source = settings.data_dir / "bench-batch.parquet"
    table.to_parquet(source, index=False)
    features = contracts.model_frame(table, contract)
    started = time.perf_counter()
    score_file(
        settings, PROJECT, source, settings.data_dir / "bench-scored.parquet",
        "pipeline:bench", capture_rows=False,
    )  # fmt: skip
    command = time.perf_counter() - started
    started = time.perf_counter()
    model.predict_proba(features)
    pipeline = time.perf_counter() - started
    started = time.perf_counter()
    served.probabilities(features)
    twin = time.perf_counter() - started
    return {"serving score": rows / command, "predict_proba": rows / pipeline, "twin": rows / twin}


@contextmanager
def peer(
    command: list[str], env: dict[str, str], health: str, log: Path, ca: Path
) -> Iterator[None]:
    """A peer server for the duration of the block; stopped whatever happens."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(health, verify=str(ca), timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"{command[2]} did not start; see {log}")
        yield
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def worker_state(settings: Settings, key: str) -> tuple[float, int]:
    """The serving worker's resident MiB and its GC-tracked objects (from its metrics)."""
    pid = Supervisor(settings).pid(f"serving-{PROJECT}")
    assert pid is not None
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    rss = max(p.memory_info().rss for p in processes) / 2**20
    metrics = requests.get(
        serving.url(settings) + "/metrics",
        headers={"Authorization": f"Bearer {key}"},
        verify=str(settings.ca_bundle),
        timeout=10,
    ).text
    tracked = int(float(re.findall(r"^serving_gc_tracked_objects ([\d.e+]+)$", metrics, re.M)[0]))
    return rss, tracked


def prepare(settings: Settings) -> tuple[str, Path, Settings]:
    """A project with a champion, its endpoint started, an API key for it; returns (key, the
    model's local copy, the endpoint's settings)."""
    operator = openbao.login(settings, "operator")
    deidentified_project(settings, operator, rows=10_000, seed=2, project=PROJECT, served=True)
    model = ModelSteward(settings, PROJECT)
    version = model.train("clean").registered.version
    promotion = model.promote(version, approver="pipeline:bench")
    if not promotion.decision.approved:
        sys.exit(f"the gate refused the bench's model: {promotion.decision.failed}")
    Supervisor(settings).serve()
    _, key = apikeys.create(operator, PROJECT, "bench")
    registry = ProjectRegistry(settings, PROJECT, model.bao)
    local = settings.data_dir / "bench-model"
    with registry.session():
        mlflow.artifacts.download_artifacts(
            f"models:/{registry.name}/{version}", dst_path=str(local)
        )
    return key, local, endpoint(settings, operator, PROJECT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="Each wrk run's length.")
    parser.add_argument("--soak", type=int, default=180, help="The sustained load's length.")
    parser.add_argument("--batch-rows", type=int, default=1_000_000, help="Rows to score.")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    results: dict[tuple[str, int], dict] = {}
    with stack.running() as settings:
        key, local, settings = prepare(settings)
        ready = serving.url(settings) + "/readyz"
        deadline = time.monotonic() + 120
        while requests.get(ready, verify=str(settings.ca_bundle), timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                sys.exit("the endpoint did not load the champion within 120 s")
            time.sleep(0.5)
        model = mlflow.sklearn.load_model(str(local))
        registry = ModelSteward(settings, PROJECT).registry
        champion = registry.champion()
        served = registry.load_served(str(champion.version), list(RECORD))  # type: ignore[union-attr]
        if not isinstance(served, OnnxScorer):
            sys.exit("the champion has no ONNX twin")
        one = {name: np.array([value], dtype=object if isinstance(value, str) else np.float64)
               for name, value in RECORD.items()}  # fmt: skip
        tls_key, tls_cert = pki.server_files(settings, serving.instance(settings))
        base = settings.port_base + 17
        ours = (
            serving.url(settings) + "/v1/predict",
            RECORD,
            {"Authorization": f"Bearer {key}"},
        )
        mlflow_body = {"dataframe_records": [{**RECORD, "family_history": 1.0}]}
        logs = settings.data_dir / "logs"
        for c in (1, 16):
            results["this endpoint", c] = wrk(*ours, c, args.seconds)
            results["in-process model", c] = in_process(
                lambda: model.predict_proba(pd.DataFrame([RECORD])), args.seconds
            )
            results["in-process ONNX twin", c] = in_process(
                lambda: served.probabilities(one), args.seconds
            )
        with peer(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                str(local),
                "--env-manager",
                "local",
                "-h",
                settings.host,
                "-p",
                str(base),
                "-w",
                "1",
            ],
            {**_env(), "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
            f"http://{settings.host}:{base}/health",
            logs / "bench-mlflow-serve.log",
            settings.ca_bundle,
        ):
            for c in (1, 16):
                results["mlflow models serve", c] = wrk(
                    f"http://{settings.host}:{base}/invocations",
                    mlflow_body,
                    {},
                    c,
                    args.seconds,
                )
        with peer(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.fastapi_peer:app",
                "--host",
                settings.host,
                "--port",
                str(base + 1),
                "--workers",
                "1",
                "--ssl-keyfile",
                str(tls_key),
                "--ssl-certfile",
                str(tls_cert),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            {**_env(), "PEER_MODEL_DIR": str(local)},
            f"https://{settings.host}:{base + 1}/health",
            logs / "bench-fastapi.log",
            settings.ca_bundle,
        ):
            for c in (1, 16):
                results["FastAPI app", c] = wrk(
                    f"https://{settings.host}:{base + 1}/predict", RECORD, {}, c, args.seconds
                )
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(wrk, *ours, 16, args.soak)
            samples = []
            while not running.done():
                samples.append((time.monotonic(), *worker_state(settings, key)))
                time.sleep(5)
            soak = running.result()
        scored = batch(settings, model, served, args.batch_rows)
    _report(results, soak, samples, args.soak)
    print(
        f"\nBatch, {args.batch_rows:,} rows: `serving score` {scored['serving score']:,.0f} "
        f"rows/s; in this process, predict_proba {scored['predict_proba']:,.0f} rows/s and "
        f"the ONNX twin {scored['twin']:,.0f} rows/s; `serving score` / predict_proba "
        f"{scored['serving score'] / scored['predict_proba']:.2f}."
    )


def _env() -> dict[str, str]:
    """A minimal environment; PATH leads with this interpreter's scripts (uvicorn)."""
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    return {"PATH": path, **{k: v for k, v in os.environ.items() if k in ("HOME", "LANG")}}


def _report(
    results: dict[tuple[str, int], dict],
    soak: dict,
    samples: list[tuple[float, float, int]],
    seconds: int,
) -> None:
    """Memory is read every 5 s under load. After 30 s of warm-up (each request's
    bookkeeping lives until BentoML's 5 s traffic timeout, so the in-flight set builds up
    first), each end reports its lowest reading over 30 s: the live set between
    collections rather than garbage not yet collected."""
    t0 = samples[0][0]
    first = [s for s in samples if 30 <= s[0] - t0 <= 60]
    last = [s for s in samples if samples[-1][0] - s[0] <= 30]
    start = (min(s[1] for s in first), min(s[2] for s in first))
    end = (min(s[1] for s in last), min(s[2] for s in last))
    lines = [
        "| server | concurrency | req/s | p50 ms | p99 ms | failed | req/s vs mlflow serve "
        "| p99 vs FastAPI |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in (1, 16):
        mlflow_rps = results["mlflow models serve", c]["rps"]
        fastapi_p99 = results["FastAPI app", c]["p99"]
        for name in (
            "this endpoint",
            "mlflow models serve",
            "FastAPI app",
            "in-process model",
            "in-process ONNX twin",
        ):
            r = results[name, c]
            lines.append(
                f"| {name} | {c} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                f"{r['failed']} | {r['rps'] / mlflow_rps:.2f} | {r['p99'] / fastapi_p99:.2f} |"
            )
    lines += [
        "",
        f"Sustained load, concurrency 16 for {seconds} s on this endpoint: "
        f"{soak['rps']:,.0f} req/s, p99 {soak['p99']:.1f} ms, {soak['failed']} failed.",
        "",
        "| worker (lowest reading over 30 s) | after warm-up (30-60 s) | at the end | end / start "
        "|",
        "|---|---|---|---|",
        f"| resident memory (MiB) | {start[0]:,.0f} | {end[0]:,.0f} | {end[0] / start[0]:.2f} |",
        f"| GC-tracked objects | {start[1]:,} | {end[1]:,} | {end[1] / start[1]:.2f} |",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""TRAIN at 10k, 100k and 1M rows: training alone, and with MLflow logging and registration.

Three ways to produce the same model from the same de-identified rows, in one run:

- training alone: split, fit, evaluate on held-out rows (the limit);
- plus logging and registering into a local MLflow store (SQLite and a directory, no
  server): what MLflow itself costs;
- plus logging and registering through the stack's MLflow server over TLS with basic
  auth, as `hipaa-mlops model train` does: what the server, TLS and auth add on top.

    python -m bench.train [--rows 10000 100000 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import mlflow
import pandas as pd

import contract as contracts
from bench import stack
from model import train
from pipeline.training import typical_example
from safeguards import keys, openbao
from safeguards.registry import ProjectRegistry
from sandbox import deidentify, synth
from services.mlflow import launcher

PROJECT = "bench"
DIABETES = contracts.parse(contracts.example("diabetes"))
WAYS = ("training alone", "+ local MLflow store", "+ MLflow server (TLS, auth)")


def dataset(rows: int) -> pd.DataFrame:
    raw, _ = synth.synthesize(DIABETES, rows, "baseline", seed=1)
    out, _ = deidentify.deidentify(
        raw, DIABETES, lambda v: {x: hashlib.sha256(x.encode()).hexdigest()[:32] for x in set(v)}
    )
    return out


def fit_and_evaluate(frame: pd.DataFrame) -> tuple[object, dict[str, float]]:
    config = train.TrainConfig()
    train_rows, test_rows = train.split(frame, DIABETES, config)
    model = train.fit(train_rows, DIABETES, config)
    return model, train.evaluate(model, test_rows, DIABETES).metrics()


def local_store(frame: pd.DataFrame, root: Path, lineage: dict[str, str]) -> None:
    model, metrics = fit_and_evaluate(frame)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("bench")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment("bench", artifact_location=(root / "artifacts").as_uri())
    )
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_params(train.TrainConfig().as_params(DIABETES))
        mlflow.log_metrics(metrics)
        mlflow.set_tags(lineage)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="skops",
            input_example=typical_example(frame, DIABETES),
            pip_requirements=[],
        )
    mlflow.register_model(info.model_uri, "bench", tags=lineage)


def server(frame: pd.DataFrame, registry: ProjectRegistry, lineage: dict[str, str]) -> None:
    config = train.TrainConfig()
    train_rows, test_rows = train.split(frame, DIABETES, config)
    model = train.fit(train_rows, DIABETES, config)
    metrics = train.evaluate(model, test_rows, DIABETES).metrics()
    run_id, uri = registry.log_run(
        model, typical_example(frame, DIABETES), config.as_params(DIABETES), metrics, lineage, {}
    )
    registry.register(run_id, uri, lineage)


def timed(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="Median of this many runs.")
    args = parser.parse_args()
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    results: dict[tuple[str, int], float] = {}
    with stack.running() as settings:
        operator = openbao.login(settings, "operator")
        keys.create_project(operator, settings, PROJECT)
        launcher.provision_project(settings, operator, PROJECT)
        registry = ProjectRegistry(
            settings, PROJECT, openbao.login(settings, keys.identity(PROJECT))
        )
        for rows in args.rows:
            frame = dataset(rows)
            lineage = {"project": PROJECT, "dataset.rows": str(rows)}
            store = settings.data_dir.parent / f"local-{rows}"
            store.mkdir()
            results[WAYS[0], rows] = timed(partial(fit_and_evaluate, frame), args.repeat)
            results[WAYS[1], rows] = timed(partial(local_store, frame, store, lineage), args.repeat)
            results[WAYS[2], rows] = timed(partial(server, frame, registry, lineage), args.repeat)
    lines = [
        "| rows | way | seconds (median) | time / training alone | seconds added by MLflow |",
        "|---|---|---|---|---|",
    ]
    for rows in args.rows:
        alone = results[WAYS[0], rows]
        for way in WAYS:
            seconds = results[way, rows]
            lines.append(
                f"| {rows:,} | {way} | {seconds:.2f} | {seconds / alone:.2f} | "
                f"{seconds - alone:+.2f} |"
            )
    print("\n".join(lines))


if __name__ == "__main__":
    main()

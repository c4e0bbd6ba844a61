"""Batch scoring from the command line: a file of records through a project's champion.

Runs as the project's workload identity, as a batch job of the project: it reads the
project's contract and champion, scores every row of a CSV or Parquet file of the
contract's features (checked as the endpoint checks a request: any other column, an
identifier included, is refused), captures the scored rows for monitoring as the
endpoint does, and writes the probabilities, in the file's row order, to a 0600 file
written whole or not at all. Invalid rows either refuse the whole file or, with
``on_invalid="report"``, are left unscored and listed by row, column and rule.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import contract as contracts
from safeguards import keys, objectstore, openbao
from safeguards.audit import AuditLog
from safeguards.errors import ConfigError, Unavailable
from safeguards.files import write_private
from safeguards.registry import ProjectRegistry
from safeguards.settings import Settings
from services.serving import capture

# Rows scored (and captured) at a time.
CHUNK = 50_000
# Rows scored so far, and in all.
Advance = Callable[[int, int], None]


@dataclass(frozen=True)
class Scored:
    rows: int
    scored: int
    problems: list[contracts.Problem]
    model_version: str
    captured: bool


def score_file(
    settings: Settings,
    project: str,
    path: Path,
    out: Path,
    actor: str,
    mapping: dict[str, str] | None = None,
    report: bool = False,
    capture_rows: bool = True,
    advance: Advance | None = None,
) -> Scored:
    """Score every row of `path` with `project`'s champion into `out` (.csv or .parquet)."""
    if out.suffix not in (".csv", ".parquet"):
        raise ConfigError("the output is a .csv or .parquet file")
    bao = openbao.login(settings, keys.identity(project))
    contract = contracts.load(bao, project)
    registry = ProjectRegistry(settings, project, bao)
    champion = registry.champion()
    if champion is None:
        raise Unavailable(f"project {project} has no champion model yet")
    version = str(champion.version)
    scorer = registry.load_served(version, contract.features)
    columns = [contract.column(name) for name in contract.features]
    sources = {s: c for s, c in contract.sources.items() if c in contract.features}
    frame, problems = contracts.read_table(
        path, columns, {**sources, **(mapping or {})}, report=report
    )
    bad = np.zeros(len(frame), dtype=bool)
    bad[[p.row - 1 for p in problems]] = True
    probabilities = np.full(len(frame), np.nan)
    ids = np.where(bad, "", np.array(capture.prediction_ids(len(frame)), dtype=object))
    store = objectstore.store_with(settings, bao, project, "workload") if capture_rows else None
    for start in range(0, len(frame), CHUNK):
        chunk = frame.iloc[start : start + CHUNK]
        keep = ~bad[start : start + CHUNK]
        if keep.any():
            valid = chunk[keep]
            scores = scorer.probabilities(contracts.model_frame(valid, contract))
            probabilities[start : start + CHUNK][keep] = scores
            if store is not None:
                _capture(store, valid, scores, version, ids[start : start + CHUNK][keep], contract)
        if advance is not None:
            advance(start + len(chunk), len(frame))
    result = pd.DataFrame(
        {
            "row": np.arange(1, len(frame) + 1),
            "probability": probabilities,
            "prediction_id": pd.Series(ids).replace("", None),
            "model_version": version,
        }
    )
    if problems:
        rules = pd.Series({p.row: f"{p.column}: {p.rule}" for p in reversed(problems)}, dtype="str")
        result["problem"] = result["row"].map(rules)
    write_private(out, _encode(result, out.suffix))
    AuditLog.of(settings, bao).append(
        actor,
        "serving.score",
        f"model/{project}/{registry.name}/{version}",
        rows=len(frame),
        scored=int((~bad).sum()),
        invalid_rows=int(bad.sum()),
        captured=capture_rows,
    )
    return Scored(len(frame), int((~bad).sum()), problems, version, capture_rows)


def _capture(
    store: objectstore.ObjectStore,
    rows: pd.DataFrame,
    scores: np.ndarray,
    version: str,
    ids: np.ndarray,
    contract: contracts.Contract,
) -> None:
    """Scored rows into the capture, as the endpoint writes it."""
    now = time.time()
    records = list(
        zip(
            *(rows[c].astype(object).where(rows[c].notna(), None) for c in contract.features),
            scores.tolist(),
            [version] * len(rows),
            [now] * len(rows),
            ids.tolist(),
            strict=True,
        )
    )
    capture.write(store, records, contract)


def _encode(frame: pd.DataFrame, suffix: str) -> bytes:
    buffer = io.BytesIO()
    if suffix == ".csv":
        frame.to_csv(buffer, index=False)
    else:
        frame.to_parquet(buffer, index=False)
    return buffer.getvalue()

"""Drift and performance of the served model, computed with NannyML.

The champion's captured predictions, cut into chunks of a fixed number of rows, are
compared with two references: for drift, every row of the dataset version it was trained
on; for performance, the rows it was evaluated on (held out, or every row of the dataset
an imported model was validated on), scored by the same model (an estimator must be
fitted on rows the model never saw). The features are the project contract's. For each
chunk this computes

- univariate drift of every feature (Jensen-Shannon distance, numeric and categorical);
- multivariate drift (NannyML's PCA reconstruction error over all features);
- estimated AUROC without labels (CBPE, from the model's own probabilities);
- realised AUROC, once outcomes have been reported for enough of the captured rows.

Thresholds are NannyML's: three standard deviations around the reference chunks' mean;
a performance estimate or measure above its band is good news, not an alert. A chunk
holds at most the configured number of rows and at most half of the smaller reference
(each reference needs two chunks), and never fewer than `MIN_CHUNK_ROWS`: a small table
is monitored in small chunks, one too small to monitor is named with its size. With
the diabetes example's twelve features, one or two crossing their band in one chunk is
ordinary noise (seen on fresh samples of the training population), so a feature counts
as drifted when it alerts in at least half of the window's chunks, and the population
has drifted when at least `DRIFTED_FEATURES` features have, or the multivariate
statistic has, over at least `MIN_VERDICT_CHUNKS` chunks.

It must never see an identifier (its inputs are the contract's features, a probability
and a random prediction id) nor send anything anywhere: NannyML's usage statistics, on by
default, are switched off before it is imported.
"""

from __future__ import annotations

import os

os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import nannyml as nml
import pandas as pd

from contract import Contract, Type, model_frame
from safeguards.errors import ConfigError
from safeguards.registry import Scorer

METHOD = "jensen_shannon"
MULTIVARIATE = "reconstruction_error"
DRIFTED_FEATURES = 2
# The fewest rows a chunk may hold: fewer, and one chunk's AUROC says little.
MIN_CHUNK_ROWS = 30
# The fewest chunks a drift verdict is given on: in two or three, one chunk's crossing is
# already half the window, and a fresh sample of the training population crosses now
# and then.
MIN_VERDICT_CHUNKS = 4
# The model's decision threshold; CBPE needs one even though AUROC does not use it.
_THRESHOLD = 0.5
_PROBA, _PRED, _TRUE = "y_pred_proba", "y_pred", "y_true"


@dataclass(frozen=True)
class Signal:
    """A statistic of the newest chunk and the band it must stay inside."""

    value: float
    lower: float | None
    upper: float | None
    alert: bool


@dataclass
class Analysis:
    """The newest chunk's statistics; `alert` on drift signals is the window's verdict."""

    model_version: str
    rows: int
    chunks: int
    labelled_rows: int
    features: dict[str, Signal]
    multivariate: Signal
    estimated_auroc: Signal
    realised_auroc: Signal | None
    # NannyML's results, kept for the report's plots.
    results: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def drifted_features(self) -> list[str]:
        return sorted(name for name, signal in self.features.items() if signal.alert)

    @property
    def drifted(self) -> bool:
        if self.chunks < MIN_VERDICT_CHUNKS:
            return False
        return self.multivariate.alert or len(self.drifted_features) >= DRIFTED_FEATURES

    def signals(self) -> list[tuple[str, Signal]]:
        """Every statistic with its name, as the report and the CLI list them."""
        rows = [(f"{name} ({METHOD})", signal) for name, signal in self.features.items()]
        rows.append((f"all features ({MULTIVARIATE})", self.multivariate))
        rows.append(("estimated AUROC (CBPE)", self.estimated_auroc))
        if self.realised_auroc is not None:
            rows.append(("realised AUROC", self.realised_auroc))
        return rows

    def summary(self) -> dict[str, Any]:
        """What the audit log and the CLI show: aggregates only."""
        return {
            "model_version": self.model_version,
            "rows": self.rows,
            "labelled_rows": self.labelled_rows,
            "drifted": self.drifted,
            "drifted_features": self.drifted_features,
            "multivariate": round(self.multivariate.value, 4),
            "estimated_auroc": round(self.estimated_auroc.value, 4),
            "realised_auroc": (
                round(self.realised_auroc.value, 4) if self.realised_auroc is not None else None
            ),
        }


def drift_reference(training: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The features of every row the model was trained and evaluated on."""
    return model_frame(training, contract).reset_index(drop=True)


def performance_reference(
    model: Scorer, evaluated_on: pd.DataFrame, contract: Contract
) -> pd.DataFrame:
    """The rows the model was evaluated on, with its own probabilities and the outcomes."""
    probabilities = model.probabilities(model_frame(evaluated_on, contract))
    return _frame(evaluated_on, contract, probabilities, evaluated_on[contract.label].astype(int))


def analysis_frame(
    captured: pd.DataFrame, contract: Contract, outcomes: pd.Series | None = None
) -> pd.DataFrame:
    """Captured predictions in NannyML's shape; `outcomes` (by prediction id) where known."""
    truth = None
    if outcomes is not None:
        truth = captured["prediction_id"].map(outcomes).astype("Float64")
    frame = _frame(captured, contract, captured["probability"].to_numpy(), truth)
    frame["timestamp"] = captured["predicted_at"].to_numpy()
    return frame


def _frame(rows: pd.DataFrame, contract: Contract, probabilities: Any, truth: Any) -> pd.DataFrame:
    frame = model_frame(rows, contract).reset_index(drop=True)
    frame[_PROBA] = probabilities
    frame[_PRED] = (frame[_PROBA] >= _THRESHOLD).astype(int)
    if truth is not None:
        frame[_TRUE] = pd.Series(truth).reset_index(drop=True).astype("float64")
    return frame


def chunk_rows(configured: int, drift_ref: pd.DataFrame, performance_ref: pd.DataFrame) -> int:
    """Rows per chunk: at most `configured`, and each reference in two chunks at least;
    a ConfigError naming the reference that is too small to monitor with."""
    references = (
        ("drift reference (every row the champion was trained on)", len(drift_ref)),
        ("performance reference (the rows the champion was evaluated on)", len(performance_ref)),
    )
    for name, rows in references:
        if rows < 2 * MIN_CHUNK_ROWS:
            raise ConfigError(
                f"the {name} has {rows:,} rows; monitoring needs at least "
                f"{2 * MIN_CHUNK_ROWS} (two chunks of {MIN_CHUNK_ROWS})"
            )
    return min(configured, *(rows // 2 for _, rows in references))


def _newest(result: Any) -> pd.Series:
    """The newest chunk's row, indexed by NannyML's column tuples."""
    return result.filter(period="analysis").to_df(multilevel=True).iloc[-1]


def _window_alert(result: Any, *key: str) -> bool:
    """Whether the statistic alerted in at least half of the window's chunks."""
    alerts = result.filter(period="analysis").to_df(multilevel=True)[(*key, "alert")]
    return bool(alerts.astype(bool).mean() >= 0.5)


def _signal(row: pd.Series, *key: str, only_below: bool = False) -> Signal:
    """A statistic of the newest chunk; with `only_below` (a performance metric), only a
    value under its band alerts: one above it is a better model, not a problem."""

    def number(name: str) -> float | None:
        found = row.get((*key, name))
        return None if found is None or pd.isna(found) else float(found)

    measured, lower = number("value"), number("lower_threshold")
    alert = bool(row.get((*key, "alert"), False))
    if only_below:
        alert = measured is not None and lower is not None and measured < lower
    return Signal(
        value=math.nan if measured is None else measured,
        lower=lower,
        upper=number("upper_threshold"),
        alert=alert,
    )


def analyse(
    drift_ref: pd.DataFrame,
    performance_ref: pd.DataFrame,
    captured: pd.DataFrame,
    model_version: str,
    chunk: int,
    contract: Contract,
) -> Analysis:
    """Drift and performance of `captured` (`analysis_frame`) against the references, in
    chunks of `chunk` rows (`chunk_rows`)."""
    # NannyML 0.13 warns on every call about pandas deprecations and few chunks: noise in
    # the worker's log, with nothing for an operator to act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _analyse(drift_ref, performance_ref, captured, model_version, chunk, contract)


def _analyse(
    drift_ref: pd.DataFrame,
    performance_ref: pd.DataFrame,
    captured: pd.DataFrame,
    model_version: str,
    chunk: int,
    contract: Contract,
) -> Analysis:
    if len(captured) < chunk:
        raise ConfigError(f"{len(captured):,} captured rows are fewer than one chunk of {chunk}")
    if min(len(drift_ref), len(performance_ref)) < 2 * chunk:
        raise ConfigError(f"a reference needs at least two chunks of {chunk} rows")
    features = contract.features
    chunker = nml.chunk.SizeBasedChunker(chunk, incomplete="append")
    categorical = [c for c in features if contract.column(c).type in (Type.CATEGORY, Type.BOOLEAN)]
    univariate = nml.UnivariateDriftCalculator(
        column_names=features,
        treat_as_categorical=categorical,
        continuous_methods=[METHOD],
        categorical_methods=[METHOD],
        chunker=chunker,
    ).fit(drift_ref)
    multivariate = nml.DataReconstructionDriftCalculator(
        column_names=features, chunker=chunker
    ).fit(drift_ref)
    # CBPE estimates what PerformanceCalculator measures once outcomes exist: same setup.
    performance: dict[str, Any] = {
        "y_pred_proba": _PROBA,
        "y_pred": _PRED,
        "y_true": _TRUE,
        "problem_type": "classification_binary",
        "metrics": ["roc_auc"],
        "chunker": chunker,
    }
    estimator = nml.CBPE(**performance).fit(performance_ref)
    unlabelled = captured.drop(columns=[_TRUE], errors="ignore")
    results: dict[str, Any] = {
        "univariate": univariate.calculate(unlabelled),
        "multivariate": multivariate.calculate(unlabelled),
        "estimated": estimator.estimate(unlabelled),
    }
    labelled = captured.dropna(subset=[_TRUE]) if _TRUE in captured else captured.iloc[:0]
    realised = None
    if len(labelled) >= chunk and labelled[_TRUE].nunique() == 2:
        calculator = nml.PerformanceCalculator(**performance).fit(performance_ref)
        results["realised"] = calculator.calculate(labelled.astype({_TRUE: "int64"}))
        realised = _signal(_newest(results["realised"]), "roc_auc", only_below=True)
    drift = _newest(results["univariate"])
    return Analysis(
        model_version=model_version,
        rows=len(captured),
        chunks=len(results["univariate"].filter(period="analysis").to_df()),
        labelled_rows=len(labelled),
        features={
            name: replace(
                _signal(drift, name, METHOD),
                alert=_window_alert(results["univariate"], name, METHOD),
            )
            for name in features
        },
        multivariate=replace(
            _signal(_newest(results["multivariate"]), MULTIVARIATE),
            alert=_window_alert(results["multivariate"], MULTIVARIATE),
        ),
        estimated_auroc=_signal(_newest(results["estimated"]), "roc_auc", only_below=True),
        realised_auroc=realised,
        results=results,
    )

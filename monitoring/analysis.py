"""Drift and performance of the served model, computed with NannyML.

The champion's captured predictions, cut into chunks of a fixed number of rows, are
compared with two references: for drift, every row of the dataset version it was trained
on; for performance, the held-out rows it was evaluated on, scored by the same model (an
estimator must be fitted on rows the model never saw). For each chunk this computes

- univariate drift of every feature (Jensen-Shannon distance, numeric and categorical);
- multivariate drift (NannyML's PCA reconstruction error over all twelve features);
- estimated AUROC without labels (CBPE, from the model's own probabilities);
- realised AUROC, once outcomes have been reported for enough of the captured rows.

Thresholds are NannyML's: three standard deviations around the reference chunks' mean.
With twelve features, one or two crossing their band in one chunk is ordinary noise (seen
on fresh samples of the training population), so a feature counts as drifted when it
alerts in at least half of the window's chunks, and the population has drifted when at
least `DRIFTED_FEATURES` features have, or the multivariate statistic has.

It must never see an identifier (its inputs are the twelve features, a probability and a
random prediction id) nor send anything anywhere: NannyML's usage statistics, on by
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

from model.train import BOOLEAN, CATEGORICAL, FEATURES, features
from safeguards.errors import ConfigError
from sandbox.schema import LABEL

METHOD = "jensen_shannon"
MULTIVARIATE = "reconstruction_error"
DRIFTED_FEATURES = 2
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


def drift_reference(training: pd.DataFrame) -> pd.DataFrame:
    """The features of every row the model was trained and evaluated on."""
    return features(training)[FEATURES].reset_index(drop=True)


def performance_reference(model: Any, held_out: pd.DataFrame) -> pd.DataFrame:
    """The model's held-out rows with its own probabilities and the true outcomes."""
    probabilities = model.predict_proba(features(held_out))[:, 1]
    return _frame(held_out[FEATURES], probabilities, held_out[LABEL].astype(int))


def analysis_frame(captured: pd.DataFrame, outcomes: pd.Series | None = None) -> pd.DataFrame:
    """Captured predictions in NannyML's shape; `outcomes` (by prediction id) where known."""
    truth = None
    if outcomes is not None:
        truth = captured["prediction_id"].map(outcomes).astype("Float64")
    frame = _frame(captured[FEATURES], captured["probability"].to_numpy(), truth)
    frame["timestamp"] = captured["predicted_at"].to_numpy()
    return frame


def _frame(rows: pd.DataFrame, probabilities: Any, truth: Any) -> pd.DataFrame:
    frame = features(rows.assign(**{LABEL: False}))[FEATURES].reset_index(drop=True)
    frame[_PROBA] = probabilities
    frame[_PRED] = (frame[_PROBA] >= _THRESHOLD).astype(int)
    if truth is not None:
        frame[_TRUE] = pd.Series(truth).reset_index(drop=True).astype("float64")
    return frame


def _newest(result: Any) -> pd.Series:
    """The newest chunk's row, indexed by NannyML's column tuples."""
    return result.filter(period="analysis").to_df(multilevel=True).iloc[-1]


def _window_alert(result: Any, *key: str) -> bool:
    """Whether the statistic alerted in at least half of the window's chunks."""
    alerts = result.filter(period="analysis").to_df(multilevel=True)[(*key, "alert")]
    return bool(alerts.astype(bool).mean() >= 0.5)


def _signal(row: pd.Series, *key: str) -> Signal:
    def number(name: str) -> float | None:
        found = row.get((*key, name))
        return None if found is None or pd.isna(found) else float(found)

    measured = number("value")
    return Signal(
        value=math.nan if measured is None else measured,
        lower=number("lower_threshold"),
        upper=number("upper_threshold"),
        alert=bool(row.get((*key, "alert"), False)),
    )


def analyse(
    drift_ref: pd.DataFrame,
    performance_ref: pd.DataFrame,
    captured: pd.DataFrame,
    model_version: str,
    chunk_rows: int,
) -> Analysis:
    """Drift and performance of `captured` (`analysis_frame`) against the references."""
    # NannyML 0.13 warns on every call about pandas deprecations and few chunks: noise in
    # the worker's log, with nothing for an operator to act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _analyse(drift_ref, performance_ref, captured, model_version, chunk_rows)


def _analyse(
    drift_ref: pd.DataFrame,
    performance_ref: pd.DataFrame,
    captured: pd.DataFrame,
    model_version: str,
    chunk_rows: int,
) -> Analysis:
    if len(captured) < chunk_rows:
        raise ConfigError(f"{len(captured)} captured rows are fewer than one chunk of {chunk_rows}")
    if min(len(drift_ref), len(performance_ref)) < 2 * chunk_rows:
        raise ConfigError(f"a reference needs at least two chunks of {chunk_rows} rows")
    chunker = nml.chunk.SizeBasedChunker(chunk_rows, incomplete="append")
    categorical = CATEGORICAL + BOOLEAN
    univariate = nml.UnivariateDriftCalculator(
        column_names=FEATURES,
        treat_as_categorical=categorical,
        continuous_methods=[METHOD],
        categorical_methods=[METHOD],
        chunker=chunker,
    ).fit(drift_ref)
    multivariate = nml.DataReconstructionDriftCalculator(
        column_names=FEATURES, chunker=chunker
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
    if len(labelled) >= chunk_rows and labelled[_TRUE].nunique() == 2:
        calculator = nml.PerformanceCalculator(**performance).fit(performance_ref)
        results["realised"] = calculator.calculate(labelled.astype({_TRUE: "int64"}))
        realised = _signal(_newest(results["realised"]), "roc_auc")
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
            for name in FEATURES
        },
        multivariate=replace(
            _signal(_newest(results["multivariate"]), MULTIVARIATE),
            alert=_window_alert(results["multivariate"], MULTIVARIATE),
        ),
        estimated_auroc=_signal(_newest(results["estimated"]), "roc_auc"),
        realised_auroc=realised,
        results=results,
    )

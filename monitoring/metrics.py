"""Prometheus metrics of the monitoring worker, in a registry of its own.

Labels come from fixed sets: a feature is one of the contract's, a method one of
NannyML's, an outcome or trigger one of a handful of words. Nothing is per patient or
per prediction: every value is a statistic of a chunk of hundreds of rows.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from monitoring.analysis import METHOD, MULTIVARIATE, Analysis, Signal

RUN_OUTCOMES = ("ok", "no_data", "failed")
RETRAIN_TRIGGERS = ("schedule", "drift", "manual")
RETRAIN_OUTCOMES = ("promoted", "held", "skipped", "failed")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.feature = Gauge(
            "monitoring_feature_drift",
            "Drift statistic of the newest chunk, per feature and method.",
            ["feature", "method"],
            registry=r,
        )
        self.feature_threshold = Gauge(
            "monitoring_feature_drift_threshold",
            "Upper threshold of the drift statistic, from the reference chunks.",
            ["feature", "method"],
            registry=r,
        )
        self.feature_alert = Gauge(
            "monitoring_feature_drift_alert",
            "1 when the feature left its band in at least half of the window's chunks.",
            ["feature", "method"],
            registry=r,
        )
        self.multivariate = Gauge(
            "monitoring_multivariate_drift",
            "Multivariate drift statistic of the newest chunk.",
            ["method"],
            registry=r,
        )
        self.multivariate_threshold = Gauge(
            "monitoring_multivariate_drift_threshold",
            "Upper threshold of the multivariate statistic.",
            ["method"],
            registry=r,
        )
        self.multivariate_alert = Gauge(
            "monitoring_multivariate_drift_alert",
            "1 when the multivariate statistic left its band in at least half of the chunks.",
            ["method"],
            registry=r,
        )
        self.drift_detected = Gauge(
            "monitoring_drift_detected",
            "1 when the worker judged that the population drifted (this starts a retrain).",
            registry=r,
        )
        self.estimated_auroc = Gauge(
            "monitoring_estimated_auroc", "AUROC estimated by CBPE, newest chunk.", registry=r
        )
        self.estimated_auroc_lower = Gauge(
            "monitoring_estimated_auroc_lower_threshold",
            "Lower threshold of the estimated AUROC, from the reference chunks.",
            registry=r,
        )
        self.estimated_auroc_alert = Gauge(
            "monitoring_estimated_auroc_alert",
            "1 when the newest chunk's estimated AUROC is outside its band.",
            registry=r,
        )
        self.realised_auroc = Gauge(
            "monitoring_realised_auroc",
            "AUROC on reported outcomes, newest chunk (absent until enough are reported).",
            registry=r,
        )
        self.rows = Gauge(
            "monitoring_analysed_rows", "Captured predictions in the last run.", registry=r
        )
        self.labelled_rows = Gauge(
            "monitoring_labelled_rows",
            "Captured predictions with a reported outcome in the last run.",
            registry=r,
        )
        self.model_version = Gauge(
            "monitoring_model_version", "The champion version last analysed.", registry=r
        )
        self.last_run = Gauge(
            "monitoring_last_run_timestamp_seconds",
            "When the last run finished without failing, with or without data (Unix time).",
            registry=r,
        )
        self.runs = Counter(
            "monitoring_runs", "Monitoring runs, by outcome.", ["outcome"], registry=r
        )
        self.retrains = Counter(
            "monitoring_retrains",
            "Retrain pipeline runs, by trigger and outcome.",
            ["trigger", "outcome"],
            registry=r,
        )
        # Unknown until measured: NaN, which no alert rule's comparison matches.
        for unknown in (self.estimated_auroc, self.estimated_auroc_lower, self.realised_auroc):
            unknown.set(float("nan"))
        for outcome in RUN_OUTCOMES:
            self.runs.labels(outcome)
        for trigger in RETRAIN_TRIGGERS:
            for result in RETRAIN_OUTCOMES:
                self.retrains.labels(trigger, result)

    def publish(self, analysis: Analysis) -> None:
        for name, signal in analysis.features.items():
            self.feature.labels(name, METHOD).set(signal.value)
            self.feature_threshold.labels(name, METHOD).set(_upper(signal))
            self.feature_alert.labels(name, METHOD).set(int(signal.alert))
        self.multivariate.labels(MULTIVARIATE).set(analysis.multivariate.value)
        self.multivariate_threshold.labels(MULTIVARIATE).set(_upper(analysis.multivariate))
        self.multivariate_alert.labels(MULTIVARIATE).set(int(analysis.multivariate.alert))
        self.drift_detected.set(int(analysis.drifted))
        estimated = analysis.estimated_auroc
        self.estimated_auroc.set(estimated.value)
        self.estimated_auroc_lower.set(_or_nan(estimated.lower))
        self.estimated_auroc_alert.set(int(estimated.alert))
        if analysis.realised_auroc is not None:
            self.realised_auroc.set(analysis.realised_auroc.value)
        self.rows.set(analysis.rows)
        self.labelled_rows.set(analysis.labelled_rows)
        self.model_version.set(float(analysis.model_version))
        self.finished("ok")

    def finished(self, outcome: str) -> None:
        """Count a run; one that did not fail also marks the worker as alive."""
        if outcome != "failed":
            self.last_run.set(time.time())
        self.runs.labels(outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _or_nan(value: float | None) -> float:
    return value if value is not None else float("nan")


def _upper(signal: Signal) -> float:
    return _or_nan(signal.upper)

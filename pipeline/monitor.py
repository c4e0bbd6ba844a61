"""MONITOR, strung together: the champion's captured predictions through NannyML, into a
report in the lake, the audit log and (in the worker) Prometheus.

Runs as the project's workload identity: it reads the capture and the reported outcomes
from the project's lake, the champion and its training data from the registry and the
dataset versions, and writes the report back to the lake. The references are rebuilt
from the champion's lineage once per champion version; a long-running caller passes the
same `References` to every run so they are kept between logins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from monitoring import analysis, lake, report
from monitoring.analysis import Analysis
from pipeline.retrain import Progress, Retrain, retrain
from pipeline.training import ModelSteward
from safeguards import objectstore
from safeguards.errors import ConfigError, SafeguardError
from safeguards.settings import Settings

DRIFT_ACTOR = "monitoring:drift"
# Champion version -> (drift reference, performance reference); only the newest is kept.
References = dict[str, tuple[pd.DataFrame, pd.DataFrame]]


@dataclass(frozen=True)
class Checked:
    """One monitoring run: `analysis` is None when there was too little to analyse."""

    analysis: Analysis | None
    report: str | None
    reason: str


class Monitor:
    def __init__(
        self, settings: Settings, project: str, references: References | None = None
    ) -> None:
        self.settings = settings
        self.steward = ModelSteward(settings, project)
        self.project = self.steward.project
        self.store = objectstore.store_with(settings, self.steward.bao, project, "workload")
        self._references = {} if references is None else references

    def references(self, version: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Drift and performance references of `version`, built once per version."""
        if version not in self._references:
            contract = self.steward.contract
            training, evaluated_on, _ = self.steward.rows(self.steward.registry.version(version))
            self._references.clear()
            self._references[version] = (
                analysis.drift_reference(training, contract),
                analysis.performance_reference(self.steward.load(version), evaluated_on, contract),
            )
        return self._references[version]

    def check(self, actor: str) -> Checked:
        """Analyse the champion's newest captured predictions; report and audit the result."""
        champion = self.steward.registry.champion()
        if champion is None:
            return Checked(None, None, "there is no champion to monitor")
        version = champion.version
        drift_ref, performance_ref = self.references(version)
        try:
            chunk = analysis.chunk_rows(
                self.settings.monitor_chunk_rows, drift_ref, performance_ref
            )
        except ConfigError as exc:
            return Checked(None, None, f"version {version} cannot be monitored: {exc}")
        window = lake.captured(self.store, version, self.settings.monitor_window_rows)
        if len(window) < chunk:
            return Checked(
                None,
                None,
                f"{len(window)} captured predictions of version {version}, "
                f"fewer than one chunk of {chunk}",
            )
        contract = self.steward.contract
        frame = analysis.analysis_frame(window, contract, lake.outcomes(self.store))
        result = analysis.analyse(drift_ref, performance_ref, frame, version, chunk, contract)
        title = f"Monitoring report {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
        name = lake.put_report(self.store, version, report.render(self.project, result, title))
        self.steward.audit.append(
            actor,
            "monitoring.run",
            f"model/{self.project}/{self.steward.registry.name}/{version}",
            outcome="drift" if result.drifted else "ok",
            report=name,
            **{k: v for k, v in result.summary().items() if k != "model_version"},
        )
        return Checked(result, name, "drift detected" if result.drifted else "no drift")


@dataclass(frozen=True)
class Watched:
    checked: Checked
    retrained: Retrain | None = None
    # Why a retrain that drift started failed (it is audited too); the check still stands.
    retrain_error: str | None = None


def watch(
    settings: Settings,
    project: str,
    actor: str,
    references: References | None = None,
    retrain_on_drift: bool = True,
    progress: Progress | None = None,
) -> Watched:
    """One monitoring run; on drift, the drift is audited and the retrain pipeline runs."""
    monitor = Monitor(settings, project, references)
    checked = monitor.check(actor)
    if checked.analysis is None or not checked.analysis.drifted or not retrain_on_drift:
        return Watched(checked)
    monitor.steward.audit.append(
        DRIFT_ACTOR,
        "monitoring.drift",
        f"model/{monitor.project}/{monitor.steward.registry.name}",
        report=checked.report,
        drifted_features=checked.analysis.drifted_features,
    )
    try:
        return Watched(checked, retrain(settings, project, "drift", DRIFT_ACTOR, progress))
    except SafeguardError as exc:
        return Watched(checked, retrain_error=str(exc))


def report_outcomes(settings: Settings, project: str, frame: pd.DataFrame, actor: str) -> str:
    """Store outcomes a caller reported against prediction ids; audited. Returns the name."""
    steward = ModelSteward(settings, project)
    store = objectstore.store_with(settings, steward.bao, steward.project, "workload")
    name = lake.put_outcomes(store, frame)
    steward.audit.append(
        actor, "monitoring.outcomes", f"{steward.project}-{lake.ZONE}/{name}", rows=len(frame)
    )
    return name

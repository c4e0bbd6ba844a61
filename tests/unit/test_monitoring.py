"""Monitoring without servers: NannyML tells a shifted population from a fresh sample of
the training population, outcomes files are checked before they are stored, reports are
self-contained, metrics carry no unknown labels, and the worker's HTTP edge is closed."""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

import contract as contracts
from model.train import TrainConfig, fit, split
from monitoring import analysis, lake, report
from monitoring.metrics import Metrics
from safeguards.errors import ConfigError
from safeguards.registry import SklearnScorer
from safeguards.settings import Settings
from sandbox import synth

CHUNK = 500
DIABETES = contracts.parse(contracts.example("diabetes"))
FEATURES, LABEL = DIABETES.features, DIABETES.label


@dataclass(frozen=True)
class Champion:
    """A model trained as the demo trains it, with its drift and performance references."""

    model: Any
    drift_ref: pd.DataFrame
    performance_ref: pd.DataFrame

    def captured(self, cohort: str, seed: int, rows: int = 2000) -> pd.DataFrame:
        """New patients of `cohort` scored by the model, as the endpoint captures them,
        with their true outcome beside (for `outcomes`)."""
        patients, _ = synth.synthesize(DIABETES, rows, cohort, seed)
        frame = patients[FEATURES].copy()
        frame["probability"] = self.model.probabilities(contracts.model_frame(patients, DIABETES))
        frame["model_version"] = "1"
        frame["predicted_at"] = pd.date_range("2026-11-01", periods=rows, freq="min", tz="UTC")
        frame["prediction_id"] = [f"{i:032x}" for i in range(rows)]
        frame[LABEL] = patients[LABEL].to_numpy()
        return frame

    def analyse(
        self, captured: pd.DataFrame, outcomes: pd.Series | None = None, version: str = "1"
    ) -> analysis.Analysis:
        frame = analysis.analysis_frame(captured, DIABETES, outcomes)
        chunk = analysis.chunk_rows(CHUNK, self.drift_ref, self.performance_ref)
        return analysis.analyse(
            self.drift_ref, self.performance_ref, frame, version, chunk, DIABETES
        )


@pytest.fixture(scope="module")
def champion() -> Champion:
    warnings.simplefilter("ignore")
    training, _ = synth.synthesize(DIABETES, 20_000, "baseline", seed=0)
    train_rows, held_out = split(training, DIABETES, TrainConfig())
    model = SklearnScorer(fit(train_rows, DIABETES, TrainConfig()))
    return Champion(
        model,
        analysis.drift_reference(training, DIABETES),
        analysis.performance_reference(model, held_out, DIABETES),
    )


def _outcomes(captured: pd.DataFrame) -> pd.Series:
    return pd.Series(
        captured[LABEL].astype(int).to_numpy(), index=captured["prediction_id"].to_numpy()
    )


@pytest.mark.parametrize("seed", [101, 102, 103])
def test_a_fresh_sample_of_the_training_population_is_not_drift(
    champion: Champion, seed: int
) -> None:
    captured = champion.captured("baseline", seed)
    result = champion.analyse(captured)
    assert not result.drifted, result.summary()
    assert not result.multivariate.alert
    assert result.chunks == 4
    assert result.realised_auroc is None and result.labelled_rows == 0


@pytest.mark.parametrize("cohort", ["older", "higher-bmi"])
def test_a_shifted_population_is_drift_in_the_features_it_moved(
    champion: Champion, cohort: str
) -> None:
    captured = champion.captured(cohort, seed=1)
    result = champion.analyse(captured)
    assert result.drifted
    moved = {"older": "age", "higher-bmi": "bmi"}[cohort]
    assert moved in result.drifted_features
    assert len(result.drifted_features) >= analysis.DRIFTED_FEATURES


def test_a_window_of_fewer_chunks_than_a_verdict_needs_is_not_drift(champion: Champion) -> None:
    captured = champion.captured("older", seed=1, rows=2 * CHUNK)
    result = champion.analyse(captured)
    assert result.chunks == 2 < analysis.MIN_VERDICT_CHUNKS
    assert "age" in result.drifted_features and not result.drifted


def test_realised_auroc_needs_a_chunk_of_reported_outcomes(
    champion: Champion,
) -> None:
    captured = champion.captured("baseline", seed=104)
    few = _outcomes(captured).iloc[: CHUNK - 1]
    partial = champion.analyse(captured, few)
    assert partial.realised_auroc is None and partial.labelled_rows == CHUNK - 1
    full = champion.analyse(captured, _outcomes(captured))
    assert full.realised_auroc is not None and full.labelled_rows == len(captured)
    # Estimated without labels, realised with them: the same model, close to each other.
    assert abs(full.realised_auroc.value - full.estimated_auroc.value) < 0.08


def test_too_few_captured_rows_are_refused(
    champion: Champion,
) -> None:
    captured = champion.captured("baseline", seed=105, rows=CHUNK - 1)
    with pytest.raises(ConfigError, match="fewer than one chunk"):
        champion.analyse(captured)


def test_a_small_table_is_monitored_in_chunks_that_fit_its_references(
    champion: Champion,
) -> None:
    """Pima-sized: 532 rows, 133 of them held out."""
    drift, performance = champion.drift_ref.iloc[:532], champion.performance_ref.iloc[:133]
    chunk = analysis.chunk_rows(CHUNK, drift, performance)
    assert chunk == 66
    captured = champion.captured("older", seed=7, rows=400)
    frame = analysis.analysis_frame(captured, DIABETES)
    result = analysis.analyse(drift, performance, frame, "1", chunk, DIABETES)
    assert result.chunks == 6 and "age" in result.drifted_features


def test_a_reference_too_small_to_monitor_is_named_with_its_size(champion: Champion) -> None:
    with pytest.raises(ConfigError) as caught:
        analysis.chunk_rows(CHUNK, champion.drift_ref, champion.performance_ref.iloc[:40])
    assert str(caught.value) == (
        "the performance reference (the rows the champion was evaluated on) has 40 rows; "
        f"monitoring needs at least {2 * analysis.MIN_CHUNK_ROWS} "
        f"(two chunks of {analysis.MIN_CHUNK_ROWS})"
    )


def test_a_performance_above_its_band_is_not_an_alert() -> None:
    row = pd.Series({("roc_auc", "value"): 0.95, ("roc_auc", "lower_threshold"): 0.7,
                     ("roc_auc", "upper_threshold"): 0.9, ("roc_auc", "alert"): True})  # fmt: skip
    assert not analysis._signal(row, "roc_auc", only_below=True).alert
    below = row.copy()
    below[("roc_auc", "value")] = 0.6
    assert analysis._signal(below, "roc_auc", only_below=True).alert


def test_the_report_is_self_contained_and_states_its_verdict(
    champion: Champion,
) -> None:
    captured = champion.captured("older", seed=1)
    result = champion.analyse(captured, _outcomes(captured))
    page = report.render("diabetes", result).decode()
    assert "Verdict: the population has drifted" in page
    assert page.count("<h2>") == 4
    # Nothing fetched from elsewhere when the page is opened.
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page)
    for feature in result.drifted_features:
        assert f"<tr class='alert'><td>{feature} (jensen_shannon)" in page


class _Store:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    project = "diabetes"

    def put(self, zone: str, key: str, data: bytes) -> None:
        self.objects[(zone, key)] = data

    def get(self, zone: str, key: str) -> bytes:
        return self.objects[(zone, key)]

    def list(self, zone: str, prefix: str = "") -> list[str]:
        return sorted(k for z, k in self.objects if z == zone and k.startswith(prefix))

    def delete(self, zone: str, key: str) -> None:
        del self.objects[(zone, key)]


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (
            pd.DataFrame({"prediction_id": ["a" * 32], "outcome": [1], "mrn": ["123"]}),
            "exactly the columns",
        ),
        (pd.DataFrame({"patient": ["a" * 32], "outcome": [1]}), "exactly the columns"),
        (pd.DataFrame({"prediction_id": ["a" * 32, "078-05-1120"], "outcome": [1, 0]}), "row 2"),
        (pd.DataFrame({"prediction_id": ["a" * 32], "outcome": ["maybe"]}), "row 1"),
    ],
)
def test_outcomes_other_than_ids_and_booleans_are_refused_before_storing(
    frame: pd.DataFrame, problem: str
) -> None:
    store = _Store()
    with pytest.raises(ConfigError, match=problem) as raised:
        lake.put_outcomes(store, frame)
    assert "078-05-1120" not in str(raised.value)
    assert store.objects == {}


def test_outcomes_are_stored_and_read_back_by_prediction_id() -> None:
    store = _Store()
    lake.put_outcomes(
        store, pd.DataFrame({"prediction_id": ["a" * 32, "b" * 32], "outcome": ["true", 0]})
    )
    lake.put_outcomes(store, pd.DataFrame({"prediction_id": ["c" * 32], "outcome": [True]}))
    for zone, key in store.objects:
        assert zone == "artifacts"
        assert re.fullmatch(r"outcomes/\d{4}-\d{2}-\d{2}/[0-9a-f]{32}\.parquet", key)
    stored = pd.concat(pd.read_parquet(io.BytesIO(v)) for v in store.objects.values())
    assert list(stored.columns) == lake.OUTCOME_COLUMNS
    assert not set(stored.columns) & DIABETES.never_model_inputs
    assert lake.outcomes(store).to_dict() == {"a" * 32: 1, "b" * 32: 0, "c" * 32: 1}


def test_report_names_are_checked_before_the_store_is_asked() -> None:
    store = _Store()
    name = lake.put_report(store, "3", b"<html></html>")
    assert lake.reports(store) == [name.removeprefix(lake.REPORTS)]
    with pytest.raises(ConfigError):
        lake.report(store, "../capture/2026-11-28/x.parquet")


def test_metrics_start_unknown_and_carry_only_fixed_labels(
    champion: Champion,
) -> None:
    metrics = Metrics()
    before = {s.name: s.value for f in _families(metrics) for s in f.samples}
    # Unknown AUROC is NaN, which no alert's comparison matches; 0 would page someone.
    assert math.isnan(before["monitoring_estimated_auroc"])
    assert math.isnan(before["monitoring_realised_auroc"])
    captured = champion.captured("older", seed=1)
    result = champion.analyse(captured, version="7")
    metrics.publish(result)
    samples = [s for f in _families(metrics) for s in f.samples]
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}
    assert values[("monitoring_drift_detected", ())] == 1
    assert values[("monitoring_model_version", ())] == 7
    assert (
        values[
            ("monitoring_feature_drift_alert", (("feature", "age"), ("method", "jensen_shannon")))
        ]
        == 1
    )
    allowed = {"feature": set(FEATURES), "method": {"jensen_shannon", "reconstruction_error"}}
    allowed |= {"outcome": {"ok", "no_data", "failed", "promoted", "held", "skipped"}}
    allowed |= {"trigger": {"schedule", "drift", "manual"}}
    for sample in samples:
        for label, value in sample.labels.items():
            assert value in allowed[label], (sample.name, label)


def _families(metrics: Metrics) -> list:  # type: ignore[type-arg]
    return list(text_string_to_metric_families(metrics.render().decode()))


def test_the_workers_http_edge_is_closed_but_for_health(tmp_path: object) -> None:
    from pipeline.worker import create_app

    settings = Settings(data_dir=tmp_path, port_base=20000)  # type: ignore[arg-type]
    # No lifespan: the scheduler does not start.
    client = TestClient(create_app(settings, projects=["diabetes"]))
    assert client.get("/healthz").json() == {"status": "ok", "projects": 1}
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    malformed = client.get("/metrics", headers={"Authorization": "Bearer diabetes_x.y"})
    assert malformed.status_code == 401
    # A key of a project the worker does not watch is refused before any lookup (no
    # OpenBao runs here).
    other = f"Bearer other_{'0' * 16}.{'A' * 43}"
    assert client.get("/metrics", headers={"Authorization": other}).status_code == 403
    assert client.get("/").status_code == 404
    assert client.get("/reports/anything").status_code == 404
    assert client.post("/healthz").status_code == 404


def test_nannyml_sends_no_usage_statistics(
    champion: Champion, monkeypatch: pytest.MonkeyPatch
) -> None:
    import segment.analytics

    sent: list[object] = []
    monkeypatch.setattr(segment.analytics, "track", lambda *a, **k: sent.append(a))
    monkeypatch.setattr(segment.analytics, "identify", lambda *a, **k: sent.append(a))
    captured = champion.captured("baseline", seed=106)
    champion.analyse(captured)
    assert sent == []

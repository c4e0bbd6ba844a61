"""The monitoring loop as it runs on the stack: the endpoint captures what it scores, the
worker analyses it on its interval, Prometheus scrapes the worker over TLS with an API key
and evaluates the rules. A population like the training one raises no `DataDrift`; an
older population raises it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import hvac
import pandas as pd
import pytest
import requests

from pipeline.training import ModelSteward
from safeguards import apikeys
from safeguards.settings import Settings
from sandbox import synth
from services.prometheus import launcher as prometheus
from services.serving import inputs
from services.serving import launcher as serving
from services.supervisor import Supervisor
from tests.conftest import deidentified_project, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RESTARTED = ("prometheus", "monitoring", "serving")


@dataclass
class Loop:
    settings: Settings
    key: str
    training: pd.DataFrame

    def score(self, patients: pd.DataFrame) -> None:
        records = inputs.request_records(patients)
        for start in range(0, len(records), 500):
            response = requests.post(
                f"{serving.url(self.settings)}/v1/predict/batch",
                json={"records": records[start : start + 500]},
                headers={"Authorization": f"Bearer {self.key}"},
                verify=str(self.settings.ca_bundle),
                timeout=60,
            )
            assert response.status_code == 200

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = requests.get(
            f"{prometheus.url(self.settings)}/api/v1/query",
            params={"query": promql},
            auth=(prometheus.ADMIN, prometheus.admin_password(self.settings)),
            verify=str(self.settings.ca_bundle),
            timeout=10,
        )
        assert response.status_code == 200
        return list(response.json()["data"]["result"])

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def loop(stack: Settings, lake: Settings, operator: hvac.Client) -> Iterator[Loop]:
    """A project with a champion; its endpoint, monitoring worker (every 2 s, retraining
    off) and Prometheus (scraping every second) restarted for it."""
    project = deidentified_project(stack, operator, rows=20_000, seed=0)
    steward = ModelSteward(stack, project)
    version = steward.train("clean").registered.version
    assert steward.promote(version, "operator:test-drift").decision.approved
    settings = stack.model_copy(
        update={
            "serving_project": project,
            "serving_poll_seconds": 1.0,
            "serving_capture_seconds": 1.0,
            "monitor_interval_seconds": 2.0,
            "retrain_on_drift": False,
            "prometheus_scrape_seconds": 1.0,
        }
    )
    supervisor = Supervisor(settings)
    for name in RESTARTED:
        supervisor.stop(name)
    try:
        supervisor.up("stack")
        _, key = apikeys.create(operator, project, "test-client")
        training, _ = steward.training_data("clean")
        yield Loop(settings, key, training)
    finally:
        for name in RESTARTED:
            supervisor.stop(name)


def _analysed(loop: Loop, rows: int) -> Callable[[], bool]:
    return lambda: loop.value('monitoring_analysed_rows{job="monitoring"}') == rows


def test_a_stable_population_raises_no_drift_alert_and_a_shifted_one_does(loop: Loop) -> None:
    # Patients drawn from the training population itself.
    loop.score(loop.training.sample(1500, random_state=7))
    wait_until(_analysed(loop, 1500), 90, "a monitoring run over the stable traffic", every=1)
    time.sleep(3)  # the rules are evaluated every second: give them a few rounds
    assert loop.value('monitoring_drift_detected{job="monitoring"}') == 0
    assert loop.query('ALERTS{alertname="DataDrift"}') == []
    assert loop.value('up{job="monitoring"}') == 1
    estimated = loop.value("monitoring_estimated_auroc")
    assert estimated is not None and 0.7 < estimated < 0.95

    older, _ = synth.synthesize(2500, "older", seed=1)
    loop.score(older)
    wait_until(_analysed(loop, 4000), 90, "a monitoring run over the shifted traffic", every=1)
    wait_until(
        lambda: bool(loop.query('ALERTS{alertname="DataDrift",alertstate="firing"}')),
        30,
        "DataDrift firing",
        every=1,
    )
    drifted = loop.query('ALERTS{alertname="FeatureDrift",alertstate="firing"}')
    assert "age" in {alert["metric"]["feature"] for alert in drifted}

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

import contract as contracts
from pipeline.training import ModelSteward
from safeguards import apikeys
from safeguards.settings import Settings
from sandbox import synth
from services.prometheus import launcher as prometheus
from services.serving import inputs
from services.supervisor import Supervisor
from tests.conftest import deidentified_project, endpoint_url, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIABETES = contracts.parse(contracts.example("diabetes"))


@dataclass
class Loop:
    settings: Settings
    project: str
    url: str
    key: str
    training: pd.DataFrame

    def score(self, patients: pd.DataFrame) -> None:
        records = inputs.request_records(patients, DIABETES)
        for start in range(0, len(records), 500):
            response = requests.post(
                f"{self.url}/v1/predict/batch",
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
    """A project with a champion; its endpoint, the monitoring worker (every 2 s, retraining
    off) and Prometheus (scraping every second) started for it."""
    project = deidentified_project(stack, operator, rows=20_000, seed=0, served=True)
    steward = ModelSteward(stack, project)
    version = steward.train("clean").registered.version
    assert steward.promote(version, "operator:test-drift").decision.approved
    settings = stack.model_copy(
        update={
            "serving_poll_seconds": 1.0,
            "serving_capture_seconds": 1.0,
            "monitor_interval_seconds": 2.0,
            "retrain_on_drift": False,
            "prometheus_scrape_seconds": 1.0,
        }
    )
    restarted = ("prometheus", "monitoring", f"serving-{project}")
    supervisor = Supervisor(settings)
    for name in restarted:
        supervisor.stop(name)
    try:
        supervisor.up("stack")
        _, key = apikeys.create(operator, project, "test-client")
        training, _ = steward.training_data("clean")
        yield Loop(settings, project, endpoint_url(settings, operator, project), key, training)
    finally:
        for name in restarted:
            supervisor.stop(name)


def _analysed(loop: Loop, rows: int) -> Callable[[], bool]:
    query = f'monitoring_analysed_rows{{job="monitoring", project="{loop.project}"}}'
    return lambda: loop.value(query) == rows


def test_a_stable_population_raises_no_drift_alert_and_a_shifted_one_does(loop: Loop) -> None:
    # Patients drawn from the training population itself.
    loop.score(loop.training.sample(1500, random_state=7))
    wait_until(_analysed(loop, 1500), 90, "a monitoring run over the stable traffic", every=1)
    time.sleep(3)  # the rules are evaluated every second: give them a few rounds
    mine = f'project="{loop.project}"'
    assert loop.value(f'monitoring_drift_detected{{job="monitoring", {mine}}}') == 0
    assert loop.query(f'ALERTS{{alertname="DataDrift", {mine}}}') == []
    assert loop.value(f'up{{job="monitoring", {mine}}}') == 1
    assert loop.value(f'up{{job="serving", {mine}}}') == 1
    estimated = loop.value(f"monitoring_estimated_auroc{{{mine}}}")
    assert estimated is not None and 0.7 < estimated < 0.95

    older, _ = synth.synthesize(DIABETES, 2500, "older", seed=1)
    loop.score(older)
    wait_until(_analysed(loop, 4000), 90, "a monitoring run over the shifted traffic", every=1)
    wait_until(
        lambda: bool(loop.query(f'ALERTS{{alertname="DataDrift",alertstate="firing",{mine}}}')),
        30,
        "DataDrift firing",
        every=1,
    )
    drifted = loop.query(f'ALERTS{{alertname="FeatureDrift",alertstate="firing",{mine}}}')
    assert "age" in {alert["metric"]["feature"] for alert in drifted}

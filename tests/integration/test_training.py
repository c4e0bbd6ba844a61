"""TRAIN against the real MLflow server over TLS with auth: lineage, isolation, the gate,
rollback, and no half-registered version when MLflow dies midway."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import hvac
import pytest
import requests
import yaml

from model.registry import LINEAGE
from model.train import FEATURES, TrainConfig
from pipeline.training import ModelSteward
from safeguards import credentials, keys, openbao
from safeguards.errors import GateRefused, Unavailable
from safeguards.settings import Settings
from services.mlflow import launcher
from services.supervisor import Supervisor
from services.topology import services_for
from tests.conftest import deidentified_project

pytestmark = pytest.mark.integration

ROWS = 6000
# A heavily regularised model: still above the gate's thresholds, but ranks worse.
WEAK = TrainConfig(C=0.0003)


@pytest.fixture(scope="module")
def project(stack: Settings, operator: hvac.Client) -> str:
    return deidentified_project(stack, operator)


def _audit(stack: Settings, action: str) -> list[dict[str, object]]:
    lines = (stack.data_dir / "audit" / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["action"] == action]


def test_training_without_deidentification_evidence_is_refused(
    stack: Settings, project: str
) -> None:
    steward = ModelSteward(stack, project)
    before = len(steward.registry.versions())
    with pytest.raises(GateRefused, match="no de-identification evidence"):
        steward.train("patients")
    assert len(steward.registry.versions()) == before


def test_a_version_carries_its_lineage_and_no_identifier_reaches_the_model(
    stack: Settings, project: str, tmp_path: Path
) -> None:
    steward = ModelSteward(stack, project)
    trained = steward.train("clean")
    version = steward.registry.version(trained.registered.version)
    dataset = steward.repo.version("clean")
    assert {tag for tag in LINEAGE if version.tags.get(tag)} == set(LINEAGE)
    assert version.tags["dataset.content_hash"] == dataset["content_hash"]
    assert version.tags["dataset.revision"] == dataset["revision"]
    assert version.tags["dataset.evidence_id"] == dataset["evidence_id"]
    assert version.tags["trained_by"] == keys.identity(project)
    run = steward.registry.run_record(str(version.run_id))
    assert run["tags"]["dataset.content_hash"] == dataset["content_hash"]
    assert run["params"]["seed"] == "0"
    assert run["metrics"]["auroc"] == pytest.approx(trained.evaluation.auroc)

    files = {p.name: p for p in steward.registry.download(version, tmp_path)}
    mlmodel = yaml.safe_load(files["MLmodel"].read_text())
    inputs = [c["name"] for c in json.loads(mlmodel["signature"]["inputs"])]
    assert inputs == FEATURES
    example = json.loads(files["input_example.json"].read_text())
    assert example["columns"] == FEATURES
    assert "model.skops" in files and "model.pkl" not in files

    card = steward.card(version.version, tmp_path / "card")
    text = card.read_text()
    assert f"version {version.version}" in text and dataset["content_hash"] in text
    assert (tmp_path / "card" / "calibration.png").read_bytes()[:4] == b"\x89PNG"


def test_another_project_cannot_read_register_or_promote(
    stack: Settings, operator: hvac.Client, project: str
) -> None:
    other = f"m{uuid.uuid4().hex[:10]}"
    keys.create_project(operator, stack, other)
    launcher.provision_project(stack, operator, other)
    password = credentials.read(
        openbao.login(stack, keys.identity(other)), f"projects/{other}/mlflow"
    )["password"]
    auth = (launcher.project_user(other), password)
    base, ca = f"{launcher.url(stack)}/api/2.0/mlflow", str(stack.ca_bundle)
    name = launcher.model_name(project)

    def call(method: str, path: str, body: dict[str, str]) -> int:
        kwargs = {"json": body} if method == "POST" else {"params": body}
        response = requests.request(
            method, f"{base}/{path}", auth=auth, verify=ca, timeout=30, **kwargs
        )
        return response.status_code

    assert call("GET", "registered-models/get", {"name": name}) == 403
    assert call("POST", "model-versions/create", {"name": name, "source": "models:/x"}) == 403
    assert (
        call("POST", "registered-models/alias", {"name": name, "alias": "champion", "version": "1"})
        == 403
    )
    # Only the operator creates registered models: no name can be squatted, another
    # project's included.
    assert call("POST", "registered-models/create", {"name": f"{other}-x"}) == 403
    assert call("POST", "registered-models/create", {"name": name}) in (400, 403)


def test_the_gate_refuses_worse_and_phi_accepts_better_and_rollback_returns(
    stack: Settings, operator: hvac.Client
) -> None:
    project = deidentified_project(stack, operator)
    steward = ModelSteward(stack, project)
    approver = "operator:test-approver"

    weak = steward.train("clean", config=WEAK).registered.version
    first = steward.promote(weak, approver)
    assert first.decision.approved, first.decision.failed
    assert steward.registry.champion().version == weak  # type: ignore[union-attr]

    strong = steward.train("clean").registered.version
    better = steward.promote(strong, approver)
    assert better.decision.approved, better.decision.failed
    assert better.champion == weak
    assert steward.registry.champion().version == strong  # type: ignore[union-attr]

    worse = steward.train("clean", config=TrainConfig(C=0.0002)).registered.version
    refused = steward.promote(worse, approver)
    assert [c.name for c in refused.decision.failed] == ["beats_champion"]
    assert steward.registry.champion().version == strong  # type: ignore[union-attr]

    leaky = steward.train("clean").registered.version
    with steward.registry.session() as client:
        run_id = str(client.get_model_version(steward.registry.name, leaky).run_id)
        client.log_text(run_id, "follow up with patient SSN 078-05-1120", "notes.txt")
    flagged = steward.promote(leaky, approver)
    assert "phi_scan" in [c.name for c in flagged.decision.failed]
    assert "notes.txt" in dict((c.name, c.reason) for c in flagged.decision.checks)["phi_scan"]

    decisions = _audit(stack, "model.promote")
    mine = [e for e in decisions if project in str(e["resource"])]
    assert [e["outcome"] for e in mine] == ["approved", "approved", "refused", "refused"]
    assert all(e["actor"] == approver for e in mine)
    assert "beats_champion" in json.dumps(mine[2])
    assert "078-05-1120" not in json.dumps(decisions)

    assert steward.rollback(approver) == (strong, weak)
    assert steward.registry.champion().version == weak  # type: ignore[union-attr]
    rollback = [e for e in _audit(stack, "model.rollback") if project in str(e["resource"])]
    assert rollback[-1]["actor"] == approver
    with pytest.raises(GateRefused, match="no earlier champion"):
        steward.rollback(approver)


def test_mlflow_dying_before_registration_leaves_no_version(
    stack: Settings, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    supervisor = Supervisor(stack)
    mlflow_service = next(s for s in services_for("sandbox") if s.name == "mlflow")
    steward = ModelSteward(stack, project)
    before = [v.version for v in steward.registry.versions()]

    def kill_mlflow(step: str) -> None:
        if step == "registering the version":
            pid = supervisor.pid(mlflow_service)
            assert pid is not None
            os.killpg(pid, signal.SIGKILL)
            while supervisor.pid(mlflow_service) is not None:
                time.sleep(0.05)

    try:
        with pytest.raises(Unavailable):
            steward.train("clean", progress=kill_mlflow)
    finally:
        supervisor.up("sandbox")
    assert [v.version for v in steward.registry.versions()] == before
    assert steward.train("clean").registered.version not in before

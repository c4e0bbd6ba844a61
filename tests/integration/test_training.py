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
import skops.io
import yaml
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.preprocessing import FunctionTransformer

import contract as contracts
from model import twin
from model.train import TrainConfig, fit, split
from pipeline.training import ModelSteward
from safeguards import credentials, keys, openbao
from safeguards.audit import audit_path
from safeguards.errors import ConfigError, GateRefused, IntegrityError, Unavailable
from safeguards.registry import LINEAGE, TWIN, TWIN_TAG, model_name, project_user
from safeguards.registry import url as registry_url
from safeguards.settings import Settings
from services.mlflow import launcher
from services.supervisor import Supervisor
from tests.conftest import deidentified_project

pytestmark = pytest.mark.integration

ROWS = 6000
# A heavily regularised model: still above the gate's thresholds, but ranks worse.
WEAK = TrainConfig(C=0.0003)
DIABETES = contracts.parse(contracts.example("diabetes"))
APPROVER = "operator:test-approver"


@pytest.fixture(scope="module")
def project(stack: Settings, operator: hvac.Client) -> str:
    return deidentified_project(stack, operator)


def _audit(stack: Settings, action: str) -> list[dict[str, object]]:
    lines = audit_path(stack).read_text().splitlines()
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
    assert inputs == DIABETES.features
    example = json.loads(files["input_example.json"].read_text())
    assert example["columns"] == DIABETES.features
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
    auth = (project_user(other), password)
    base, ca = f"{registry_url(stack)}/api/2.0/mlflow", str(stack.ca_bundle)
    name = model_name(project)

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
    steward = ModelSteward(stack, project)
    before = [v.version for v in steward.registry.versions()]

    def kill_mlflow(step: str) -> None:
        if step == "registering the version":
            pid = supervisor.pid("mlflow")
            assert pid is not None
            os.killpg(pid, signal.SIGKILL)
            while supervisor.pid("mlflow") is not None:
                time.sleep(0.05)

    try:
        with pytest.raises(Unavailable):
            steward.train("clean", progress=kill_mlflow)
    finally:
        supervisor.up("sandbox")
    assert [v.version for v in steward.registry.versions()] == before
    assert steward.train("clean").registered.version not in before


def test_both_algorithms_train_and_the_champions_own_retrains(
    stack: Settings, project: str
) -> None:
    steward = ModelSteward(stack, project)
    boosted = steward.train("clean", config=TrainConfig(algorithm="gradient-boosting"))
    version = steward.registry.version(boosted.registered.version)
    assert version.tags["model.algorithm"] == "gradient-boosting"
    params = steward.registry.run_record(str(version.run_id))["params"]
    assert TrainConfig.from_params(params).algorithm == "gradient-boosting"
    assert boosted.evaluation.auroc > 0.7


def test_a_champion_is_never_judged_on_the_rows_it_was_trained_on(
    stack: Settings, operator: hvac.Client
) -> None:
    """The candidate holds out other rows of the same dataset (another seed): most of them
    trained the champion, and only the others are compared."""
    project = deidentified_project(stack, operator, seed=21)
    steward = ModelSteward(stack, project)
    champion = steward.train("clean").registered.version
    assert steward.promote(champion, APPROVER).decision.approved
    candidate = steward.train("clean", config=TrainConfig(seed=1)).registered.version
    check = {c.name: c for c in steward.promote(candidate, APPROVER).decision.checks}

    frame, _ = steward.training_data("clean")
    trained_on = split(frame, DIABETES, TrainConfig())[0]
    held_out = split(frame, DIABETES, TrainConfig(seed=1))[1]
    neither = held_out[~held_out.index.isin(trained_on.index)]
    truth = neither["diabetes_5y"].astype(int)
    features = contracts.model_frame(neither, DIABETES)
    from sklearn.metrics import roc_auc_score

    aurocs = [
        roc_auc_score(truth, steward.load(v).probabilities(features)) for v in (candidate, champion)
    ]
    reason = check["beats_champion"].reason
    assert f"AUROC {aurocs[0]:.3f} against the champion's {aurocs[1]:.3f}" in reason
    assert f"same {len(neither):,} rows neither was trained on" in reason
    assert f"{len(held_out) - len(neither):,} rows the champion was trained on left out" in reason


def _bring_your_own(steward: ModelSteward, tmp_path: Path) -> tuple[Path, Path]:
    """A team's own pipeline, trained outside the platform, saved with skops and as ONNX."""
    frame, _ = steward.training_data("clean")
    rows = split(frame, DIABETES, TrainConfig(seed=7))[0]
    model = fit(rows, DIABETES, TrainConfig(seed=7, C=0.5))
    skops_path = tmp_path / "team.skops"
    skops.io.dump(model, skops_path)
    types = [
        (name, StringTensorType([None, 1]) if name in ("sex", "physical_activity", "smoking")
         else FloatTensorType([None, 1]))
        for name in DIABETES.features
    ]  # fmt: skip
    onnx_model = to_onnx(
        model, initial_types=types, options={id(model.steps[-1][1]): {"zipmap": False}}
    )
    onnx_path = tmp_path / "team.onnx"
    onnx_path.write_bytes(onnx_model.SerializeToString())
    return skops_path, onnx_path


def test_a_teams_own_model_is_imported_with_lineage_and_gated(
    stack: Settings, operator: hvac.Client, tmp_path: Path
) -> None:
    project = deidentified_project(stack, operator, seed=23)
    steward = ModelSteward(stack, project)
    skops_path, onnx_path = _bring_your_own(steward, tmp_path)
    dataset = steward.repo.version("clean")
    imported = {}
    for path in (skops_path, onnx_path):
        trained = steward.import_model(path, "clean", actor=APPROVER)
        version = steward.registry.version(trained.registered.version)
        imported[path.suffix] = version.version
        assert version.tags["model.origin"] == "imported"
        assert version.tags["imported_by"] == APPROVER
        assert version.tags["model.format"] == path.suffix.removeprefix(".")
        assert version.tags["dataset.revision"] == dataset["revision"]
        assert trained.evaluation.rows == dataset["rows"]
    skops_eval = steward.evaluate(imported[".skops"])
    onnx_eval = steward.evaluate(imported[".onnx"])
    assert onnx_eval.auroc == pytest.approx(skops_eval.auroc, abs=1e-4)
    promoted = steward.promote(imported[".skops"], APPROVER)
    assert promoted.decision.approved, promoted.decision.failed
    imports = [e for e in _audit(stack, "model.import") if project in str(e["resource"])]
    assert [e["actor"] for e in imports] == [APPROVER, APPROVER]
    assert imports[0]["details"]["sha256"].startswith("sha256:")


def test_a_model_that_does_not_fit_the_contract_or_runs_code_is_refused(
    stack: Settings, project: str, tmp_path: Path
) -> None:
    steward = ModelSteward(stack, project)
    before = len(steward.registry.versions())
    frame, _ = steward.training_data("clean")
    columns = [c for c in DIABETES.model_dump()["columns"] if c["name"] != "smoking"]
    narrow = contracts.Contract.model_validate({**DIABETES.model_dump(), "columns": columns})
    model = fit(frame, narrow, TrainConfig())
    skops.io.dump(model, tmp_path / "narrow.skops")
    with pytest.raises(ConfigError, match="11 input columns are not the contract's 12 features"):
        steward.import_model(tmp_path / "narrow.skops", "clean")
    skops.io.dump(FunctionTransformer(os.system), tmp_path / "shell.skops")
    with pytest.raises(IntegrityError, match="outside the trusted set") as caught:
        steward.import_model(tmp_path / "shell.skops", "clean")
    assert "posix.system" in str(caught.value)
    (tmp_path / "model.pkl").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match=r"\.skops or an \.onnx"):
        steward.import_model(tmp_path / "model.pkl", "clean")
    assert len(steward.registry.versions()) == before


def test_an_operator_may_override_failed_metric_checks_with_a_reason_that_is_audited(
    stack: Settings, operator: hvac.Client
) -> None:
    project = deidentified_project(stack, operator, seed=25)
    steward = ModelSteward(stack, project)
    strong = steward.train("clean").registered.version
    assert steward.promote(strong, APPROVER).decision.approved
    weak = steward.train("clean", config=WEAK).registered.version
    reason = "clinical lead asked for the simpler model pending review"
    with pytest.raises(GateRefused, match="only an operator"):
        steward.promote(weak, "pipeline:retrain", override=reason)
    promotion = steward.promote(weak, APPROVER, override=reason)
    assert promotion.decision.approved and promotion.decision.overridden
    assert steward.registry.champion().version == weak  # type: ignore[union-attr]
    resource = f"model/{project}/{model_name(project)}/{weak}"
    [entry] = [e for e in _audit(stack, "model.promote") if e["resource"] == resource]
    assert entry["outcome"] == "approved" and entry["actor"] == APPROVER
    assert entry["details"]["override"] == reason
    assert entry["details"]["overridden"] == ["beats_champion"]


def test_an_invalid_version_is_a_clear_refusal_not_an_outage(stack: Settings, project: str) -> None:
    registry = ModelSteward(stack, project).registry
    # MLflow answers a version that is no number with INVALID_PARAMETER_VALUE (400).
    with pytest.raises(ConfigError, match=r"reading version .*: a parameter is invalid"):
        registry.version("not-a-number")


def test_a_version_carries_an_onnx_twin_that_the_gate_holds_to_its_model(
    stack: Settings, operator: hvac.Client, tmp_path: Path
) -> None:
    project = deidentified_project(stack, operator)
    steward = ModelSteward(stack, project)
    version = steward.train("clean").registered.version
    registered = steward.registry.version(version)
    assert registered.tags[TWIN_TAG] == "onnx"
    assert steward.registry.load_served(version, DIABETES.features).format == "onnx"
    approved = steward.promote(version, APPROVER)
    assert approved.decision.approved, approved.decision.failed
    check = {c.name: c for c in approved.decision.checks}["onnx_twin"]
    assert check.passed and "held-out rows" in check.reason

    # Someone with the project's identity swaps in the twin of another model after
    # registration: the gate compares the twin with the model itself, and refuses.
    other = steward.train("clean", config=WEAK).registered.version
    weak_twin = steward.registry.twin(steward.registry.version(other))
    candidate = steward.train("clean", config=TrainConfig(C=0.5)).registered.version
    swapped = tmp_path / TWIN
    swapped.write_bytes(weak_twin)
    with steward.registry.session() as client:
        run_id = str(client.get_model_version(steward.registry.name, candidate).run_id)
        client.log_artifact(run_id, str(swapped))
    refused = steward.promote(candidate, APPROVER)
    failed = {c.name: c.reason for c in refused.decision.failed}
    assert "onnx_twin" in failed and "largest difference" in failed["onnx_twin"]
    # A twin that is no ONNX graph at all is refused too, not an error of the gate's own.
    swapped.write_bytes(b"not an ONNX graph")
    with steward.registry.session() as client:
        client.log_artifact(run_id, str(swapped))
    broken = {c.name: c.reason for c in steward.promote(candidate, APPROVER).decision.failed}
    assert broken["onnx_twin"].startswith("the logged twin is unusable: the ONNX model does")
    assert f"{TWIN}: unreadable, so not scanned" in broken["phi_scan"]
    assert steward.registry.champion().version == version  # type: ignore[union-attr]


def test_a_model_without_a_twin_is_served_as_it_is_and_says_why(
    stack: Settings, project: str
) -> None:
    steward = ModelSteward(stack, project)
    config = TrainConfig(algorithm="gradient-boosting")
    version = steward.train("clean", config=config).registered.version
    tags = steward.registry.version(version).tags
    assert tags[TWIN_TAG] == "none" and tags[twin.REASON_TAG].startswith("skl2onnx")
    assert steward.registry.load_served(version, DIABETES.features).format == "skops"

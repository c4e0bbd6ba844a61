"""The promotion gate's checks, its comparison on rows neither model was trained on, the
operator's override, and its PHI scan, on crafted inputs."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

import contract as contracts
from model import gate
from model.train import Evaluation
from pipeline.training import check_override, row_keys
from safeguards.errors import ConfigError, GateRefused

DIABETES = contracts.parse(contracts.example("diabetes"))


def _evaluation(auroc: float, brier: float = 0.1, gap: float = 0.02) -> Evaluation:
    return Evaluation(
        auroc=auroc,
        auprc=0.5,
        brier=brier,
        rows=1000,
        calibration={"predicted": [], "observed": []},
        subgroups={
            "sex_F": {"auroc": auroc, "rows": 500, "prevalence": 0.2},
            "sex_M": {"auroc": auroc - gap, "rows": 500, "prevalence": 0.2},
        },
    )


def _comparison(
    candidate: float, champion: float, rows: int = 1000, positives: int = 200
) -> gate.Comparison:
    return gate.Comparison(candidate, champion, rows, positives, excluded=0)


def _failed(decision: gate.Decision) -> list[str]:
    return [c.name for c in decision.failed]


def test_each_threshold_refuses_on_its_own() -> None:
    policy = gate.Policy()
    assert gate.decide(policy, _evaluation(0.8), None, [], []).approved
    assert _failed(gate.decide(policy, _evaluation(0.6), None, [], [])) == ["auroc"]
    assert _failed(gate.decide(policy, _evaluation(0.8, brier=0.3), None, [], [])) == ["brier"]
    assert _failed(gate.decide(policy, _evaluation(0.8, gap=0.2), None, [], [])) == ["subgroup_gap"]


def test_a_subgroup_too_small_to_measure_does_not_decide_the_gap() -> None:
    evaluation = _evaluation(0.8)
    evaluation.subgroups["age_18-39"] = {"auroc": 0.5, "rows": 300, "prevalence": 0.03}
    assert evaluation.compared_subgroups == ["sex_F", "sex_M"]
    decision = gate.decide(gate.Policy(), evaluation, None, [], [])
    assert decision.approved
    assert "between 2 of 3 subgroups" in decision.record()["subgroup_gap"]["reason"]


def test_a_candidate_must_beat_the_champion_on_the_same_rows() -> None:
    policy = gate.Policy(min_auroc_gain=0.01)
    refused = gate.decide(policy, _evaluation(0.9), _comparison(0.805, 0.8), [], [])
    assert _failed(refused) == ["beats_champion"]
    assert "0.805" in refused.failed[0].reason and "0.800" in refused.failed[0].reason
    assert gate.decide(policy, _evaluation(0.82), _comparison(0.82, 0.8), [], []).approved


def test_too_few_rows_neither_model_saw_cannot_show_a_gain() -> None:
    comparison = gate.Comparison(0.9, 0.7, rows=30, positives=5, excluded=970)
    decision = gate.decide(gate.Policy(), _evaluation(0.9), comparison, [], [])
    assert _failed(decision) == ["beats_champion"]
    reason = decision.failed[0].reason
    assert "only 30 rows neither model was trained on" in reason
    assert "970 rows the champion was trained on left out" in reason


def test_the_rows_a_champion_was_trained_on_are_known_by_their_content() -> None:
    frame = pd.DataFrame({"age": [50, 60, 70], "sex": ["F", "M", "F"]})
    again = frame.iloc[[2, 0]].reset_index(drop=True)
    assert row_keys(frame).isin(row_keys(again)).tolist() == [True, False, True]


def test_an_override_promotes_past_metric_checks_only() -> None:
    weak = _evaluation(0.6)
    overridden = gate.decide(gate.Policy(), weak, _comparison(0.6, 0.8), [], [], "urgent fix")
    assert overridden.approved and overridden.overridden
    assert _failed(overridden) == ["auroc", "beats_champion"]
    leaking = gate.decide(gate.Policy(), weak, None, [], ["card.md: ssn"], "urgent fix")
    assert not leaking.approved and not leaking.overridden
    unlinked = gate.decide(gate.Policy(), None, None, ["dataset.revision"], [], "urgent fix")
    assert not unlinked.approved


def test_an_override_needs_an_operator_and_a_reason_without_identifiers() -> None:
    check_override(None, "pipeline:retrain")
    check_override("the new cohort needs the new features", "operator:alice")
    with pytest.raises(GateRefused, match="only an operator"):
        check_override("the new cohort needs the new features", "pipeline:retrain")
    with pytest.raises(ConfigError, match="at least 10 characters"):
        check_override("because", "operator:alice")
    with pytest.raises(ConfigError, match="identifier") as caught:
        check_override("patient 078-05-1120 complained", "operator:alice")
    assert "078-05-1120" not in str(caught.value)


def test_incomplete_lineage_or_phi_refuses_and_says_where() -> None:
    decision = gate.decide(gate.Policy(), None, None, ["dataset.evidence_id"], ["run tag x: ssn"])
    assert _failed(decision) == ["lineage", "phi_scan"]
    assert "dataset.evidence_id" in decision.record()["lineage"]["reason"]


def test_params_and_tags_are_scanned_by_key_and_value() -> None:
    features = {"seed": "0", "features": ",".join(DIABETES.features)}
    assert gate.scan_record("param", features, DIABETES) == []
    assert gate.scan_record("run tag", {"contact": "jane@example.org"}, DIABETES) == [
        "run tag contact: email"
    ]
    assert gate.scan_record("param", {"ssn": "x"}, DIABETES) == ["param ssn: identifier field"]
    assert gate.scan_record("param", {"zip3": "x"}, DIABETES) == ["param zip3: identifier field"]


def test_a_signature_with_a_column_beyond_the_contracts_features_is_refused() -> None:
    columns = [{"name": c, "type": "double"} for c in [*DIABETES.features, "zip3"]]
    findings = gate.scan_signature({"signature": {"inputs": json.dumps(columns)}}, DIABETES)
    assert findings == ["signature column zip3: not a feature of the contract"]


def test_files_and_skops_members_are_scanned_but_mlflow_timestamps_are_not(
    tmp_path: Path,
) -> None:
    (tmp_path / "MLmodel").write_text("utc_time_created: '2026-11-28 21:00:00'\n")
    (tmp_path / "card.md").write_text("| feature | `age` |\n")
    with zipfile.ZipFile(tmp_path / "model.skops", "w") as archive:
        archive.writestr("schema.json", json.dumps({"feature_names": ["age", "pseudonym"]}))
    (tmp_path / "notes.txt").write_text("called 555-123-4567")
    findings = gate.scan_files(tmp_path, sorted(tmp_path.iterdir()), DIABETES)
    assert findings == ["model.skops:schema.json: column pseudonym", "notes.txt: phone"]


def test_the_strings_of_an_onnx_graph_are_scanned(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"age": rng.random(50).astype("float32")})
    model = to_onnx(LogisticRegression().fit(x, rng.random(50) > 0.5), x[:1])
    model.doc_string = "trained for jane@example.org"
    model.graph.input[0].name = "zip3"
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    findings = gate.scan_files(tmp_path, [tmp_path / "model.onnx"], DIABETES)
    assert findings == ["model.onnx: email", "model.onnx: column zip3"]


def test_a_model_file_that_cannot_be_read_cannot_be_cleared(tmp_path: Path) -> None:
    files = []
    for name in ("model.skops", "twin.onnx"):
        files.append(tmp_path / name)
        files[-1].write_bytes(b"neither a zip archive nor a protobuf message")
    findings = gate.scan_files(tmp_path, files, DIABETES)
    assert findings == [
        "model.skops: unreadable, so not scanned",
        "twin.onnx: unreadable, so not scanned",
    ]

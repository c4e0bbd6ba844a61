"""The promotion gate's checks and its PHI scan, on crafted inputs."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from model import gate
from model.train import FEATURES, Evaluation


def _evaluation(auroc: float, brier: float = 0.1, gap: float = 0.02) -> Evaluation:
    return Evaluation(
        auroc=auroc,
        auprc=0.5,
        brier=brier,
        rows=1000,
        calibration={"predicted": [], "observed": []},
        subgroups={"sex_F": {"auroc": auroc}, "sex_M": {"auroc": auroc - gap}},
    )


def _failed(decision: gate.Decision) -> list[str]:
    return [c.name for c in decision.failed]


def test_each_threshold_refuses_on_its_own() -> None:
    policy = gate.Policy()
    assert gate.decide(policy, _evaluation(0.8), None, [], []).approved
    assert _failed(gate.decide(policy, _evaluation(0.6), None, [], [])) == ["auroc"]
    assert _failed(gate.decide(policy, _evaluation(0.8, brier=0.3), None, [], [])) == ["brier"]
    assert _failed(gate.decide(policy, _evaluation(0.8, gap=0.2), None, [], [])) == ["subgroup_gap"]


def test_a_candidate_must_beat_the_champion_on_the_same_rows() -> None:
    policy = gate.Policy(min_auroc_gain=0.01)
    refused = gate.decide(policy, _evaluation(0.805), _evaluation(0.8), [], [])
    assert _failed(refused) == ["beats_champion"]
    assert "0.805" in refused.failed[0].reason and "0.800" in refused.failed[0].reason
    assert gate.decide(policy, _evaluation(0.82), _evaluation(0.8), [], []).approved


def test_incomplete_lineage_or_phi_refuses_and_says_where() -> None:
    decision = gate.decide(gate.Policy(), None, None, ["dataset.evidence_id"], ["run tag x: ssn"])
    assert _failed(decision) == ["lineage", "phi_scan"]
    assert "dataset.evidence_id" in decision.record()["lineage"]["reason"]


def test_params_and_tags_are_scanned_by_key_and_value() -> None:
    assert gate.scan_record("param", {"seed": "0", "features": ",".join(FEATURES)}) == []
    assert gate.scan_record("run tag", {"contact": "jane@example.org"}) == [
        "run tag contact: email"
    ]
    assert gate.scan_record("param", {"ssn": "x"}) == ["param ssn: identifier field"]


def test_a_signature_with_an_identifier_column_is_refused() -> None:
    columns = [{"name": c, "type": "double"} for c in [*FEATURES, "zip3"]]
    findings = gate.scan_signature({"signature": {"inputs": json.dumps(columns)}})
    assert findings == ["signature column zip3: not a clinical feature"]


def test_files_and_skops_members_are_scanned_but_mlflow_timestamps_are_not(
    tmp_path: Path,
) -> None:
    (tmp_path / "MLmodel").write_text("utc_time_created: '2026-11-28 21:00:00'\n")
    (tmp_path / "card.md").write_text("| feature | `age` |\n")
    with zipfile.ZipFile(tmp_path / "model.skops", "w") as archive:
        archive.writestr("schema.json", json.dumps({"feature_names": ["age", "pseudonym"]}))
    (tmp_path / "notes.txt").write_text("called 555-123-4567")
    findings = gate.scan_files(tmp_path, sorted(tmp_path.iterdir()))
    assert findings == ["model.skops:schema.json: column pseudonym", "notes.txt: phone"]

"""The retrain pipeline against real OpenBao, MLflow and DVC: it trains on the newest
de-identified version, gates and promotes; it does nothing when there is nothing new; and
a retrain killed with SIGKILL at any step, then run again, ends with one consistent
champion, no stray version and an audit chain that verifies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import hvac
import pytest

from pipeline.retrain import retrain
from pipeline.training import ModelSteward
from safeguards import openbao
from safeguards.audit import AuditLog, audit_path
from safeguards.settings import Settings
from sandbox.steps import DataSteward
from tests.conftest import deidentified_project

pytestmark = pytest.mark.integration

APPROVER = "operator:test-retrain"


def _shifted_week(settings: Settings, project: str, name: str, seed: int) -> str:
    """A newer de-identified dataset version, from an older population; its revision."""
    steward = DataSteward(settings, project)
    steward.synth(f"patients-{name}", rows=6000, cohort="older", seed=seed)
    steward.ingest(name, steward.repo.read(f"patients-{name}"))
    return str(steward.deidentify(name, source=name)["revision"])


@pytest.fixture
def champion_project(stack: Settings, operator: hvac.Client) -> str:
    """A project whose champion was trained on its first de-identified version."""
    # A champion of fewer rows than the new week: the retrain beats it on the new population.
    project = deidentified_project(stack, operator, rows=2000, seed=11)
    steward = ModelSteward(stack, project)
    version = steward.train("clean").registered.version
    assert steward.promote(version, APPROVER).decision.approved
    return project


def _audit(settings: Settings) -> list[dict[str, object]]:
    path = audit_path(settings)
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_retrain_promotes_a_model_of_the_newest_data_then_finds_nothing_new(
    stack: Settings, champion_project: str
) -> None:
    project = champion_project
    revision = _shifted_week(stack, project, "week-2", seed=21)
    first = retrain(stack, project, "manual", APPROVER)
    assert (first.outcome, first.dataset, first.dataset_revision) == (
        "promoted",
        "week-2",
        revision,
    ), first.reason
    registry = ModelSteward(stack, project).registry
    champion = registry.champion()
    assert champion is not None and champion.version == first.version
    assert champion.tags["dataset.revision"] == revision
    assert champion.tags["triggered_by"] == APPROVER

    again = retrain(stack, project, "schedule", "schedule")
    assert again.outcome == "skipped" and "newest dataset version" in again.reason
    assert len(registry.versions()) == 2
    finished = [e for e in _audit(stack) if e["action"] == "retrain.finish"][-2:]
    assert [e["outcome"] for e in finished] == ["promoted", "skipped"]
    assert finished[0]["details"]["dataset_revision"] == revision  # type: ignore[index]
    assert finished[1]["details"]["trigger"] == "schedule"  # type: ignore[index]


def test_a_second_retrain_at_the_same_time_skips(stack: Settings, champion_project: str) -> None:
    from pipeline.retrain import _exclusive

    with _exclusive(stack, champion_project) as mine:
        assert mine
        result = retrain(stack, champion_project, "manual", APPROVER)
    assert result.outcome == "skipped" and "another retrain" in result.reason


# Where the retrain is killed: after its start is audited (training), after the
# candidate is registered (before the gate), after the gate's approval is audited (while
# the alias moves).
@pytest.mark.slow
@pytest.mark.parametrize("kill_after", ["retrain.start", "model.register", "model.promote"])
def test_a_retrain_killed_at_any_step_resumes_to_one_consistent_champion(
    stack: Settings, champion_project: str, kill_after: str, tmp_path: Path
) -> None:
    project = champion_project
    revision = _shifted_week(stack, project, "week-2", seed=22)
    registry = ModelSteward(stack, project).registry
    before = registry.champion()
    assert before is not None
    log_file = audit_path(stack)
    lines_before = len(log_file.read_text().splitlines())
    env = {
        **os.environ,
        "HIPAA_MLOPS_DATA_DIR": str(stack.data_dir),
        "HIPAA_MLOPS_PORT_BASE": str(stack.port_base),
        "HIPAA_MLOPS_REGIONS": stack.regions,
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "retrain", "-p", project],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            new = log_file.read_text().splitlines()[lines_before:]
            if any(json.loads(line)["action"] == kill_after for line in new):
                break
            assert worker.poll() is None, "the retrain ended before the kill point"
            time.sleep(0.005)
        else:
            pytest.fail(f"no {kill_after} entry within 120 s")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)

    result = retrain(stack, project, "manual", APPROVER)
    assert result.outcome in {"promoted", "skipped"}, result
    trained_on_week_2 = [
        v for v in registry.versions() if v.tags.get("dataset.revision") == revision
    ]
    # Killed after registering, the rerun gated that version instead of training another.
    assert len(trained_on_week_2) == 1
    champion = registry.champion()
    assert champion is not None and champion.version == trained_on_week_2[0].version
    assert registry.history()[-1] == champion.version
    assert registry.history().count(champion.version) == 1
    verified = AuditLog.of(stack, openbao.login(stack, "auditor")).verify()
    assert verified.entries == len(log_file.read_text().splitlines())

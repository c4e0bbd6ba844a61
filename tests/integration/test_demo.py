"""End to end: `hipaa-mlops demo` on a fresh data directory runs the whole loop (data,
train, deploy, monitor, drift, retrain, promote) and leaves the evidence an auditor would
ask for: a verifying audit chain with each step, the new champion served, reports."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from pipeline.training import ModelSteward
from safeguards import openbao
from safeguards.audit import AuditLog, audit_path
from services.supervisor import Supervisor
from tests.conftest import endpoint_url, settings_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOOP = [
    "model.promote",
    "monitoring.run",
    "monitoring.outcomes",
    "monitoring.run",
    "monitoring.drift",
    "retrain.start",
    "model.register",
    "model.promote",
    "retrain.finish",
]


def test_the_demo_closes_the_loop_from_data_to_a_retrained_champion(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "demo")
    env = {
        **os.environ,
        "HIPAA_MLOPS_DATA_DIR": str(settings.data_dir),
        "HIPAA_MLOPS_PORT_BASE": str(settings.port_base),
        "HIPAA_MLOPS_REGIONS": settings.regions,
        "KEEP": "1",
        "COLUMNS": "200",
    }
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "demo"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert "the endpoint swapped to version 2 by itself" in run.stdout

        log_file = audit_path(settings)
        entries = [json.loads(line) for line in log_file.read_text().splitlines()]
        actions = [e["action"] for e in entries]
        loop = iter(actions)
        assert all(step in loop for step in LOOP), actions  # in this order
        drift = next(e for e in entries if e["action"] == "monitoring.drift")
        assert "age" in drift["details"]["drifted_features"]
        finish = next(e for e in entries if e["action"] == "retrain.finish")
        assert finish["outcome"] == "promoted" and finish["details"]["trigger"] == "drift"
        verified = AuditLog.of(settings, openbao.login(settings, "auditor")).verify()
        assert verified.entries == len(entries)

        champion = ModelSteward(settings, "diabetes").registry.champion()
        assert champion is not None and champion.version == "2"
        assert champion.tags["dataset.name"] == "week-2"
        url = endpoint_url(settings, openbao.login(settings, "operator"), "diabetes")
        ready = requests.get(f"{url}/readyz", verify=str(settings.ca_bundle), timeout=10)
        assert ready.json()["model_version"] == "2"

        reports = sorted((settings.data_dir / "reports").glob("*-v1-*.html"))
        assert len(reports) == 2
        for page in reports:
            assert stat.S_IMODE(page.stat().st_mode) == 0o600
        assert "Verdict: the population has drifted" in reports[-1].read_text()

        # Whatever the lifecycle left on disk, datasets (git, DVC) included, is the user's
        # alone: no file or directory any group or other user can open.
        shared = [
            str(p.relative_to(settings.data_dir))
            for p in [settings.data_dir, *settings.data_dir.rglob("*")]
            if not p.is_symlink() and stat.S_IMODE(p.lstat().st_mode) & 0o077
        ]
        assert not shared, shared[:10]
    finally:
        Supervisor(settings).down()

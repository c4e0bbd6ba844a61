"""The demo picks a project of its own on every run, from the audit log."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.demo import _next_project


def test_each_demo_run_gets_the_next_free_project(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    assert _next_project(audit) == "diabetes"
    entries = [
        {"action": "projects.create", "resource": "project/diabetes"},
        {"action": "model.promote", "resource": "model/diabetes-3/x/1"},
        {"action": "projects.create", "resource": "project/diabetes-2"},
    ]
    audit.write_text("\n".join(json.dumps(e) for e in entries) + "\nnot json\n")
    assert _next_project(audit) == "diabetes-3"

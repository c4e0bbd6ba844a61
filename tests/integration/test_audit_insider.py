"""A project's own AppRole does everything its policy allows to rewrite the audit log:
verify, as the auditor, must fail and name what it found.

The attacker knows the format (it is documented), holds the log file (a local user, or a
workload on the same host), and signs and anchors as itself.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import hvac
import pytest

import contract as contracts
from pipeline import projects
from safeguards import keys, openbao
from safeguards.audit import GENESIS, AuditLog, _anchor_name, _digest, _line
from safeguards.errors import AccessDenied, AuditChainError
from safeguards.settings import Settings

DIABETES = contracts.example("diabetes")

pytestmark = pytest.mark.integration


@pytest.fixture
def scene(
    stack: Settings, operator: hvac.Client, tmp_path: Path
) -> tuple[AuditLog, AuditLog, AuditLog]:
    """The operator refuses a promotion of alpha's model, alpha logs some work, the
    operator logs more: (the operator's log, alpha's log, the auditor's view)."""
    project = f"alpha{uuid.uuid4().hex[:6]}"
    projects.create_project(operator, stack, project, DIABETES, reload_lake=lambda: None)
    anchor = f"audit/test-{uuid.uuid4().hex}"
    path = tmp_path / "audit.jsonl"
    ops = AuditLog(path, operator, anchor=anchor)
    mine = AuditLog(path, openbao.login(stack, keys.identity(project)), anchor=anchor)
    ops.append("operator:alice", "data.approve", f"dataset/{project}/clean")
    ops.append("operator:alice", "model.promote", f"model/{project}/3", outcome="refused")
    mine.append("pipeline:train", "model.train", f"model/{project}/4")
    mine.append("pipeline:train", "model.register", f"model/{project}/4")
    ops.append("operator:alice", "keys.rotate", f"project/{project}")
    auditor = AuditLog(path, openbao.login(stack, "auditor"), anchor=anchor)
    assert auditor.verify().entries == 5
    return ops, mine, auditor


def _entries(log: AuditLog) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.path.read_bytes().splitlines()]


def _resign(log: AuditLog, entries: list[dict[str, Any]], start: int) -> None:
    """Recompute the chain from `start` on and sign every entry as the attacker; then
    write the file and anchor its new head, as the attacker's policy allows."""
    prev = _digest(entries[start - 1]) if start else GENESIS
    for entry in entries[start:]:
        entry["prev"] = prev
        entry["signer"] = log.signer
        entry["mac"] = log._macs(log.signer, [entry])[0]
        prev = _digest(entry)
    log.path.write_bytes(b"".join(_line(e) + b"\n" for e in entries))
    head = entries[-1]
    log.bao.secrets.kv.v2.create_or_update_secret(
        f"{log.anchor}/{_anchor_name(head['seq'], head['mac'])}",
        {"seq": head["seq"], "mac": head["mac"]},
        cas=0,
        mount_point="secret",
    )


@pytest.mark.parametrize(
    ("index", "field", "value"),
    [(1, "outcome", "ok"), (4, "actor", "pipeline:train")],
    ids=["refused-promotion-made-approved", "operator-entry-claimed-as-its-own"],
)
def test_rewriting_an_operator_entry_and_re_signing_the_rest_is_reported(
    scene: tuple[AuditLog, AuditLog, AuditLog], index: int, field: str, value: str
) -> None:
    _, mine, auditor = scene
    entries = _entries(mine)
    entries[index][field] = value
    _resign(mine, entries, index)
    with pytest.raises(AuditChainError, match=f"entry {index + 1}: differs from what was anchored"):
        auditor.verify()
    # Re-signed by alpha with its own key, the rewritten entry's MAC alone is genuine:
    # only the anchor written when the operator's entry was appended gives it away.
    assert mine._macs_valid([entries[index]]) == [True]


def test_rewriting_its_own_entries_and_re_anchoring_is_reported(
    scene: tuple[AuditLog, AuditLog, AuditLog],
) -> None:
    _, mine, auditor = scene
    entries = _entries(mine)[:4]  # drop the operator's last entry, then rewrite its own
    entries[3]["resource"] = entries[3]["resource"].replace("/4", "/5")
    _resign(mine, entries, 3)
    with pytest.raises(AuditChainError) as caught:
        auditor.verify()
    assert "entry 4: differs from what was anchored" in str(caught.value)
    assert "truncated: the log ends at entry 4, an anchor names entry 5" in str(caught.value)


def test_dropping_the_tail_is_reported(scene: tuple[AuditLog, AuditLog, AuditLog]) -> None:
    _, mine, auditor = scene
    mine.path.write_bytes(b"".join(_line(e) + b"\n" for e in _entries(mine)[:3]))
    with pytest.raises(AuditChainError, match="truncated: the log ends at entry 3"):
        auditor.verify()


def test_a_forged_anchor_is_reported(scene: tuple[AuditLog, AuditLog, AuditLog]) -> None:
    _, mine, auditor = scene
    mine.bao.secrets.kv.v2.create_or_update_secret(
        f"{mine.anchor}/{_anchor_name(2, 'forged')}",
        {"seq": 2, "mac": "forged"},
        cas=0,
        mount_point="secret",
    )
    with pytest.raises(AuditChainError, match="entry 2: differs from what was anchored"):
        auditor.verify()


def test_the_attacker_can_neither_sign_as_another_nor_move_an_anchor(
    scene: tuple[AuditLog, AuditLog, AuditLog],
) -> None:
    ops, mine, _ = scene
    entry = _entries(ops)[1]
    with pytest.raises(AccessDenied):
        mine._macs("operator", [entry])
    anchor = f"{mine.anchor}/{_anchor_name(entry['seq'], entry['mac'])}"
    for attempt in (
        lambda: mine.bao.secrets.kv.v2.create_or_update_secret(
            anchor, {"seq": 2, "mac": "x"}, mount_point="secret"
        ),
        lambda: mine.bao.secrets.kv.v2.delete_metadata_and_all_versions(anchor, "secret"),
    ):
        with pytest.raises(AccessDenied), openbao.openbao_errors("moving an anchor"):
            attempt()

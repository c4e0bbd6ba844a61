"""The audit chain catches every kind of tampering, against real OpenBao transit and KV."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import hvac
import pytest

from safeguards.audit import AuditLog, Event
from safeguards.errors import AuditChainError

pytestmark = pytest.mark.integration


@pytest.fixture
def log(operator: hvac.Client, tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path / "audit.jsonl", operator, anchor=f"audit/test-{uuid.uuid4().hex}")
    audit.append_many(
        [Event("tester", "step", f"resource/{i}", details={"i": i}) for i in range(5)]
    )
    audit.append("tester", "single", "resource/5")
    return audit


def _lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines(keepends=True)


def _write(log: AuditLog, lines: list[str]) -> None:
    log.path.write_text("".join(lines))


def test_clean_chain_verifies(log: AuditLog) -> None:
    result = log.verify()
    assert (result.entries, result.head_seq, result.anchors) == (6, 6, 2)
    assert result.signers == ("operator",)


def test_auditor_identity_verifies(log: AuditLog, stack: object) -> None:
    from safeguards import openbao

    auditor = openbao.login(stack, "auditor")  # type: ignore[arg-type]
    assert AuditLog(log.path, auditor, anchor=log.anchor).verify().entries == 6


def _modify(lines: list[str]) -> list[str]:
    entry = json.loads(lines[2])
    entry["outcome"] = "denied"
    return [*lines[:2], json.dumps(entry, sort_keys=True) + "\n", *lines[3:]]


def _delete(lines: list[str]) -> list[str]:
    return [*lines[:2], *lines[3:]]


def _insert_copy(lines: list[str]) -> list[str]:
    return [*lines[:3], lines[1], *lines[3:]]


def _insert_forged(lines: list[str]) -> list[str]:
    forged = json.loads(lines[2])
    forged["action"] = "forged"
    return [*lines[:3], json.dumps(forged) + "\n", *lines[3:]]


def _reorder(lines: list[str]) -> list[str]:
    return [lines[0], lines[1], lines[3], lines[2], *lines[4:]]


def _corrupt(lines: list[str]) -> list[str]:
    return [*lines[:2], "{not json\n", *lines[3:]]


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        (_modify, "line 3"),
        (_delete, "line 3"),
        (_insert_copy, "line 4"),
        (_insert_forged, "line 4"),
        (_reorder, "line 3"),
        (_corrupt, "line 3"),
    ],
    ids=[
        "modification",
        "deletion",
        "insertion-of-a-copy",
        "insertion-of-a-forgery",
        "reordering",
        "corruption",
    ],
)
def test_tampering_names_the_first_bad_entry(
    log: AuditLog, tamper: Callable[[list[str]], list[str]], first_bad: str
) -> None:
    _write(log, tamper(_lines(log)))
    with pytest.raises(AuditChainError, match=f"^{first_bad}:"):
        log.verify()


def test_truncation_is_caught_by_the_anchor(log: AuditLog) -> None:
    _write(log, _lines(log)[:4])
    with pytest.raises(AuditChainError, match="truncated: the log ends at entry 4"):
        log.verify()


def test_emptied_log_is_caught_by_the_anchor(log: AuditLog) -> None:
    _write(log, [])
    with pytest.raises(AuditChainError, match="truncated"):
        log.verify()


def test_appends_continue_the_chain_after_verification(log: AuditLog) -> None:
    log.verify()
    entry = log.append("tester", "later", "resource/6")
    assert entry["seq"] == 7
    assert log.verify().entries == 7


def test_identifiers_in_details_are_scrubbed(log: AuditLog) -> None:
    entry = log.append(
        "tester", "lookup", "resource/x", note="patient 123-45-6789", email="jane@example.org"
    )
    text = log.path.read_text()
    assert "123-45-6789" not in text and "jane@example.org" not in text
    assert entry["details"]["email"] == "[REDACTED]"
    assert log.verify().entries == 7


def test_an_append_interrupted_before_its_anchor_is_healed_by_the_next(log: AuditLog) -> None:
    # The same file through another anchor: genuine entries the main anchor never saw,
    # what a writer killed between writing and anchoring leaves behind.
    interrupted = AuditLog(log.path, log.bao, anchor=f"{log.anchor}-other")
    interrupted.append("tester", "interrupted", "resource/6")
    with pytest.raises(AuditChainError, match="entries after the last anchored entry"):
        log.verify()
    assert log.append("tester", "next", "resource/7")["seq"] == 8
    assert log.verify().entries == 8


def test_an_append_after_a_forged_unanchored_entry_is_refused(log: AuditLog) -> None:
    lines = _lines(log)
    forged = json.loads(lines[-1]) | {"seq": 7, "action": "forged"}
    _write(log, [*lines, json.dumps(forged) + "\n"])
    with pytest.raises(AuditChainError, match="not genuine"):
        log.append("tester", "next", "resource/8")
    assert len(_lines(log)) == 7


def _respelled(line: str, spell: Callable[[dict[str, object]], str]) -> str:
    return spell(json.loads(line)) + "\n"


@pytest.mark.parametrize(
    "spell",
    [
        # The same content: its MAC still verifies, but a reader may see other values.
        lambda e: json.dumps(e, sort_keys=True)[:-1] + ', "outcome": "approved"}',
        lambda e: json.dumps(dict(reversed(list(e.items())))),
        lambda e: json.dumps(e, sort_keys=True, indent=1).replace("\n", " "),
    ],
    ids=["shadowing-duplicate-key", "reordered-keys", "extra-white-space"],
)
def test_a_line_that_is_not_the_canonical_form_of_its_content_is_reported(
    log: AuditLog, spell: Callable[[dict[str, object]], str]
) -> None:
    lines = _lines(log)
    _write(log, [*lines[:2], _respelled(lines[2], spell), *lines[3:]])
    with pytest.raises(AuditChainError, match=r"^line 3: (a key appears twice|the line is not)"):
        log.verify()

"""Append-only, hash-chained, HMAC-keyed audit log.

Each entry is one JSON line: ``seq``, ``ts``, ``actor``, ``action``, ``resource``,
``outcome``, ``details``, ``prev`` (SHA-256 of the previous entry without its MAC) and
``mac``, an HMAC of the rest computed by OpenBao transit with a key that never leaves
OpenBao. Rewriting history therefore needs the key, not just the file. Because ``prev``
does not depend on a MAC, a batch of entries is chained locally and signed in one call.
After every append the chain's head (last ``seq`` and ``mac``) is anchored in OpenBao KV,
so cutting entries off the end is caught. A writer killed between writing its entries
and anchoring them leaves entries after the anchor, which `verify` reports; the next
append checks their MACs and, only if every one is genuine, anchors past them.

`verify` names the first bad entry for a modification, deletion, insertion, reordering or
truncation. Details must not carry PHI; string values are scrubbed on the way in anyway.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions

from safeguards import phi
from safeguards.errors import AuditChainError, IntegrityError
from safeguards.openbao import openbao_errors

KEY_NAME = "audit-log"
GENESIS = "genesis"
# OpenBao refuses request bodies with more than about 1000 JSON strings; a verify item
# carries four (two keys, two values), so 200 items per request stays well inside it.
_BATCH = 200


def _canonical(entry: dict[str, Any]) -> bytes:
    body = {k: v for k, v in entry.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _digest(entry: dict[str, Any]) -> str:
    """The hash the next entry's ``prev`` carries: SHA-256 of the entry without its MAC."""
    return hashlib.sha256(_canonical(entry)).hexdigest()


@dataclass(frozen=True)
class Event:
    actor: str
    action: str
    resource: str
    outcome: str = "ok"
    details: dict[str, Any] = field(default_factory=dict)

    def entry(self, seq: int, prev: str) -> dict[str, Any]:
        return {
            "seq": seq,
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "outcome": self.outcome,
            "details": phi.scrub_value(self.details),
            "prev": prev,
        }


@dataclass(frozen=True)
class Verified:
    entries: int
    head_seq: int


class AuditLog:
    """The audit log at `path`, keyed and anchored through the OpenBao client `bao`."""

    def __init__(self, path: Path, bao: hvac.Client, anchor: str = "audit/head") -> None:
        self.path = path
        self.bao = bao
        self.anchor = anchor

    def append(
        self, actor: str, action: str, resource: str, outcome: str = "ok", **details: Any
    ) -> dict[str, Any]:
        """Record one event; returns the entry as written."""
        return self.append_many([Event(actor, action, resource, outcome, details)])[-1]

    def append_many(self, events: list[Event]) -> list[dict[str, Any]]:
        """Record events in order with one HMAC round trip and one anchor update."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_entry(fd)
            seq, prev = (last["seq"], _digest(last)) if last else (0, GENESIS)
            self._check_unanchored(seq)
            entries = []
            for event in events:
                seq += 1
                entry = event.entry(seq, prev)
                prev = _digest(entry)
                entries.append(entry)
            for entry, mac in zip(entries, self._macs(entries), strict=True):
                entry["mac"] = mac
            lines = b"".join(
                json.dumps(e, sort_keys=True, ensure_ascii=False).encode() + b"\n" for e in entries
            )
            os.write(fd, lines)
            os.fsync(fd)
            with openbao_errors("anchoring the audit chain"):
                self.bao.secrets.kv.v2.create_or_update_secret(
                    self.anchor, {"seq": seq, "mac": entries[-1]["mac"]}, mount_point="secret"
                )
        finally:
            os.close(fd)
        return entries

    def _check_unanchored(self, seq: int) -> None:
        """Refuse to append after entries past the anchor unless all of them are genuine."""
        head = self._head()
        anchored = head["seq"] if head else 0
        if seq <= anchored:
            return
        tail = [e for _, e in _read(self.path) if isinstance(e, dict) and e["seq"] > anchored]
        if len(tail) != seq - anchored or not all(self._macs_valid(tail)):
            raise AuditChainError(
                f"entries after the anchored head (entry {anchored}) are not genuine; "
                "run audit verify"
            )

    def _macs(self, entries: list[dict[str, Any]]) -> list[str]:
        macs: list[str] = []
        for start in range(0, len(entries), _BATCH):
            batch = [{"input": _b64(_canonical(e))} for e in entries[start : start + _BATCH]]
            with openbao_errors("signing audit entries"):
                response = self.bao.write_data(
                    f"transit/hmac/{KEY_NAME}",
                    data={"algorithm": "sha2-256", "batch_input": batch},
                )
            macs.extend(str(r["hmac"]) for r in response["data"]["batch_results"])
        return macs

    def verify(self) -> Verified:
        """Check the whole chain; raises AuditChainError naming the first bad entry."""
        entries = list(_read(self.path))
        valid = self._macs_valid([e for _, e in entries if isinstance(e, dict)])
        prev, seq, last_mac = GENESIS, 0, None
        macs = iter(valid)
        for line_no, entry in entries:
            if not isinstance(entry, dict):
                raise AuditChainError(f"line {line_no}: not a JSON audit entry")
            seq += 1
            if not next(macs):
                raise AuditChainError(f"line {line_no}: entry was modified or forged (bad MAC)")
            if entry.get("seq") != seq:
                raise AuditChainError(
                    f"line {line_no}: expected entry {seq}, found entry {entry.get('seq')} "
                    "(an entry was deleted, inserted or moved)"
                )
            if entry.get("prev") != prev:
                raise AuditChainError(
                    f"line {line_no}: chain broken, the previous entry's hash does not match"
                )
            prev, last_mac = _digest(entry), entry.get("mac")
        head = self._head()
        if head is None and seq:
            raise AuditChainError("the chain has entries but no anchored head in OpenBao")
        if head is not None:
            if head["seq"] > seq:
                raise AuditChainError(
                    f"truncated: the log ends at entry {seq}, the anchored head is entry "
                    f"{head['seq']}"
                )
            if head["seq"] < seq or head["mac"] != last_mac:
                raise AuditChainError(
                    f"entry {head['seq'] + 1}: entries after the anchored head "
                    f"(entry {head['seq']}) or a head that does not match"
                )
        return Verified(entries=seq, head_seq=head["seq"] if head else 0)

    def _head(self) -> dict[str, Any] | None:
        with openbao_errors("reading the audit chain's anchor"):
            try:
                data = self.bao.secrets.kv.v2.read_secret_version(
                    self.anchor, mount_point="secret", raise_on_deleted_version=True
                )
            except hvac.exceptions.InvalidPath:
                return None
        return dict(data["data"]["data"])

    def _macs_valid(self, entries: list[dict[str, Any]]) -> list[bool]:
        result: list[bool] = []
        for start in range(0, len(entries), _BATCH):
            chunk = entries[start : start + _BATCH]
            batch = [{"input": _b64(_canonical(e)), "hmac": str(e.get("mac", ""))} for e in chunk]
            with openbao_errors("verifying audit entries"):
                response = self.bao.write_data(
                    f"transit/verify/{KEY_NAME}",
                    data={"hash_algorithm": "sha2-256", "batch_input": batch},
                )
            result.extend(bool(r.get("valid")) for r in response["data"]["batch_results"])
        return result


def _read(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    if not path.exists():
        return
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                value = json.loads(raw)
            except ValueError:
                value = None
            yield line_no, value if isinstance(value, dict) else None


def _last_entry(fd: int) -> dict[str, Any] | None:
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return None
    chunk = min(size, 65536)
    data = os.pread(fd, chunk, size - chunk)
    lines = data.rstrip(b"\n").split(b"\n")
    try:
        entry = json.loads(lines[-1])
    except ValueError as exc:
        raise IntegrityError("the audit log's last line is not an entry; run audit verify") from exc
    return dict(entry)

"""Append-only, hash-chained audit log, signed per identity and anchored forward-only.

Each entry is one JSON line: ``seq``, ``ts``, ``signer``, ``actor``, ``action``,
``resource``, ``outcome``, ``details``, ``prev`` (SHA-256 of the previous entry without
its MAC) and ``mac``, an HMAC of the rest computed by OpenBao transit under the signer's
own key, ``audit-<signer>``. The signer is the AppRole the writing client is logged in
as, read from its token, and each identity's policy lets it sign with its own key only:
an identity can speak for itself, never rewrite what another signed. Because ``prev``
does not depend on a MAC, a batch of entries is chained locally and signed in one call.

After every append the new head is anchored in OpenBao KV as a new secret
``audit/anchors/<log name>/<seq>-<hash of its MAC>``. Policies grant ``create`` there,
never ``update`` or ``delete``: an anchor, once written, cannot be changed or removed by
any workload, and the random-looking name means nobody can take the next anchor's place
in advance. So
the anchors are a forward-only history of heads. `verify` checks every one of them: a
rewritten entry (even re-signed by its own signer, with the chain recomputed after it)
no longer matches the anchor written when it was appended; a cut-off tail leaves anchors
past the end; a forged anchor matches no entry.

`verify` also refuses a line whose bytes are not the canonical serialisation of its
content (a duplicated key whose second value shadows the first, reordered keys, extra
white space): another reader could see other values than the verifier did.

A writer killed between writing its entries and anchoring them leaves entries after the
last anchor, which `verify` reports; the next append checks their MACs and, only if every
one is genuine, anchors past them. Details must not carry PHI; string values are scrubbed
on the way in anyway.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions

from safeguards import phi
from safeguards.errors import AuditChainError, ConfigError, IntegrityError
from safeguards.openbao import openbao_errors
from safeguards.settings import Settings

GENESIS = "genesis"
ANCHORS = "audit/anchors"
# OpenBao refuses request bodies with more than about 1000 JSON strings; a verify item
# carries four (two keys, two values), so 200 items per request stays well inside it.
_BATCH = 200
_SIGNER = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
_ANCHOR_NAME = re.compile(r"^(\d{12})-([0-9a-f]{16})$")
# Findings named in verify's error before "and N more".
_SHOWN = 3


def audit_path(settings: Settings) -> Path:
    """Where the stack's audit log is: in the data directory, whoever writes it."""
    return settings.data_dir / "audit" / "audit.jsonl"


def key_name(signer: str) -> str:
    """The transit key that `signer`'s entries are signed with."""
    if not _SIGNER.match(signer):
        raise ConfigError("an audit signer is an identity name: lowercase letters, digits, '-'")
    return f"audit-{signer}"


def create_signing_key(bao: hvac.Client, signer: str) -> None:
    """Create `signer`'s signing key if it does not exist (operator or bootstrap)."""
    name = key_name(signer)
    with openbao_errors(f"creating the audit key of '{signer}'"):
        try:
            bao.secrets.transit.read_key(name)
        except hvac.exceptions.InvalidPath:
            bao.secrets.transit.create_key(name, key_type="aes256-gcm96", exportable=False)


def _canonical(entry: dict[str, Any]) -> bytes:
    body = {k: v for k, v in entry.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _line(entry: dict[str, Any]) -> bytes:
    """The exact bytes an entry is stored as; verify refuses any other spelling."""
    return json.dumps(entry, sort_keys=True, ensure_ascii=False).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _digest(entry: dict[str, Any]) -> str:
    """The hash the next entry's ``prev`` carries: SHA-256 of the entry without its MAC."""
    return hashlib.sha256(_canonical(entry)).hexdigest()


def _anchor_name(seq: int, mac: str) -> str:
    return f"{seq:012d}-{hashlib.sha256(mac.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class Event:
    actor: str
    action: str
    resource: str
    outcome: str = "ok"
    details: dict[str, Any] = field(default_factory=dict)

    def entry(self, seq: int, prev: str, signer: str) -> dict[str, Any]:
        return {
            "seq": seq,
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "signer": signer,
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
    anchors: int
    signers: tuple[str, ...]


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """An entry from one stored line, or the reason it is not one."""
    try:
        value = json.loads(raw, object_pairs_hook=_no_duplicates)
    except _DuplicateKey:
        return None, "a key appears twice in the entry"
    except ValueError:
        return None, "not a JSON audit entry"
    if not isinstance(value, dict):
        return None, "not a JSON audit entry"
    if _line(value) != raw.rstrip(b"\n"):
        return value, "the line is not the canonical form of its content"
    return value, None


class AuditLog:
    """The audit log at `path`, signed and anchored through the OpenBao client `bao`, its
    anchors under `anchor` (one prefix per log: two logs must not share one)."""

    def __init__(self, path: Path, bao: hvac.Client, anchor: str) -> None:
        self.path = path
        self.bao = bao
        self.anchor = anchor
        self._signer: str | None = None

    @classmethod
    def of(cls, settings: Settings, bao: hvac.Client) -> AuditLog:
        """The stack's audit log, under the data directory, anchored by its name."""
        return cls(audit_path(settings), bao, anchor=f"{ANCHORS}/{settings.audit_log}")

    @property
    def signer(self) -> str:
        """The AppRole identity the client is logged in as: it signs what it appends."""
        if self._signer is None:
            with openbao_errors("reading the audit signer's identity"):
                meta = self.bao.auth.token.lookup_self()["data"].get("meta") or {}
            role = meta.get("role_name")
            if not role:
                raise ConfigError("audit entries are signed by an AppRole identity's token")
            key_name(role)
            self._signer = str(role)
        return self._signer

    def append(
        self, actor: str, action: str, resource: str, outcome: str = "ok", **details: Any
    ) -> dict[str, Any]:
        """Record one event; returns the entry as written."""
        return self.append_many([Event(actor, action, resource, outcome, details)])[-1]

    def append_many(self, events: list[Event]) -> list[dict[str, Any]]:
        """Record events in order with one HMAC round trip and one anchor."""
        signer = self.signer
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_entry(fd)
            seq, prev = (last["seq"], _digest(last)) if last else (0, GENESIS)
            if last is not None:
                self._check_unanchored(last)
            entries = []
            for event in events:
                seq += 1
                entry = event.entry(seq, prev, signer)
                prev = _digest(entry)
                entries.append(entry)
            for entry, mac in zip(entries, self._macs(signer, entries), strict=True):
                entry["mac"] = mac
            os.write(fd, b"".join(_line(e) + b"\n" for e in entries))
            os.fsync(fd)
            self._write_anchor(entries[-1])
        finally:
            os.close(fd)
        return entries

    def _write_anchor(self, entry: dict[str, Any]) -> None:
        path = f"{self.anchor}/{_anchor_name(entry['seq'], entry['mac'])}"
        with openbao_errors("anchoring the audit chain"):
            self.bao.secrets.kv.v2.create_or_update_secret(
                path, {"seq": entry["seq"], "mac": entry["mac"]}, cas=0, mount_point="secret"
            )

    def _anchored(self, entry: dict[str, Any]) -> bool:
        path = f"{self.anchor}/{_anchor_name(entry['seq'], str(entry.get('mac', '')))}"
        with openbao_errors("reading the audit chain's anchor"):
            try:
                self.bao.secrets.kv.v2.read_secret_version(
                    path, mount_point="secret", raise_on_deleted_version=True
                )
            except hvac.exceptions.InvalidPath:
                return False
        return True

    def _check_unanchored(self, last: dict[str, Any]) -> None:
        """Refuse to append after entries past the last anchor unless all are genuine."""
        if self._anchored(last):
            return
        anchored = max((seq for seq, _ in self._anchor_names()), default=0)
        entries = [e for _, e, _ in _read(self.path) if e is not None]
        tail = [e for e in entries if isinstance(e.get("seq"), int) and e["seq"] > anchored]
        if len(tail) != last["seq"] - anchored or not all(self._macs_valid(tail)):
            raise AuditChainError(
                f"entries after the last anchored entry ({anchored}) are not genuine; "
                "run audit verify"
            )

    def _macs(self, signer: str, entries: list[dict[str, Any]]) -> list[str]:
        macs: list[str] = []
        for start in range(0, len(entries), _BATCH):
            batch = [{"input": _b64(_canonical(e))} for e in entries[start : start + _BATCH]]
            with openbao_errors("signing audit entries"):
                response = self.bao.write_data(
                    f"transit/hmac/{key_name(signer)}",
                    data={"algorithm": "sha2-256", "batch_input": batch},
                )
            macs.extend(str(r["hmac"]) for r in response["data"]["batch_results"])
        return macs

    def verify(self) -> Verified:
        """Check every entry, the chain, and every anchor; raises AuditChainError naming
        what it found (the first few findings, and how many more)."""
        lines = list(_read(self.path))
        entries = [e for _, e, problem in lines if e is not None and problem is None]
        valid = iter(self._macs_valid(entries))
        findings: list[str] = []
        macs: dict[int, str] = {}
        prev, seq = GENESIS, 0
        for line_no, entry, problem in lines:
            seq += 1
            if problem is not None or entry is None:
                findings.append(f"line {line_no}: {problem}")
                prev = _digest(entry) if entry else prev
                continue
            if not next(valid):
                findings.append(f"line {line_no}: entry was modified or forged (bad MAC)")
            if entry.get("seq") != seq:
                findings.append(
                    f"line {line_no}: expected entry {seq}, found entry {entry.get('seq')} "
                    "(an entry was deleted, inserted or moved)"
                )
            if entry.get("prev") != prev:
                findings.append(
                    f"line {line_no}: chain broken, the previous entry's hash does not match"
                )
            prev = _digest(entry)
            macs[seq] = str(entry.get("mac"))
        anchors = self._anchors()
        findings.extend(_anchor_findings(anchors, macs, seq))
        if findings:
            more = f" (and {len(findings) - _SHOWN} more)" if len(findings) > _SHOWN else ""
            raise AuditChainError("; ".join(findings[:_SHOWN]) + more)
        signers = tuple(sorted({str(e.get("signer")) for e in entries}))
        head = max((a[0] for a in anchors), default=0)
        return Verified(entries=seq, head_seq=head, anchors=len(anchors), signers=signers)

    def _anchor_names(self) -> list[tuple[int, str]]:
        with openbao_errors("listing the audit chain's anchors"):
            try:
                names = self.bao.secrets.kv.v2.list_secrets(self.anchor, mount_point="secret")
            except hvac.exceptions.InvalidPath:
                return []
        found = []
        for name in names["data"]["keys"]:
            match = _ANCHOR_NAME.match(name)
            found.append((int(match[1]), name) if match else (-1, name))
        return found

    def _anchors(self) -> list[tuple[int, str, dict[str, Any] | None]]:
        """Every anchor: (seq in its name, its name, its content or None if unreadable)."""

        def read(name: str) -> dict[str, Any] | None:
            with openbao_errors("reading the audit chain's anchors"):
                try:
                    data = self.bao.secrets.kv.v2.read_secret_version(
                        f"{self.anchor}/{name}", mount_point="secret", raise_on_deleted_version=True
                    )
                except hvac.exceptions.InvalidPath:
                    return None
            return dict(data["data"]["data"])

        names = self._anchor_names()
        with ThreadPoolExecutor(max_workers=8) as pool:
            contents = list(pool.map(read, [name for _, name in names]))
        return [(seq, name, c) for (seq, name), c in zip(names, contents, strict=True)]

    def _macs_valid(self, entries: list[dict[str, Any]]) -> list[bool]:
        """Whether each entry's MAC is genuine under its own signer's key."""
        by_signer: dict[str, list[int]] = defaultdict(list)
        for index, entry in enumerate(entries):
            by_signer[str(entry.get("signer", ""))].append(index)
        result = [False] * len(entries)
        for signer, indexes in by_signer.items():
            if not _SIGNER.match(signer):
                continue
            for start in range(0, len(indexes), _BATCH):
                chunk = indexes[start : start + _BATCH]
                batch = [
                    {"input": _b64(_canonical(entries[i])), "hmac": str(entries[i].get("mac", ""))}
                    for i in chunk
                ]
                with openbao_errors("verifying audit entries"):
                    try:
                        response = self.bao.write_data(
                            f"transit/verify/{key_name(signer)}",
                            data={"hash_algorithm": "sha2-256", "batch_input": batch},
                        )
                    except (hvac.exceptions.InvalidPath, hvac.exceptions.InvalidRequest):
                        continue  # no such signer key: every entry it "signed" is forged
                for i, item in zip(chunk, response["data"]["batch_results"], strict=True):
                    result[i] = bool(item.get("valid"))
        return result


def _anchor_findings(
    anchors: list[tuple[int, str, dict[str, Any] | None]], macs: dict[int, str], length: int
) -> Iterator[str]:
    """What the anchors say about the log: each must name an entry exactly as it is now."""
    if length and not anchors:
        yield "the log has entries but no anchor in OpenBao"
    for seq, name, content in sorted(anchors, key=lambda a: a[0]):
        if content is None or seq < 0 or content.get("seq") != seq:
            yield f"anchor {name}: malformed (forged in OpenBao)"
        elif seq > length:
            yield f"truncated: the log ends at entry {length}, an anchor names entry {seq}"
        elif macs.get(seq) != content.get("mac") or _anchor_name(seq, str(content["mac"])) != name:
            yield (
                f"entry {seq}: differs from what was anchored when it was written "
                "(entries were rewritten, or the anchor was forged)"
            )
    head = max((a[0] for a in anchors), default=0)
    if head < length:
        yield (
            f"entry {head + 1}: entries after the last anchored entry ({head}), "
            "appended by a writer that did not finish or added by hand"
        )


def _read(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, entry or None, why the line is not a good entry or None)."""
    if not path.exists():
        return
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            entry, problem = _parse(raw)
            yield line_no, entry, problem


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

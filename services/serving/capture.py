"""Predictions captured for monitoring: feature vectors, never identifiers.

Each scored record is kept as its contract's features, the probability, the model version,
the time it was scored and its prediction id; the request never carries an identifier
past validation, so none can be captured. The prediction id is a random UUID (122 bits) returned
to the caller, derived from nothing about the patient: the caller alone can link it to a
patient, to report the outcome later (`monitor labels`), like the re-identification code
that Safe Harbor allows (45 CFR 164.514(c)).

Rows are buffered in memory and written by a background thread as one Parquet file per
batch, every `records` rows or `seconds` seconds and once more at
shutdown, through the project's object store into its ``artifacts`` zone under
``capture/<date>/<batch id>.parquet``: envelope-sealed under the project's key in the
sandbox, SSE-KMS on the stack. The object key holds the UTC date of the write and a
random id, nothing from a record.

Requests never wait on the store. The buffer is bounded: when the store is down for
long, rows beyond the bound are dropped and counted, rather than growing without limit.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable

import pandas as pd
from pydantic import BaseModel

from contract import Contract, Type
from safeguards.errors import SafeguardError
from safeguards.objectstore import ObjectStore

log = logging.getLogger(__name__)

ZONE = "artifacts"
EXTRA = ["probability", "model_version", "predicted_at", "prediction_id"]
# A UUID's version (4: random) and variant bits, set in a random byte by translation.
_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_RFC_4122 = bytes((b & 0x3F) | 0x80 for b in range(256))
_DTYPES = {
    Type.INTEGER: "Int64",
    Type.NUMBER: "float64",
    Type.BOOLEAN: "boolean",
    Type.CATEGORY: "str",
}


def prediction_ids(count: int) -> list[str]:
    """`count` random version-4 UUIDs as 32 hex digits, as `uuid.uuid4().hex` makes them,
    made at once: a million take a fraction of a second instead of seconds."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_RFC_4122)
    hexed = raw.hex()
    return [hexed[i : i + 32] for i in range(0, 32 * count, 32)]


def to_parquet(rows: list[tuple[object, ...]], contract: Contract) -> bytes:
    """Captured rows as Parquet, each feature of its contract type."""
    dtypes = {name: _DTYPES[contract.column(name).type] for name in contract.features}
    table = pd.DataFrame.from_records(rows, columns=[*contract.features, *EXTRA]).astype(
        dtypes | {"probability": "float64", "model_version": "str", "prediction_id": "str"}
    )
    table["predicted_at"] = pd.to_datetime(table["predicted_at"], unit="s", utc=True)
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()


def write(store: ObjectStore, rows: list[tuple[object, ...]], contract: Contract) -> str:
    """Captured rows as one batch in the project's store; its batch id."""
    batch = uuid.uuid4().hex
    key = f"capture/{dt.datetime.now(dt.UTC):%Y-%m-%d}/{batch}.parquet"
    store.put(ZONE, key, to_parquet(rows, contract))
    return batch


class Capture:
    """Buffers scored records and writes them in batches from a background thread."""

    def __init__(
        self,
        open_store: Callable[[], ObjectStore],
        contract: Contract,
        records: int,
        seconds: float,
        on_drop: Callable[[int], None] = lambda _: None,
    ) -> None:
        self.open_store = open_store
        self.contract = contract
        self.features = contract.features
        self.records = records
        self.seconds = seconds
        self.on_drop = on_drop
        self.limit = 10 * records
        self._rows: list[tuple[object, ...]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)

    def add(
        self, records: list[BaseModel], probabilities: list[float], version: str, ids: list[str]
    ) -> None:
        now = time.time()
        rows = [
            (*(getattr(r, c) for c in self.features), p, version, now, i)
            for r, p, i in zip(records, probabilities, ids, strict=True)
        ]
        with self._lock:
            room = self.limit - len(self._rows)
            self._rows.extend(rows[:room])
            full = len(self._rows) >= self.records
        if room < len(rows):
            self.on_drop(len(rows) - room)
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write what is buffered as one batch; on failure the batch is dropped and counted."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            batch = write(self.open_store(), rows, self.contract)
        except SafeguardError as exc:
            self.on_drop(len(rows))
            log.error("capture batch not written", extra={"rows": len(rows), "error": str(exc)})
            return
        log.info("capture batch written", extra={"rows": len(rows), "batch": batch})

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.seconds)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Stop the writer and write what is left."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.flush()

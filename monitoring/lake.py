"""What monitoring reads from and writes to a project's lake, all in its ``artifacts`` zone.

- ``capture/<date>/<batch>.parquet``: predictions the endpoint captured (read only here);
- ``outcomes/<date>/<batch>.parquet``: outcomes the caller reported, by prediction id;
- ``reports/monitoring/<time>-v<version>-<random>.html``: the monitoring reports.

Every object goes through the project's object store, so it is sealed under the project's
key in the sandbox and SSE-KMS on the stack. An outcome file holds a prediction id and a
boolean, nothing else: anything more is refused before it is stored.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from pathlib import Path

import pandas as pd

from safeguards.errors import ConfigError
from safeguards.objectstore import ObjectStore

ZONE = "artifacts"
CAPTURE, OUTCOMES, REPORTS = "capture/", "outcomes/", "reports/monitoring/"
OUTCOME_COLUMNS = ["prediction_id", "outcome"]
_ID = re.compile(r"^[0-9a-f]{32}$")
_OUTCOME = {"true": True, "1": True, "false": False, "0": False}
_REPORT = re.compile(r"^\d{8}T\d{6}Z-v\d+-[0-9a-f]{8}\.html$")


def _dated(prefix: str, store: ObjectStore) -> dict[str, list[str]]:
    """Object names under `prefix`, grouped by their date folder."""
    days: dict[str, list[str]] = {}
    for name in store.list(ZONE, prefix):
        days.setdefault(name[len(prefix) :].split("/")[0], []).append(name)
    return days


def captured(store: ObjectStore, version: str, rows: int) -> pd.DataFrame:
    """The newest `rows` captured predictions of model `version`, oldest first.

    Whole days are read, newest first, until enough rows of the version are found.
    """
    frames: list[pd.DataFrame] = []
    found = 0
    days = _dated(CAPTURE, store)
    for day in sorted(days, reverse=True):
        for name in days[day]:
            batch = pd.read_parquet(io.BytesIO(store.get(ZONE, name)))
            batch = batch[batch["model_version"] == version]
            frames.append(batch)
            found += len(batch)
        if found >= rows:
            break
    if not frames:
        return pd.DataFrame()
    window = pd.concat(frames, ignore_index=True).sort_values("predicted_at", kind="stable")
    return window.tail(rows).reset_index(drop=True)


def check_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """Reported outcomes, refused unless they are exactly prediction ids and booleans."""
    if list(frame.columns) != OUTCOME_COLUMNS:
        raise ConfigError(
            f"an outcomes file has exactly the columns {', '.join(OUTCOME_COLUMNS)}, "
            "nothing else (no identifiers)"
        )
    ids = frame["prediction_id"].astype(str)
    bad = (~ids.str.fullmatch(_ID.pattern)).to_numpy().nonzero()[0]
    if len(bad):
        raise ConfigError(f"row {bad[0] + 1}: a prediction id is 32 lowercase hex digits")
    values = frame["outcome"].map(lambda v: _OUTCOME.get(str(v).strip().lower()))
    if values.isna().any():
        row = int(values.isna().to_numpy().nonzero()[0][0]) + 1
        raise ConfigError(f"row {row}: an outcome is true/false or 1/0")
    return pd.DataFrame({"prediction_id": ids, "outcome": values.astype(bool)})


def read_outcomes(path: Path) -> pd.DataFrame:
    """An outcomes file (CSV, every cell read as text, or Parquet), checked."""
    if not path.is_file() or path.stat().st_size == 0:
        raise ConfigError(f"{path.name} is missing or empty")
    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(path, dtype="str", keep_default_na=False)
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise ConfigError("an outcomes file is a .csv or .parquet file")
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name} is not a readable table") from exc
    return check_outcomes(frame)


def put_outcomes(store: ObjectStore, frame: pd.DataFrame) -> str:
    """Store checked outcomes as one batch; returns its object name."""
    checked = check_outcomes(frame)
    name = f"{OUTCOMES}{dt.datetime.now(dt.UTC):%Y-%m-%d}/{uuid.uuid4().hex}.parquet"
    buffer = io.BytesIO()
    checked.to_parquet(buffer, index=False)
    store.put(ZONE, name, buffer.getvalue())
    return name


def outcomes(store: ObjectStore) -> pd.Series:
    """Every reported outcome, by prediction id (an id reported on two days: the later)."""
    names = sorted(store.list(ZONE, OUTCOMES))
    if not names:
        return pd.Series(dtype="int64")
    table = pd.concat(pd.read_parquet(io.BytesIO(store.get(ZONE, n))) for n in names)
    table = table.drop_duplicates("prediction_id", keep="last")
    return pd.Series(table["outcome"].astype("int64").to_numpy(), index=table["prediction_id"])


def put_report(store: ObjectStore, version: str, html: bytes) -> str:
    # The random part keeps two runs within one second from overwriting each other.
    stamp = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    name = f"{REPORTS}{stamp}-v{version}-{uuid.uuid4().hex[:8]}.html"
    store.put(ZONE, name, html)
    return name


def reports(store: ObjectStore) -> list[str]:
    """Report names, newest first."""
    names = [n[len(REPORTS) :] for n in store.list(ZONE, REPORTS)]
    return sorted((n for n in names if _REPORT.match(n)), reverse=True)


def report(store: ObjectStore, name: str) -> bytes:
    if not _REPORT.match(name):
        raise ConfigError("a report name looks like 20261128T120000Z-v3-0123abcd.html")
    return store.get(ZONE, REPORTS + name)

"""Tables read and checked against the contract, with errors that name no value.

`read_table` reads a CSV or Parquet file with the contract's types: every CSV cell is read
as text first, so ZIP codes, MRNs and ids keep their leading zeros and each date column
parses with its own format. A column mapping renames source columns; a column the
contract does not declare is refused by its position alone, since a header may itself
be a patient's row. `conform` checks and types a table already in memory the same way.

Every problem names the row and the column and the rule the value broke, never the
value: a table is PHI until it is de-identified.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from contract._schema import FALSE_WORDS, NUMERIC, TRUE_WORDS, Column, Kind, Type
from safeguards.errors import ConfigError

# Problems listed in an error message; the rest are counted.
_SHOWN = 5
_ZIP = r"^\d{5}(?:-\d{4})?$"


@dataclass(frozen=True)
class Problem:
    """A value that broke a rule: its row (1-based, in the table's order) and column."""

    row: int
    column: str
    rule: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.rule}"


class InvalidTable(ConfigError):
    """A table with values that break the contract; `problems` name rows and columns."""

    def __init__(self, problems: list[Problem], what: str = "the table") -> None:
        self.problems = problems
        shown = "; ".join(map(str, problems[:_SHOWN]))
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        super().__init__(f"{len(problems)} problem(s) in {what}: {shown}{more}")


def positions(indexes: Sequence[int]) -> str:
    shown = ", ".join(str(i + 1) for i in indexes[:_SHOWN])
    return shown + (" and more" if len(indexes) > _SHOWN else "")


def select(frame: pd.DataFrame, columns: Sequence[Column], what: str) -> pd.DataFrame:
    """`frame`'s columns in the contract's order; undeclared ones refused by position."""
    declared = {c.name for c in columns}
    undeclared = [i for i, name in enumerate(frame.columns) if name not in declared]
    if undeclared:
        raise ConfigError(
            f"{what} has {len(undeclared)} column(s) the contract does not declare, at "
            f"position(s) {positions(undeclared)}; map them to declared columns or drop them"
        )
    names = list(frame.columns)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{what} has column(s) {', '.join(twice)} more than once")
    missing = [c.name for c in columns if c.name not in names]
    if missing:
        raise ConfigError(f"{what} lacks column(s): {', '.join(missing)}")
    return frame[[c.name for c in columns]]


def conform(
    frame: pd.DataFrame, columns: Sequence[Column], what: str = "the table", *, report: bool = False
) -> tuple[pd.DataFrame, list[Problem]]:
    """`frame` with exactly `columns`, each of its contract type; every broken rule found.

    With `report`, the problems are returned beside the table (whose bad cells are
    missing); otherwise any problem raises `InvalidTable`. An empty table is refused."""
    table = select(frame, columns, what)
    if table.empty:
        raise ConfigError(f"{what} is empty")
    out: dict[str, pd.Series] = {}
    bad: list[tuple[str, str, np.ndarray]] = []
    for column in columns:
        values, rules = _typed(table[column.name].reset_index(drop=True), column)
        out[column.name] = values
        bad += [(column.name, rule, mask) for rule, mask in rules if mask.any()]
    problems = sorted(
        (
            Problem(int(row) + 1, name, rule)
            for name, rule, mask in bad
            for row in np.flatnonzero(mask)
        ),
        key=lambda p: p.row,
    )
    if problems and not report:
        raise InvalidTable(problems, what)
    return pd.DataFrame(out), problems


def _typed(series: pd.Series, column: Column) -> tuple[pd.Series, list[tuple[str, np.ndarray]]]:
    """The series as the column's type, and each rule with the rows that break it."""
    text = pd.api.types.is_string_dtype(series) or series.dtype == object
    if text:
        series = series.astype("str").str.strip().replace("", np.nan)
    missing = series.isna().to_numpy()
    rules: list[tuple[str, np.ndarray]] = []
    kind = column.type
    if kind in NUMERIC:
        if text:
            values = pd.to_numeric(series, errors="coerce")
        elif pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = series.astype("float64")
        else:
            values = pd.Series(np.nan, index=series.index)
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        rules.append(("not a number", ~missing & np.isnan(numbers)))
        known = ~np.isnan(numbers)
        if kind == Type.INTEGER:
            rules.append(("not a whole number", known & (np.fmod(np.nan_to_num(numbers), 1) != 0)))
        if column.range is not None:
            low, high = column.range
            outside = known & ((numbers < low) | (numbers > high))
            rules.append((f"outside {_number(low)}-{_number(high)}", outside))
        result = pd.Series(numbers)
        if kind == Type.INTEGER:
            result = result.round().astype("Int64")
            if not column.missing:
                result = result.fillna(0).astype("int64")
    elif kind == Type.BOOLEAN:
        result, wrong = _booleans(series, text, missing)
        rules.append(("not true or false", wrong))
        if not column.missing:
            result = result.fillna(False).astype(bool)
    elif kind == Type.DATE:
        if pd.api.types.is_datetime64_any_dtype(series):
            dates = series
        elif text:
            dates = pd.to_datetime(series, format=column.format or "ISO8601", errors="coerce")
        else:
            dates = pd.Series(pd.NaT, index=series.index)
        if getattr(dates.dt, "tz", None) is not None:
            dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
        rules.append(("not a date" + (f" ({column.format})" if column.format else ""),
                      ~missing & dates.isna().to_numpy()))  # fmt: skip
        result = dates.astype("datetime64[us]")
    else:
        if not text and not (kind == Type.CATEGORY and pd.api.types.is_integer_dtype(series)):
            # Stored as numbers, ZIP codes, MRNs and ids have lost their leading zeros.
            rules.append(("must be text, not a number", ~missing))
        result = series.astype("str")
        if kind == Type.CATEGORY and column.categories is not None:
            rules.append(
                ("not a declared category", ~missing & ~result.isin(column.categories).to_numpy())
            )
        if column.kind == Kind.ZIP:
            rules.append(
                (
                    "not a 5-digit ZIP code",
                    ~missing & ~result.str.fullmatch(_ZIP).fillna(False).to_numpy(),
                )
            )
    if not column.missing:
        rules.append(("missing", missing))
    return result.reset_index(drop=True), rules


def _booleans(series: pd.Series, text: bool, missing: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean"), np.zeros(len(series), dtype=bool)
    if text:
        words = series.str.lower()
        true, false = words.isin(TRUE_WORDS).to_numpy(), words.isin(FALSE_WORDS).to_numpy()
    elif pd.api.types.is_numeric_dtype(series):
        numbers = series.astype("float64").to_numpy()
        true, false = numbers == 1, numbers == 0
    else:
        true = false = np.zeros(len(series), dtype=bool)
    values = pd.Series(pd.array(np.where(true, True, False), dtype="boolean"))
    values[~(true | false)] = pd.NA
    return values, ~missing & ~(true | false)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def read_table(
    path: Path,
    columns: Sequence[Column],
    mapping: Mapping[str, str] | None = None,
    *,
    report: bool = False,
) -> tuple[pd.DataFrame, list[Problem]]:
    """A CSV or Parquet file as the contract's `columns`, renamed by `mapping` (source
    name -> column name); `report` as in `conform`."""
    frame = _read(path)
    mapping = dict(mapping or {})
    declared = {c.name for c in columns}
    unknown = sorted(set(mapping.values()) - declared)
    if unknown:
        raise ConfigError(
            f"the mapping names column(s) the contract does not declare: {', '.join(unknown)}"
        )
    return conform(frame.rename(columns=mapping), columns, path.name, report=report)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file() or path.stat().st_size == 0:
        raise ConfigError(f"{path.name} is missing or empty")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as f:
                header = next(csv.reader(f), [])
            names = [h.strip() for h in header]
            twice = [i for i, name in enumerate(names) if names.index(name) != i]
            if twice:
                raise ConfigError(
                    f"{path.name} repeats a column name, at position(s) {positions(twice)}"
                )
            frame = pd.read_csv(
                path, dtype="str", keep_default_na=False, na_values=[""], encoding="utf-8-sig"
            )
            frame.columns = names
            return frame
    except (ValueError, OSError, UnicodeDecodeError, csv.Error, pa.ArrowException) as exc:
        raise ConfigError(f"{path.name} is not a readable table") from exc
    raise ConfigError("a table is a .parquet or .csv file")

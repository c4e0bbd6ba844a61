"""The data contract: one project's table, the one module every stage reads.

A team declares its table in a YAML file: every column with its role (a Safe Harbor
identifier and its category, a quasi-identifier such as a ZIP code, a date or an age, a
clinical feature, the label, the site), its type, unit and allowed values, whether it may
be missing, and what the label means. `projects create NAME --contract FILE` keeps it in
OpenBao, and ingestion, de-identification, training, the gate, serving and monitoring all
read it from there: nothing about a table is written anywhere else.

    Contract, Column, Subgroup          the typed contract (`parse`, `load_file`)
    Role, Type, Kind, Category          what a column is
    store, load, text                   a project's contract in OpenBao
    read_table, conform, InvalidTable   tables read and checked, errors without values
    model_frame                         the features as models take them

It sits above `safeguards` and below every stage; it never imports a stage. It never
prints a value from a table, only row numbers, column names and rules.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pandas as pd

from contract._schema import (
    AGE_CAP,
    CATEGORY_TEXT,
    KIND_CATEGORY,
    NUMERIC,
    PSEUDONYM,
    Category,
    Column,
    Contract,
    Kind,
    Role,
    Subgroup,
    Type,
)
from contract._store import load, parse, path, store, text
from contract._tables import InvalidTable, Problem, conform, read_table
from safeguards.errors import ConfigError

__all__ = [
    "AGE_CAP",
    "CATEGORY_TEXT",
    "EXAMPLES",
    "KIND_CATEGORY",
    "NUMERIC",
    "PSEUDONYM",
    "Category",
    "Column",
    "Contract",
    "InvalidTable",
    "Kind",
    "Problem",
    "Role",
    "Subgroup",
    "Type",
    "conform",
    "example",
    "load",
    "load_file",
    "model_frame",
    "parse",
    "path",
    "read_table",
    "store",
    "text",
]

# The contracts shipped as examples: `projects create NAME --contract diabetes`.
EXAMPLES = ("diabetes", "readmission")


def example(name: str) -> str:
    """The text of a shipped example contract."""
    if name not in EXAMPLES:
        raise ConfigError(f"no example contract of that name; examples are {', '.join(EXAMPLES)}")
    return files(__package__).joinpath("examples", f"{name}.yaml").read_text()


def load_file(path: Path) -> str:
    """A contract file's text (or a shipped example's, by name), parsed to check it."""
    if not path.suffix and path.name in EXAMPLES and not path.exists():
        body = example(path.name)
    else:
        try:
            body = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise ConfigError(f"{path.name} is not a readable contract file") from None
    parse(body, path.name)
    return body


def model_frame(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The features as every model here takes them: numbers and flags as doubles (a
    missing one as NaN), categories as text."""
    out = {}
    for name in contract.features:
        column = contract.column(name)
        values = frame[name]
        if column.type == Type.CATEGORY:
            out[name] = values.astype("str")
        else:
            out[name] = values.astype("float64")
    return pd.DataFrame(out, index=frame.index)

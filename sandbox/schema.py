"""The diabetes-risk table: its identifier columns, clinical features and label.

Every column a dataset may carry is named here. A column that is not is refused, never
passed through: an unknown column may be an identifier nobody declared.
"""

from __future__ import annotations

import re

import pandas as pd

from safeguards.errors import ConfigError

# Raw (PHI-shaped) identifier columns and their Safe Harbor category (45 CFR 164.514(b)(2)).
IDENTIFIERS = {
    "name": "names",
    "ssn": "social security numbers",
    "mrn": "medical record numbers",
    "street_address": "geographic subdivisions smaller than a state",
    "city": "geographic subdivisions smaller than a state",
    "zip": "geographic subdivisions smaller than a state",
    "phone": "telephone numbers",
    "email": "electronic mail addresses",
    "date_of_birth": "dates (except year) directly related to an individual",
    "admission_date": "dates (except year) directly related to an individual",
    "discharge_date": "dates (except year) directly related to an individual",
    "note": "free text (may contain any identifier)",
}

FEATURES = {
    "age": "int64",
    "sex": "str",
    "bmi": "float64",
    "fasting_glucose": "float64",
    "hba1c": "float64",
    "systolic_bp": "int64",
    "diastolic_bp": "int64",
    "insulin": "float64",
    "pregnancies": "int64",
    "family_history": "bool",
    "physical_activity": "str",
    "smoking": "str",
    "site": "str",
}
LABEL = "diabetes_5y"
CATEGORIES = {
    "sex": ["F", "M"],
    "physical_activity": ["low", "moderate", "high"],
    "smoking": ["never", "former", "current"],
    "site": ["site-a", "site-b", "site-c"],
}
# Physiologic ranges a value must fall in (inclusive).
RANGES = {
    "age": (18, 120),
    "bmi": (12.0, 80.0),
    "fasting_glucose": (40.0, 500.0),
    "hba1c": (3.0, 18.0),
    "systolic_bp": (60, 260),
    "diastolic_bp": (30, 160),
    "insulin": (0.0, 400.0),
    "pregnancies": (0, 25),
}
# What the de-identified table carries besides the features and the label.
DEIDENTIFIED_EXTRA = {
    "pseudonym": "str",
    "age_90_plus": "bool",
    "zip3": "str",
    "admission_year": "int64",
    "discharge_year": "int64",
}

RAW_COLUMNS = [*IDENTIFIERS, *FEATURES, LABEL]
DEIDENTIFIED_COLUMNS = [*DEIDENTIFIED_EXTRA, *FEATURES, LABEL]
_DECLARED = frozenset(RAW_COLUMNS) | frozenset(DEIDENTIFIED_COLUMNS)


# A header shaped like this is a column name, not a value: two or more lowercase words
# joined by underscores, no digits, spaces or punctuation (which names, MRNs, dates,
# phone numbers and addresses have).
_COLUMN_NAME = re.compile(r"^[a-z]+(_[a-z]+){1,5}$")


def _shown(position: int, column: object) -> str:
    """A column by its position, and by its name only when it is one of ours or shaped
    like a column name (a file whose header is a patient's row must not print it)."""
    if isinstance(column, str) and (column in _DECLARED or _COLUMN_NAME.match(column)):
        return f"{position} ({column})"
    return str(position)


def check(frame: pd.DataFrame, columns: list[str], kind: str) -> None:
    """Refuse unknown or missing columns, wrong types, bad categories and empty tables."""
    unknown = [(i, c) for i, c in enumerate(frame.columns, start=1) if c not in columns]
    if unknown:
        raise ConfigError(
            f"{kind} table has {len(unknown)} undeclared column(s), at position(s) "
            f"{', '.join(_shown(i, c) for i, c in unknown[:5])}; declare them in "
            "sandbox/schema.py or drop them"
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"{kind} table lacks column(s): {', '.join(missing)}")
    if frame.empty:
        raise ConfigError(f"{kind} table is empty")
    for column, dtype in FEATURES.items():
        series = frame[column]
        if dtype in ("int64", "float64") and not pd.api.types.is_numeric_dtype(series):
            raise ConfigError(f"column {column} must be numeric")
        if dtype == "bool" and not pd.api.types.is_bool_dtype(series):
            raise ConfigError(f"column {column} must be boolean")
        if column in CATEGORIES and not series.isin(CATEGORIES[column]).all():
            raise ConfigError(f"column {column} has values outside {CATEGORIES[column]}")
        if column in RANGES:
            low, high = RANGES[column]
            if series.isna().any() or not series.between(low, high).all():
                raise ConfigError(
                    f"column {column} has missing values or values outside {low}-{high}"
                )
    if not pd.api.types.is_bool_dtype(frame[LABEL]):
        raise ConfigError(f"column {LABEL} must be boolean")

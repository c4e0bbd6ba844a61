"""What the endpoint accepts: the model's twelve clinical features, nothing else.

The record model is built from the training features (`model.train.FEATURES`) and the
schema's physiologic ranges and categories (`sandbox.schema`), so the three cannot drift
apart. It is strict (no strings for numbers, no "yes" for true) and forbids extra fields:
a request that carries a name, an SSN, an MRN or a ZIP code is refused with 422, never
silently stripped, so a client that sends identifiers learns that it must not.

An invalid request is answered with the field and the rule it broke, never the value
that was sent: pydantic's own errors carry the input, and a field name the client made
up is itself input, so only declared feature and identifier names are ever repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from model.train import BOOLEAN, FEATURES, NUMERIC
from safeguards.phi import IDENTIFIER_FIELDS
from sandbox import schema

MAX_BATCH = 1000


def request_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's twelve features as request records, one JSON-ready dict per row (what a
    client sends; the demo, the tests and the benchmarks build their requests with it)."""
    return [
        {column: value.item() if hasattr(value, "item") else value for column, value in row.items()}
        for row in frame[FEATURES].to_dict(orient="records")
    ]


_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True, hide_input_in_errors=True)
# Names an error message may repeat: declared by us, so never something a client made up.
_NAMED = frozenset(FEATURES) | frozenset(schema.IDENTIFIERS) | IDENTIFIER_FIELDS | {"records"}


def _field(column: str) -> Any:
    if column in schema.CATEGORIES:
        return Literal[tuple(schema.CATEGORIES[column])], ...
    if schema.FEATURES[column] == "bool":
        return bool, ...
    low, high = schema.RANGES[column]
    kind = int if schema.FEATURES[column] == "int64" else float
    return Annotated[kind, Field(ge=low, le=high)], ...


Record: type[BaseModel] = create_model(
    "Record",
    __config__=_STRICT,
    __doc__="One patient's clinical features; identifiers and other fields are refused.",
    **{column: _field(column) for column in FEATURES},
)
Batch: type[BaseModel] = create_model(
    "Batch",
    __config__=_STRICT,
    __doc__=f"Up to {MAX_BATCH} records, scored in one call.",
    records=(list[Record], Field(min_length=1, max_length=MAX_BATCH)),  # type: ignore[valid-type]
)
# A valid record that is nobody's: each loaded version is scored on it before serving.
EXAMPLE: dict[str, object] = {
    "age": 50,
    "sex": "F",
    "bmi": 27.0,
    "fasting_glucose": 100.0,
    "hba1c": 5.6,
    "systolic_bp": 125,
    "diastolic_bp": 80,
    "insulin": 12.0,
    "pregnancies": 1,
    "family_history": False,
    "physical_activity": "moderate",
    "smoking": "never",
}
_DOUBLES = frozenset(NUMERIC + BOOLEAN)
_RECORD = TypeAdapter(Record)
_BATCH = TypeAdapter(Batch)


class Prediction(BaseModel):
    """The response to one record (documentation of the API; the body is built directly)."""

    model_version: str
    probability: float
    # Random, derived from nothing in the record: the caller keeps it to report the outcome.
    prediction_id: str


class Predictions(BaseModel):
    """The response to a batch, in the order of its records."""

    model_version: str
    probabilities: list[float]
    prediction_ids: list[str]


class InvalidInput(Exception):
    """A request body that is not a valid record or batch; `problems` name fields only."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the request body")
        self.problems = problems


def _where(loc: Sequence[int | str]) -> str:
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
        else:
            where += ("." if where else "") + (part if part in _NAMED else "<undeclared field>")
    return where or "body"


def problems(error: ValidationError) -> list[dict[str, str]]:
    """Each error as its field and rule, without the submitted value."""
    found = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        if item["type"] == "extra_forbidden":
            message = "is not a model feature; identifiers and other fields are refused"
        else:
            message = item["msg"]
        found.append({"field": _where(item["loc"]), "message": message})
    return found


def parse_record(body: bytes) -> list[BaseModel]:
    try:
        return [_RECORD.validate_json(body)]
    except ValidationError as exc:
        raise InvalidInput(problems(exc)) from None


def parse_batch(body: bytes) -> list[BaseModel]:
    try:
        return list(_BATCH.validate_json(body).records)  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise InvalidInput(problems(exc)) from None


def frame(records: Sequence[BaseModel]) -> pd.DataFrame:
    """The model's input, typed as in training (`model.train.features`): numbers and flags
    as doubles. Built column by column, about ten times faster than casting a frame."""
    return pd.DataFrame(
        {
            column: np.array(
                [getattr(r, column) for r in records],
                dtype=np.float64 if column in _DOUBLES else object,
            )
            for column in FEATURES
        }
    )

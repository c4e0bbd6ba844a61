"""What an endpoint accepts: its project contract's features, nothing else.

The request models are built from the contract (`RequestModels`): each feature with its
type, range or categories, missing only where the contract allows it. They are strict
(no strings for numbers, no "yes" for true) and forbid extra fields: a request that
carries a name, an SSN, an MRN or a ZIP code is refused with 422, never silently
stripped, so a client that sends identifiers learns that it must not.

A batch is refused whole when a record is invalid, or, with ``"on_invalid": "report"``,
answered per record: the valid ones scored, the invalid ones listed by index and rule.

An invalid request is answered with the field and the rule it broke, never the value
that was sent: pydantic's own errors carry the input, and a field name the client made
up is itself input, so only names the contract declares (and known identifier names)
are ever repeated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from contract import NUMERIC, Contract, Type
from safeguards.phi import IDENTIFIER_FIELDS

MAX_BATCH = 1000
# A batch with an invalid record: refused whole, or answered per record.
OnInvalid = Literal["refuse", "report"]
_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True, hide_input_in_errors=True)


class Prediction(BaseModel):
    """The response to one record."""

    model_version: str
    probability: float
    # Random, derived from nothing in the record: the caller keeps it to report the outcome.
    prediction_id: str


class Invalid(BaseModel):
    """A record of a batch that was not scored: its index and what was wrong."""

    index: int
    problems: list[dict[str, str]]


class Predictions(BaseModel):
    """The response to a batch, in the order of its records; with ``on_invalid: report``,
    an invalid record has no probability and is listed in `invalid`."""

    model_version: str
    probabilities: list[float | None]
    prediction_ids: list[str | None]
    invalid: list[Invalid] = []


class InvalidInput(Exception):
    """A request body that is not a valid record or batch; `problems` name fields only."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the request body")
        self.problems = problems


def request_records(frame: pd.DataFrame, contract: Contract) -> list[dict[str, Any]]:
    """A table's features as request records, one JSON-ready dict per row (what a client
    sends; the demo, the tests and the benchmarks build their requests with it)."""
    rows = frame[contract.features].astype(object).where(frame[contract.features].notna(), None)
    return [
        {column: value.item() if hasattr(value, "item") else value for column, value in row.items()}
        for row in rows.to_dict(orient="records")
    ]


def _field(contract: Contract, name: str) -> Any:
    column = contract.column(name)
    kind: Any
    if column.type == Type.CATEGORY:
        kind = Literal[tuple(column.categories or ())]
    elif column.type == Type.BOOLEAN:
        kind = bool
    else:
        low, high = column.range or (None, None)
        number = int if column.type == Type.INTEGER else float
        kind = Annotated[number, Field(ge=low, le=high)]
    description = " ".join(p for p in (column.description, column.unit and f"({column.unit})") if p)
    if column.missing:
        return Annotated[kind | None, Field(description=description)], None
    return Annotated[kind, Field(description=description)], ...


class RequestModels:
    """The record and batch one project's endpoint accepts, from its contract."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.record: type[BaseModel] = create_model(
            "Record",
            __config__=_STRICT,
            __doc__=f"One record of the contract's features ({contract.name}); identifiers "
            "and other fields are refused.",
            **{name: _field(contract, name) for name in contract.features},
        )
        self.batch: type[BaseModel] = create_model(
            "Batch",
            __config__=_STRICT,
            __doc__=f"Up to {MAX_BATCH} records, scored in one call; refused whole if one "
            "is invalid, unless on_invalid is report.",
            records=(list[self.record], Field(min_length=1, max_length=MAX_BATCH)),  # type: ignore[name-defined]
            on_invalid=(OnInvalid, "refuse"),
        )
        # Names an error message may repeat: declared, so never something a client made up.
        self.named = frozenset(contract.raw_columns) | IDENTIFIER_FIELDS | {"records", "on_invalid"}
        self._record = TypeAdapter(self.record)
        self._batch = TypeAdapter(self.batch)
        self._doubles = [
            c for c in contract.features if contract.column(c).type in {*NUMERIC, Type.BOOLEAN}
        ]
        self.example = self._record.validate_python(contract.example())

    def _where(self, loc: Sequence[int | str]) -> str:
        where = ""
        for part in loc:
            if isinstance(part, int):
                where += f"[{part}]"
            else:
                shown = part if part in self.named else "<undeclared field>"
                where += ("." if where else "") + shown
        return where or "body"

    def problems(
        self, error: ValidationError, prefix: tuple[int | str, ...] = ()
    ) -> list[dict[str, str]]:
        """Each error as its field and rule, without the submitted value."""
        found = []
        for item in error.errors(include_input=False, include_url=False, include_context=False):
            if item["type"] == "extra_forbidden":
                message = "is not a model feature; identifiers and other fields are refused"
            else:
                message = item["msg"]
            found.append({"field": self._where((*prefix, *item["loc"])), "message": message})
        return found

    def parse_record(self, body: bytes) -> BaseModel:
        try:
            return self._record.validate_json(body)
        except ValidationError as exc:
            raise InvalidInput(self.problems(exc)) from None

    def parse_batch(self, body: bytes) -> tuple[list[BaseModel | None], list[Invalid]]:
        """The batch's records in order; an invalid one is None and listed in the second
        element when the batch asks for a report, else the whole batch is refused."""
        try:
            return list(self._batch.validate_json(body).records), []  # type: ignore[attr-defined]
        except ValidationError as exc:
            refused = InvalidInput(self.problems(exc))
        try:
            envelope = json.loads(body)
        except ValueError:
            raise refused from None
        records = envelope.get("records") if isinstance(envelope, dict) else None
        if (
            not isinstance(records, list)
            or envelope.get("on_invalid") != "report"
            or set(envelope) - {"records", "on_invalid"}
            or not 1 <= len(records) <= MAX_BATCH
        ):
            raise refused
        parsed: list[BaseModel | None] = []
        invalid: list[Invalid] = []
        for index, record in enumerate(records):
            try:
                parsed.append(self._record.validate_python(record, strict=True))
            except ValidationError as exc:
                parsed.append(None)
                invalid.append(Invalid(index=index, problems=self.problems(exc)))
        return parsed, invalid

    def columns(self, records: Sequence[BaseModel]) -> dict[str, np.ndarray]:
        """The model's input, typed as in training (`contract.model_frame`), column by
        column: numbers and flags as doubles, a missing one as NaN. What an ONNX model
        takes as it is."""
        out = {}
        for name in self.contract.features:
            values = [getattr(r, name) for r in records]
            if name in self._doubles:
                out[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            else:
                out[name] = np.array(values, dtype=object)
        return out

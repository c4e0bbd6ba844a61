"""The endpoint's OpenAPI document, built from its project's contract.

Published at ``/openapi.json`` without a key, so clients and fuzzers can read what the
endpoint takes: the contract's features with their types, ranges and categories, the
batch envelope, the responses and the errors. It holds no data, only the contract's
declared names and rules, which every client of the project sees anyway.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.serving.inputs import MAX_BATCH, Prediction, Predictions, RequestModels


class Problem(BaseModel):
    """A field and the rule it broke; never the value that was sent."""

    field: str
    message: str


class Refused(BaseModel):
    """An invalid request: each problem names a field and a rule."""

    error: str
    problems: list[Problem]


class Error(BaseModel):
    """Any other error: what went wrong, never what was sent."""

    error: str


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def document(models: RequestModels, project: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `project`'s endpoint."""
    _, schemas = models_json_schema(
        [
            (model, "validation")
            for model in (models.record, models.batch, Prediction, Predictions, Refused, Error)
        ],
        ref_template="#/components/schemas/{model}",
    )
    keyed: dict[str, Any] = {"security": [{"apiKey": []}]}
    errors = {
        "401": _json("Error", "No key, or not a key"),
        "403": _json("Error", "A key of another project"),
        "413": _json("Error", "The body is over 1 MiB"),
        "422": _json("Refused", "Not valid input: each problem names a field and a rule"),
        "503": _json("Error", "No champion model is loaded (the project has none yet)"),
    }

    def predict(body: str, answer: str, summary: str) -> dict[str, Any]:
        return {
            "post": {
                **keyed,
                "summary": summary,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(body)}},
                },
                "responses": {"200": _json(answer, "Scored"), **errors},
            }
        }

    probe = {
        "description": "Status",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    contract = models.contract
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{project}: {contract.name}",
            "version": version,
            "description": f"{contract.intended_use}\n\nPredicts `{contract.label}`: "
            f"{contract.column(contract.label).meaning}. Every scoring route needs an API key "
            "of the project (`Authorization: Bearer <key>`).",
        },
        "paths": {
            "/v1/predict": predict("Record", "Prediction", "Score one record"),
            "/v1/predict/batch": predict(
                "Batch", "Predictions", f"Score up to {MAX_BATCH} records, in order"
            ),
            "/healthz": {"get": {"summary": "Alive", "responses": {"200": probe}}},
            "/readyz": {
                "get": {
                    "summary": "A champion is loaded and OpenBao answers",
                    "responses": {"200": probe, "503": probe},
                }
            },
            "/metrics": {
                "get": {
                    **keyed,
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {"description": "Metrics", "content": {"text/plain": {}}},
                        "401": errors["401"],
                        "403": errors["403"],
                    },
                }
            },
        },
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
    }

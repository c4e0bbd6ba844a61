from __future__ import annotations

import pytest

from safeguards import phi
from tests.canaries import CANARIES


@pytest.mark.parametrize("kind", list(CANARIES))
def test_each_identifier_pattern_is_found_and_scrubbed(kind: str) -> None:
    text = f"before {CANARIES[kind]} after"
    assert phi.find_identifiers(text)
    assert CANARIES[kind] not in phi.scrub(text)
    assert phi.scrub(text).startswith("before ")


@pytest.mark.parametrize(
    "text",
    ["model version 1.4.40 promoted", "auroc=0.8312 over 5000 rows", "port 8200", "seq 12345"],
)
def test_ordinary_operational_text_is_left_alone(text: str) -> None:
    assert phi.find_identifiers(text) == []
    assert phi.scrub(text) == text


def test_identifier_fields_are_dropped_whole_at_any_depth() -> None:
    value = {
        "rows": 3,
        "patient": {"first_name": "Ann", "zip": "02139", "age": 41},
        "batch": [{"mrn": "A1"}],
    }
    assert phi.scrub_value(value) == {
        "rows": 3,
        "patient": {"first_name": "[REDACTED]", "zip": "[REDACTED]", "age": 41},
        "batch": [{"mrn": "[REDACTED]"}],
    }

"""The data contract: what a valid one is, and tables read and checked against it with
errors that name rows and columns, never values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import contract as contracts
from safeguards.errors import ConfigError

DIABETES = contracts.parse(contracts.example("diabetes"))
BASE: dict[str, Any] = {
    "name": "clinic",
    "description": "d",
    "intended_use": "u",
    "columns": {
        "mrn": {"role": "identifier", "type": "string", "category": "mrn", "pseudonymize": True},
        "zip": {"role": "quasi_identifier", "type": "string", "kind": "zip"},
        "visit": {"role": "quasi_identifier", "type": "date", "kind": "date", "format": "%m/%d/%Y"},
        "glucose": {"role": "feature", "type": "number", "range": [20, 600], "source": "glu"},
        "age": {"role": "feature", "type": "integer", "kind": "age", "range": [0, 120]},
        "smoker": {"role": "feature", "type": "boolean"},
        "insulin": {"role": "feature", "type": "number", "range": [0, 900], "missing": True},
        "diabetic": {"role": "label", "type": "boolean", "meaning": "has type 2 diabetes"},
    },
}


def _contract(**columns: dict[str, Any] | None) -> dict[str, Any]:
    merged = {**BASE["columns"], **columns}
    return {**BASE, "columns": {k: v for k, v in merged.items() if v is not None}}


def test_the_shipped_examples_are_valid_and_differ() -> None:
    readmission = contracts.parse(contracts.example("readmission"))
    assert DIABETES.label == "diabetes_5y" and readmission.label == "readmitted_30d"
    assert not set(DIABETES.features) >= set(readmission.features)
    assert DIABETES.fingerprint != readmission.fingerprint
    assert contracts.parse(contracts.example("diabetes")).fingerprint == DIABETES.fingerprint


def test_what_de_identification_keeps_follows_from_the_roles() -> None:
    contract = contracts.Contract.model_validate(BASE)
    assert list(contract.deidentified_types) == [
        "pseudonym", "zip3", "visit_year", "age_90_plus",
        "glucose", "age", "smoker", "insulin", "diabetic",
    ]  # fmt: skip
    assert contract.never_model_inputs == {"mrn", "zip", "visit", "pseudonym", "zip3",
                                           "visit_year", "age_90_plus"}  # fmt: skip
    assert contract.sources == {"glu": "glucose"}


def _feature(kind: str, **more: Any) -> dict[str, Any]:
    return {"role": "feature", "type": kind, **more}


REFUSED = {
    "identifier-name": ({"zip_code": _feature("number", range=[0, 1])}, "named like an identifier"),
    "date-feature": ({"seen": _feature("date")}, "never a date"),
    "label-type": (
        {"diabetic": {"role": "label", "type": "category", "categories": ["y"], "meaning": "m"}},
        "label is a boolean",
    ),
    "label-meaning": ({"diabetic": {"role": "label", "type": "boolean"}}, "needs its meaning"),
    "category": ({"ssn": {"role": "identifier", "type": "string"}}, "Safe Harbor category"),
    "numeric-identifier": (
        {"ssn": {"role": "identifier", "type": "integer", "category": "ssn"}},
        "string, date or text",
    ),
    "derived-clash": ({"zip3": _feature("number", range=[0, 1])}, "clash: zip3"),
    "range": ({"glucose": _feature("number")}, "needs its range"),
    "categories": ({"bp": _feature("category")}, "distinct allowed values"),
    "no-label": ({"diabetic": None}, "exactly one label"),
    "unknown-field": ({"extra": _feature("boolean", color="red")}, "Extra inputs"),
}


@pytest.mark.parametrize(("columns", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_a_contract_that_could_leak_or_mislead_is_refused(
    columns: dict[str, Any], message: str
) -> None:
    text = json.dumps(_contract(**columns))
    with pytest.raises(ConfigError, match=message):
        contracts.parse(text)


def test_a_broken_file_is_named_with_its_line() -> None:
    with pytest.raises(ConfigError, match=r"team\.yaml is not valid YAML at line 3"):
        contracts.parse("name: x\ncolumns: [\n", "team.yaml")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


CSV = """mrn,zip,visit,glu,age,smoker,insulin,diabetic
0012345,02139,03/04/2025,101.5,44,no,,yes
0012346,00501,12/31/2024,180,91,Yes,12.5,false
"""


def test_a_csv_keeps_leading_zeros_and_parses_dates_with_their_format(tmp_path: Path) -> None:
    contract = contracts.Contract.model_validate(BASE)
    table, problems = contracts.read_table(
        _write(tmp_path / "t.csv", CSV), contract.columns, contract.sources
    )
    assert problems == []
    assert table["mrn"].tolist() == ["0012345", "0012346"]
    assert table["zip"].tolist() == ["02139", "00501"]
    assert table["visit"].tolist() == [pd.Timestamp("2025-03-04"), pd.Timestamp("2024-12-31")]
    assert table["smoker"].tolist() == [False, True]
    assert table["insulin"].isna().tolist() == [True, False]
    assert table["age"].dtype == "int64"


def test_a_mapping_renames_source_columns(tmp_path: Path) -> None:
    contract = contracts.Contract.model_validate(
        _contract(glucose={"role": "feature", "type": "number", "range": [20, 600]})
    )
    path = _write(tmp_path / "t.csv", CSV)
    with pytest.raises(ConfigError, match=r"does not declare, at position\(s\) 4;"):
        contracts.read_table(path, contract.columns)
    table, _ = contracts.read_table(path, contract.columns, {"glu": "glucose"})
    assert table["glucose"].tolist() == [101.5, 180.0]
    with pytest.raises(ConfigError, match=r"does not declare: glucos$"):
        contracts.read_table(path, contract.columns, {"glu": "glucos"})


def test_undeclared_columns_are_refused_by_position_only(tmp_path: Path) -> None:
    contract = contracts.Contract.model_validate(BASE)
    header, *rows = CSV.splitlines()
    # A file whose first line is a patient's row, not a header.
    text = "\n".join([f"{header},Jane Doe,078-05-1120", *(f"{r},x,y" for r in rows)]) + "\n"
    with pytest.raises(ConfigError) as caught:
        contracts.read_table(_write(tmp_path / "t.csv", text), contract.columns, contract.sources)
    message = str(caught.value)
    assert "2 column(s) the contract does not declare, at position(s) 9, 10" in message
    assert "Jane" not in message and "078-05-1120" not in message


def test_row_errors_name_the_row_and_column_never_the_value(tmp_path: Path) -> None:
    contract = contracts.Contract.model_validate(BASE)
    bad = (
        CSV.replace("101.5", "hundred").replace("00501", "501").replace("12/31/2024", "2024-12-31")
    )
    with pytest.raises(contracts.InvalidTable) as caught:
        contracts.read_table(_write(tmp_path / "t.csv", bad), contract.columns, contract.sources)
    assert [str(p) for p in caught.value.problems] == [
        "row 1, column glucose: not a number",
        "row 2, column zip: not a 5-digit ZIP code",
        "row 2, column visit: not a date (%m/%d/%Y)",
    ]
    assert not {"hundred", "501", "2024-12-31"} & set(str(caught.value).replace(",", " ").split())
    table, problems = contracts.read_table(
        _write(tmp_path / "t.csv", bad), contract.columns, contract.sources, report=True
    )
    assert len(table) == 2 and len(problems) == 3


def test_a_parquet_file_that_stored_ids_as_numbers_is_refused(tmp_path: Path) -> None:
    contract = contracts.Contract.model_validate(BASE)
    table, _ = contracts.read_table(
        _write(tmp_path / "t.csv", CSV), contract.columns, contract.sources
    )
    table.assign(zip=[2139, 501]).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(contracts.InvalidTable, match="column zip: must be text, not a number"):
        contracts.read_table(tmp_path / "t.parquet", contract.columns)
    table.to_parquet(tmp_path / "ok.parquet")
    again, _ = contracts.read_table(tmp_path / "ok.parquet", contract.columns)
    pd.testing.assert_frame_equal(again, table)


UNREADABLE = {
    "empty": ("", "missing or empty"),
    "ragged": ("a,b\n1\n1,2,3\n", "not a readable table"),
    "duplicate": ("a,a\n1,2\n", "repeats a column name, at position"),
}


@pytest.mark.parametrize(("text", "message"), UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_file_gets_one_line(tmp_path: Path, text: str, message: str) -> None:
    contract = contracts.Contract.model_validate(BASE)
    with pytest.raises(ConfigError, match=message):
        contracts.read_table(_write(tmp_path / "t.csv", text), contract.columns)


def test_model_frame_gives_doubles_and_text() -> None:
    frame = pd.DataFrame({f: [1] for f in DIABETES.features}).assign(
        sex="F", smoking="never", physical_activity="low", family_history=True
    )
    out = contracts.model_frame(frame, DIABETES)
    assert list(out.columns) == DIABETES.features
    assert out["family_history"].dtype == "float64"
    assert pd.api.types.is_string_dtype(out["sex"])

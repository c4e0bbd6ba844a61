"""Safe Harbor de-identification: no identifier survives, whatever the contract and input."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import contract as contracts
from safeguards.errors import ConfigError
from sandbox import deidentify, synth

KEY = b"unit-test pseudonym key"
DIABETES = contracts.parse(contracts.example("diabetes"))


def local_pseudonyms(values: list[str]) -> dict[str, str]:
    """A keyed stand-in for OpenBao's HMAC; the real one is tested in integration."""
    return {v: hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest()[:32] for v in set(values)}


ssns = st.builds(
    lambda a, g, n: f"{a:03d}-{g:02d}-{n:04d}",
    st.integers(1, 899),
    st.integers(1, 99),
    st.integers(1, 9999),
)
phones = st.builds(
    lambda a, b, c: f"({a}) {b}-{c:04d}",
    st.integers(201, 989),
    st.integers(200, 999),
    st.integers(0, 9999),
)
zips = st.one_of(
    st.sampled_from(sorted(deidentify.RESTRICTED_ZIP3)),
    st.integers(0, 999).map(lambda z: f"{z:03d}"),
).flatmap(lambda z3: st.integers(0, 99).map(lambda t: f"{z3}{t:02d}"))
names = st.from_regex(r"[A-Z][a-z]{2,9} [A-Z][a-z]{2,12}", fullmatch=True)
dates = st.dates(dt.date(1900, 1, 1), dt.date(2026, 12, 31))
mrns = st.integers(1_000_000, 99_999_999).map(lambda n: f"MRN{n:09d}")
emails = st.builds(
    lambda user, n: f"{user}.{n}@example.org",
    st.from_regex(r"[a-z]{3,8}", fullmatch=True),
    st.integers(1, 99),
)
# What each identifier category of a random contract holds: values an attacker would look
# for in the output.
VALUES: dict[contracts.Category, st.SearchStrategy[str]] = {
    contracts.Category.NAMES: names,
    contracts.Category.SSN: ssns,
    contracts.Category.MRN: mrns,
    contracts.Category.TELEPHONE: phones,
    contracts.Category.FAX: phones,
    contracts.Category.EMAIL: emails,
    contracts.Category.GEOGRAPHIC: st.builds(
        lambda n, s: f"{n} {s} Street", st.integers(1, 9999), names
    ),
    contracts.Category.HEALTH_PLAN: st.integers(0, 10**9).map(lambda n: f"HP-{n:010d}"),
    contracts.Category.ACCOUNT: st.integers(0, 10**9).map(lambda n: f"ACCT{n:010d}"),
    contracts.Category.URL: st.integers(0, 10**6).map(
        lambda n: f"https://portal.example.org/p/{n}"
    ),
    contracts.Category.IP: st.builds(
        lambda a, b: f"10.{a}.{b}.7", st.integers(0, 255), st.integers(0, 255)
    ),
}


@st.composite
def contract_tables(draw: st.DrawFn) -> tuple[contracts.Contract, pd.DataFrame, list[str]]:
    """A random contract, a raw table of it, and every identifier value the table holds."""
    rows = draw(st.integers(1, 12))
    columns: dict[str, dict[str, Any]] = {}
    data: dict[str, list[Any]] = {}
    secrets: list[str] = []
    categories = draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=5))
    pseudonymised = draw(st.sampled_from([None, *range(len(categories))]))
    for i, category in enumerate(categories):
        name = f"id_{i}"
        columns[name] = {"role": "identifier", "type": "string", "category": category.value}
        if i == pseudonymised:
            columns[name]["pseudonymize"] = True
        data[name] = draw(st.lists(VALUES[category], min_size=rows, max_size=rows))
        secrets += data[name]
    if draw(st.booleans()):
        columns["note"] = {"role": "identifier", "type": "text", "category": "other"}
        hidden = st.builds(
            lambda n, s, d: f"Seen {n}, SSN {s}, on {d:%m/%d/%Y}.", names, ssns, dates
        )
        data["note"] = draw(st.lists(hidden, min_size=rows, max_size=rows))
        secrets += data["note"]
    for i in range(draw(st.integers(0, 2))):
        columns[f"birth_{i}"] = {"role": "identifier", "type": "date", "category": "dates"}
        data[f"birth_{i}"] = [
            pd.Timestamp(d) for d in draw(st.lists(dates, min_size=rows, max_size=rows))
        ]
        secrets += [d.strftime("%Y-%m-%d") for d in data[f"birth_{i}"]]
    for i in range(draw(st.integers(0, 2))):
        columns[f"visit_{i}_date"] = {"role": "quasi_identifier", "type": "date", "kind": "date"}
        data[f"visit_{i}_date"] = [
            pd.Timestamp(d) for d in draw(st.lists(dates, min_size=rows, max_size=rows))
        ]
        secrets += [d.strftime("%Y-%m-%d") for d in data[f"visit_{i}_date"]]
    if draw(st.booleans()):
        columns["postcode"] = {"role": "quasi_identifier", "type": "string", "kind": "zip"}
        data["postcode"] = draw(st.lists(zips, min_size=rows, max_size=rows))
    age_role = draw(st.sampled_from(["feature", "quasi_identifier", None]))
    if age_role is not None:
        columns["age"] = {"role": age_role, "type": "integer", "kind": "age", "range": [0, 120]}
        data["age"] = draw(st.lists(st.integers(0, 120), min_size=rows, max_size=rows))
    columns["weight"] = {"role": "feature", "type": "number", "range": [1, 400]}
    data["weight"] = draw(st.lists(st.floats(1, 400), min_size=rows, max_size=rows))
    columns["outcome"] = {"role": "label", "type": "boolean", "meaning": "it happened"}
    data["outcome"] = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
    contract = contracts.Contract.model_validate(
        {"name": "random", "description": "d", "intended_use": "u", "columns": columns}
    )
    return contract, pd.DataFrame(data), secrets


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=contract_tables())
def test_for_any_contract_no_identifier_survives(
    case: tuple[contracts.Contract, pd.DataFrame, list[str]],
) -> None:
    contract, raw, secrets = case
    out, evidence = deidentify.deidentify(raw, contract, local_pseudonyms)

    assert list(out.columns) == list(contract.deidentified_types)
    identifiers = contract.with_role(contracts.Role.IDENTIFIER)
    assert not {c.name for c in identifiers} & set(out.columns)
    text = out.astype(str).to_csv(index=False)
    assert not [s for s in secrets if s in text]
    assert not [c for c in out.columns if pd.api.types.is_datetime64_any_dtype(out[c])]
    if "age" in out:
        assert (out["age"] <= 90).all()
        assert (out["age_90_plus"] == (raw["age"] >= 90)).all()
    if "postcode" in raw:
        restricted = raw["postcode"].str[:3].isin(deidentify.RESTRICTED_ZIP3)
        assert (out.loc[restricted, "postcode3"] == "000").all()
        assert (out.loc[~restricted, "postcode3"] == raw.loc[~restricted, "postcode"].str[:3]).all()
    assert all(v == 0 for v in evidence["residual_scan"].values())
    assert len(evidence["categories"]) == 18


def _raw(rows: int = 20) -> pd.DataFrame:
    return synth.add_identifiers(synth.seed_population(rows, seed=3), DIABETES, seed=3)


def test_the_diabetes_example_keeps_features_and_years_only() -> None:
    raw = _raw(200)
    out, evidence = deidentify.deidentify(raw, DIABETES, local_pseudonyms)
    kept = {"site", "diabetes_5y", "pseudonym", "zip3", "admission_year", "discharge_year"}
    assert set(out.columns) == {*DIABETES.features, *kept, "age_90_plus"}
    assert (out["admission_year"] == raw["admission_date"].dt.year).all()
    assert out["pseudonym"].nunique() == raw["mrn"].nunique()
    by_category = {c["category"]: c for c in evidence["categories"]}
    assert "pseudonym" in by_category["(H) medical record numbers"]["action"]
    assert by_category["(E) fax numbers"]["action"] == "not collected"
    assert evidence["contract"]["fingerprint"] == DIABETES.fingerprint


def test_a_table_without_dates_or_zip_codes_is_fine() -> None:
    contract = contracts.Contract.model_validate(
        {
            "name": "no-dates",
            "description": "d",
            "intended_use": "u",
            "columns": {
                "mrn": {"role": "identifier", "type": "string", "category": "mrn"},
                "glucose": {"role": "feature", "type": "number", "range": [0, 300]},
                "sick": {"role": "label", "type": "boolean", "meaning": "m"},
            },
        }
    )
    raw = pd.DataFrame({"mrn": ["007", "008"], "glucose": [90.0, 120.0], "sick": [False, True]})
    out, evidence = deidentify.deidentify(raw, contract, local_pseudonyms)
    assert list(out.columns) == ["glucose", "sick"]
    assert evidence["counts"]["identifier_values_removed"] == 2


def test_residual_scan_catches_an_identifier_left_behind() -> None:
    frame = pd.DataFrame({"pseudonym": ["a1"], "zip3": ["02139"], "note": ["call 617-555-0142"]})
    found = deidentify.residual_scan(frame, DIABETES)
    assert found["zip5"] == 1
    assert found["phone"] == 1
    assert found["identifier_column"] == 1


@pytest.mark.parametrize("column", ["patient_ssn", "insurance_id", "comments"])
def test_undeclared_columns_are_refused_not_passed_through(column: str) -> None:
    raw = _raw()
    raw[column] = "x"
    with pytest.raises(ConfigError, match="does not declare") as caught:
        deidentify.deidentify(raw, DIABETES, local_pseudonyms)
    assert column not in str(caught.value)


def test_a_header_that_is_a_patient_row_is_refused_without_repeating_it() -> None:
    raw = _raw()
    patient = raw.iloc[0]
    header = {c: str(patient[c]) for c in ("name", "ssn", "mrn")}
    renamed = raw.rename(columns={c: v for c, v in header.items()})
    with pytest.raises(ConfigError) as caught:
        deidentify.deidentify(renamed, DIABETES, local_pseudonyms)
    message = str(caught.value)
    assert "3 column(s) the contract does not declare, at position(s) 1, 2, 3" in message
    assert not any(value in message for value in header.values())


def test_a_missing_admission_date_names_the_row_not_a_value() -> None:
    raw = _raw()
    raw.loc[2, "admission_date"] = pd.NaT
    with pytest.raises(ConfigError, match=r"row 3, column admission_date: missing"):
        deidentify.deidentify(raw, DIABETES, local_pseudonyms)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["ssn"]), "lacks column"),
        (lambda f: f.iloc[0:0], "empty"),
        (lambda f: f.assign(bmi="heavy"), "bmi: not a number"),
        (lambda f: f.assign(hba1c=99.0), "hba1c: outside 3-18"),
        (lambda f: f.assign(sex="X"), "sex: not a declared category"),
        (lambda f: f.assign(admission_date="not a date"), "admission_date: not a date"),
        (lambda f: f.assign(zip="2139"), "zip: not a 5-digit ZIP code"),
    ],
    ids=["missing", "empty", "wrong-type", "out-of-range", "bad-category", "bad-date", "bad-zip"],
)
def test_bad_input_gets_a_clear_error_without_the_value(mutate: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        deidentify.deidentify(mutate(_raw()), DIABETES, local_pseudonyms)  # type: ignore[operator]
    assert not {"heavy", "99.0", "2139", "not a date"} & set(str(caught.value).split())


def test_evidence_html_renders_every_category() -> None:
    _, evidence = deidentify.deidentify(_raw(), DIABETES, local_pseudonyms)
    page = deidentify.evidence_html(evidence)
    assert page.count("<tr><td>") >= 18
    assert "MRN" not in page.replace("medical record numbers", "")

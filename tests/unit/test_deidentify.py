"""Safe Harbor de-identification: no identifier survives, whatever the input."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguards.errors import ConfigError
from sandbox import deidentify, schema, synth

KEY = b"unit-test pseudonym key"


def local_pseudonyms(values: list[str]) -> dict[str, str]:
    """A keyed stand-in for OpenBao's HMAC; the real one is tested in integration."""
    return {v: hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest()[:32] for v in set(values)}


digits = st.text("0123456789", min_size=1, max_size=1)
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
    st.sampled_from(sorted(synth.RESTRICTED_ZIP3)), st.integers(0, 999).map(lambda z: f"{z:03d}")
).flatmap(lambda z3: st.integers(0, 99).map(lambda t: f"{z3}{t:02d}"))
names = st.from_regex(r"[A-Z][a-z]{2,9} [A-Z][a-z]{2,12}", fullmatch=True)
dates = st.dates(dt.date(1900, 1, 1), dt.date(2026, 12, 31))


@st.composite
def raw_rows(draw: st.DrawFn) -> dict[str, object]:
    name, ssn, phone, dob = draw(names), draw(ssns), draw(phones), draw(dates)
    mrn = f"MRN{draw(st.integers(10_000_000, 99_999_999))}"
    email = f"{name.split()[0].lower()}.{draw(st.integers(1, 99))}@example.org"
    admission = draw(st.dates(dt.date(2020, 1, 1), dt.date(2026, 12, 31)))
    note = draw(
        st.sampled_from(
            [
                f"Pt {name} ({mrn}) DOB {dob:%m/%d/%Y}, call {phone}.",
                f"SSN {ssn}; e-mail {email}; seen {admission.isoformat()}",
                "no identifiers here",
            ]
        )
    )
    return {
        "name": name,
        "ssn": ssn,
        "mrn": mrn,
        "street_address": f"{draw(st.integers(1, 9999))} Main St",
        "city": draw(st.sampled_from(["Springfield", "Shelbyville"])),
        "zip": draw(zips),
        "phone": phone,
        "email": email,
        "date_of_birth": pd.Timestamp(dob),
        "admission_date": pd.Timestamp(admission),
        "discharge_date": pd.Timestamp(admission) + pd.Timedelta(days=draw(st.integers(0, 30))),
        "note": note,
        "age": draw(st.integers(18, 120)),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(raw_rows(), min_size=1, max_size=25))
def test_no_identifier_survives(rows: list[dict[str, object]]) -> None:
    clinical = synth.seed_population(len(rows), seed=1).drop(columns=["age"])
    raw = pd.concat([pd.DataFrame(rows), clinical], axis=1)[schema.RAW_COLUMNS]
    out, evidence = deidentify.deidentify(raw, local_pseudonyms)

    assert not set(schema.IDENTIFIERS) & set(out.columns)
    text = out.astype(str).to_csv(index=False)
    for row in rows:
        for column in ("name", "ssn", "mrn", "phone", "email", "street_address", "note"):
            assert str(row[column]) not in text
        assert row["date_of_birth"].strftime("%Y-%m-%d") not in text  # type: ignore[attr-defined]
    assert (out["age"] <= 90).all()
    assert (out["age_90_plus"] == (raw["age"] >= 90)).all()
    restricted = raw["zip"].str[:3].isin(synth.RESTRICTED_ZIP3)
    assert (out.loc[restricted, "zip3"] == "000").all()
    assert (out.loc[~restricted, "zip3"] == raw.loc[~restricted, "zip"].str[:3]).all()
    assert all(v == 0 for v in evidence["residual_scan"].values())
    assert len(evidence["categories"]) == 18


def test_residual_scan_catches_an_identifier_left_behind() -> None:
    frame = pd.DataFrame({"pseudonym": ["a1"], "zip3": ["02139"], "note": ["call 617-555-0142"]})
    found = deidentify.residual_scan(frame)
    assert found["zip5"] == 1
    assert found["phone"] == 1
    assert found["identifier_column"] == 1


def _raw(rows: int = 20) -> pd.DataFrame:
    return synth.add_identifiers(synth.seed_population(rows, seed=3), seed=3)


@pytest.mark.parametrize("column", ["patient_ssn", "insurance_id", "comments"])
def test_undeclared_columns_are_refused_not_passed_through(column: str) -> None:
    raw = _raw()
    raw[column] = "x"
    with pytest.raises(ConfigError, match="undeclared column"):
        deidentify.deidentify(raw, local_pseudonyms)


def test_a_header_that_is_a_patient_row_is_refused_without_repeating_it() -> None:
    raw = _raw()
    patient = raw.iloc[0]
    header = {c: str(patient[c]) for c in ("name", "ssn", "mrn")}
    renamed = raw.rename(columns={c: v for c, v in header.items()})
    with pytest.raises(ConfigError) as caught:
        deidentify.deidentify(renamed, local_pseudonyms)
    message = str(caught.value)
    assert "3 undeclared column(s), at position(s)" in message
    assert not any(value in message for value in header.values())


def test_a_missing_admission_date_names_the_row_not_a_value() -> None:
    raw = _raw()
    raw.loc[2, "admission_date"] = pd.NaT
    with pytest.raises(
        ConfigError, match=r"admission_date is missing in 1 row\(s\), first at row\(s\) 3"
    ):
        deidentify.deidentify(raw, local_pseudonyms)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["ssn"]), "lacks column"),
        (lambda f: f.iloc[0:0], "empty"),
        (lambda f: f.assign(bmi="heavy"), "numeric"),
        (lambda f: f.assign(hba1c=99.0), "outside"),
        (lambda f: f.assign(sex="X"), "outside"),
        (lambda f: f.assign(admission_date="not a date"), "dates"),
    ],
    ids=["missing", "empty", "wrong-type", "out-of-range", "bad-category", "bad-date"],
)
def test_bad_input_gets_a_clear_error(mutate: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        deidentify.deidentify(mutate(_raw()), local_pseudonyms)  # type: ignore[operator]


def test_evidence_html_renders_every_category() -> None:
    _, evidence = deidentify.deidentify(_raw(), local_pseudonyms)
    page = deidentify.evidence_html(evidence)
    assert page.count("<tr><td>") >= 18
    assert "MRN" not in page.replace("medical record numbers", "")

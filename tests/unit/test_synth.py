"""Synthetic tables of any contract: seeded, typed as the contract says, privacy-gated."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import contract as contracts
from model import train
from safeguards.errors import ConfigError, GateRefused
from sandbox import deidentify, synth

DIABETES = contracts.parse(contracts.example("diabetes"))
READMISSION = contracts.parse(contracts.example("readmission"))


def _pseudonyms(values: list[str]) -> dict[str, str]:
    return {v: hashlib.sha256(v.encode()).hexdigest()[:32] for v in values}


@pytest.mark.parametrize("contract", [DIABETES, READMISSION], ids=["diabetes", "readmission"])
def test_same_seed_same_rows_of_the_contract(contract: contracts.Contract) -> None:
    one, report = synth.synthesize(contract, 2000, seed=5)
    two, _ = synth.synthesize(contract, 2000, seed=5)
    assert one.equals(two)
    assert list(one.columns) == contract.raw_columns
    contracts.conform(one, contract.columns)
    assert report["exact_copy_rate"] == 0.0


def test_a_contract_without_a_generator_of_its_own_still_trains_a_model() -> None:
    raw, _ = synth.synthesize(READMISSION, 6000, seed=1)
    out, _ = deidentify.deidentify(raw, READMISSION, _pseudonyms)
    assert out["hemoglobin"].isna().any()
    config = train.TrainConfig()
    rows, held_out = train.split(out, READMISSION, config)
    evaluation = train.evaluate(train.fit(rows, READMISSION, config), held_out, READMISSION)
    assert evaluation.auroc > 0.7


def test_a_twin_mirrors_a_deidentified_dataset_with_new_identifiers() -> None:
    raw, _ = synth.synthesize(DIABETES, 4000, seed=2)
    source, _ = deidentify.deidentify(raw, DIABETES, _pseudonyms)
    twin, report = synth.twin(source, DIABETES, 3000, seed=9)
    assert list(twin.columns) == DIABETES.raw_columns
    for identifier in ("mrn", "ssn", "phone"):
        assert twin[identifier].isin(raw[identifier]).mean() < 0.01
    assert set(twin["zip"].str[:3]) <= set(source["zip3"]) | deidentify.RESTRICTED_ZIP3
    assert set(twin["admission_date"].dt.year) <= set(source["admission_year"])
    assert abs(twin["hba1c"].mean() - source["hba1c"].mean()) < 0.1
    assert abs(twin["diabetes_5y"].mean() - source["diabetes_5y"].mean()) < 0.03
    assert report["dcr_ratio"] > 0.7


def test_sdv_needs_its_opt_in_extra() -> None:
    pytest.importorskip("sdv", reason="SDV is an opt-in extra (Business Source License 1.1)")
    raw, _ = synth.synthesize(DIABETES, 2000, seed=2)
    source, _ = deidentify.deidentify(raw, DIABETES, _pseudonyms)
    twin, report = synth.twin(source, DIABETES, 1000, seed=3, model="sdv")
    contracts.conform(twin, DIABETES.columns)
    assert report["exact_copy_rate"] <= 0.01


def test_without_sdv_its_synthesizer_says_how_to_get_it() -> None:
    try:
        import sdv  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="Business Source License"):
            synth.synthesize(DIABETES, 100, model="sdv")
    else:
        pytest.skip("SDV is installed here")


def test_label_follows_clinical_risk() -> None:
    frame = synth.seed_population(20_000, seed=1)
    high = frame[(frame["hba1c"] >= 6.0) & (frame["fasting_glucose"] >= 110)]
    low = frame[(frame["hba1c"] < 5.4) & (frame["fasting_glucose"] < 95)]
    assert high["diabetes_5y"].mean() > 3 * low["diabetes_5y"].mean()
    assert 0.05 < frame["diabetes_5y"].mean() < 0.3


@pytest.mark.parametrize(
    ("cohort", "column", "shift"), [("older", "age", 10), ("higher-bmi", "bmi", 4)]
)
def test_cohorts_shift_the_population(cohort: str, column: str, shift: float) -> None:
    base = synth.synthesize(DIABETES, 5000, "baseline", seed=2)[0]
    moved = synth.synthesize(DIABETES, 5000, cohort, seed=2)[0]
    assert moved[column].mean() > base[column].mean() + shift


def test_site_cohort_is_another_site() -> None:
    frame = synth.synthesize(DIABETES, 2000, "site-c", seed=2)[0]
    assert set(frame["site"]) == {"site-c"}


def test_cohorts_are_the_diabetes_examples_own() -> None:
    with pytest.raises(ConfigError, match="diabetes example only"):
        synth.synthesize(READMISSION, 100, "older")


def test_privacy_gate_refuses_copies_and_near_copies() -> None:
    seed = synth.seed_population(4000, seed=4)
    with pytest.raises(GateRefused, match="copy a seed row"):
        synth.privacy_gate(seed, seed.sample(2000, random_state=1))
    near = seed.copy()
    near["bmi"] = near["bmi"] + np.random.default_rng(0).normal(0, 0.01, len(near))
    with pytest.raises(GateRefused, match="as close"):
        synth.privacy_gate(seed, near)


def test_unknown_cohort_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown cohort"):
        synth.seed_population(10, "martians")

from __future__ import annotations

import numpy as np
import pytest

from safeguards.errors import ConfigError, GateRefused
from sandbox import schema, synth


def test_same_seed_same_rows_and_schema() -> None:
    one, report = synth.synthesize(2000, "baseline", seed=5)
    two, _ = synth.synthesize(2000, "baseline", seed=5)
    assert one.equals(two)
    assert list(one.columns) == schema.RAW_COLUMNS
    schema.check(one, schema.RAW_COLUMNS, "raw")
    assert report["exact_copy_rate"] == 0.0


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
    base = synth.synthesize(5000, "baseline", seed=2)[0]
    moved = synth.synthesize(5000, cohort, seed=2)[0]
    assert moved[column].mean() > base[column].mean() + shift


def test_site_cohort_is_another_site() -> None:
    frame = synth.synthesize(2000, "site-c", seed=2)[0]
    assert set(frame["site"]) == {"site-c"}


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

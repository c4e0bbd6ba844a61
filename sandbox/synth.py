"""Synthetic, PHI-shaped diabetes patients, seeded and reproducible.

Three steps, as a team would run them on real data:

1. `seed_population` draws a clinically plausible population from a structural model
   (age drives blood pressure and glucose, BMI drives insulin resistance, and the
   five-year onset label follows a logistic risk model), shifted by a named cohort.
2. `GaussianCopula` learns the joint distribution of that seed and samples any number of
   new rows: empirical marginals, correlations of normal scores.
3. `privacy_gate` refuses a synthetic set that copies seed rows or sits too close to them.

Identifiers are added last by `add_identifiers`, from Faker's locale data, vectorised.
(SDV, RDT and Copulas are under the Business Source License, so the copula is ours:
numpy and scipy only.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from faker import Faker
from scipy import stats
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from safeguards.errors import ConfigError, GateRefused
from sandbox.schema import CATEGORIES, FEATURES, LABEL, RANGES, RAW_COLUMNS

# How each named cohort shifts the population: added years of age, added BMI, a site.
COHORTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "older": {"age": 15.0},
    "higher-bmi": {"bmi": 6.0},
    "site-c": {"site": "site-c", "smoking_current": 0.35},
}


def seed_population(rows: int, cohort: str = "baseline", seed: int = 0) -> pd.DataFrame:
    """Clinical features and label for `rows` patients of `cohort`."""
    if cohort not in COHORTS:
        raise ConfigError(f"unknown cohort; cohorts are {', '.join(COHORTS)}")
    if rows < 1:
        raise ConfigError("rows must be at least 1")
    shift = COHORTS[cohort]
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], rows)
    age = np.clip(rng.gamma(9.0, 5.5, rows) + 12 + float(shift.get("age", 0.0)), 18, 104)
    bmi = np.clip(rng.lognormal(np.log(27.5), 0.18, rows) + float(shift.get("bmi", 0.0)), 15, 70)
    activity = rng.choice(CATEGORIES["physical_activity"], rows, p=[0.4, 0.4, 0.2])
    p_current = float(shift.get("smoking_current", 0.15))
    smoking = rng.choice(CATEGORIES["smoking"], rows, p=[0.85 - p_current, 0.15, p_current])
    family = rng.random(rows) < 0.3
    site = (
        np.full(rows, shift["site"])
        if "site" in shift
        else rng.choice(["site-a", "site-b"], rows, p=[0.6, 0.4])
    )
    inactive = (activity == "low").astype(float)
    latent = (
        0.035 * (age - 50)
        + 0.09 * (bmi - 27)
        + 0.8 * family
        + 0.4 * inactive
        + rng.normal(0, 1, rows)
    )
    glucose = np.clip(92 + 9 * latent + rng.normal(0, 8, rows), 60, 300)
    hba1c = np.clip(5.3 + 0.28 * latent + rng.normal(0, 0.25, rows), 4.0, 13.0)
    systolic = np.clip(
        112 + 0.45 * (age - 40) + 0.6 * (bmi - 27) + rng.normal(0, 12, rows), 85, 220
    )
    diastolic = np.clip(0.55 * systolic + rng.normal(8, 7, rows), 45, 130)
    insulin = np.clip(rng.lognormal(np.log(9 + 0.6 * np.maximum(bmi - 22, 0)), 0.35), 2, 300)
    pregnancies = np.where(sex == "F", rng.poisson(1.6, rows), 0)
    logit = (
        -3.1
        + 0.045 * (glucose - 100)
        + 0.9 * (hba1c - 5.6)
        + 0.06 * (bmi - 27)
        + 0.5 * family
        + 0.02 * (age - 50)
        + 0.25 * (smoking == "current")
    )
    label = rng.random(rows) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "age": age.round().astype("int64"),
            "sex": sex,
            "bmi": bmi.round(1),
            "fasting_glucose": glucose.round(0),
            "hba1c": hba1c.round(1),
            "systolic_bp": systolic.round().astype("int64"),
            "diastolic_bp": diastolic.round().astype("int64"),
            "insulin": insulin.round(1),
            "pregnancies": pregnancies.astype("int64"),
            "family_history": family,
            "physical_activity": activity,
            "smoking": smoking,
            "site": site,
            LABEL: label,
        }
    )
    return frame[[*FEATURES, LABEL]]


class GaussianCopula:
    """Empirical marginals joined by a Gaussian copula; categories by frequency bands."""

    def fit(self, frame: pd.DataFrame) -> GaussianCopula:
        self.columns = list(frame.columns)
        self.dtypes = frame.dtypes.to_dict()
        self.categories: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.quantiles: dict[str, np.ndarray] = {}
        uniforms = np.empty((len(frame), len(self.columns)))
        rng = np.random.default_rng(0)
        for i, column in enumerate(self.columns):
            values = frame[column].to_numpy()
            if frame[column].dtype.kind in "biuf" and frame[column].dtype.kind != "b":
                self.quantiles[column] = np.quantile(values.astype(float), np.linspace(0, 1, 1001))
                uniforms[:, i] = (stats.rankdata(values) - 0.5) / len(values)
            else:
                levels, counts = np.unique(values, return_counts=True)
                bounds = np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])
                self.categories[column] = (levels, bounds)
                index = np.searchsorted(levels, values)
                low, high = bounds[index], bounds[index + 1]
                uniforms[:, i] = low + (high - low) * rng.uniform(0.05, 0.95, len(values))
        self.correlation = np.corrcoef(stats.norm.ppf(uniforms), rowvar=False)
        return self

    def sample(self, rows: int, seed: int = 0) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        normal = rng.multivariate_normal(
            np.zeros(len(self.columns)), self.correlation, rows, method="cholesky"
        )
        uniform = stats.norm.cdf(normal)
        out: dict[str, np.ndarray] = {}
        for i, column in enumerate(self.columns):
            if column in self.categories:
                levels, bounds = self.categories[column]
                index = np.clip(
                    np.searchsorted(bounds, uniform[:, i], side="right") - 1, 0, len(levels) - 1
                )
                out[column] = levels[index]
            else:
                grid = np.linspace(0, 1, len(self.quantiles[column]))
                out[column] = np.interp(uniform[:, i], grid, self.quantiles[column])
        frame = pd.DataFrame(out)
        for column, dtype in self.dtypes.items():
            if dtype.kind in "iu":
                frame[column] = frame[column].round().astype(dtype)
            elif dtype.kind == "f":
                frame[column] = frame[column].round(1)
            elif dtype.kind == "b":
                frame[column] = frame[column].astype(bool)
        for column, (low, high) in RANGES.items():
            if column in frame:
                frame[column] = frame[column].clip(low, high)
        if {"sex", "pregnancies"} <= set(frame.columns):
            frame.loc[frame["sex"] == "M", "pregnancies"] = 0
        return frame


@dataclass(frozen=True)
class PrivacyBounds:
    max_exact_copy_rate: float = 0.01
    # Median distance from a synthetic row to its closest seed row, relative to the same
    # distance for held-out seed rows (what a fresh, independent patient looks like).
    min_dcr_ratio: float = 0.7


def _encode(frame: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    numeric = [
        c
        for c in reference.columns
        if c not in CATEGORIES and c != LABEL and reference[c].dtype.kind in "iuf"
    ]
    scaled = (frame[numeric] - reference[numeric].mean()) / reference[numeric].std()
    parts = [scaled.to_numpy()]
    discrete = [c for c in reference.columns if c in CATEGORIES or reference[c].dtype.kind == "b"]
    for column in discrete:
        levels = np.unique(reference[column].to_numpy())
        parts.append((frame[column].to_numpy()[:, None] == levels[None, :]).astype(float))
    return np.hstack(parts)


def privacy_gate(
    seed: pd.DataFrame,
    synthetic: pd.DataFrame,
    bounds: PrivacyBounds = PrivacyBounds(),
    sample: int = 5000,
    random_state: int = 0,
) -> dict[str, float]:
    """Exact-copy rate and distance to closest record; GateRefused if out of bounds."""
    rng = np.random.default_rng(random_state)
    half = len(seed) // 2
    order = rng.permutation(len(seed))
    train, holdout = seed.iloc[order[:half]], seed.iloc[order[half:]]
    synth = synthetic.iloc[rng.permutation(len(synthetic))[:sample]]
    keys = pd.MultiIndex.from_frame(seed.astype(str))
    exact = float(pd.MultiIndex.from_frame(synth.astype(str)).isin(keys).mean())
    index = NearestNeighbors(n_neighbors=1).fit(_encode(train, seed))
    dcr_synth = float(np.median(index.kneighbors(_encode(synth, seed))[0]))
    dcr_holdout = float(np.median(index.kneighbors(_encode(holdout.iloc[:sample], seed))[0]))
    report = {
        "exact_copy_rate": exact,
        "median_dcr_synthetic": dcr_synth,
        "median_dcr_holdout": dcr_holdout,
        "dcr_ratio": dcr_synth / dcr_holdout if dcr_holdout else 0.0,
        "max_exact_copy_rate": bounds.max_exact_copy_rate,
        "min_dcr_ratio": bounds.min_dcr_ratio,
    }
    if exact > bounds.max_exact_copy_rate:
        raise GateRefused(
            f"privacy gate: {exact:.2%} of synthetic rows copy a seed row "
            f"(bound {bounds.max_exact_copy_rate:.2%})"
        )
    if report["dcr_ratio"] < bounds.min_dcr_ratio:
        raise GateRefused(
            f"privacy gate: synthetic rows sit {report['dcr_ratio']:.2f}x as close "
            f"to seed rows as new patients do (bound {bounds.min_dcr_ratio})"
        )
    return report


def _pool(values: Iterable[str]) -> np.ndarray:
    return np.array(sorted(values))


def add_identifiers(clinical: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """PHI-shaped identifiers for every row, drawn from Faker's en_US data, seeded."""
    from faker.providers.person.en_US import Provider as Person

    rows = len(clinical)
    rng = np.random.default_rng(seed + 1)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    female = rng.choice(_pool(Person.first_names_female), rows)
    male = rng.choice(_pool(Person.first_names_male), rows)
    first = np.where(clinical["sex"].to_numpy() == "F", female, male)
    last = rng.choice(_pool(Person.last_names), rows)
    cities = np.array([fake.city() for _ in range(400)])
    streets = np.array([fake.street_name() for _ in range(400)])
    zip3 = rng.integers(10, 999, rows)
    restricted = np.array([int(z) for z in RESTRICTED_ZIP3])
    zip3 = np.where(rng.random(rows) < 0.03, rng.choice(restricted, rows), zip3)
    admission = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 1000, rows), unit="D")
    stay = pd.to_timedelta(rng.integers(1, 15, rows), unit="D")
    birth = admission - pd.to_timedelta(
        clinical["age"].to_numpy() * 365.25 + rng.integers(0, 365, rows), unit="D"
    )
    area = rng.integers(1, 899, rows)
    area = np.where(area == 666, 667, area)
    mrn = 10_000_000 + rng.permutation(rows)
    s = pd.Series
    frame = clinical.copy()
    frame["name"] = s(first) + " " + s(last)
    frame["ssn"] = [
        f"{a:03d}-{g:02d}-{n:04d}"
        for a, g, n in zip(
            area, rng.integers(1, 99, rows), rng.integers(1, 9999, rows), strict=True
        )
    ]
    frame["mrn"] = [f"MRN{m}" for m in mrn]
    frame["street_address"] = (
        s(rng.integers(1, 9999, rows).astype(str)) + " " + s(rng.choice(streets, rows))
    )
    frame["city"] = rng.choice(cities, rows)
    frame["zip"] = [f"{z:03d}{t:02d}" for z, t in zip(zip3, rng.integers(0, 99, rows), strict=True)]
    frame["phone"] = [
        f"({a}) {b}-{c:04d}"
        for a, b, c in zip(
            rng.integers(201, 989, rows),
            rng.integers(200, 999, rows),
            rng.integers(0, 9999, rows),
            strict=True,
        )
    ]
    frame["email"] = (
        s(first).str.lower()
        + "."
        + s(last).str.lower()
        + s(rng.integers(1, 99, rows).astype(str))
        + "@example.org"
    )
    frame["date_of_birth"] = birth.normalize()
    frame["admission_date"] = admission
    frame["discharge_date"] = admission + stay
    frame["note"] = (
        "Pt "
        + frame["name"]
        + " ("
        + frame["mrn"]
        + ") DOB "
        + frame["date_of_birth"].dt.strftime("%m/%d/%Y")
        + ", call "
        + frame["phone"]
        + ". Fasting glucose "
        + frame["fasting_glucose"].astype(str)
        + " mg/dL."
    )
    return frame[RAW_COLUMNS]


# Three-digit ZIP areas with 20,000 or fewer people (HHS Safe Harbor guidance, 2000 census).
RESTRICTED_ZIP3 = frozenset(
    {
        "036",
        "059",
        "063",
        "102",
        "203",
        "556",
        "692",
        "790",
        "821",
        "823",
        "830",
        "831",
        "878",
        "879",
        "884",
        "890",
        "893",
    }
)


def synthesize(
    rows: int, cohort: str = "baseline", seed: int = 0, seed_rows: int = 5000
) -> tuple[pd.DataFrame, dict[str, float]]:
    """A privacy-gated synthetic raw table of `rows` patients, and the gate's report.

    The copula carries the features' joint distribution; a copula keeps only monotone
    dependence, which blurs a binary outcome, so the label is drawn from a logistic model
    of the seed's outcome given the sampled features.
    """
    seed_frame = seed_population(seed_rows, cohort, seed)
    clinical = seed_frame.drop(columns=[LABEL])
    synthetic = GaussianCopula().fit(clinical).sample(rows, seed=seed + 7)
    outcome = _outcome_model(clinical, seed_frame[LABEL])
    draws = np.random.default_rng(seed + 11).random(rows)
    synthetic[LABEL] = draws < outcome.predict_proba(synthetic)[:, 1]
    report = privacy_gate(seed_frame, synthetic, random_state=seed)
    return add_identifiers(synthetic, seed), report


def _outcome_model(clinical: pd.DataFrame, label: pd.Series) -> Pipeline:
    discrete = [c for c in clinical.columns if c in CATEGORIES]
    numeric = [c for c in clinical.columns if c not in CATEGORIES]
    encode = ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            ("discrete", OneHotEncoder(handle_unknown="ignore"), discrete),
        ]
    )
    model = Pipeline([("encode", encode), ("outcome", LogisticRegression(max_iter=1000))])
    return model.fit(clinical, label.astype(int))

"""Synthetic, PHI-shaped tables for any contract, seeded, reproducible and privacy-gated.

Three steps, as a team would run them on real data:

1. a seed population: for the shipped diabetes example, `seed_population` draws clinically
   plausible patients from a structural model (age drives blood pressure and glucose, BMI
   insulin resistance, a logistic model the five-year onset) for a named cohort; for any
   other contract `contract_population` draws each feature within its declared values
   and a label from a random logistic model (plumbing data, no clinical meaning); or,
   with `twin`, the rows of a de-identified dataset version, so the sandbox mirrors a
   team's real table with synthetic rows;
2. a `Synthesizer` learns that seed's joint distribution and samples new rows: our
   `GaussianCopula` by default, SDV's (an opt-in extra under the Business Source License
   1.1) where installed; the label is drawn from a logistic model of the seed's outcome,
   since a copula blurs a binary outcome;
3. `privacy_gate` refuses a set that copies seed rows or sits too close to them.

Identifiers are added last by `add_identifiers`, one generator per Safe Harbor category
of the contract's columns, from Faker's locale data, vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from faker import Faker
from scipy import stats
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from contract import NUMERIC, PSEUDONYM, Category, Column, Contract, Kind, Role, Type, conform
from safeguards.errors import ConfigError, GateRefused
from sandbox.deidentify import RESTRICTED_ZIP3

# How each named cohort of the diabetes example shifts it: years of age, BMI, a site.
COHORTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "older": {"age": 15.0},
    "higher-bmi": {"bmi": 6.0},
    "site-c": {"site": "site-c", "smoking_current": 0.35},
}
# The columns the diabetes example's structural model draws.
DIABETES = (
    "age",
    "sex",
    "bmi",
    "fasting_glucose",
    "hba1c",
    "systolic_bp",
    "diastolic_bp",
    "insulin",
    "pregnancies",
    "family_history",
    "physical_activity",
    "smoking",
    "site",
    "diabetes_5y",
)
SYNTHESIZERS = ("copula", "sdv")


class Synthesizer(Protocol):
    """Learns a table's joint distribution; samples new rows of the same columns."""

    def fit(self, frame: pd.DataFrame) -> Synthesizer: ...
    def sample(self, rows: int, seed: int = 0) -> pd.DataFrame: ...


def synthesizer(name: str) -> Synthesizer:
    if name == "copula":
        return GaussianCopula()
    if name == "sdv":
        return SDVCopula()
    raise ConfigError(f"unknown synthesizer; synthesizers are {', '.join(SYNTHESIZERS)}")


def is_diabetes_example(contract: Contract) -> bool:
    """Whether the contract's clinical columns are the ones the structural model draws."""
    return sorted([*contract.features, contract.site or "", contract.label]) == sorted(DIABETES)


def seed_population(rows: int, cohort: str = "baseline", seed: int = 0) -> pd.DataFrame:
    """The diabetes example's clinical features, site and label for `rows` patients of
    `cohort`."""
    if cohort not in COHORTS:
        raise ConfigError(f"unknown cohort; cohorts are {', '.join(COHORTS)}")
    if rows < 1:
        raise ConfigError("rows must be at least 1")
    shift = COHORTS[cohort]
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], rows)
    age = np.clip(rng.gamma(9.0, 5.5, rows) + 12 + float(shift.get("age", 0.0)), 18, 104)
    bmi = np.clip(rng.lognormal(np.log(27.5), 0.18, rows) + float(shift.get("bmi", 0.0)), 15, 70)
    activity = rng.choice(["low", "moderate", "high"], rows, p=[0.4, 0.4, 0.2])
    p_current = float(shift.get("smoking_current", 0.15))
    smoking = rng.choice(
        ["never", "former", "current"], rows, p=[0.85 - p_current, 0.15, p_current]
    )
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
    return pd.DataFrame(
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
            "diabetes_5y": label,
        }
    )


def contract_population(contract: Contract, rows: int, seed: int = 0) -> pd.DataFrame:
    """Features, site and label of `rows` records drawn from the contract alone: numbers
    skewed towards the low end of their range, categories with random weights, a few
    values missing where allowed, and a label from a random logistic model of them."""
    if rows < 1:
        raise ConfigError("rows must be at least 1")
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    signal = np.zeros(rows)
    values: Any
    for column in contract.with_role(Role.FEATURE, Role.SITE):
        if column.type in NUMERIC and column.range is not None:
            low, high = column.range
            values = low + (high - low) * rng.beta(2.0, 5.0, rows)
            values = values.round() if column.type == Type.INTEGER else values.round(1)
            centred = (values - values.mean()) / (values.std() or 1.0)
        elif column.type == Type.CATEGORY and column.categories is not None:
            levels = np.array(column.categories)
            weights = rng.dirichlet(np.full(len(levels), 2.0))
            values = rng.choice(levels, rows, p=weights)
            effect = dict(zip(levels, rng.normal(0, 0.6, len(levels)), strict=True))
            centred = np.vectorize(effect.get)(values)
        else:
            values = rng.random(rows) < rng.uniform(0.2, 0.5)
            centred = values.astype(float)
        if column.role == Role.FEATURE:
            signal += rng.normal(0, 0.7) * centred
        out[column.name] = values
    for column in contract.with_role(Role.FEATURE):
        if column.missing and column.type in NUMERIC:
            values = out[column.name].astype(float)
            values[rng.random(rows) < 0.05] = np.nan
            out[column.name] = values
    signal += rng.normal(0, 1, rows)
    out[contract.label] = rng.random(rows) < 1 / (1 + np.exp(-(signal - np.quantile(signal, 0.8))))
    return _typed(pd.DataFrame(out), contract)


def _typed(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Clinical columns as the contract types them (integers nullable where missing)."""
    for name in frame.columns:
        column = contract.column(name)
        if column.type == Type.INTEGER:
            frame[name] = frame[name].round().astype("Int64" if column.missing else "int64")
        elif column.type == Type.BOOLEAN:
            frame[name] = frame[name].astype(bool)
    return frame


class GaussianCopula:
    """Empirical marginals joined by a Gaussian copula; categories by frequency bands.

    A numeric column with missing values keeps its observed share of them, drawn
    independently of the rest."""

    def fit(self, frame: pd.DataFrame) -> GaussianCopula:
        self.columns = list(frame.columns)
        self.dtypes = frame.dtypes.to_dict()
        self.categories: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.quantiles: dict[str, np.ndarray] = {}
        self.missing: dict[str, float] = {}
        uniforms = np.empty((len(frame), len(self.columns)))
        rng = np.random.default_rng(0)
        for i, column in enumerate(self.columns):
            series = frame[column]
            if _numeric(series):
                values = series.to_numpy(dtype="float64", na_value=np.nan)
                known = ~np.isnan(values)
                if not known.any():
                    raise ConfigError(f"column {column} has no values to learn from")
                self.missing[column] = float(1 - known.mean())
                filled = np.where(known, values, np.nanmedian(values))
                self.quantiles[column] = np.quantile(values[known], np.linspace(0, 1, 1001))
                uniforms[:, i] = (stats.rankdata(filled) - 0.5) / len(filled)
            else:
                values = series.to_numpy() if series.dtype.kind == "b" else _text(series)
                levels, counts = np.unique(values, return_counts=True)
                bounds = np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])
                self.categories[column] = (levels, bounds)
                index = np.searchsorted(levels, values)
                low, high = bounds[index], bounds[index + 1]
                uniforms[:, i] = low + (high - low) * rng.uniform(0.05, 0.95, len(values))
        self.correlation = np.corrcoef(stats.norm.ppf(uniforms), rowvar=False)
        if np.isnan(self.correlation).any():
            # A constant column has no correlation to learn: it is drawn independently.
            self.correlation = np.nan_to_num(self.correlation)
            np.fill_diagonal(self.correlation, 1.0)
        return self

    def sample(self, rows: int, seed: int = 0) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        normal = rng.multivariate_normal(
            np.zeros(len(self.columns)), self.correlation, rows, method="cholesky"
        )
        uniform = stats.norm.cdf(normal)
        out: dict[str, Any] = {}
        for i, column in enumerate(self.columns):
            if column in self.categories:
                levels, bounds = self.categories[column]
                index = np.clip(
                    np.searchsorted(bounds, uniform[:, i], side="right") - 1, 0, len(levels) - 1
                )
                values = levels[index]
                if values.dtype.kind != "b":
                    values = np.where(values == _MISSING, None, values)
                out[column] = values
            else:
                grid = np.linspace(0, 1, len(self.quantiles[column]))
                values = np.interp(uniform[:, i], grid, self.quantiles[column])
                if self.missing[column]:
                    values[rng.random(rows) < self.missing[column]] = np.nan
                out[column] = values
        frame = pd.DataFrame(out)
        for column, dtype in self.dtypes.items():
            if dtype.kind in "iu" or isinstance(dtype, pd.Int64Dtype):
                frame[column] = frame[column].round().astype(dtype)
            elif dtype.kind == "f":
                frame[column] = frame[column].round(1)
            elif dtype.kind == "b":
                frame[column] = frame[column].astype(bool)
        return frame


class SDVCopula:
    """SDV's Gaussian copula, for teams that accept SDV's licence (the Business Source
    License 1.1; `pip install 'hipaa-mlops[sdv]'`, which brings PyTorch). SDV draws from
    its own random state: the same seed does not give the same rows."""

    table = "table"

    def fit(self, frame: pd.DataFrame) -> SDVCopula:
        try:
            from sdv.metadata import Metadata
            from sdv.single_table import GaussianCopulaSynthesizer
        except ImportError:
            raise ConfigError(
                "SDV is not installed; it is an opt-in extra under the Business Source "
                "License 1.1 (pip install 'hipaa-mlops[sdv]')"
            ) from None

        def sdtype(series: pd.Series) -> str:
            if series.dtype.kind == "b":
                return "boolean"
            return "numerical" if _numeric(series) else "categorical"

        columns = {name: {"sdtype": sdtype(frame[name])} for name in frame.columns}
        metadata = Metadata.load_from_dict({"tables": {self.table: {"columns": columns}}})
        self.dtypes = frame.dtypes.to_dict()
        self.model = GaussianCopulaSynthesizer(metadata)
        self.model.fit({self.table: frame})
        return self

    def sample(self, rows: int, seed: int = 0) -> pd.DataFrame:
        frame = self.model.sample(rows)[self.table]
        return frame.astype(self.dtypes)


@dataclass(frozen=True)
class PrivacyBounds:
    max_exact_copy_rate: float = 0.01
    # Median distance from a synthetic row to its closest seed row, relative to the same
    # distance for held-out seed rows (what a fresh, independent patient looks like).
    min_dcr_ratio: float = 0.7


def _encode(frame: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    numeric = [c for c in reference.columns if _numeric(reference[c])]
    values = frame[numeric].astype("float64")
    mean, std = (
        reference[numeric].astype("float64").mean(),
        reference[numeric].astype("float64").std(),
    )
    scaled = ((values - mean) / std.replace(0, 1.0)).fillna(0.0)
    parts = [scaled.to_numpy()]
    for column in (c for c in reference.columns if c not in numeric):
        levels = np.unique(_text(reference[column]))
        parts.append((_text(frame[column])[:, None] == levels[None, :]).astype(float))
    return np.hstack(parts)


def privacy_gate(
    seed: pd.DataFrame,
    synthetic: pd.DataFrame,
    bounds: PrivacyBounds = PrivacyBounds(),
    sample: int = 5000,
    random_state: int = 0,
) -> dict[str, float]:
    """Exact-copy rate and distance to closest record; GateRefused if out of bounds."""
    if len(seed) < 20:
        raise GateRefused(f"privacy gate: {len(seed)} seed rows are too few to compare with")
    rng = np.random.default_rng(random_state)
    half = len(seed) // 2
    order = rng.permutation(len(seed))
    train, holdout = seed.iloc[order[:half]], seed.iloc[order[half:]]
    synth = synthetic.iloc[rng.permutation(len(synthetic))[:sample]]
    keys = pd.MultiIndex.from_arrays([_text(seed[c]) for c in seed.columns])
    copies = pd.MultiIndex.from_arrays([_text(synth[c]) for c in seed.columns]).isin(keys)
    exact = float(copies.mean())
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


def _outcome_model(clinical: pd.DataFrame, label: pd.Series) -> Pipeline:
    numeric = [c for c in clinical.columns if _numeric(clinical[c])]
    discrete = [c for c in clinical.columns if c not in numeric]
    encode = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("discrete", OneHotEncoder(handle_unknown="ignore"), discrete),
        ]
    )
    model = Pipeline([("encode", encode), ("outcome", LogisticRegression(max_iter=1000))])
    return model.fit(_plain(clinical), label.astype(int))


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable integers as floats and flags as text, as scikit-learn takes them."""
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.Int64Dtype):
            out[name] = out[name].astype("float64")
        elif not pd.api.types.is_numeric_dtype(out[name]):
            out[name] = _text(out[name])
    return out


# A missing category, as a level of its own while a table is learnt or compared.
_MISSING = "\x00missing"


def _numeric(series: pd.Series) -> bool:
    """A column of numbers (integers, nullable ones included, or floats), not of flags."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _text(series: pd.Series) -> np.ndarray:
    """Values as strings, a missing one as `_MISSING`."""
    return np.asarray(series.astype(object).where(series.notna(), _MISSING).astype(str), dtype=str)


def _synthesize(
    seed_frame: pd.DataFrame, contract: Contract, rows: int, seed: int, model: Synthesizer
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Rows like `seed_frame` (its clinical columns, label and any de-identified context),
    the label drawn from a model of the seed's outcome; gated against the seed."""
    label = contract.label
    context = seed_frame.drop(columns=[label])
    synthetic = model.fit(context).sample(rows, seed=seed + 7)
    clinical = [c for c in context.columns if c in contract.raw_columns]
    outcome = _outcome_model(context[clinical], seed_frame[label])
    draws = np.random.default_rng(seed + 11).random(rows)
    synthetic[label] = draws < outcome.predict_proba(_plain(synthetic[clinical]))[:, 1]
    compared = [*clinical, label]
    report = privacy_gate(seed_frame[compared], synthetic[compared], random_state=seed)
    return synthetic, report


def synthesize(
    contract: Contract,
    rows: int,
    cohort: str = "baseline",
    seed: int = 0,
    seed_rows: int = 5000,
    model: str = "copula",
) -> tuple[pd.DataFrame, dict[str, float]]:
    """A privacy-gated synthetic raw table of `rows` records of `contract`, and the gate's
    report: the diabetes example from its structural model (cohorts apply), any other
    contract from its declared values."""
    if is_diabetes_example(contract):
        population = seed_population(seed_rows, cohort, seed)
    elif cohort != "baseline":
        raise ConfigError("cohorts shift the diabetes example only; this contract has its own")
    else:
        population = contract_population(contract, seed_rows, seed)
    population = _typed(population, contract)
    synthetic, report = _synthesize(population, contract, rows, seed, synthesizer(model))
    synthetic = _bounded(synthetic, contract)
    if is_diabetes_example(contract):
        # The copula joins margins only: it can give a man pregnancies.
        synthetic.loc[synthetic["sex"] == "M", "pregnancies"] = 0
    return add_identifiers(synthetic, contract, seed), report


def twin(
    source: pd.DataFrame, contract: Contract, rows: int, seed: int = 0, model: str = "copula"
) -> tuple[pd.DataFrame, dict[str, float]]:
    """A privacy-gated synthetic raw table mirroring a de-identified dataset `source`:
    its features, site, label, ZIP areas and years, learnt jointly; new identifiers."""
    context = [
        c
        for c in contract.deidentified_types
        if c in source.columns and c != PSEUDONYM and not c.endswith("_90_plus")
    ]
    synthetic, report = _synthesize(source[context], contract, rows, seed, synthesizer(model))
    return add_identifiers(_bounded(synthetic, contract), contract, seed), report


def _bounded(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Sampled values inside their declared ranges."""
    for column in contract.with_role(Role.FEATURE, Role.QUASI_IDENTIFIER):
        if column.name in frame and column.range is not None:
            frame[column.name] = frame[column.name].clip(*column.range)
    return frame


def add_identifiers(frame: pd.DataFrame, contract: Contract, seed: int = 0) -> pd.DataFrame:
    """The contract's raw table: `frame`'s clinical columns, and PHI-shaped identifiers and
    quasi-identifiers for every row, seeded. Where `frame` carries what de-identification
    left of a quasi-identifier (a ZIP area, a year), the new value agrees with it."""
    from faker.providers.person.en_US import Provider as Person

    rows = len(frame)
    rng = np.random.default_rng(seed + 1)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    sexes = frame["sex"].astype(str).to_numpy() if "sex" in frame else np.full(rows, "")
    first = np.where(
        sexes == "F",
        rng.choice(sorted(Person.first_names_female), rows),
        rng.choice(sorted(Person.first_names_male), rows),
    )
    last = rng.choice(sorted(Person.last_names), rows)
    names = pd.Series(first) + " " + pd.Series(last)
    visit = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 1000, rows), unit="D")
    ages = next(
        (
            frame[c.name].fillna(50)
            for c in contract.columns
            if c.kind == Kind.AGE and c.name in frame
        ),
        None,
    )
    out = {
        name: frame[name].reset_index(drop=True) for name in contract.raw_columns if name in frame
    }
    made: dict[Category | Kind, pd.Series] = {}
    for column in contract.columns:
        if column.name in out:
            continue
        values = _identifier(column, frame, rows, rng, fake, names, visit, ages, made)
        made.setdefault(column.category or column.kind or Category.OTHER, values)
        out[column.name] = values
    for column in contract.columns:
        if column.role == Role.IDENTIFIER and column.type == Type.TEXT:
            out[column.name] = _note(made, frame, contract, rows)
    table = pd.DataFrame(out)[contract.raw_columns]
    return conform(table, contract.columns, "the synthetic table")[0]


def _identifier(
    column: Column,
    frame: pd.DataFrame,
    rows: int,
    rng: np.random.Generator,
    fake: Faker,
    names: pd.Series,
    visit: pd.Series,
    ages: pd.Series | None,
    made: dict[Any, pd.Series],
) -> pd.Series:
    """PHI-shaped values for one identifier or quasi-identifier column."""
    s = pd.Series
    digits = rng.integers
    if column.kind == Kind.ZIP:
        area = frame.get(column.derived_name)
        if area is None:
            area = s([f"{z:03d}" for z in digits(10, 999, rows)])
            area = area.where(
                rng.random(rows) >= 0.03, s(rng.choice(sorted(RESTRICTED_ZIP3), rows))
            )
        area = area.astype(str).reset_index(drop=True)
        area = area.where(area != "000", s(rng.choice(sorted(RESTRICTED_ZIP3), rows)))
        return area + s([f"{t:02d}" for t in digits(0, 99, rows)])
    if column.kind == Kind.DATE:
        year = frame.get(column.derived_name)
        if year is not None:
            year = year.astype("Int64").fillna(2024).astype(str).reset_index(drop=True)
            start = pd.to_datetime(year + "-01-01")
            return s(start + pd.to_timedelta(digits(0, 365, rows), unit="D")).dt.normalize()
        earlier = made.get(Kind.DATE)
        base = visit if earlier is None else earlier
        return s(base + pd.to_timedelta(digits(1, 15, rows), unit="D"))
    if column.kind == Kind.AGE:
        return s(digits(18, 95, rows))
    category = column.category
    if category == Category.DATES:
        years = ages.to_numpy(dtype="float64") if ages is not None else digits(18, 90, rows)
        return s(
            visit - pd.to_timedelta(years * 365.25 + digits(0, 365, rows), unit="D")
        ).dt.normalize()
    if category == Category.NAMES:
        return names.copy()
    if category == Category.SSN:
        area = digits(1, 899, rows)
        area = np.where(area == 666, 667, area)
        return s(
            [
                f"{a:03d}-{g:02d}-{n:04d}"
                for a, g, n in zip(area, digits(1, 99, rows), digits(1, 9999, rows), strict=True)
            ]
        )
    if category == Category.MRN:
        return s([f"MRN{m:08d}" for m in rng.choice(100_000_000, rows, replace=False)])
    if category in (Category.TELEPHONE, Category.FAX):
        return s(
            [
                f"({a}) {b}-{c:04d}"
                for a, b, c in zip(
                    digits(201, 989, rows),
                    digits(200, 999, rows),
                    digits(0, 9999, rows),
                    strict=True,
                )
            ]
        )
    if category == Category.EMAIL:
        return (
            names.str.lower().str.replace(" ", ".")
            + s(digits(1, 99, rows).astype(str))
            + "@example.org"
        )
    if category == Category.GEOGRAPHIC:
        if "city" in column.name:
            return s(rng.choice([fake.city() for _ in range(400)], rows))
        streets = [fake.street_name() for _ in range(400)]
        return s(digits(1, 9999, rows).astype(str)) + " " + s(rng.choice(streets, rows))
    if category == Category.URL:
        return s([f"https://portal.example.org/patients/{rng.bytes(6).hex()}" for _ in range(rows)])
    if category == Category.IP:
        return s(
            [
                f"10.{a}.{b}.{c}"
                for a, b, c in zip(
                    digits(0, 255, rows), digits(0, 255, rows), digits(1, 254, rows), strict=True
                )
            ]
        )
    prefix = {
        Category.HEALTH_PLAN: "HP",
        Category.ACCOUNT: "AC",
        Category.LICENSE: "LIC",
        Category.VEHICLE: "VIN",
        Category.DEVICE: "SN",
    }.get(category, "ID")  # type: ignore[arg-type]
    return s([f"{prefix}{n:09d}" for n in rng.permutation(rows) * 7919 % 1_000_000_000])


def _note(
    made: dict[Any, pd.Series], frame: pd.DataFrame, contract: Contract, rows: int
) -> pd.Series:
    """Free text that repeats the record's other identifiers, as real notes do."""
    parts = [pd.Series(["Pt"] * rows)]
    for key, text in (
        (Category.NAMES, "{}"),
        (Category.MRN, "({})"),
        (Category.DATES, "DOB {}"),
        (Category.TELEPHONE, "call {}"),
    ):
        if key in made:
            values = made[key]
            if key == Category.DATES:
                values = values.dt.strftime("%m/%d/%Y")
            parts.append(values.astype(str).map(text.format))
    feature = contract.features[0]
    parts.append(f"{feature} " + frame[feature].astype(str).reset_index(drop=True))
    note = parts[0]
    for part in parts[1:]:
        note = note + " " + part
    return note + "."

"""A project's classifier: its contract's features and label, seeded training, evaluation
by the contract's subgroups.

Training takes only the features the contract declares, from a de-identified dataset:
no pseudonym, ZIP area, year or site ever reaches the model, its signature or its input
example. Two algorithms, chosen per run: a logistic regression and scikit-learn's
histogram gradient boosting; numbers are scaled (and imputed where the contract allows a
missing value), categories one-hot encoded over the contract's declared values.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from contract import NUMERIC, Contract, Type, model_frame
from safeguards.errors import ConfigError
from safeguards.registry import Scorer, SklearnScorer

ALGORITHMS = ("logistic", "gradient-boosting")
# A subgroup's AUROC enters the gap only with at least this many records of each outcome:
# with fewer, it is mostly noise (20 positives leave a 95% interval about 0.2 wide).
MIN_SUBGROUP_CASES = 20


@dataclass(frozen=True)
class TrainConfig:
    algorithm: str = "logistic"
    seed: int = 0
    test_size: float = 0.25
    # Logistic regression: inverse regularisation, and iterations of its solver.
    C: float = 1.0
    max_iter: int = 1000
    # Gradient boosting: learning rate, and at most this many rounds (it stops early
    # once a tenth of the training rows, set aside, stop improving).
    learning_rate: float = 0.1
    rounds: int = 200

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm; algorithms are {', '.join(ALGORITHMS)}")

    def as_params(self, contract: Contract) -> dict[str, Any]:
        params: dict[str, Any] = {
            "algorithm": self.algorithm,
            "seed": self.seed,
            "test_size": self.test_size,
            "features": ",".join(contract.features),
        }
        if self.algorithm == "logistic":
            params |= {"C": self.C, "max_iter": self.max_iter}
        else:
            params |= {"learning_rate": self.learning_rate, "rounds": self.rounds}
        return params

    @classmethod
    def from_params(cls, params: dict[str, str]) -> TrainConfig:
        """The configuration a run's params record: to rebuild its rows, or to train the
        same kind of model on new data."""
        kinds = {"seed": int, "test_size": float, "C": float, "max_iter": int,
                 "learning_rate": float, "rounds": int}  # fmt: skip
        values: dict[str, Any] = {k: cast(params[k]) for k, cast in kinds.items() if k in params}
        return cls(algorithm=params.get("algorithm", "logistic"), **values)


@dataclass
class Evaluation:
    auroc: float
    auprc: float
    brier: float
    rows: int
    calibration: dict[str, list[float]]
    subgroups: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def compared_subgroups(self) -> list[str]:
        """The subgroups with enough of each outcome for their AUROC to mean something."""
        return [
            name
            for name, s in self.subgroups.items()
            if not np.isnan(s["auroc"])
            and min(round(s["rows"] * s["prevalence"]), round(s["rows"] * (1 - s["prevalence"])))
            >= MIN_SUBGROUP_CASES
        ]

    @property
    def max_subgroup_gap(self) -> float:
        """The largest AUROC gap between the compared subgroups."""
        scores = [self.subgroups[name]["auroc"] for name in self.compared_subgroups]
        return float(max(scores) - min(scores)) if len(scores) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        return cls(**data)

    def metrics(self) -> dict[str, float]:
        out = {
            "auroc": self.auroc,
            "auprc": self.auprc,
            "brier": self.brier,
            "max_subgroup_auroc_gap": self.max_subgroup_gap,
        }
        for name, values in self.subgroups.items():
            out[f"auroc_{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"] = values["auroc"]
        return out


def features(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    missing = [c for c in contract.features if c not in frame.columns]
    if missing:
        raise ConfigError(f"dataset lacks model column(s): {', '.join(missing)}")
    return model_frame(frame, contract)


def split(
    frame: pd.DataFrame, contract: Contract, config: TrainConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same held-out rows for the same data and seed, so models compare fairly."""
    label = frame[contract.label]
    if label.value_counts().min() < 2 or len(frame) < 8:
        raise ConfigError("the dataset is too small to hold rows out: each class needs two")
    train, test = train_test_split(
        frame, test_size=config.test_size, random_state=config.seed, stratify=label
    )
    return train, test


def build(contract: Contract, config: TrainConfig) -> Pipeline:
    columns = [contract.column(name) for name in contract.features]

    def named(*types: Type, missing: bool | None = None) -> list[str]:
        return [c.name for c in columns if c.type in types and missing in (None, c.missing)]

    categorical = named(Type.CATEGORY)
    parts: list[tuple[str, Any, list[str]]] = [
        ("numeric", StandardScaler(), named(*NUMERIC, missing=False)),
        (
            "numeric_missing",
            make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
            named(*NUMERIC, missing=True),
        ),
        (
            "categorical",
            # A missing category is an unknown one: all of its indicators are 0.
            OneHotEncoder(
                categories=[list(contract.column(c).categories or ()) for c in categorical],
                handle_unknown="ignore",
            ),
            categorical,
        ),
        ("boolean", "passthrough", named(Type.BOOLEAN, missing=False)),
        (
            "boolean_missing",
            SimpleImputer(strategy="most_frequent"),
            named(Type.BOOLEAN, missing=True),
        ),
    ]
    encode = ColumnTransformer([part for part in parts if part[2]])
    if config.algorithm == "logistic":
        classify: Any = LogisticRegression(
            C=config.C, max_iter=config.max_iter, random_state=config.seed
        )
    else:
        classify = HistGradientBoostingClassifier(
            learning_rate=config.learning_rate,
            max_iter=config.rounds,
            early_stopping=True,
            random_state=config.seed,
        )
    return Pipeline([("encode", encode), ("classify", classify)])


def fit(train: pd.DataFrame, contract: Contract, config: TrainConfig) -> Pipeline:
    if train[contract.label].nunique() < 2:
        raise ConfigError("the training data has a single class; a classifier needs both")
    return build(contract, config).fit(features(train, contract), train[contract.label].astype(int))


def subgroups(frame: pd.DataFrame, contract: Contract) -> dict[str, pd.Series]:
    """The contract's subgroups of `frame`'s rows, by name: each category or flag of a
    column, or each band of a number."""
    groups: dict[str, pd.Series] = {}
    for group in contract.subgroups:
        values = frame[group.column]
        if group.bands:
            for low, high in group.bands:
                name = f"{group.column}_{_number(low)}-{_number(high)}"
                groups[name] = values.between(low, high).fillna(False).astype(bool)
        else:
            column = contract.column(group.column)
            levels = column.categories or (True, False)
            for level in levels:
                shown = str(level).lower() if isinstance(level, bool) else level
                groups[f"{group.column}_{shown}"] = (values == level).fillna(False)
    return groups


def evaluate(model: Scorer | Pipeline, test: pd.DataFrame, contract: Contract) -> Evaluation:
    scorer = SklearnScorer(model) if isinstance(model, Pipeline) else model
    truth = test[contract.label].astype(int).to_numpy()
    if len(set(truth)) < 2:
        raise ConfigError("the evaluation rows have a single class; AUROC needs both")
    scores = scorer.probabilities(features(test, contract))
    observed, predicted = calibration_curve(truth, scores, n_bins=10, strategy="quantile")
    evaluation = Evaluation(
        auroc=float(roc_auc_score(truth, scores)),
        auprc=float(average_precision_score(truth, scores)),
        brier=float(brier_score_loss(truth, scores)),
        rows=len(test),
        calibration={"predicted": predicted.tolist(), "observed": observed.tolist()},
    )
    for name, mask in subgroups(test, contract).items():
        rows = mask.to_numpy()
        auroc = (
            float(roc_auc_score(truth[rows], scores[rows]))
            if len(set(truth[rows])) == 2
            else float("nan")
        )
        evaluation.subgroups[name] = {
            "auroc": auroc,
            "rows": int(rows.sum()),
            "prevalence": float(truth[rows].mean()) if rows.any() else 0.0,
        }
    return evaluation


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)

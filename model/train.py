"""The diabetes-risk classifier: features, seeded training, evaluation by subgroup.

Training takes only the clinical features of a de-identified or synthetic dataset: no
pseudonym, ZIP area or year ever reaches the model, its signature or its input example.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from safeguards.errors import ConfigError
from sandbox.schema import CATEGORIES, LABEL

NUMERIC = [
    "age",
    "bmi",
    "fasting_glucose",
    "hba1c",
    "systolic_bp",
    "diastolic_bp",
    "insulin",
    "pregnancies",
]
CATEGORICAL = ["sex", "physical_activity", "smoking"]
BOOLEAN = ["family_history"]
FEATURES = NUMERIC + CATEGORICAL + BOOLEAN
AGE_BANDS = [(18, 39, "18-39"), (40, 64, "40-64"), (65, 200, "65+")]


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    test_size: float = 0.25
    C: float = 1.0
    max_iter: int = 1000

    def as_params(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "test_size": self.test_size,
            "C": self.C,
            "max_iter": self.max_iter,
            "features": ",".join(FEATURES),
        }


@dataclass
class Evaluation:
    auroc: float
    auprc: float
    brier: float
    rows: int
    calibration: dict[str, list[float]]
    subgroups: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def max_subgroup_gap(self) -> float:
        scores = [s["auroc"] for s in self.subgroups.values() if not np.isnan(s["auroc"])]
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
            out[f"auroc_{name.replace('+', '_plus')}"] = values["auroc"]
        return out


def features(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in [*FEATURES, LABEL] if c not in frame.columns]
    if missing:
        raise ConfigError(f"dataset lacks model column(s): {', '.join(missing)}")
    out = frame[FEATURES].copy()
    # Doubles throughout: the signature then accepts any number a client sends.
    out[NUMERIC] = out[NUMERIC].astype("float64")
    out[BOOLEAN] = out[BOOLEAN].astype("float64")
    return out


def split(frame: pd.DataFrame, config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same held-out rows for the same data and seed, so models compare fairly."""
    train, test = train_test_split(
        frame, test_size=config.test_size, random_state=config.seed, stratify=frame[LABEL]
    )
    return train, test


def build(config: TrainConfig) -> Pipeline:
    encode = ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            (
                "categorical",
                OneHotEncoder(
                    categories=[CATEGORIES[c] for c in CATEGORICAL], handle_unknown="ignore"
                ),
                CATEGORICAL,
            ),
            ("boolean", "passthrough", BOOLEAN),
        ]
    )
    return Pipeline(
        [
            ("encode", encode),
            (
                "classify",
                LogisticRegression(C=config.C, max_iter=config.max_iter, random_state=config.seed),
            ),
        ]
    )


def fit(train: pd.DataFrame, config: TrainConfig) -> Pipeline:
    if train[LABEL].nunique() < 2:
        raise ConfigError("the training data has a single class; a classifier needs both")
    return build(config).fit(features(train), train[LABEL].astype(int))


def evaluate(model: Pipeline, test: pd.DataFrame) -> Evaluation:
    truth = test[LABEL].astype(int).to_numpy()
    scores = model.predict_proba(features(test))[:, 1]
    observed, predicted = calibration_curve(truth, scores, n_bins=10, strategy="quantile")
    evaluation = Evaluation(
        auroc=float(roc_auc_score(truth, scores)),
        auprc=float(average_precision_score(truth, scores)),
        brier=float(brier_score_loss(truth, scores)),
        rows=len(test),
        calibration={"predicted": predicted.tolist(), "observed": observed.tolist()},
    )
    groups = {f"sex_{s}": test["sex"] == s for s in CATEGORIES["sex"]}
    groups |= {f"age_{name}": test["age"].between(low, high) for low, high, name in AGE_BANDS}
    for name, mask in groups.items():
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

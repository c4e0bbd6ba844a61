"""Training by the contract: reproducible, both algorithms, features only, cards."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

import contract as contracts
from model import card, train
from safeguards import phi
from safeguards.errors import ConfigError
from sandbox import deidentify, synth

DIABETES = contracts.parse(contracts.example("diabetes"))


@pytest.fixture(scope="module")
def dataset() -> pd.DataFrame:
    raw, _ = synth.synthesize(DIABETES, 8000, "baseline", seed=4)
    out, _ = deidentify.deidentify(
        raw, DIABETES, lambda v: {x: hashlib.sha256(x.encode()).hexdigest()[:32] for x in set(v)}
    )
    return out


@pytest.mark.parametrize("algorithm", train.ALGORITHMS)
def test_training_is_reproducible_and_clinically_useful(
    dataset: pd.DataFrame, algorithm: str
) -> None:
    config = train.TrainConfig(algorithm=algorithm, seed=3)
    train_rows, test_rows = train.split(dataset, DIABETES, config)
    one = train.evaluate(train.fit(train_rows, DIABETES, config), test_rows, DIABETES)
    same_rows, _ = train.split(dataset, DIABETES, config)
    two = train.evaluate(train.fit(same_rows, DIABETES, config), test_rows, DIABETES)
    assert one.metrics() == two.metrics()
    assert one.auroc > 0.7
    assert 0 < one.brier < 0.2
    assert set(one.subgroups) == {"sex_F", "sex_M", "age_18-39", "age_40-64", "age_65-120"}


def test_a_runs_params_rebuild_its_configuration() -> None:
    config = train.TrainConfig(algorithm="gradient-boosting", seed=7, learning_rate=0.05)
    params = {k: str(v) for k, v in config.as_params(DIABETES).items()}
    assert train.TrainConfig.from_params(params) == config
    with pytest.raises(ConfigError, match="unknown algorithm"):
        train.TrainConfig(algorithm="deep-learning")


def test_model_sees_no_identifier_or_quasi_identifier(dataset: pd.DataFrame) -> None:
    config = train.TrainConfig()
    model = train.fit(train.split(dataset, DIABETES, config)[0], DIABETES, config)
    seen = set(model.feature_names_in_)
    assert seen == set(DIABETES.features)
    assert not seen & DIABETES.never_model_inputs


def test_single_class_and_missing_columns_are_refused(dataset: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="single class"):
        train.fit(dataset[~dataset["diabetes_5y"]], DIABETES, train.TrainConfig())
    with pytest.raises(ConfigError, match="lacks model column"):
        train.features(dataset.drop(columns=["hba1c"]), DIABETES)


def test_model_card_has_metrics_subgroups_plot_and_no_identifiers(dataset: pd.DataFrame) -> None:
    config = train.TrainConfig()
    train_rows, test_rows = train.split(dataset, DIABETES, config)
    evaluation = train.evaluate(train.fit(train_rows, DIABETES, config), test_rows, DIABETES)
    text = card.card_markdown(
        "diabetes-model", "3", evaluation, {"dataset_content_hash": "sha256:abc"}, DIABETES
    )
    assert "AUROC" in text and "age_65-120" in text and "calibration.png" in text
    assert DIABETES.intended_use in text and "mg/dL" in text
    assert phi.find_identifiers(text) == []
    assert card.calibration_png(evaluation).startswith(b"\x89PNG")

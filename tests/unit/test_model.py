from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from model import card, train
from safeguards import phi
from safeguards.errors import ConfigError
from sandbox import deidentify, synth


@pytest.fixture(scope="module")
def dataset() -> pd.DataFrame:
    raw, _ = synth.synthesize(8000, "baseline", seed=4)
    out, _ = deidentify.deidentify(
        raw, lambda v: {x: hashlib.sha256(x.encode()).hexdigest()[:32] for x in set(v)}
    )
    return out


def test_training_is_reproducible_and_clinically_useful(dataset: pd.DataFrame) -> None:
    config = train.TrainConfig(seed=3)
    train_rows, test_rows = train.split(dataset, config)
    one = train.evaluate(train.fit(train_rows, config), test_rows)
    same_rows, _ = train.split(dataset, config)
    two = train.evaluate(train.fit(same_rows, config), test_rows)
    assert one.metrics() == two.metrics()
    assert one.auroc > 0.7
    assert 0 < one.brier < 0.2
    assert set(one.subgroups) == {"sex_F", "sex_M", "age_18-39", "age_40-64", "age_65+"}


def test_model_sees_no_identifier_or_quasi_identifier(dataset: pd.DataFrame) -> None:
    config = train.TrainConfig()
    model = train.fit(train.split(dataset, config)[0], config)
    seen = set(model.feature_names_in_)
    assert seen == set(train.FEATURES)
    assert not seen & {"pseudonym", "zip3", "admission_year", "discharge_year", "site"}


def test_single_class_and_missing_columns_are_refused(dataset: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="single class"):
        train.fit(dataset[~dataset["diabetes_5y"]], train.TrainConfig())
    with pytest.raises(ConfigError, match="lacks model column"):
        train.features(dataset.drop(columns=["hba1c"]))


def test_model_card_has_metrics_subgroups_plot_and_no_identifiers(dataset: pd.DataFrame) -> None:
    config = train.TrainConfig()
    train_rows, test_rows = train.split(dataset, config)
    evaluation = train.evaluate(train.fit(train_rows, config), test_rows)
    text = card.card_markdown(
        "diabetes-risk", "3", evaluation, {"dataset_content_hash": "sha256:abc"}
    )
    assert "AUROC" in text and "age_65+" in text and "calibration.png" in text
    assert phi.find_identifiers(text) == []
    assert card.calibration_png(evaluation).startswith(b"\x89PNG")

"""The ONNX twin of our pipelines: the same probabilities from ONNX Runtime, fed columns
as arrays, on real conversions by skl2onnx."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

import contract as contracts
from model import gate, train, twin
from safeguards.registry import TWIN_TAG, OnnxScorer, SklearnScorer
from sandbox import deidentify, synth


def _dataset(name: str) -> tuple[contracts.Contract, pd.DataFrame]:
    contract = contracts.parse(contracts.example(name))
    raw, _ = synth.synthesize(contract, 4000, "baseline", seed=9)
    out, _ = deidentify.deidentify(
        raw, contract, lambda v: {x: hashlib.sha256(x.encode()).hexdigest()[:32] for x in set(v)}
    )
    return contract, out


@pytest.mark.parametrize("example", contracts.EXAMPLES)
def test_the_twin_of_our_pipeline_gives_its_probabilities(example: str) -> None:
    contract, frame = _dataset(example)
    config = train.TrainConfig(seed=2)
    train_rows, test_rows = train.split(frame, contract, config)
    pipeline = train.fit(train_rows, contract, config)
    made = twin.convert(pipeline, contract, test_rows)
    assert made.model is not None and made.tags() == {TWIN_TAG: "onnx"}
    rows = train.features(test_rows, contract).reset_index(drop=True)
    # Beyond the held-out rows: a missing value in every feature that may miss, and a
    # category the contract does not know (both encode as the pipeline encodes them).
    odd = rows.iloc[:20].copy()
    for name in contract.features:
        column = contract.column(name)
        if column.type is contracts.Type.CATEGORY:
            odd.loc[:9, name] = "not-a-category"
        elif column.missing:
            odd.loc[10:, name] = np.nan
    rows = pd.concat([rows, odd], ignore_index=True)
    served = OnnxScorer(made.model, contract.features)
    expected = SklearnScorer(pipeline).probabilities(rows)
    assert np.abs(served.probabilities(rows) - expected).max() <= twin.TOLERANCE
    columns = {name: rows[name].to_numpy() for name in contract.features}
    assert np.array_equal(served.probabilities(columns), served.probabilities(rows))


def test_a_pipeline_skl2onnx_cannot_convert_has_no_twin_and_says_why() -> None:
    contract, frame = _dataset("diabetes")
    config = train.TrainConfig(algorithm="gradient-boosting", seed=2)
    train_rows, test_rows = train.split(frame, contract, config)
    made = twin.convert(train.fit(train_rows, contract, config), contract, test_rows)
    if made.model is not None:
        pytest.fail("skl2onnx converts HistGradientBoosting now: update model/twin.py's note")
    assert made.tags()[TWIN_TAG] == "none"
    assert made.reason.startswith("skl2onnx could not convert the pipeline (")


def test_the_gate_refuses_a_twin_that_differs_and_says_by_how_much() -> None:
    agrees = gate.twin_check(3e-16, 1200, "")
    differs = gate.twin_check(2e-6, 1200, "")
    absent = gate.twin_check(None, 1200, "an ONNX model; ONNX Runtime serves it as it is")
    assert agrees.passed and "3.0e-16 on 1,200 held-out rows" in agrees.reason
    assert not differs.passed and "2.0e-06" in differs.reason
    assert absent.passed and "ONNX Runtime serves it" in absent.reason
    assert not gate.twin_check(float("nan"), 10, "").passed

"""The ONNX twin of a scikit-learn pipeline: the same probabilities, from ONNX Runtime.

One row through the pipeline costs milliseconds of pandas and scikit-learn's per-call
checks; the twin computes the same thing in microseconds. skl2onnx converts the pipeline
into a graph with one input per contract feature: a double for a number or a flag (NaN
when missing, imputed inside the graph as in the pipeline), a string for a category (an
unknown or missing one encodes to zeros, as `handle_unknown="ignore"` does). In double
precision the twin agrees with the pipeline to about 1e-16; where ONNX Runtime lacks a
double kernel (its Imputer, for a feature that may be missing) the numbers go in single
precision, about 1e-7 off. A twin is kept only if it agrees within `TOLERANCE` on the
held-out rows; the promotion gate checks that again on the logged twin, and the endpoint
serves a twin only once the gate approved its version.

A pipeline skl2onnx cannot convert has no twin and is served as it is, with the reason
recorded on its version (`REASON_TAG`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from contract import Contract, Type, model_frame
from safeguards.registry import TWIN_TAG, OnnxScorer, SklearnScorer

# The largest absolute difference between the twin's and the pipeline's probability.
TOLERANCE = 1e-6
# Why a version has no twin.
REASON_TAG = "model.twin_reason"
_OPSETS = {"": 17, "ai.onnx.ml": 3}


@dataclass(frozen=True)
class Twin:
    """The twin's ONNX bytes, or None and why there is none."""

    model: bytes | None
    reason: str

    def tags(self) -> dict[str, str]:
        if self.model is None:
            return {TWIN_TAG: "none", REASON_TAG: self.reason}
        return {TWIN_TAG: "onnx"}


def convert(pipeline: Any, contract: Contract, rows: pd.DataFrame) -> Twin:
    """The twin of `pipeline` (fitted on `contract.model_frame` columns), checked against
    it on `rows` (the held-out rows, which the gate checks again): numbers in double
    precision where ONNX Runtime has every operator for them, else in single."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    frame = model_frame(rows, contract)
    expected = SklearnScorer(pipeline).probabilities(frame)
    reason = "no conversion"
    for number in (DoubleTensorType, FloatTensorType):
        inputs = [
            (
                name,
                StringTensorType([None, 1])
                if contract.column(name).type is Type.CATEGORY
                else number([None, 1]),
            )
            for name in contract.features
        ]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = to_onnx(
                    pipeline, initial_types=inputs, options={"zipmap": False}, target_opset=_OPSETS
                ).SerializeToString()
            served = OnnxScorer(graph, contract.features).probabilities(frame)
        except Exception as exc:
            # skl2onnx and ONNX Runtime fail in many ways on what they cannot convert or
            # run (ONNX Runtime has no double Imputer, say); the pipeline still serves.
            reason = f"skl2onnx could not convert the pipeline ({type(exc).__name__})"
            continue
        difference = float(np.abs(served - expected).max())
        if difference <= TOLERANCE:
            return Twin(graph, "converted")
        reason = f"the converted graph differs from the pipeline by {difference:.1e}"
    return Twin(None, reason)

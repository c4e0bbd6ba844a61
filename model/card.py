"""The model card: intended use, data, metrics, subgroups, limitations, a calibration plot,
written from the project's contract.

Rendered as Markdown with a PNG beside it; both go to MLflow as artifacts of the run.
Nothing in it comes from a row of data: only aggregates and the dataset's lineage.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from contract import Contract
from model.train import Evaluation


def calibration_png(evaluation: Evaluation) -> bytes:
    figure, axis = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    axis.plot(
        evaluation.calibration["predicted"],
        evaluation.calibration["observed"],
        marker="o",
        label="model",
    )
    axis.set_xlabel("predicted probability")
    axis.set_ylabel("observed rate")
    axis.set_title("Calibration on held-out data")
    axis.legend(loc="upper left")
    top = max(max(evaluation.calibration["predicted"]), max(evaluation.calibration["observed"]))
    axis.set_xlim(0, min(1, top * 1.1))
    axis.set_ylim(0, min(1, top * 1.1))
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def card_markdown(
    name: str,
    version: str,
    evaluation: Evaluation,
    lineage: dict[str, Any],
    contract: Contract,
    origin: str = "trained here",
) -> str:
    subgroups = "\n".join(
        f"| {group} | {values['rows']:,} | {values['prevalence']:.3f} | {values['auroc']:.3f} |"
        for group, values in evaluation.subgroups.items()
    )
    lines = "\n".join(f"| {k} | `{v}` |" for k, v in sorted(lineage.items()))
    features = "\n".join(
        f"| {c.name} | {c.type} | {c.unit or ''} | {c.description} |"
        for c in (contract.column(f) for f in contract.features)
    )
    label = contract.column(contract.label)
    return f"""# Model card: {name} version {version}

## Intended use
{contract.intended_use}

## Data
{contract.description}

Contract `{contract.name}` version {contract.version} (`{contract.fingerprint}`). The model
was {origin}; it sees the contract's features only, from a de-identified or synthetic
dataset (no identifier reaches it). It predicts `{label.name}`: {label.meaning}.

| feature | type | unit | description |
|---|---|---|---|
{features}

| lineage | value |
|---|---|
{lines}

## Metrics on rows it was not trained on ({evaluation.rows:,} records)

| metric | value |
|---|---|
| AUROC | {evaluation.auroc:.3f} |
| AUPRC | {evaluation.auprc:.3f} |
| Brier score | {evaluation.brier:.4f} |
| largest subgroup AUROC gap | {evaluation.max_subgroup_gap:.3f} |

![calibration](calibration.png)

## Subgroups

| subgroup | records | prevalence | AUROC |
|---|---|---|---|
{subgroups}

## Limitations
{contract.limitations or "None stated in the contract."} Ages over 89 are recorded as 90.
Subgroups with few positive cases have wide uncertainty; monitor drift and estimated
performance after deployment.
"""

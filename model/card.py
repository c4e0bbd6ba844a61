"""The model card: intended use, data, metrics, subgroups, limitations, a calibration plot.

Rendered as Markdown with a PNG beside it; both go to MLflow as artifacts of the run.
Nothing in it comes from a row of data: only aggregates and the dataset's lineage.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

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
    axis.set_xlabel("predicted five-year risk")
    axis.set_ylabel("observed onset rate")
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


def card_markdown(name: str, version: str, evaluation: Evaluation, lineage: dict[str, Any]) -> str:
    subgroups = "\n".join(
        f"| {group} | {values['rows']:,} | {values['prevalence']:.3f} | {values['auroc']:.3f} |"
        for group, values in evaluation.subgroups.items()
    )
    lines = "\n".join(f"| {k} | `{v}` |" for k, v in sorted(lineage.items()))
    return f"""# Model card: {name} version {version}

## Intended use
Estimates the five-year risk of type 2 diabetes onset for adult patients, to prioritise
preventive outreach by a care team. Not a diagnosis; not for use without clinical review;
not validated outside the population it was trained on.

## Data
Trained on a de-identified or synthetic dataset only (no identifiers reach the model).
Features: age, sex, BMI, fasting glucose, HbA1c, blood pressure, insulin, pregnancies,
family history, physical activity, smoking.

| lineage | value |
|---|---|
{lines}

## Metrics on held-out data ({evaluation.rows:,} patients)

| metric | value |
|---|---|
| AUROC | {evaluation.auroc:.3f} |
| AUPRC | {evaluation.auprc:.3f} |
| Brier score | {evaluation.brier:.4f} |
| largest subgroup AUROC gap | {evaluation.max_subgroup_gap:.3f} |

![calibration](calibration.png)

## Subgroups

| subgroup | patients | prevalence | AUROC |
|---|---|---|---|
{subgroups}

## Limitations
Synthetic or de-identified training data may not reflect the deployment population;
monitor drift and estimated performance after deployment. Ages over 89 are recorded as
90. Subgroups with few positive cases have wide uncertainty.
"""

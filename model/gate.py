"""The promotion gate: the checks a version passes before it becomes the champion.

Each check says what it found, passed or not, so a refusal names the check that failed
and why. The gate reads only aggregates: metrics of the candidate and of the champion on
the same held-out rows, the lineage tags, and what the PHI scan found (kinds and places,
never values).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from model.train import FEATURES, Evaluation
from safeguards import phi
from sandbox.schema import IDENTIFIERS

# Columns that must never reach a model: the raw identifiers and what de-identification
# keeps beside the features (pseudonym, coarse geography and years).
IDENTIFIER_COLUMNS = frozenset(IDENTIFIERS) | {
    "pseudonym",
    "zip3",
    "admission_year",
    "discharge_year",
    "age_90_plus",
    "site",
}
# MLflow writes its own creation time into these files; it dates the model, not a patient.
_MLFLOW_TIMESTAMP = re.compile(r"^utc_time_created: .*$", re.MULTILINE)
# An identifier column's name as a quoted value (a key such as "name": is JSON structure).
_QUOTED_COLUMN = re.compile(
    r"[\"']({})[\"'](?!\s*:)".format("|".join(sorted(map(re.escape, IDENTIFIER_COLUMNS))))
)


@dataclass(frozen=True)
class Policy:
    min_auroc: float = 0.70
    max_brier: float = 0.20
    # Small subgroups (few young patients develop diabetes) have wide AUROC uncertainty.
    max_subgroup_gap: float = 0.15
    # The candidate must beat the champion's AUROC on the same rows by at least this much.
    min_auroc_gain: float = 0.001


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class Decision:
    checks: tuple[Check, ...]

    @property
    def approved(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def record(self) -> dict[str, dict[str, Any]]:
        """The checks keyed by name, as the audit log stores them."""
        return {c.name: {"passed": c.passed, "reason": c.reason} for c in self.checks}


def decide(
    policy: Policy,
    candidate: Evaluation | None,
    champion: Evaluation | None,
    missing_lineage: list[str],
    phi_findings: list[str],
) -> Decision:
    """`candidate` is None when its lineage is too incomplete to rebuild its held-out rows."""
    checks = [
        Check(
            "lineage",
            not missing_lineage,
            "complete" if not missing_lineage else f"missing {', '.join(missing_lineage)}",
        ),
        Check(
            "phi_scan",
            not phi_findings,
            "nothing found" if not phi_findings else "found " + "; ".join(phi_findings),
        ),
    ]
    if candidate is None:
        return Decision(tuple(checks))
    gap = candidate.max_subgroup_gap
    checks += [
        Check(
            "auroc",
            candidate.auroc >= policy.min_auroc,
            f"{candidate.auroc:.3f} (at least {policy.min_auroc:.3f})",
        ),
        Check(
            "brier",
            candidate.brier <= policy.max_brier,
            f"{candidate.brier:.4f} (at most {policy.max_brier:.4f})",
        ),
        Check(
            "subgroup_gap",
            gap <= policy.max_subgroup_gap,
            f"largest AUROC gap {gap:.3f} (at most {policy.max_subgroup_gap:.3f})",
        ),
    ]
    if champion is None:
        checks.append(Check("beats_champion", True, "no champion yet"))
    else:
        gain = candidate.auroc - champion.auroc
        checks.append(
            Check(
                "beats_champion",
                gain >= policy.min_auroc_gain,
                f"AUROC {candidate.auroc:.3f} against the champion's {champion.auroc:.3f} "
                f"on the same {candidate.rows:,} held-out rows (gain at least "
                f"{policy.min_auroc_gain:.3f})",
            ),
        )
    return Decision(tuple(checks))


def scan_record(where: str, values: dict[str, str]) -> list[str]:
    """Identifier patterns in the keys and values of params or tags."""
    findings = []
    for key, value in values.items():
        kinds = phi.find_identifiers(f"{key} {value}")
        if key.lower() in IDENTIFIER_COLUMNS:
            kinds.append("identifier field")
        findings += [f"{where} {key}: {kind}" for kind in kinds]
    return findings


def scan_signature(mlmodel: dict[str, Any]) -> list[str]:
    """Columns of the signature's inputs beyond the model's clinical features."""
    inputs = yaml.safe_load(mlmodel.get("signature", {}).get("inputs", "[]")) or []
    names = [column.get("name") for column in inputs]
    return [f"signature column {n}: not a clinical feature" for n in names if n not in FEATURES]


def scan_files(root: Path, files: Iterable[Path]) -> list[str]:
    """Identifier patterns and identifier column names in every text file, including the
    members of the skops archive. Images are rendered from aggregates and not read."""
    findings = []
    for path in files:
        where = str(path.relative_to(root))
        if path.suffix == ".png":
            continue
        if path.suffix == ".skops":
            with zipfile.ZipFile(path) as archive:
                texts = {
                    f"{where}:{member}": archive.read(member).decode(errors="ignore")
                    for member in archive.namelist()
                    if member.endswith(".json")
                }
        else:
            texts = {where: path.read_text(errors="ignore")}
        for name, text in texts.items():
            text = _MLFLOW_TIMESTAMP.sub("", text)
            findings += [f"{name}: {kind}" for kind in phi.find_identifiers(text)]
            findings += [f"{name}: column {m}" for m in sorted(set(_QUOTED_COLUMN.findall(text)))]
    return findings

"""The promotion gate: the checks a version passes before it becomes the champion.

Each check says what it found, passed or not, so a refusal names the check that failed
and why. The gate reads only aggregates: metrics of the candidate on its evaluation rows,
of both models on the rows neither was trained on, the lineage tags, and what the PHI
scan found (kinds and places, never values).

An operator may override a refusal by the metric checks, with a reason that is audited;
nobody may override the lineage or the PHI scan.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from contract import Contract
from model import twin
from model.train import MIN_SUBGROUP_CASES, Evaluation
from safeguards import phi
from safeguards.errors import IntegrityError

# MLflow writes its own creation time into these files; it dates the model, not a patient.
_MLFLOW_TIMESTAMP = re.compile(r"^utc_time_created: .*$", re.MULTILINE)
# Checks an operator may override with a reason: judgements about performance.
OVERRIDABLE = frozenset({"auroc", "brier", "subgroup_gap", "beats_champion"})


@dataclass(frozen=True)
class Policy:
    min_auroc: float = 0.70
    max_brier: float = 0.20
    # Small subgroups (few young patients develop diabetes) have wide AUROC uncertainty.
    max_subgroup_gap: float = 0.15
    # The candidate must beat the champion's AUROC on the same rows by at least this much.
    min_auroc_gain: float = 0.001
    # Rows neither model was trained on, of each outcome, needed to compare them at all.
    min_comparison_rows: int = 20


@dataclass(frozen=True)
class Comparison:
    """Both models' AUROC on the rows neither was trained on."""

    candidate_auroc: float
    champion_auroc: float
    rows: int
    positives: int
    # Candidate evaluation rows left out because the champion was trained on them.
    excluded: int


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class Decision:
    checks: tuple[Check, ...]
    # The operator's reason for promoting past failed metric checks, if any.
    override: str | None = None

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def overridden(self) -> bool:
        """Refused by metric checks only, and promoted by an operator's override."""
        failed = {c.name for c in self.failed}
        return bool(failed) and self.override is not None and failed <= OVERRIDABLE

    @property
    def approved(self) -> bool:
        return not self.failed or self.overridden

    def record(self) -> dict[str, dict[str, Any]]:
        """The checks keyed by name, as the audit log stores them."""
        return {c.name: {"passed": c.passed, "reason": c.reason} for c in self.checks}


def twin_check(difference: float | None, rows: int, reason: str) -> Check:
    """The ONNX twin against the model on `rows` held-out rows: `difference` is the largest
    absolute difference of their probabilities, None when there is no twin (`reason`)."""
    if difference is None:
        return Check("onnx_twin", True, f"no twin ({reason}); the model itself is served")
    return Check(
        "onnx_twin",
        difference <= twin.TOLERANCE,
        f"largest difference {difference:.1e} on {rows:,} held-out rows "
        f"(at most {twin.TOLERANCE:.0e})",
    )


def decide(
    policy: Policy,
    candidate: Evaluation | None,
    comparison: Comparison | None,
    missing_lineage: list[str],
    phi_findings: list[str],
    override: str | None = None,
    twin_agrees: Check | None = None,
) -> Decision:
    """`candidate` is None when its lineage is too incomplete to rebuild its evaluation
    rows; `comparison` is None when there is no champion; `twin_agrees` is `twin_check`'s
    verdict."""
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
        return Decision(tuple(checks), override)
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
            f"largest AUROC gap {gap:.3f} (at most {policy.max_subgroup_gap:.3f}) between "
            f"{len(candidate.compared_subgroups)} of {len(candidate.subgroups)} subgroups "
            f"(those with at least {MIN_SUBGROUP_CASES} of each outcome)",
        ),
        _beats(policy, comparison),
        *([twin_agrees] if twin_agrees else []),
    ]
    return Decision(tuple(checks), override)


def _beats(policy: Policy, comparison: Comparison | None) -> Check:
    if comparison is None:
        return Check("beats_champion", True, "no champion yet")
    c = comparison
    excluded = f"; {c.excluded:,} rows the champion was trained on left out" if c.excluded else ""
    negatives = c.rows - c.positives
    if min(c.positives, negatives) < policy.min_comparison_rows:
        return Check(
            "beats_champion",
            False,
            f"only {c.rows:,} rows neither model was trained on ({c.positives:,} positive); "
            f"comparing needs at least {policy.min_comparison_rows} of each outcome{excluded}",
        )
    gain = c.candidate_auroc - c.champion_auroc
    return Check(
        "beats_champion",
        gain >= policy.min_auroc_gain,
        f"AUROC {c.candidate_auroc:.3f} against the champion's {c.champion_auroc:.3f} on the "
        f"same {c.rows:,} rows neither was trained on (gain at least "
        f"{policy.min_auroc_gain:.3f}){excluded}",
    )


def scan_record(where: str, values: dict[str, str], contract: Contract) -> list[str]:
    """Identifier patterns in the keys and values of params or tags."""
    findings = []
    for key, value in values.items():
        kinds = phi.find_identifiers(f"{key} {value}")
        if key.lower() in contract.never_model_inputs | phi.IDENTIFIER_FIELDS:
            kinds.append("identifier field")
        findings += [f"{where} {key}: {kind}" for kind in kinds]
    return findings


def scan_signature(mlmodel: dict[str, Any], contract: Contract) -> list[str]:
    """Columns of the signature's inputs beyond the contract's features."""
    inputs = yaml.safe_load(mlmodel.get("signature", {}).get("inputs", "[]")) or []
    names = [column.get("name") for column in inputs]
    return [
        f"signature column {n}: not a feature of the contract"
        for n in names
        if n not in contract.features
    ]


def _quoted_columns(contract: Contract) -> re.Pattern[str]:
    """A column that must never reach a model, named as a quoted value (a key such as
    "name": is JSON structure)."""
    names = "|".join(sorted(map(re.escape, contract.never_model_inputs)))
    return re.compile(rf"[\"']({names})[\"'](?!\s*:)")


def scan_files(root: Path, files: Iterable[Path], contract: Contract) -> list[str]:
    """Identifier patterns and identifier column names in every text file, including the
    members of the skops archive and the strings of an ONNX graph. Images are rendered
    from aggregates and not read."""
    quoted = _quoted_columns(contract)
    findings = []
    for path in files:
        where = str(path.relative_to(root))
        if path.suffix == ".png":
            continue
        try:
            texts = _texts(path, where)
        except (zipfile.BadZipFile, IntegrityError):
            # What cannot be read cannot be cleared: the scan reports it.
            findings.append(f"{where}: unreadable, so not scanned")
            continue
        for name, text in texts.items():
            text = _MLFLOW_TIMESTAMP.sub("", text)
            findings += [f"{name}: {kind}" for kind in phi.find_identifiers(text)]
            findings += [f"{name}: column {m}" for m in sorted(set(quoted.findall(text)))]
    return findings


def _texts(path: Path, where: str) -> dict[str, str]:
    """The texts of one file to scan, by where they are: a skops archive's JSON members,
    an ONNX graph's strings, or the file itself."""
    if path.suffix == ".skops":
        with zipfile.ZipFile(path) as archive:
            return {
                f"{where}:{member}": archive.read(member).decode(errors="ignore")
                for member in archive.namelist()
                if member.endswith(".json")
            }
    if path.suffix == ".onnx":
        return {where: "\n".join(onnx_strings(path.read_bytes()))}
    return {where: path.read_text(errors="ignore")}


def onnx_strings(data: bytes) -> list[str]:
    """Every string an ONNX graph carries: names, documentation, metadata, string
    attributes and string tensors (where a category, or an identifier, would hide), each
    quoted as it would be in JSON."""
    import onnx
    from onnx import AttributeProto, TensorProto

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:
        # protobuf's decoding errors, whatever the bytes were.
        raise IntegrityError(f"not an ONNX graph ({type(exc).__name__})") from None
    found = [model.doc_string, model.producer_name]
    found += [f"{p.key}={p.value}" for p in model.metadata_props]

    def tensor(t: Any) -> None:
        if t.data_type == TensorProto.STRING:
            found.extend(s.decode(errors="ignore") for s in t.string_data)

    def nodes(items: Iterable[Any]) -> None:
        for node in items:
            found.extend([node.name, node.doc_string])
            for attr in node.attribute:
                if attr.type == AttributeProto.STRING:
                    found.append(attr.s.decode(errors="ignore"))
                elif attr.type == AttributeProto.STRINGS:
                    found.extend(s.decode(errors="ignore") for s in attr.strings)
                elif attr.type == AttributeProto.TENSOR:
                    tensor(attr.t)
                elif attr.type == AttributeProto.GRAPH:
                    graph(attr.g)
                elif attr.type == AttributeProto.GRAPHS:
                    for g in attr.graphs:
                        graph(g)

    def graph(g: Any) -> None:
        found.append(g.doc_string)
        found.extend(v.name for v in (*g.input, *g.output))
        for init in g.initializer:
            tensor(init)
        nodes(g.node)

    graph(model.graph)
    for function in model.functions:
        nodes(function.node)
    return [f'"{s}"' for s in found if s]

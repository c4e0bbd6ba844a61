"""TRAIN, strung together: dataset version to registered model, the gate, the champion.

Run by the project's workload identity (`project-<p>`): it reads de-identified dataset
versions, reaches the project's MLflow experiment and registered model, and writes to the
audit log. Only a dataset version with de-identification evidence is trained on; every
decision about the champion is recorded with who made it and why.
"""

from __future__ import annotations

import json
import platform
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as installed
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from model import card, gate
from model.registry import LINEAGE, ProjectRegistry, Registered
from model.train import (
    FEATURES,
    NUMERIC,
    Evaluation,
    TrainConfig,
    evaluate,
    features,
    fit,
    split,
)
from safeguards import keys, openbao
from safeguards.audit import AuditLog
from safeguards.errors import ConfigError, GateRefused, NotFound
from safeguards.settings import Settings
from sandbox.schema import LABEL
from sandbox.versions import DatasetRepo

ACTOR = "pipeline:train"
# Version tags that record what people and the gate decided about a version.
DECISION_TAG, ROLLED_BACK_TAG = "gate.decision", "champion.rolled_back"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Trained:
    registered: Registered
    evaluation: Evaluation


@dataclass(frozen=True)
class Promotion:
    version: str
    champion: str | None
    decision: gate.Decision


def _source_commit() -> tuple[str, bool]:
    """The git commit of this code and whether the tree has changes, where it is a checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, bool(dirty)


def typical_example(frame: pd.DataFrame) -> pd.DataFrame:
    """An input example that is nobody's row: medians of the numeric features, modes of
    the others."""
    row: dict[str, Any] = {}
    for column in FEATURES:
        values = frame[column]
        if column in NUMERIC:
            median = values.median()
            row[column] = round(median) if values.dtype.kind == "i" else float(median)
        else:
            row[column] = values.mode().iloc[0]
    return features(pd.DataFrame([row]).assign(**{LABEL: False}))


class ModelSteward:
    """Trains, evaluates, promotes and rolls back one project's model."""

    def __init__(self, settings: Settings, project: str) -> None:
        self.settings = settings
        self.project = keys.validate_project(project)
        self.bao = openbao.login(settings, keys.identity(project))
        self.repo = DatasetRepo(settings, project, self.bao, role="workload")
        self.registry = ProjectRegistry(settings, project, self.bao)
        self.audit = AuditLog.of(settings, self.bao)

    def training_data(
        self, dataset: str, revision: str = "HEAD"
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """A de-identified dataset version with its evidence checked; anything else refused."""
        meta = self.repo.version(dataset, revision)
        self.repo.evidence(meta)
        return self.repo.read(dataset, meta["revision"]), meta

    def lineage(self, meta: dict[str, Any], actor: str) -> dict[str, str]:
        commit, dirty = _source_commit()
        tags = {
            "project": self.project,
            "dataset.name": meta["name"],
            "dataset.content_hash": meta["content_hash"],
            "dataset.revision": meta["revision"],
            "dataset.evidence_id": meta["evidence_id"],
            "dataset.rows": str(meta["rows"]),
            "code.git_commit": commit,
            "code.git_dirty": str(dirty).lower(),
            "env.python": platform.python_version(),
            **{f"package.{p}": installed(p) for p in ("scikit-learn", "mlflow", "skops")},
            "trained_by": keys.identity(self.project),
            "triggered_by": actor,
        }
        if self.settings.image_digest:
            tags["image.digest"] = self.settings.image_digest
        return tags

    def train(
        self,
        dataset: str,
        revision: str = "HEAD",
        config: TrainConfig | None = None,
        actor: str = ACTOR,
        progress: Progress | None = None,
    ) -> Trained:
        config = config or TrainConfig()
        step = progress or (lambda _: None)
        step("reading the dataset version")
        frame, meta = self.training_data(dataset, revision)
        step("training")
        train_rows, test_rows = split(frame, config)
        model = fit(train_rows, config)
        step("evaluating on held-out data")
        evaluation = evaluate(model, test_rows)
        lineage = self.lineage(meta, actor)
        artifacts = {
            "evaluation.json": json.dumps(evaluation.to_dict(), indent=1).encode(),
            "calibration.png": card.calibration_png(evaluation),
            "card.md": card.card_markdown(
                self.registry.name, "candidate", evaluation, lineage
            ).encode(),
        }
        step("logging the run to MLflow")
        run_id, model_uri = self.registry.log_run(
            model,
            typical_example(frame),
            config.as_params(),
            evaluation.metrics(),
            lineage,
            artifacts,
        )
        step("registering the version")
        registered = self.registry.register(run_id, model_uri, lineage)
        self.audit.append(
            actor,
            "model.register",
            f"model/{self.project}/{self.registry.name}/{registered.version}",
            run_id=registered.run_id,
            dataset=meta["name"],
            dataset_revision=meta["revision"],
            auroc=round(evaluation.auroc, 4),
        )
        return Trained(registered, evaluation)

    def _held_out(self, tags: dict[str, str], params: dict[str, str]) -> pd.DataFrame:
        """The held-out rows the version was evaluated on, rebuilt from its lineage."""
        config = TrainConfig(seed=int(params["seed"]), test_size=float(params["test_size"]))
        frame, _ = self.training_data(tags["dataset.name"], tags["dataset.revision"])
        return split(frame, config)[1]

    def reference_rows(self, version: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Every row of the dataset version `version` was trained on, and its held-out rows."""
        mv = self.registry.version(version)
        run = self.registry.run_record(str(mv.run_id))
        frame, _ = self.training_data(mv.tags["dataset.name"], mv.tags["dataset.revision"])
        config = TrainConfig(
            seed=int(run["params"]["seed"]), test_size=float(run["params"]["test_size"])
        )
        return frame, split(frame, config)[1]

    def evaluate(
        self, version: str, dataset: str | None = None, revision: str = "HEAD"
    ) -> Evaluation:
        """A version on its own held-out rows, or on every row of another dataset version."""
        model = self.registry.load(version)
        if dataset is None:
            mv = self.registry.version(version)
            run = self.registry.run_record(str(mv.run_id))
            return evaluate(model, self._held_out(mv.tags, run["params"]))
        frame, _ = self.training_data(dataset, revision)
        return evaluate(model, frame)

    def promote(self, version: str, approver: str, policy: gate.Policy | None = None) -> Promotion:
        """Run the gate on `version`; move `champion` to it only if every check passes.

        The candidate and the champion are both scored on the candidate's held-out rows.
        The decision is audited, with its checks, before the alias moves.
        """
        policy = policy or gate.Policy()
        candidate = self.registry.version(version)
        champion = self.registry.champion()
        if champion is not None and champion.version == candidate.version:
            raise GateRefused(f"version {version} is already the champion")
        missing = [tag for tag in LINEAGE if not candidate.tags.get(tag)]
        run = self.registry.run_record(str(candidate.run_id))
        findings = gate.scan_record("version tag", candidate.tags)
        findings += gate.scan_record("param", run["params"])
        findings += gate.scan_record("run tag", run["tags"])
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            files = self.registry.download(candidate, root)
            findings += gate.scan_files(root, files)
            mlmodel = root / "model" / "MLmodel"
            findings += gate.scan_signature(yaml.safe_load(mlmodel.read_text()))
        candidate_eval = champion_eval = None
        if not missing:
            held_out = self._held_out(candidate.tags, run["params"])
            candidate_eval = evaluate(self.registry.load(version), held_out)
            if champion is not None:
                champion_eval = evaluate(self.registry.load(champion.version), held_out)
        decision = gate.decide(policy, candidate_eval, champion_eval, missing, findings)
        outcome = "approved" if decision.approved else "refused"
        self.audit.append(
            approver,
            "model.promote",
            f"model/{self.project}/{self.registry.name}/{version}",
            outcome=outcome,
            champion_before=champion.version if champion else None,
            checks=decision.record(),
        )
        self.registry.tag_version(version, DECISION_TAG, outcome)
        if decision.approved:
            history = self.registry.history()
            # A promotion interrupted before the alias moved left the version in history.
            if not history or history[-1] != version:
                history.append(version)
            self.registry.set_champion(version, history)
        return Promotion(version, champion.version if champion else None, decision)

    def rollback(self, approver: str) -> tuple[str, str]:
        """Move `champion` back to the version that held it before; audited."""
        champion = self.registry.champion()
        if champion is None:
            raise NotFound("there is no champion to roll back")
        history = self.registry.history()
        if champion.version in history:
            history = history[: len(history) - history[::-1].index(champion.version) - 1]
        if not history:
            raise GateRefused(f"version {champion.version} has no earlier champion to return to")
        target = history[-1]
        self.audit.append(
            approver,
            "model.rollback",
            f"model/{self.project}/{self.registry.name}/{target}",
            champion_before=champion.version,
        )
        self.registry.tag_version(champion.version, ROLLED_BACK_TAG, "true")
        self.registry.set_champion(target, history)
        return champion.version, target

    def card(self, version: str, into: Path) -> Path:
        """The version's model card (Markdown) and calibration plot, written into `into`."""
        mv = self.registry.version(version)
        with tempfile.TemporaryDirectory() as tmp:
            files = {p.name: p for p in self.registry.download(mv, Path(tmp))}
            if "evaluation.json" not in files:
                raise ConfigError(f"version {version} has no evaluation to build its card from")
            evaluation = Evaluation.from_dict(json.loads(files["evaluation.json"].read_text()))
        into.mkdir(parents=True, exist_ok=True)
        champion = self.registry.champion()
        status = " (champion)" if champion is not None and champion.version == version else ""
        lineage = {k: v for k, v in mv.tags.items() if k in LINEAGE or k.startswith("dataset.")}
        path = into / f"card-v{version}.md"
        path.write_text(
            card.card_markdown(self.registry.name, version + status, evaluation, lineage)
        )
        (into / "calibration.png").write_bytes(card.calibration_png(evaluation))
        return path

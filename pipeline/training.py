"""TRAIN, strung together: dataset version to registered model, the gate, the champion.

Run by the project's workload identity (`project-<p>`): it reads de-identified dataset
versions, the project's contract, reaches the project's MLflow experiment and registered
model, and writes to the audit log. Only a dataset version with de-identification
evidence is trained on, or validates an imported model; every decision about the
champion is recorded with who made it and why.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as installed
from pathlib import Path
from typing import Any

import hvac
import numpy as np
import pandas as pd
import yaml
from mlflow.entities.model_registry import ModelVersion
from sklearn.metrics import roc_auc_score

import contract as contracts
from model import card, gate, twin
from model.train import Evaluation, TrainConfig, evaluate, features, fit, split
from safeguards import keys, openbao, phi
from safeguards.audit import AuditLog
from safeguards.errors import ConfigError, GateRefused, IntegrityError, NotFound
from safeguards.registry import (
    LINEAGE,
    TWIN,
    TWIN_TAG,
    OnnxScorer,
    ProjectRegistry,
    Registered,
    Scorer,
    SklearnScorer,
    load_skops,
)
from safeguards.settings import Settings
from sandbox.versions import DatasetRepo
from services.serving import sagemaker

ACTOR = "pipeline:train"
# Version tags that record what people and the gate decided about a version.
DECISION_TAG, ROLLED_BACK_TAG = "gate.decision", "champion.rolled_back"
# A run's param saying its model was evaluated on every row of its dataset (an imported
# model: we cannot know what it was trained on).
EVALUATED_ON = "evaluation"
# Imported models: at most this large, read whole.
MAX_IMPORT_BYTES = 512 * 1024**2
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Trained:
    registered: Registered
    evaluation: Evaluation


@dataclass(frozen=True)
class Logged:
    """What a run logs besides its model: the data it read, its params, its evaluation."""

    frame: pd.DataFrame
    meta: dict[str, Any]
    params: dict[str, Any]
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


def typical_example(frame: pd.DataFrame, contract: contracts.Contract) -> pd.DataFrame:
    """An input example that is nobody's row: medians of the numbers, modes of the rest."""
    row: dict[str, Any] = {}
    for name in contract.features:
        values = frame[name].dropna()
        if contract.column(name).type in contracts.NUMERIC:
            median = values.median()
            row[name] = round(median) if values.dtype.kind == "i" else float(median)
        else:
            row[name] = values.mode().iloc[0]
    return features(pd.DataFrame([row]), contract)


def row_keys(frame: pd.DataFrame) -> pd.Index:
    """A digest of each de-identified row's content: the same record in two dataset
    versions has the same key."""
    columns = sorted(frame.columns)
    return pd.Index(pd.util.hash_pandas_object(frame[columns].astype(str), index=False))


def check_override(reason: str | None, approver: str) -> None:
    """An override needs an operator and a reason that names no identifier."""
    if reason is None:
        return
    if not approver.startswith("operator:"):
        raise GateRefused("only an operator may override the gate")
    if len(reason.strip()) < 10:
        raise ConfigError("an override needs a reason of at least 10 characters")
    if phi.find_identifiers(reason):
        raise ConfigError("the override's reason looks like it holds an identifier; reword it")


class ModelSteward:
    """Trains, imports, evaluates, promotes and rolls back one project's model."""

    def __init__(self, settings: Settings, project: str, bao: hvac.Client | None = None) -> None:
        self.settings = settings
        self.project = keys.validate_project(project)
        self.bao = bao or openbao.login(settings, keys.identity(project))
        self.contract = contracts.load(self.bao, project)
        self.repo = DatasetRepo(settings, project, self.bao, role="workload")
        self.registry = ProjectRegistry(settings, project, self.bao)
        self.audit = AuditLog.of(settings, self.bao)

    def training_data(
        self, dataset: str, revision: str = "HEAD"
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """A de-identified dataset version with its evidence checked; anything else refused."""
        meta = self.repo.version(dataset, revision)
        evidence = self.repo.evidence(meta)
        if evidence.get("contract", {}).get("fingerprint") != self.contract.fingerprint:
            raise GateRefused(f"dataset {dataset} was de-identified under another contract")
        return self.repo.read(dataset, meta["revision"]), meta

    def lineage(self, meta: dict[str, Any], actor: str, **extra: str) -> dict[str, str]:
        commit, dirty = _source_commit()
        tags = {
            "project": self.project,
            "contract.name": self.contract.name,
            "contract.fingerprint": self.contract.fingerprint,
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
            **extra,
        }
        if self.settings.image_digest:
            tags["image.digest"] = self.settings.image_digest
        return tags

    def _artifacts(
        self, evaluation: Evaluation, lineage: dict[str, str], origin: str
    ) -> dict[str, bytes]:
        return {
            "evaluation.json": json.dumps(evaluation.to_dict(), indent=1).encode(),
            "calibration.png": card.calibration_png(evaluation),
            "card.md": card.card_markdown(
                self.registry.name, "candidate", evaluation, lineage, self.contract, origin
            ).encode(),
        }

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
        step(f"training ({config.algorithm})")
        train_rows, test_rows = split(frame, self.contract, config)
        model = fit(train_rows, self.contract, config)
        step("evaluating on held-out data")
        evaluation = evaluate(model, test_rows, self.contract)
        step("converting to its ONNX twin")
        return self._register(
            model,
            Logged(frame, meta, config.as_params(self.contract), evaluation),
            self.lineage(meta, actor, **{"model.algorithm": config.algorithm}),
            f"trained here ({config.algorithm})",
            actor,
            step,
            twin.convert(model, self.contract, test_rows),
        )

    def import_model(
        self,
        path: Path,
        dataset: str,
        revision: str = "HEAD",
        actor: str = ACTOR,
        progress: Progress | None = None,
    ) -> Trained:
        """Register a model a team brings (a scikit-learn pipeline saved with skops, or an
        ONNX graph), validated on every row of a de-identified dataset version. It is
        promoted only through the gate, like any other version."""
        step = progress or (lambda _: None)
        step("reading the model file")
        if not path.is_file() or not 0 < path.stat().st_size <= MAX_IMPORT_BYTES:
            raise ConfigError(f"{path.name} is missing, empty or over {MAX_IMPORT_BYTES} bytes")
        data = path.read_bytes()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if path.suffix == ".skops":
            model: Any = load_skops(data)
            _check_classifier(model, self.contract)
            scorer: Scorer = SklearnScorer(model)
            converted = None
        elif path.suffix == ".onnx":
            scorer = OnnxScorer(data, self.contract.features)
            model = data
            converted = twin.Twin(None, "an ONNX model; ONNX Runtime serves it as it is")
        else:
            raise ConfigError("a model to import is a .skops or an .onnx file")
        step("reading the dataset version")
        frame, meta = self.training_data(dataset, revision)
        step("scoring every row of the dataset version")
        try:
            evaluation = evaluate(scorer, frame, self.contract)
        except (ConfigError, IntegrityError):
            raise
        except Exception as exc:
            raise ConfigError(
                f"the model fails to score the contract's features ({type(exc).__name__})"
            ) from None
        if converted is None:
            step("converting to its ONNX twin")
            converted = twin.convert(model, self.contract, frame)
        imported = {
            "trained_by": "external",
            "imported_by": actor,
            "model.origin": "imported",
            "model.format": scorer.format,
            "model.file_sha256": digest,
        }
        params = {EVALUATED_ON: "all", "origin": "imported", "format": scorer.format}
        return self._register(
            model,
            Logged(frame, meta, params, evaluation),
            self.lineage(meta, actor, **imported),
            f"imported ({scorer.format}) by {actor}",
            actor,
            step,
            converted,
        )

    def _register(
        self,
        model: Any,
        logged: Logged,
        lineage: dict[str, str],
        origin: str,
        actor: str,
        step: Progress,
        converted: twin.Twin,
    ) -> Trained:
        """Log the run with its model, its ONNX twin (if any) and artifacts, register the
        version in one request with its lineage, and audit it (`model.register`, or
        `model.import`)."""
        step("logging the run to MLflow")
        lineage = {**lineage, **converted.tags()}
        logged_files = self._artifacts(logged.evaluation, lineage, origin)
        if converted.model is not None:
            logged_files[TWIN] = converted.model
        run_id, model_uri = self.registry.log_run(
            model,
            typical_example(logged.frame, self.contract),
            logged.params,
            logged.evaluation.metrics(),
            lineage,
            logged_files,
        )
        step("registering the version")
        registered = self.registry.register(run_id, model_uri, lineage)
        imported = "model.file_sha256" in lineage
        self.audit.append(
            actor,
            "model.import" if imported else "model.register",
            f"model/{self.project}/{self.registry.name}/{registered.version}",
            run_id=registered.run_id,
            dataset=logged.meta["name"],
            dataset_revision=logged.meta["revision"],
            auroc=round(logged.evaluation.auroc, 4),
            twin=lineage[TWIN_TAG],
            **({"sha256": lineage["model.file_sha256"]} if imported else {}),
        )
        return Trained(registered, logged.evaluation)

    def rows(self, version: ModelVersion) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Every row of the dataset version `version` was trained or validated on, the rows
        it was evaluated on, and the rows it was trained on (none we know of, imported)."""
        params = self.registry.run_record(str(version.run_id))["params"]
        frame, _ = self.training_data(
            version.tags["dataset.name"], version.tags["dataset.revision"]
        )
        if params.get(EVALUATED_ON) == "all":
            return frame, frame, frame.iloc[:0]
        trained_on, held_out = split(frame, self.contract, TrainConfig.from_params(params))
        return frame, held_out, trained_on

    def load(self, version: str) -> Scorer:
        return self.registry.load(version, self.contract.features)

    def evaluate(
        self, version: str, dataset: str | None = None, revision: str = "HEAD"
    ) -> Evaluation:
        """A version on its own evaluation rows, or on every row of another dataset version."""
        if dataset is None:
            rows = self.rows(self.registry.version(version))[1]
        else:
            rows, _ = self.training_data(dataset, revision)
        return evaluate(self.load(version), rows, self.contract)

    def _comparison(
        self, candidate: Scorer, rows: pd.DataFrame, champion: ModelVersion, policy: gate.Policy
    ) -> gate.Comparison:
        """Both models on the candidate's evaluation rows, less those the champion was
        trained on: a champion is never judged on its own training rows."""
        trained_on = self.rows(champion)[2]
        keep = ~row_keys(rows).isin(row_keys(trained_on))
        compared = rows[keep]
        truth = compared[self.contract.label].astype(int)
        positives = int(truth.sum())
        aurocs = (float("nan"), float("nan"))
        if min(positives, len(truth) - positives) >= policy.min_comparison_rows:
            frame = features(compared, self.contract)
            aurocs = (
                float(roc_auc_score(truth, candidate.probabilities(frame))),
                float(roc_auc_score(truth, self.load(champion.version).probabilities(frame))),
            )
        return gate.Comparison(*aurocs, len(compared), positives, int((~keep).sum()))

    def _twin_check(self, version: ModelVersion, model: Scorer, rows: pd.DataFrame) -> gate.Check:
        """The version's ONNX twin against the model itself on `rows`."""
        if version.tags.get(TWIN_TAG) != "onnx":
            reason = version.tags.get(twin.REASON_TAG, "logged before twins existed")
            return gate.twin_check(None, len(rows), reason)
        frame = features(rows, self.contract)
        try:
            served = OnnxScorer(self.registry.twin(version), self.contract.features)
        except (ConfigError, IntegrityError) as exc:
            return gate.Check("onnx_twin", False, f"the logged twin is unusable: {exc}")
        difference = np.abs(served.probabilities(frame) - model.probabilities(frame)).max()
        return gate.twin_check(float(difference), len(rows), "")

    def promote(
        self,
        version: str,
        approver: str,
        policy: gate.Policy | None = None,
        override: str | None = None,
    ) -> Promotion:
        """Run the gate on `version`; move `champion` to it only if every check passes, or
        an operator overrides failed metric checks with a reason.

        The decision is audited, with its checks and any override, before the alias moves.
        """
        check_override(override, approver)
        policy = policy or gate.Policy()
        candidate = self.registry.version(version)
        champion = self.registry.champion()
        if champion is not None and champion.version == candidate.version:
            raise GateRefused(f"version {version} is already the champion")
        missing = [tag for tag in LINEAGE if not candidate.tags.get(tag)]
        if candidate.tags.get("contract.fingerprint") not in (None, self.contract.fingerprint):
            missing.append("contract.fingerprint (of another contract)")
        run = self.registry.run_record(str(candidate.run_id))
        findings = gate.scan_record("version tag", candidate.tags, self.contract)
        findings += gate.scan_record("param", run["params"], self.contract)
        findings += gate.scan_record("run tag", run["tags"], self.contract)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            files = self.registry.download(candidate, root)
            findings += gate.scan_files(root, files, self.contract)
            mlmodel = root / "model" / "MLmodel"
            findings += gate.scan_signature(yaml.safe_load(mlmodel.read_text()), self.contract)
        candidate_eval = comparison = twin_agrees = None
        if not missing:
            evaluated_on = self.rows(candidate)[1]
            scorer = self.load(version)
            candidate_eval = evaluate(scorer, evaluated_on, self.contract)
            if champion is not None:
                comparison = self._comparison(scorer, evaluated_on, champion, policy)
            twin_agrees = self._twin_check(candidate, scorer, evaluated_on)
        decision = gate.decide(
            policy, candidate_eval, comparison, missing, findings, override, twin_agrees
        )
        outcome = "approved" if decision.approved else "refused"
        extra = {"override": override, "overridden": [c.name for c in decision.failed]}
        self.audit.append(
            approver,
            "model.promote",
            f"model/{self.project}/{self.registry.name}/{version}",
            outcome=outcome,
            champion_before=champion.version if champion else None,
            checks=decision.record(),
            **(extra if decision.overridden else {}),
        )
        self.registry.tag_version(version, DECISION_TAG, outcome)
        if decision.approved:
            history = self.registry.history()
            # A promotion interrupted before the alias moved left the version in history.
            if not history or history[-1] != version:
                history.append(version)
            self.registry.set_champion(version, history)
        return Promotion(version, champion.version if champion else None, decision)

    def package(self, version: str, archive: Path, actor: str) -> Path:
        """Version `version` as the archive SageMaker unpacks into ``/opt/ml/model`` for the
        serving image (`services.serving.sagemaker`): its MLflow model directory, its ONNX
        twin if it has one, the project's contract and a manifest of the project, version,
        contract fingerprint and gate decision. Refused unless the gate approved the
        version; audited."""
        mv = self.registry.version(version)
        if mv.tags.get(DECISION_TAG) != "approved":
            raise GateRefused(f"version {version} was not approved by the promotion gate")
        if mv.tags.get("contract.fingerprint") not in (None, self.contract.fingerprint):
            raise IntegrityError(f"version {version} was trained under another contract")
        manifest = {
            "project": self.project,
            "model_version": version,
            "contract_fingerprint": self.contract.fingerprint,
            "gate": "approved",
        }
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            model = self.registry.model_directory(version, root / "download")
            (root / sagemaker.MANIFEST).write_text(json.dumps(manifest, indent=1))
            (root / sagemaker.CONTRACT).write_text(contracts.text(self.bao, self.project))
            files = [sagemaker.MANIFEST, sagemaker.CONTRACT]
            if mv.tags.get(TWIN_TAG) == "onnx":
                (root / TWIN).write_bytes(self.registry.twin(mv))
                files.append(TWIN)
            partial = archive.with_name(f".{archive.name}.partial")
            with tarfile.open(partial, "w:gz") as tar:
                tar.add(model, arcname="model")
                for name in files:
                    tar.add(root / name, arcname=name)
            partial.chmod(0o600)
            partial.replace(archive)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        self.audit.append(
            actor,
            "model.package",
            f"model/{self.project}/{self.registry.name}/{version}",
            sha256=digest,
        )
        return archive

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
        kept = ("contract.", "dataset.", "model.")
        lineage = {k: v for k, v in mv.tags.items() if k in LINEAGE or k.startswith(kept)}
        origin = (
            f"imported by {mv.tags.get('imported_by')}"
            if mv.tags.get("model.origin") == "imported"
            else "trained here"
        )
        path = into / f"card-v{version}.md"
        path.write_text(
            card.card_markdown(
                self.registry.name, version + status, evaluation, lineage, self.contract, origin
            )
        )
        (into / "calibration.png").write_bytes(card.calibration_png(evaluation))
        return path


def _check_classifier(model: Any, contract: contracts.Contract) -> None:
    """A scikit-learn binary classifier fitted on exactly the contract's features."""
    if not hasattr(model, "predict_proba") or len(getattr(model, "classes_", ())) != 2:
        raise ConfigError("the model is not a fitted binary classifier with predict_proba")
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise ConfigError(
            "the model does not record its input columns: fit it on a DataFrame of the "
            "contract's features"
        )
    if sorted(map(str, names)) != sorted(contract.features):
        raise ConfigError(
            f"the model's {len(names)} input columns are not the contract's "
            f"{len(contract.features)} features"
        )

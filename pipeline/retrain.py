"""RETRAIN: one pipeline, whichever trigger starts it (the weekly schedule, detected drift,
or a person through the CLI).

1. take the newest de-identified dataset version (its evidence is checked before a row
   is read);
2. stop there if the champion was trained on exactly that version: retraining on the
   same data cannot help, and a persisting drift alert must not loop;
3. train, evaluate and register a candidate (the champion's algorithm and settings on the
   new data), or pick up the candidate that an interrupted run already registered from
   that version;
4. run the promotion gate against the champion; promote, or hold with the reasons.

The endpoint picks up a new champion by itself. Every step is in the audit log with the
trigger, the actor, the dataset version, the model version and the decision.

Crash safety rests on the registry: a version is registered in one request, the gate's
decision is audited and tagged on the version before the alias moves, and a rerun
resumes from what the registry shows. A crash before registration leaves at most an
MLflow run without a version; after it, the rerun gates the registered candidate instead
of training another; after an approval, the rerun finishes moving the alias. Two runs
for one project never overlap: a file lock makes the second one skip.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from model.train import TrainConfig
from pipeline.training import DECISION_TAG, ROLLED_BACK_TAG, ModelSteward
from safeguards.errors import NotFound, SafeguardError
from safeguards.registry import ProjectRegistry
from safeguards.settings import Settings

TRIGGERS = ("schedule", "drift", "manual")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Retrain:
    trigger: str
    outcome: str  # promoted, held or skipped
    reason: str
    dataset: str | None = None
    dataset_revision: str | None = None
    version: str | None = None
    champion: str | None = None
    failed_checks: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "reason": self.reason,
            "dataset": self.dataset,
            "dataset_revision": self.dataset_revision,
            "version": self.version,
            "champion": self.champion,
            "failed_checks": self.failed_checks,
        }


@contextmanager
def _exclusive(settings: Settings, project: str) -> Iterator[bool]:
    """True when this process holds the project's retrain lock, False when another does."""
    path = settings.data_dir / "locks" / f"retrain-{project}.lock"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _candidate(registry: ProjectRegistry, revision: str) -> Any | None:
    """The newest registered version trained on dataset `revision`, if any."""
    matching = [v for v in registry.versions() if v.tags.get("dataset.revision") == revision]
    return max(matching, key=lambda v: int(v.version), default=None)


def _config_of(steward: ModelSteward, champion: Any | None) -> TrainConfig:
    """The champion's own training configuration: the same kind of model, on new data. An
    imported champion (or none) is challenged by the default logistic regression."""
    if champion is None or champion.tags.get("model.origin") == "imported":
        return TrainConfig()
    return TrainConfig.from_params(steward.registry.run_record(str(champion.run_id))["params"])


def retrain(
    settings: Settings,
    project: str,
    trigger: str,
    actor: str,
    progress: Progress | None = None,
) -> Retrain:
    """Run the pipeline once for `project`; audited from start to decision."""
    step = progress or (lambda _: None)
    with _exclusive(settings, project) as mine:
        steward = ModelSteward(settings, project)
        resource = f"model/{project}/{steward.registry.name}"
        steward.audit.append(actor, "retrain.start", resource, trigger=trigger)
        if not mine:
            result = Retrain(trigger, "skipped", "another retrain of this project is running")
        else:
            try:
                result = _run(steward, trigger, actor, step)
            except SafeguardError as exc:
                steward.audit.append(
                    actor, "retrain.finish", resource, outcome="failed", error=str(exc)
                )
                raise
        steward.audit.append(
            actor, "retrain.finish", resource, outcome=result.outcome, **result.record()
        )
        return result


def _run(steward: ModelSteward, trigger: str, actor: str, step: Progress) -> Retrain:
    step("finding the newest de-identified dataset version")
    newest = next((v for v in steward.repo.versions() if v["zone"] == "deidentified"), None)
    if newest is None:
        raise NotFound("there is no de-identified dataset version to train on")
    name, revision = newest["name"], newest["revision"]
    champion = steward.registry.champion()
    current = champion.version if champion else None
    found = Retrain(trigger, "", "", name, revision, champion=current)
    if champion is not None and champion.tags.get("dataset.revision") == revision:
        reason = "the champion was trained on the newest dataset version"
        return replace(found, outcome="skipped", reason=reason, version=current)
    candidate = _candidate(steward.registry, revision)
    if candidate is None:
        config = _config_of(steward, champion)
        trained = steward.train(name, revision, config, actor=actor, progress=step)
        version = trained.registered.version
    else:
        version = candidate.version
        if candidate.tags.get(ROLLED_BACK_TAG) == "true":
            reason = f"version {version}, trained on this data, was rolled back by a person"
            return replace(found, outcome="skipped", reason=reason, version=version)
        if candidate.tags.get(DECISION_TAG) == "refused":
            reason = f"version {version}, trained on this data, was refused by the gate"
            return replace(found, outcome="held", reason=reason, version=version)
        step(f"resuming with version {version}, registered by an interrupted run")
    step("running the promotion gate")
    promotion = steward.promote(version, approver=actor)
    if promotion.decision.approved:
        return replace(found, outcome="promoted", reason="every gate check passed", version=version)
    failed = promotion.decision.failed
    return replace(
        found,
        outcome="held",
        reason="; ".join(f"{c.name}: {c.reason}" for c in failed),
        version=version,
        failed_checks=[c.name for c in failed],
    )

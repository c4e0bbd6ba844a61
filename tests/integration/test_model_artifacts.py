"""A project's MLflow artifacts (its models, cards, evaluation files) live in its own
`models` zone, sealed under its own models key in the sandbox: never in MLflow's
directory, opened by no other project, and gone for everyone when the project is shredded.
"""

from __future__ import annotations

import json
import uuid

import hvac
import pytest

from pipeline.training import ModelSteward
from safeguards import artifacts, keys, openbao
from safeguards.errors import AccessDenied, KeyUnavailable
from safeguards.objectstore import LocalObjectStore, bucket_name
from safeguards.registry import ProjectRegistry, serving_user
from safeguards.settings import Settings
from tests.conftest import HOME, deidentified_project

pytestmark = pytest.mark.integration


def _sealed_key(blob: bytes) -> str:
    """The transit key a sealed object names (`safeguards.envelope`'s header)."""
    assert blob[:6] == b"HMENV1"
    length = int.from_bytes(blob[6:10], "big")
    return str(json.loads(blob[10 : 10 + length])["key"])


def test_a_projects_artifacts_are_sealed_in_its_models_zone_under_its_models_key(
    stack: Settings, operator: hvac.Client
) -> None:
    project = deidentified_project(stack, operator, rows=2000, seed=11)
    model = ModelSteward(stack, project)
    trained = model.train("clean")

    zone = stack.data_dir / "lake" / HOME / bucket_name(project, "models")
    files = [p for p in zone.rglob("*") if p.is_file()]
    names = [p.name for p in files]
    assert "model.skops" in names and "card.md" in names
    assert {_sealed_key(p.read_bytes()) for p in files} == {keys.models_key_name(project, HOME)}
    # MLflow's own directory holds its database and configuration, no artifact.
    assert not (stack.data_dir / "mlflow" / "artifacts").exists()

    # Another project's workload, with the file in hand, cannot open it.
    other = f"a{uuid.uuid4().hex[:10]}"
    keys.create_project(operator, stack, other)
    intruder = openbao.login(stack, keys.identity(other))
    key = next(p for p in files if p.name == "model.skops").relative_to(zone).as_posix()
    with pytest.raises(AccessDenied):
        LocalObjectStore(stack.data_dir / "lake", intruder, project, HOME).get("models", key)

    # The project reads its model back with its own identity, and it scores as trained.
    version = str(trained.registered.version)
    assert model.evaluate(version).auroc == pytest.approx(trained.evaluation.auroc)


def test_artifacts_outside_their_projects_session_are_refused(stack: Settings) -> None:
    repository = artifacts.repository(f"{artifacts.location('nobody')}/1/artifacts")
    with pytest.raises(AccessDenied):
        repository.list_artifacts()


def test_shredding_a_project_makes_its_models_unreadable_to_its_own_identities(
    stack: Settings, operator: hvac.Client
) -> None:
    project = deidentified_project(stack, operator, rows=2000, seed=12)
    model = ModelSteward(stack, project)
    version = str(model.train("clean").registered.version)
    keys.shred(operator, project, [HOME])
    features = model.contract.features
    workload = ProjectRegistry(stack, project, openbao.login(stack, keys.identity(project)))
    with pytest.raises(KeyUnavailable):
        workload.load(version, features)
    serving = ProjectRegistry(
        stack,
        project,
        openbao.login(stack, keys.serving_identity(project)),
        user=serving_user(project),
    )
    with pytest.raises(KeyUnavailable):
        serving.load(version, features)

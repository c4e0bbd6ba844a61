"""`projects create` makes what a project owns, or refuses: it never adopts a resource
that someone else made first, and no project's record can break it for another."""

from __future__ import annotations

import subprocess
import sys
import uuid

import hvac
import hvac.exceptions
import pytest
import requests

import contract as contracts
from pipeline import projects
from safeguards import keys, objectstore, openbao, registry
from safeguards import projects as tenancy
from safeguards.errors import AccessDenied, ConfigError
from safeguards.settings import Settings
from services.mlflow import launcher as mlflow
from services.supervisor import Supervisor
from tests.conftest import provision

DIABETES = contracts.example("diabetes")

pytestmark = pytest.mark.integration


def _admin(stack: Settings, path: str, body: dict[str, str]) -> None:
    response = requests.post(
        f"{mlflow.url(stack)}/api/2.0/mlflow/{path}",
        json=body,
        auth=(mlflow.ADMIN, mlflow.admin_password(stack)),
        verify=str(stack.ca_bundle),
        timeout=30,
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("experiments/create", registry.experiment_name),
        ("registered-models/create", registry.model_name),
    ],
    ids=["experiment", "registered-model"],
)
def test_a_name_taken_before_the_project_exists_is_refused_not_adopted(
    stack: Settings, operator: hvac.Client, path: str, name: object
) -> None:
    project = f"g{uuid.uuid4().hex[:8]}"
    _admin(stack, path, {"name": name(project)})  # type: ignore[operator]
    with pytest.raises(ConfigError, match=r"exist.* already and were not made by"):
        projects.create_project(operator, stack, project, DIABETES, reload_lake=lambda: None)
    assert project not in keys.projects(operator)


def test_an_existing_project_and_a_platform_name_are_refused(
    stack: Settings, operator: hvac.Client
) -> None:
    project = f"g{uuid.uuid4().hex[:8]}"
    projects.create_project(operator, stack, project, DIABETES, reload_lake=lambda: None)
    with pytest.raises(ConfigError, match="exists already"):
        projects.create_project(operator, stack, project, DIABETES, reload_lake=lambda: None)
    with pytest.raises(ConfigError, match="the platform uses for itself"):
        projects.create_project(operator, stack, "platform", DIABETES, reload_lake=lambda: None)


def test_an_interrupted_create_resumes(stack: Settings, operator: hvac.Client) -> None:
    project = f"g{uuid.uuid4().hex[:8]}"
    projects.claim(operator, stack, project)
    keys.create_project(operator, stack, project)  # ... and then the operator's shell died
    projects.create_project(operator, stack, project, DIABETES, reload_lake=lambda: None)
    assert mlflow.existing(stack, operator, project)


def test_a_project_keeps_its_contract_which_nobody_can_change(
    stack: Settings, operator: hvac.Client
) -> None:
    first, second = (f"c{uuid.uuid4().hex[:8]}" for _ in range(2))
    made = projects.create_project(operator, stack, first, DIABETES, reload_lake=lambda: None)
    projects.create_project(
        operator, stack, second, contracts.example("readmission"), reload_lake=lambda: None
    )
    assert contracts.load(operator, first).fingerprint == made.fingerprint
    assert contracts.text(operator, first) == DIABETES
    for identity in (keys.identity, keys.ingest_identity, keys.serving_identity):
        own = openbao.login(stack, identity(first))
        assert contracts.load(own, first).label == "diabetes_5y"
        with pytest.raises(AccessDenied):
            contracts.load(own, second)
    with pytest.raises(ConfigError, match="has another contract already"):
        contracts.store(operator, first, contracts.example("readmission"))
    with pytest.raises(hvac.exceptions.Forbidden):
        operator.secrets.kv.v2.create_or_update_secret(
            contracts.path(first), {"yaml": "changed"}, mount_point="secret"
        )
    slots = {tenancy.read(operator, p).slot for p in (first, second)}  # type: ignore[union-attr]
    assert len(slots) == 2 and None not in slots


def test_an_invalid_contract_makes_nothing(stack: Settings, operator: hvac.Client) -> None:
    project = f"c{uuid.uuid4().hex[:8]}"
    broken = DIABETES.replace("role: label", "role: feature")
    with pytest.raises(ConfigError, match="exactly one label"):
        projects.create_project(operator, stack, project, broken, reload_lake=lambda: None)
    assert tenancy.read(operator, project) is None
    assert project not in keys.projects(operator)


def test_a_malformed_record_gets_one_line_and_spares_other_projects(
    lake: Settings, operator: hvac.Client
) -> None:
    broken, fresh = (f"r{uuid.uuid4().hex[:8]}" for _ in range(2))
    provision(lake, operator, broken)
    # Only the operator can write it: a slip of the operator's, or a restore gone wrong.
    operator.secrets.kv.v2.create_or_update_secret(
        objectstore.s3_credentials_path(broken, "workload"), {"x": "y"}, mount_point="secret"
    )
    provision(lake, operator, fresh)
    objectstore.open_store(lake, fresh).put("artifacts", "ok", b"ok")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "monitor", "reports", "-p", broken],
        env={
            "HIPAA_MLOPS_DATA_DIR": str(lake.data_dir),
            "HIPAA_MLOPS_PORT_BASE": str(lake.port_base),
            "HIPAA_MLOPS_REGIONS": lake.regions,
            "HIPAA_MLOPS_PROFILE": "stack",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert f"secret/projects/{broken}/s3 is malformed" in result.stderr
    assert "Traceback" not in result.stderr
    projects.reload_lakes(lake, Supervisor(lake))

"""A project's whole life through the command line: suspended (every credential it held
stops working at once, and comes back on resume), then deleted by crypto-shredding, after
which nothing it had can be read by anyone, with every identity, the operator's included.

The attacker keeps what a compromised workload of the project would hold: its logged-in
tokens, its secret ids, its MLflow password, an API key, and a copy of every sealed file
the project ever had on disk.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
import hvac
import pytest
import requests

import contract as contracts
from pipeline import projects
from pipeline.training import ModelSteward
from safeguards import apikeys, credentials, envelope, keys, objectstore, openbao
from safeguards import projects as tenancy
from safeguards.audit import AuditLog
from safeguards.errors import AccessDenied, KeyUnavailable, NotFound, SafeguardError
from safeguards.registry import credential_path, experiment_name, project_user
from safeguards.settings import Settings
from services.mlflow import launcher as mlflow
from services.seaweedfs import launcher as seaweedfs
from services.serving.inputs import request_records
from services.supervisor import Supervisor
from tests.conftest import HOME, LakeStack, cli, deidentified_project, endpoint_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Held:
    """What an attacker inside the project holds."""

    project: str
    tokens: dict[str, hvac.Client]
    secret_ids: dict[str, dict[str, str]]
    mlflow_password: str
    api_key: str
    url: str
    record: dict[str, Any]


@pytest.fixture(scope="module")
def held(stack: Settings, operator: hvac.Client) -> Iterator[Held]:
    project = deidentified_project(stack, operator, rows=2000, seed=21, served=True)
    steward = ModelSteward(stack, project)
    steward.promote(str(steward.train("clean").registered.version), approver="lifecycle-test")
    frame, _ = steward.training_data("clean")
    Supervisor(stack).serve()
    identities = keys.project_identities(project)
    workload = openbao.login(stack, keys.identity(project))
    yield Held(
        project,
        {who: openbao.login(stack, who) for who in identities},
        {who: openbao.identity_credentials(stack, who) for who in identities},
        credentials.read(workload, credential_path(project, project_user(project)))["password"],
        apikeys.create(operator, project, "lifecycle-test")[1],
        endpoint_url(stack, operator, project),
        request_records(frame.head(1), steward.contract)[0],
    )
    Supervisor(stack).serve()


def _score(held: Held, stack: Settings) -> int:
    """The endpoint's answer to a valid request with the held API key (0: nobody listens)."""
    try:
        response = requests.post(
            f"{held.url}/v1/predict",
            json=held.record,
            headers={"Authorization": f"Bearer {held.api_key}"},
            verify=str(stack.ca_bundle),
            timeout=10,
        )
    except requests.ConnectionError:
        return 0
    return response.status_code


def _mlflow_status(held: Held, stack: Settings) -> int:
    return requests.get(
        f"{mlflow.url(stack)}/api/2.0/mlflow/registered-models/get",
        params={"name": f"{held.project}-model"},
        auth=(project_user(held.project), held.mlflow_password),
        verify=str(stack.ca_bundle),
        timeout=30,
    ).status_code


def _refused_everywhere(held: Held, stack: Settings, stolen: Path) -> None:
    """Every held token reads and decrypts nothing, no held secret id logs in, the MLflow
    password is refused and the endpoint does not answer the API key."""
    for who, token in held.tokens.items():
        with pytest.raises(AccessDenied):
            credentials.read(token, contracts.path(held.project))
        with pytest.raises(AccessDenied):
            keys.new_data_key(token, keys.key_name(held.project, HOME))
        path = stolen / f"{who}.json"
        path.write_text(json.dumps(held.secret_ids[who]))
        with pytest.raises(SafeguardError):
            openbao.login(stack, who, path)
    assert _mlflow_status(held, stack) == 401
    assert _score(held, stack) == 0


def _audited(stack: Settings, project: str) -> list[tuple[str, str]]:
    """The operator's actions on `project` and their outcomes, in the log's order."""
    lines = AuditLog.of(stack, openbao.login(stack, "auditor")).path.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    return [
        (e["action"], e["outcome"]) for e in entries if e.get("resource") == f"project/{project}"
    ]


def test_suspend_stops_every_credential_at_once_and_resume_brings_them_back(
    stack: Settings, operator: hvac.Client, held: Held, tmp_path: Path
) -> None:
    assert _score(held, stack) == 200
    assert _mlflow_status(held, stack) == 200

    cli(stack, "projects", "suspend", held.project)
    listed = cli(stack, "projects", "list").stdout
    assert any(held.project in line and "suspended" in line for line in listed.splitlines())
    _refused_everywhere(held, stack, tmp_path)
    # Neither suspended twice nor created again.
    cli(stack, "projects", "suspend", held.project, ok=False)
    cli(stack, "projects", "create", held.project, "--contract", "diabetes", ok=False)

    cli(stack, "projects", "resume", held.project)
    workload = openbao.login(stack, keys.identity(held.project))
    assert contracts.load(workload, held.project).name == "diabetes-risk"
    assert _mlflow_status(held, stack) == 200
    assert _score(held, stack) == 200
    assert _audited(stack, held.project)[-4:] == [
        ("projects.suspend", "ok"),
        ("projects.suspend", "failed"),
        ("projects.create", "failed"),
        ("projects.resume", "ok"),
    ]


def test_delete_waits_out_its_grace_then_leaves_nothing_readable_by_anyone(
    stack: Settings, operator: hvac.Client, held: Held, tmp_path: Path
) -> None:
    project = held.project
    cli(stack, "projects", "delete", project, "--confirm", project)
    record = tenancy.read(operator, project)
    assert record is not None and record.state == "deleting" and record.delete_after
    _refused_everywhere(held, stack, tmp_path)
    refused = cli(stack, "projects", "delete", project, "--confirm", project, ok=False)
    assert "after" in refused.stdout + refused.stderr

    # What an attacker copied from the disk before the deletion: every sealed file.
    sealed = {}
    for tree in (stack.data_dir / "lake", stack.data_dir / "datasets"):
        for path in tree.rglob("*"):
            if path.is_file() and project in path.as_posix():
                blob = path.read_bytes()
                if blob.startswith(envelope.MAGIC):
                    sealed[path] = blob
    assert any("-models/" in p.as_posix() for p in sealed)
    assert any("-deidentified/" in p.as_posix() or "dvc" in p.as_posix() for p in sealed)

    cli(stack, "projects", "delete", project, "--now", "--confirm", project)
    assert not [p for p in sealed if p.exists()]
    other = f"o{uuid.uuid4().hex[:10]}"
    keys.create_project(operator, stack, other)
    readers = {
        "operator": operator,
        "auditor": openbao.login(stack, "auditor"),
        "another project": openbao.login(stack, keys.identity(other)),
        **held.tokens,
    }
    for blob in sealed.values():
        for reader in readers.values():
            # The data key is unwrapped before the object's name is checked: any name.
            with pytest.raises((KeyUnavailable, AccessDenied)):
                envelope.open_sealed(reader, "stolen", blob)

    # Its identities, records and MLflow names are gone; its record says deleted.
    for who in keys.project_identities(project):
        with pytest.raises(hvac.exceptions.InvalidPath):
            operator.auth.approle.read_role(who)
    with pytest.raises(NotFound):
        credentials.read(operator, f"projects/{project}/s3")
    # MLflow keeps a deleted experiment, marked deleted; the model and users are gone.
    assert mlflow.existing(stack, operator, project) == [
        f"MLflow experiment {experiment_name(project)}"
    ]
    experiment = requests.get(
        f"{mlflow.url(stack)}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": experiment_name(project)},
        auth=(mlflow.ADMIN, mlflow.admin_password(stack, operator)),
        verify=str(stack.ca_bundle),
        timeout=30,
    ).json()["experiment"]
    assert experiment["lifecycle_stage"] == "deleted"
    assert apikeys.list_keys(operator, project) == []
    assert tenancy.read(operator, project).state == "deleted"  # type: ignore[union-attr]
    assert "deleted" in cli(stack, "projects", "list").stdout
    # The name is never given again; the audit log keeps the record and still verifies.
    cli(stack, "projects", "create", project, "--contract", "diabetes", ok=False)
    assert ("projects.delete.schedule", "ok") in _audited(stack, project)
    assert _audited(stack, project)[-2:] == [
        ("projects.delete", "ok"),
        ("projects.create", "failed"),
    ]
    AuditLog.of(stack, openbao.login(stack, "auditor")).verify()


def test_on_the_stack_s3_keys_stop_at_suspend_and_buckets_go_at_delete(
    lake: Settings, operator: hvac.Client
) -> None:
    project = f"s{uuid.uuid4().hex[:10]}"
    stack = LakeStack(lake)
    stack.create(operator, project)
    store = objectstore.open_store(lake, project, "ingest")
    assert isinstance(store, objectstore.S3ObjectStore)
    store.put("deidentified", "held/object", b"held")

    projects.suspend(operator, lake, project, stack)
    with pytest.raises(AccessDenied):
        store.get("deidentified", "held/object")
    projects.resume(operator, lake, project, stack)
    resumed = objectstore.open_store(lake, project, "ingest")
    assert resumed.get("deidentified", "held/object") == b"held"

    assert projects.delete(operator, lake, project, stack, now=True) >= 1
    admin = seaweedfs.admin_client(lake, operator)
    for zone in objectstore.ZONES:
        with pytest.raises(botocore.exceptions.ClientError):
            admin.head_bucket(Bucket=objectstore.bucket_name(project, zone))
    with pytest.raises(AccessDenied):
        store.get("deidentified", "held/object")

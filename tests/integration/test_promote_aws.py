"""`hipaa-mlops promote --to aws`: a version the gate approved, from the real registry, is
written into the environment's Terraform variables, and Terraform itself (the `terraform`
binary, over `terraform/envs/variables.tf` and `staging.tfvars`) accepts them. A version
the gate did not approve writes nothing; Terraform refuses a held version or a region
outside the environment; the archive Terraform would upload is the one recorded.

The app image's build record is the one piece given here (the docker tests build the real
one and check it against the engine): no engine runs for this module.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import hvac
import pytest

import contract as contracts
from pipeline import cloud
from pipeline.training import ModelSteward
from safeguards import keys
from safeguards.audit import audit_path
from safeguards.errors import ConfigError, GateRefused
from safeguards.settings import Settings
from sandbox.steps import DataSteward
from services.containers import images
from services.mlflow import launcher as mlflow
from services.serving import sagemaker
from tests.conftest import REGIONS, cli

pytestmark = pytest.mark.integration

IMAGE_ID = "sha256:" + hashlib.sha256(b"the app image").hexdigest()


@pytest.fixture(scope="module")
def approved(stack: Settings, operator: hvac.Client) -> tuple[str, str, str]:
    """A project in both regions with a held version and an approved champion."""
    project = f"p{uuid.uuid4().hex[:10]}"
    keys.create_project(operator, stack, project, regions=REGIONS)
    mlflow.provision_project(stack, operator, project)
    contracts.store(operator, project, contracts.example("diabetes"))
    data = DataSteward(stack, project)
    data.synth("patients", rows=2000, seed=41)
    data.ingest("raw", data.repo.read("patients"))
    data.deidentify("clean", source="raw")
    steward = ModelSteward(stack, project)
    held = str(steward.train("clean").registered.version)
    champion = str(steward.train("clean").registered.version)
    steward.promote(champion, approver="promote-test")
    return project, held, champion


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        images, "load_record", lambda: {"app": {"tag": "hipaa-mlops/app:t", "id": IMAGE_ID}}
    )


def _terraform_accepts(tfvars: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    """`terraform plan` over the environment's variable declarations alone: no provider
    is needed to check their types and validations."""
    root = tmp / "envs-variables"
    root.mkdir(exist_ok=True)
    shutil.copy(cloud.ENVS / "variables.tf", root / "variables.tf")
    run = lambda *a: subprocess.run(  # noqa: E731
        ["terraform", f"-chdir={root}", *a], capture_output=True, text=True, timeout=120
    )
    assert run("init", "-input=false", "-backend=false").returncode == 0
    return run(
        "plan",
        "-input=false",
        "-lock=false",
        f"-var-file={cloud.ENVS / 'staging.tfvars'}",
        f"-var-file={tfvars}",
    )


def test_an_approved_version_is_written_for_terraform_and_terraform_accepts_it(
    stack: Settings, approved: tuple[str, str, str], built: None, tmp_path: Path
) -> None:
    project, _, champion = approved
    tfvars = tmp_path / "projects.staging.tfvars.json"
    tfvars.write_text(json.dumps({"projects": {"other": {"kept": True}}}))
    done = cloud.promote(stack, project, "staging", "operator:test", tfvars=tfvars)

    assert done.version == champion
    entry: dict[str, Any] = json.loads(tfvars.read_text())["projects"][project]
    assert json.loads(tfvars.read_text())["projects"]["other"] == {"kept": True}
    assert entry["regions"] == ["us-east-1", "eu-central-1"]
    assert set(entry["serving"]) == {"us-east-1", "eu-central-1"}
    served = entry["serving"]["us-east-1"]
    contract = ModelSteward(stack, project).contract
    assert served == {
        "image_tag": IMAGE_ID.replace(":", "-"),
        "model_archive": served["model_archive"],
        "model_sha256": done.archive_sha256,
        "model_version": champion,
        "gate": "approved",
        "contract_fingerprint": contract.fingerprint,
    }
    # The path Terraform reads (from the root module) is the archive, byte for byte.
    archive = (cloud.ENVS / served["model_archive"]).resolve()
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == served["model_sha256"]
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile(sagemaker.MANIFEST))  # type: ignore[arg-type]
    assert manifest["model_version"] == champion and manifest["gate"] == "approved"
    assert [c["name"] for c in entry["contract_columns"]] == contract.raw_columns
    assert {c["type"] for c in entry["contract_columns"]} <= set(cloud.GLUE_TYPES.values())

    tfvars.write_text(json.dumps({"projects": {project: entry}}))
    accepted = _terraform_accepts(tfvars, tmp_path)
    assert accepted.returncode == 0, accepted.stderr

    audit = audit_path(stack).read_text().splitlines()
    promoted = [json.loads(line) for line in audit if '"model.promote.aws"' in line]
    assert any(
        e["resource"].endswith(f"/{champion}") and e["resource"].startswith(f"model/{project}/")
        for e in promoted
    )
    commands = "\n".join(done.commands())
    for region in ("us-east-1", "eu-central-1"):
        assert f"dkr.ecr.{region}.amazonaws.com/hipaa-mlops-staging/app:{served['image_tag']}" in (
            commands
        )
    assert "terraform -chdir=" in commands and "-var-file=projects.staging.tfvars.json" in commands


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gate": "held"}, "Only a version the promotion gate approved is served."),
        ({"regions": ["us-west-2"]}, "A project's regions are among the environment's two"),
    ],
)
def test_terraform_refuses_a_held_version_and_a_region_outside_the_environment(
    stack: Settings,
    approved: tuple[str, str, str],
    built: None,
    tmp_path: Path,
    change: dict[str, Any],
    message: str,
) -> None:
    project = approved[0]
    tfvars = tmp_path / "projects.staging.tfvars.json"
    cloud.promote(stack, project, "staging", "operator:test", tfvars=tfvars)
    data = json.loads(tfvars.read_text())
    entry = data["projects"][project]
    if "gate" in change:
        entry["serving"]["us-east-1"]["gate"] = change["gate"]
    else:
        entry["regions"] = change["regions"]
        entry["serving"] = {}
    tfvars.write_text(json.dumps(data))
    refused = _terraform_accepts(tfvars, tmp_path)
    assert refused.returncode != 0
    assert message in " ".join(refused.stderr.split())


def test_a_version_the_gate_did_not_approve_writes_nothing(
    stack: Settings, approved: tuple[str, str, str], tmp_path: Path
) -> None:
    project, held, _ = approved
    tfvars = tmp_path / "projects.staging.tfvars.json"
    with pytest.raises(GateRefused, match="not approved by the promotion gate"):
        cloud.promote(stack, project, "staging", "operator:test", version=held, tfvars=tfvars)
    assert not tfvars.exists()
    refused = cli(
        stack, "promote", "--to", "aws", "-p", project, "--version", held,
        "--tfvars", str(tfvars), ok=False,
    )  # fmt: skip
    assert refused.stderr.count("\n") == 1 and "not approved" in refused.stderr
    assert not tfvars.exists()


def test_a_corrupt_variables_file_is_refused_and_left_as_it_was(
    stack: Settings, approved: tuple[str, str, str], built: None, tmp_path: Path
) -> None:
    tfvars = tmp_path / "projects.staging.tfvars.json"
    tfvars.write_text('{"projects": {"other": ')
    with pytest.raises(ConfigError, match="is not valid JSON"):
        cloud.promote(stack, approved[0], "staging", "operator:test", tfvars=tfvars)
    assert tfvars.read_text() == '{"projects": {"other": '
    assert [p.name for p in tmp_path.iterdir()] == [tfvars.name]


def test_a_region_without_an_aws_region_is_refused(
    stack: Settings, approved: tuple[str, str, str], built: None, tmp_path: Path
) -> None:
    partial = stack.model_copy(update={"aws_regions": "us-east=us-east-1"})
    with pytest.raises(ConfigError, match="region eu-central has no AWS region"):
        cloud.promote(partial, approved[0], "staging", "operator:test", tfvars=tmp_path / "t.json")
    assert not (tmp_path / "t.json").exists()

"""Promote a project's champion to AWS: the Terraform variables of `terraform/envs`.

`promote(...)` packs the version the gate approved (`ModelSteward.package`), and writes the
project's entry of `projects.<env>.tfvars.json`: its regions, its contract's columns, and
per AWS region what to serve there, namely the app image by its immutable tag (the image
ID that `make images` built and the docker tests ran), the model archive with its SHA-256,
the version, its gate decision and the contract's fingerprint. Terraform refuses an archive
whose SHA-256 differs and resolves the tag to the digest SageMaker runs. Other projects'
entries are kept; the file is replaced whole, never half-written. Audited as
`model.promote.aws`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract import Type
from pipeline.training import DECISION_TAG, ModelSteward
from safeguards import residency
from safeguards.errors import ConfigError, GateRefused, NotFound
from safeguards.settings import Settings
from services.containers import images

ROOT = Path(__file__).resolve().parents[1]
ENVS = ROOT / "terraform" / "envs"
ENVIRONMENTS = ("staging", "production")

# The Glue (Hive) type of each contract type, for the raw-PHI zone's catalogue table.
GLUE_TYPES = {
    Type.INTEGER: "bigint",
    Type.NUMBER: "double",
    Type.BOOLEAN: "boolean",
    Type.CATEGORY: "string",
    Type.STRING: "string",
    Type.DATE: "date",
    Type.TEXT: "string",
}


@dataclass(frozen=True)
class Promotion:
    project: str
    environment: str
    version: str
    image_tag: str
    archive: Path
    archive_sha256: str
    tfvars: Path
    aws_regions: tuple[str, ...]

    def commands(self) -> list[str]:
        """What the operator runs next, in order: push the image under its immutable tag
        to each region's registry, then plan and apply (Terraform uploads the archive
        under each region's models key)."""
        chdir = os.path.relpath(ENVS)
        var_files = f"-var-file={self.environment}.tfvars -var-file={self.tfvars.name}"
        lines = ["ACCOUNT=$(aws sts get-caller-identity --query Account --output text)"]
        for region in self.aws_regions:
            registry = f"$ACCOUNT.dkr.ecr.{region}.amazonaws.com"
            ref = f"{registry}/hipaa-mlops-{self.environment}/app:{self.image_tag}"
            lines += [
                f"aws ecr get-login-password --region {region} | docker login --username AWS "
                f"--password-stdin {registry}",
                f"docker tag {self.image_tag.replace('-', ':', 1)} {ref}",
                f"docker push {ref}",
            ]
        return [
            *lines,
            f"terraform -chdir={chdir} plan {var_files} -out={self.environment}.plan",
            f"terraform -chdir={chdir} apply {self.environment}.plan",
        ]


def tfvars_path(environment: str) -> Path:
    return ENVS / f"projects.{environment}.tfvars.json"


def image_tag() -> str:
    """The recorded app image's ID as an ECR tag (immutable there: it names this image for
    good)."""
    built = images.load_record().get("app")
    if built is None:
        raise NotFound("no app image is recorded: build the images first (make images)")
    digest = built["id"]
    if not digest.startswith("sha256:") or len(digest) != len("sha256:") + 64:
        raise ConfigError("the recorded app image ID is not a sha256 digest: run make images")
    return digest.replace(":", "-", 1)


def aws_regions(settings: Settings, regions: Sequence[str]) -> tuple[str, ...]:
    """The AWS region of each of the project's regions (HIPAA_MLOPS_AWS_REGIONS)."""
    mapping = settings.aws_region_map
    missing = [r for r in regions if r not in mapping]
    if missing:
        raise ConfigError(
            f"region {missing[0]} has no AWS region: add it to HIPAA_MLOPS_AWS_REGIONS"
        )
    return tuple(mapping[r] for r in regions)


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {"projects": {}}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigError(f"{path.name} is not valid JSON; fix or remove it") from None
    if not isinstance(data, dict) or not isinstance(data.get("projects"), dict):
        raise ConfigError(f"{path.name} has no projects object; fix or remove it")
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    partial.replace(path)


def promote(
    settings: Settings,
    project: str,
    environment: str,
    actor: str,
    version: str | None = None,
    tfvars: Path | None = None,
) -> Promotion:
    """Write `project`'s entry of the environment's Terraform variables for `version` (by
    default the champion), which the gate must have approved; audited."""
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"the environment is one of {', '.join(ENVIRONMENTS)}")
    steward = ModelSteward(settings, project)
    if version is None:
        champion = steward.registry.champion()
        if champion is None:
            raise NotFound(f"project {project} has no champion to promote")
        version = champion.version
    if steward.registry.version(version).tags.get(DECISION_TAG) != "approved":
        raise GateRefused(f"version {version} was not approved by the promotion gate")
    regions = aws_regions(settings, residency.allowed(steward.bao, project))
    tag = image_tag()
    if tfvars is None and not ENVS.is_dir():
        raise ConfigError("terraform/envs is not here: run promote from a checkout")
    path = tfvars or tfvars_path(environment)
    data = _load(path)
    archive = settings.data_dir / "promotions" / environment / f"{project}-v{version}.tar.gz"
    steward.package(version, archive, actor)
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    served = {
        "image_tag": tag,
        "model_archive": os.path.relpath(archive.resolve(), ENVS),
        "model_sha256": sha256,
        "model_version": version,
        "gate": "approved",
        "contract_fingerprint": steward.contract.fingerprint,
    }
    data["projects"][project] = {
        "regions": list(regions),
        "contract_columns": [
            {"name": c.name, "type": GLUE_TYPES[c.type], "role": c.role.value}
            for c in steward.contract.columns
        ],
        "serving": {region: served for region in regions},
    }
    _write(path, data)
    steward.audit.append(
        actor,
        "model.promote.aws",
        f"model/{project}/{steward.registry.name}/{version}",
        environment=environment,
        image=tag,
        sha256=sha256,
        regions=",".join(regions),
    )
    return Promotion(project, environment, version, tag, archive, sha256, path, regions)

"""Data residency on the real servers: the session's stack keeps data in two regions, each
with its own SeaweedFS lake and its own keys. A project lives in the regions it was
created with: its keys exist there only, its objects are in those lakes only, and a
process pinned to another region is refused (audited) before it touches anything. Played
as an attacker too: the project's own tokens and S3 keys, and a lake's KMS identity, ask
for what lies across the boundary, bypassing our client, and the servers say no.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import botocore.exceptions
import hvac
import hvac.exceptions
import pytest

from pipeline import projects
from safeguards import credentials, keys, objectstore, openbao
from safeguards.audit import audit_path
from safeguards.errors import AccessDenied, IntegrityError
from safeguards.settings import Settings
from services.seaweedfs import launcher as seaweedfs
from tests.conftest import HOME, REGIONS, LakeStack, cli

pytestmark = pytest.mark.integration

AWAY = REGIONS[1]


def _audited(settings: Settings, action: str, project: str) -> list[dict[str, object]]:
    lines = audit_path(settings).read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    return [e for e in entries if e["action"] == action and e["resource"] == f"project/{project}"]


def _admin(lake: Settings, operator: hvac.Client, region: str) -> Any:
    return seaweedfs.admin_client(seaweedfs.in_region(lake, region), operator)


def _exists(key: str, operator: hvac.Client) -> bool:
    try:
        operator.secrets.transit.read_key(key)
    except hvac.exceptions.InvalidPath:
        return False
    return True


@pytest.fixture(scope="module")
def away_project(lake: Settings, operator: hvac.Client) -> str:
    """A project created from the command line to keep its data in eu-central only."""
    project = f"r{uuid.uuid4().hex[:10]}"
    made = cli(lake, "projects", "create", project, "--contract", "diabetes", "--region", AWAY)
    assert f"keeps its data in {AWAY}" in made.stdout
    return project


def test_a_projects_keys_buckets_and_objects_are_in_its_region_only(
    lake: Settings, operator: hvac.Client, away_project: str
) -> None:
    project = away_project
    assert all(_exists(k, operator) for k in keys.data_keys(project, [AWAY]))
    assert not any(_exists(k, operator) for k in keys.data_keys(project, [HOME]))

    store = objectstore.open_store(lake, project, "ingest")
    assert store.region == AWAY
    store.put("deidentified", "cohort/a.bin", b"kept in eu-central")
    head = _admin(lake, operator, AWAY).head_object(
        Bucket=objectstore.bucket_name(project, "deidentified"), Key="cohort/a.bin"
    )
    assert head["SSEKMSKeyId"] == keys.key_name(project, AWAY)
    for zone in objectstore.ZONES:
        with pytest.raises(botocore.exceptions.ClientError):
            _admin(lake, operator, HOME).head_bucket(Bucket=objectstore.bucket_name(project, zone))

    shown = cli(lake, "projects", "show", project).stdout
    assert f"regions: {AWAY} (primary {AWAY})" in shown
    assert lake.lake_url(AWAY) in shown and lake.lake_url(HOME) not in shown
    assert keys.models_key_name(project, AWAY) in shown


def test_a_process_pinned_outside_the_projects_regions_is_refused_and_audited(
    lake: Settings, operator: hvac.Client, away_project: str
) -> None:
    project = away_project
    pinned = lake.model_copy(update={"region": HOME})
    with pytest.raises(AccessDenied, match=f"may not keep data in region '{HOME}'"):
        objectstore.open_store(pinned, project, "ingest")
    refused = _audited(lake, "residency.reach", project)
    assert refused and refused[-1]["outcome"] == "refused"
    assert refused[-1]["signer"] == keys.ingest_identity(project)

    # Training's and ingestion's commands stop there, in one line, before any work.
    run = cli(
        lake,
        "data", "synth", "patients", "-p", project, "--rows", "100",
        ok=False,
        env={"HIPAA_MLOPS_REGION": HOME},
    )  # fmt: skip
    assert run.stderr.strip().count("\n") == 0 and "Traceback" not in run.stderr
    assert f"may not keep data in region '{HOME}'" in run.stderr
    # The endpoint's identity cannot sign the audit log; it is refused all the same.
    with pytest.raises(AccessDenied):
        objectstore.open_store(pinned, project, "serving")


def test_the_servers_refuse_what_crosses_a_region_whoever_asks(
    lake: Settings, operator: hvac.Client, away_project: str
) -> None:
    project = away_project
    for who in keys.project_identities(project):
        token = openbao.login(lake, who)
        for name in keys.data_keys(project, [HOME]):
            with pytest.raises(hvac.exceptions.Forbidden):
                token.write_data(f"transit/datakey/plaintext/{name}")
    # Its S3 keys are unknown to the home lake: a project's identities exist only in the
    # lakes of its regions.
    for role in objectstore.ROLES:
        creds = credentials.read(operator, objectstore.s3_credentials_path(project, role))
        home = objectstore.s3_client(
            lake.lake_url(HOME), creds["access_key"], creds["secret_key"], lake.ca_bundle
        )
        with pytest.raises(AccessDenied):
            objectstore.S3ObjectStore(home, project, HOME).list("deidentified")
    # A lake's KMS identity wraps data keys under its own region's keys only.
    away_lake = openbao.login(lake, lake.lake_name(AWAY))
    with pytest.raises(hvac.exceptions.Forbidden):
        away_lake.secrets.transit.encrypt_data(keys.key_name("platform", HOME), "AAAA")
    home_lake = openbao.login(lake, lake.lake_name(HOME))
    with pytest.raises(hvac.exceptions.Forbidden):
        home_lake.secrets.transit.encrypt_data(keys.key_name(project, AWAY), "AAAA")


def test_replication_reseals_into_an_allowed_region_and_is_refused_elsewhere(
    lake: Settings, operator: hvac.Client, away_project: str
) -> None:
    project = f"r{uuid.uuid4().hex[:10]}"
    stack = LakeStack(lake)
    stack.create(operator, project, REGIONS)
    home = objectstore.open_store(lake, project, "ingest")
    assert home.region == HOME
    for name in ("cohort/a.bin", "cohort/b.bin"):
        home.put("deidentified", name, name.encode())
    copied = cli(lake, "data", "replicate", "-p", project, "--to", AWAY, "--zone", "deidentified")
    assert f"2 objects of {project} copied" in copied.stdout
    away = objectstore.open_store(lake.model_copy(update={"region": AWAY}), project, "ingest")
    assert away.get("deidentified", "cohort/b.bin") == b"cohort/b.bin"
    head = _admin(lake, operator, AWAY).head_object(
        Bucket=objectstore.bucket_name(project, "deidentified"), Key="cohort/a.bin"
    )
    assert head["SSEKMSKeyId"] == keys.key_name(project, AWAY)

    refused = cli(lake, "data", "replicate", "-p", away_project, "--to", HOME, ok=False)
    assert f"may not keep data in region '{HOME}'" in refused.stderr
    assert _audited(lake, "residency.replicate", away_project)[-1]["outcome"] == "refused"

    # Its keys from the CLI, region by region: listed in both, rotated in one only.
    listed = cli(lake, "projects", "list").stdout
    assert any(project in line and f"{HOME}, {AWAY}" in line for line in listed.splitlines())
    shown = cli(lake, "keys", "show", project).stdout
    assert keys.key_name(project, HOME) in shown and keys.key_name(project, AWAY) in shown
    cli(lake, "keys", "rotate", project, "--region", AWAY)
    assert keys.describe(operator, project, AWAY)["latest_version"] == 2
    assert keys.describe(operator, project, HOME)["latest_version"] == 1
    outside = cli(lake, "keys", "rotate", away_project, "--region", HOME, ok=False)
    assert f"has no keys in region '{HOME}'" in outside.stderr
    assert keys.describe(operator, away_project, AWAY)["latest_version"] == 1

    # Deleted, the project leaves no key and no bucket in either region.
    assert projects.delete(operator, lake, project, stack, now=True) == 4
    assert not any(_exists(k, operator) for k in keys.data_keys(project, REGIONS))
    for region in REGIONS:
        for zone in objectstore.ZONES:
            with pytest.raises(botocore.exceptions.ClientError):
                _admin(lake, operator, region).head_bucket(
                    Bucket=objectstore.bucket_name(project, zone)
                )


def test_a_sealed_file_moved_to_another_regions_lake_does_not_open(
    stack: Settings, operator: hvac.Client
) -> None:
    project = f"r{uuid.uuid4().hex[:10]}"
    keys.create_project(operator, stack, project, list(REGIONS))
    bao = openbao.login(stack, keys.identity(project))
    lake = stack.data_dir / "lake"
    home = objectstore.LocalObjectStore(lake, bao, project, HOME)
    home.put("artifacts", "moved.bin", b"sealed at home")
    bucket = objectstore.bucket_name(project, "artifacts")
    target = lake / AWAY / bucket / "moved.bin"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes((lake / HOME / bucket / "moved.bin").read_bytes())
    with pytest.raises(IntegrityError):
        objectstore.LocalObjectStore(lake, bao, project, AWAY).get("artifacts", "moved.bin")

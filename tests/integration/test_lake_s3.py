"""The lake's S3 mode (HIPAA_MLOPS_LAKE=s3), as the jobs run it in AWS: buckets and key
aliases named as terraform/ makes them, credentials from the task's role through the
container credentials endpoint, every write under its zone's key by ARN.

No AWS account is reachable here: moto's server stands in for the S3 and KMS APIs, and a
loopback endpoint serves the role's credentials as ECS does. What this shows is that the
application speaks to S3 and KMS as the buckets' policies expect; AWS's enforcement of
those policies is checked statically (tests/unit/test_terraform.py), not here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

import contract as contracts
from safeguards import keys, objectstore, openbao, residency
from safeguards.errors import AccessDenied, ServerError
from safeguards.objectstore import AwsObjectStore
from safeguards.settings import Settings
from sandbox import synth
from sandbox.versions import DatasetRepo
from tests.conftest import free_port_base

pytestmark = pytest.mark.integration

MOTO = Path(__file__).resolve().parents[2] / ".venv-moto" / "bin" / "moto_server"
AWS_REGION = "us-east-1"
PROJECT = "cardio"
PREFIX = "hipaa-mlops-staging"
DIABETES = contracts.parse(contracts.example("diabetes"))


class RoleCredentials(BaseHTTPRequestHandler):
    """ECS's container credentials endpoint: the task role's temporary credentials."""

    served = 0
    refuse = False

    def do_GET(self) -> None:
        type(self).served += 1
        if type(self).refuse:
            self.send_response(500)
            self.end_headers()
            return
        body = json.dumps(
            {
                "AccessKeyId": "ASIATASKROLE00000001",
                "SecretAccessKey": "task-role-secret-" + "x" * 24,
                "Token": "task-role-session-token",
                "Expiration": (datetime.now(UTC) + timedelta(hours=1)).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port_base(span=1)
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("ab")
    server = subprocess.Popen(
        [str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/moto-api/", timeout=2)
            break
        except requests.ConnectionError:
            assert server.poll() is None, "moto's server exited"
            assert time.monotonic() < deadline, "moto's server did not answer in 30 s"
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(10)


def admin(service: str, endpoint: str) -> Any:
    """The account's administrator, who runs terraform: makes keys, aliases and buckets."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=AWS_REGION,
        aws_access_key_id="AKIAADMINISTRATOR001",
        aws_secret_access_key="administrator-secret-" + "y" * 20,
    )


def provision(endpoint: str, project: str) -> dict[str, str]:
    """What terraform/ makes for one project in one region: a key per kind behind its alias,
    a bucket per zone. The ARN of each kind's key."""
    kms, s3 = admin("kms", endpoint), admin("s3", endpoint)
    arns = {}
    for kind in ("proj", "phi", "models"):
        arn = kms.create_key(Description=f"{kind}-{project}")["KeyMetadata"]["Arn"]
        kms.create_alias(
            AliasName=f"alias/hipaa-mlops/{AWS_REGION}/{kind}-{project}", TargetKeyId=arn
        )
        arns[kind] = arn
    for zone in objectstore.ZONES:
        s3.create_bucket(Bucket=f"{PREFIX}-{project}-{AWS_REGION}-{zone}")
    return arns


@pytest.fixture(scope="module")
def account(moto_endpoint: str) -> dict[str, str]:
    return provision(moto_endpoint, PROJECT)


@pytest.fixture
def task_role(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[type[RoleCredentials]]:
    """The environment ECS gives a task: no keys, a credentials endpoint; AWS's endpoints
    are moto's."""
    RoleCredentials.served, RoleCredentials.refuse = 0, False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RoleCredentials)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    # No profile, no shared credentials: the role is the only source.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent"))
    monkeypatch.setenv(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", f"http://127.0.0.1:{httpd.server_port}/role"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    yield RoleCredentials
    httpd.shutdown()


def store() -> AwsObjectStore:
    settings = Settings(
        profile="stack",
        lake="s3",
        regions="us-east",
        aws_regions=f"us-east={AWS_REGION}",
        s3_bucket_prefix=PREFIX,
    )
    return AwsObjectStore(settings, PROJECT, "us-east")


def test_each_zone_is_written_under_its_kms_key_by_arn_with_the_task_roles_credentials(
    account: dict[str, str], task_role: type[RoleCredentials], moto_endpoint: str
) -> None:
    lake = store()
    for zone, kind in (("deidentified", "proj"), ("raw-phi", "phi"), ("models", "models")):
        lake.put(zone, "datasets/v1/rows.parquet", b"rows of " + zone.encode())
        assert lake.get(zone, "datasets/v1/rows.parquet") == b"rows of " + zone.encode()
        head = admin("s3", moto_endpoint).head_object(
            Bucket=f"{PREFIX}-{PROJECT}-{AWS_REGION}-{zone}", Key="datasets/v1/rows.parquet"
        )
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == account[kind]
    assert lake.list("deidentified", "datasets/") == ["datasets/v1/rows.parquet"]
    assert task_role.served >= 1


def test_a_zone_whose_key_alias_is_missing_is_refused_and_nothing_is_written(
    account: dict[str, str], task_role: type[RoleCredentials], moto_endpoint: str
) -> None:
    admin("kms", moto_endpoint).delete_alias(
        AliasName=f"alias/hipaa-mlops/{AWS_REGION}/models-{PROJECT}"
    )
    try:
        with pytest.raises(ServerError, match="looking up a zone's KMS key") as refused:
            store().put("models", "refused/object", b"never written")
        assert "never written" not in str(refused.value)
        listed = admin("s3", moto_endpoint).list_objects_v2(
            Bucket=f"{PREFIX}-{PROJECT}-{AWS_REGION}-models", Prefix="refused/"
        )
        assert listed.get("KeyCount", 0) == 0
    finally:
        admin("kms", moto_endpoint).create_alias(
            AliasName=f"alias/hipaa-mlops/{AWS_REGION}/models-{PROJECT}",
            TargetKeyId=account["models"],
        )


def test_no_role_credentials_is_one_clear_refusal(
    account: dict[str, str], task_role: type[RoleCredentials]
) -> None:
    task_role.refuse = True
    with pytest.raises(AccessDenied, match="no AWS credentials") as refused:
        store().put("deidentified", "datasets/v2/rows.parquet", b"rows")
    assert "\n" not in str(refused.value)


def test_dataset_versions_go_to_the_deidentified_bucket_under_its_key(
    stack: Settings,
    project_pair: tuple[str, str],
    task_role: type[RoleCredentials],
    moto_endpoint: str,
) -> None:
    """DVC's remote in S3 mode: the project's bucket, SSE-KMS under the project key's ARN,
    the role's credentials; a version read back from the remote alone is the same."""
    project, _ = project_pair
    region = residency.allowed(openbao.login(stack, keys.ingest_identity(project)), project)[0]
    arns = provision(moto_endpoint, project)
    settings = stack.model_copy(
        update={
            "profile": "stack",
            "lake": "s3",
            "aws_regions": f"{region}={AWS_REGION}",
            "s3_bucket_prefix": PREFIX,
        }
    )
    ingest = openbao.login(settings, keys.ingest_identity(project))
    # What every stage opens under HIPAA_MLOPS_LAKE=s3: the S3 store, no key from OpenBao.
    assert isinstance(objectstore.store_with(settings, ingest, project, "ingest"), AwsObjectStore)
    repo = DatasetRepo(settings, project, ingest)
    frame, _ = synth.synthesize(DIABETES, 200, "baseline", seed=3)
    meta = repo.commit("cohort", frame, "synthetic")
    shutil.rmtree(repo.root / ".dvc" / "cache")
    assert repo.read("cohort", meta["revision"]).equals(frame)
    s3, bucket = admin("s3", moto_endpoint), f"{PREFIX}-{project}-{AWS_REGION}-deidentified"
    stored = s3.list_objects_v2(Bucket=bucket, Prefix="dvc/").get("Contents", [])
    assert stored
    for obj in stored:
        head = s3.head_object(Bucket=bucket, Key=obj["Key"])
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", arns["proj"])

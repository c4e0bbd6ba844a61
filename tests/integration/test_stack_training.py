"""TRAIN on the stack profile: MLflow on PostgreSQL, each project's artifacts in its own
bucket of the lake under its own key."""

from __future__ import annotations

import hvac
import pytest

from pipeline.training import ModelSteward
from safeguards import keys
from safeguards.objectstore import bucket_name
from safeguards.settings import Settings
from services.seaweedfs.launcher import admin_client
from tests.conftest import HOME, deidentified_project

pytestmark = pytest.mark.integration


def test_artifacts_land_sse_kms_encrypted_in_the_lake(
    tracking: Settings, operator: hvac.Client
) -> None:
    project = deidentified_project(tracking, operator, rows=3000, seed=5)

    model = ModelSteward(tracking, project)
    trained = model.train("clean")
    version = model.registry.version(trained.registered.version)

    s3 = admin_client(tracking, operator)
    bucket = bucket_name(project, "models")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="mlflow/")
    names = [o["Key"] for o in listed.get("Contents", [])]
    assert any(n.endswith("/model.skops") for n in names), names
    assert any(n.endswith(f"{version.run_id}/artifacts/card.md") for n in names)
    for name in names:
        head = s3.head_object(Bucket=bucket, Key=name)
        assert head["ServerSideEncryption"] == "aws:kms", name
        assert head["SSEKMSKeyId"] == keys.models_key_name(project, HOME), name
    # The project reads its model back with its own identity, and it scores its held-out
    # rows exactly as it did when trained.
    assert model.evaluate(str(version.version)).auroc == pytest.approx(trained.evaluation.auroc)

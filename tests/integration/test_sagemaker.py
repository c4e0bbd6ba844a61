"""The serving image's SageMaker contract, natively: a version the gate approved is packed
by `model package` from the real registry, and the container's application serves it on
`/ping` and `/invocations` with the same probability as the stack's scorer and the same
refusals as the stack's endpoint. A version the gate did not approve is never packed, and
a package altered to claim otherwise, or to carry another contract, does not load.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import hvac
import pandas as pd
import pytest
from starlette.testclient import TestClient

import contract as contracts
from model import twin
from pipeline.training import ModelSteward
from safeguards.errors import GateRefused, IntegrityError
from safeguards.registry import TWIN
from safeguards.settings import Settings
from services.serving import inputs, sagemaker
from tests.canaries import CANARIES
from tests.conftest import cli, deidentified_project

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def packaged(
    stack: Settings, operator: hvac.Client, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ModelSteward, Path]:
    project = deidentified_project(stack, operator, rows=2000, seed=31)
    steward = ModelSteward(stack, project)
    version = str(steward.train("clean").registered.version)
    out = tmp_path_factory.mktemp("package")
    refused = cli(stack, "model", "package", version, "-p", project, ok=False, cwd=out)
    assert "not approved by the promotion gate" in refused.stderr
    assert not list(out.iterdir())
    steward.promote(version, approver="sagemaker-test")
    cli(stack, "model", "package", version, "-p", project, cwd=out)
    archive = out / f"{project}-v{version}.tar.gz"
    assert archive.stat().st_mode & 0o777 == 0o600
    root = out / "opt-ml-model"
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return steward, root


def test_the_container_serves_the_packaged_champion_as_the_stack_scores_it(
    packaged: tuple[ModelSteward, Path],
) -> None:
    steward, root = packaged
    client = TestClient(sagemaker.app(root))
    assert client.get("/ping").status_code == 200
    record = steward.contract.example()
    answer = client.post("/invocations", json=record)
    assert answer.status_code == 200, answer.text
    # The package carries the version's ONNX twin, and the container serves it, as the
    # stack's endpoint does.
    assert (root / TWIN).is_file() and sagemaker.load(root).scorer.format == "onnx"
    version = answer.json()["model_version"]
    models = inputs.RequestModels(steward.contract)
    frame = pd.DataFrame(models.columns([models.parse_record(json.dumps(record).encode())]))
    expected = steward.registry.load_served(version, steward.contract.features)
    assert answer.json()["probability"] == pytest.approx(
        float(expected.probabilities(frame)[0]), abs=1e-12
    )
    own = float(steward.load(version).probabilities(frame)[0])
    assert answer.json()["probability"] == pytest.approx(own, abs=twin.TOLERANCE)
    batch = client.post("/invocations", json={"records": [record, record]})
    assert batch.json()["probabilities"] == [answer.json()["probability"]] * 2


def test_the_container_refuses_what_the_stacks_endpoint_refuses_without_echoing_it(
    packaged: tuple[ModelSteward, Path],
) -> None:
    steward, root = packaged
    client = TestClient(sagemaker.app(root))
    record = {**steward.contract.example(), "ssn": CANARIES["ssn"]}
    refused = client.post("/invocations", json=record)
    assert refused.status_code == 422
    assert CANARIES["ssn"] not in refused.text
    assert (
        client.post(
            "/invocations", content=b"x", headers={"content-type": "text/plain"}
        ).status_code
        == 415
    )
    assert (
        client.post(
            "/invocations", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    assert client.get("/invocations").status_code == 405


def test_an_altered_package_does_not_load(
    packaged: tuple[ModelSteward, Path], tmp_path: Path
) -> None:
    _, root = packaged
    manifest = json.loads((root / sagemaker.MANIFEST).read_text())
    for change, error in (
        ({"gate": "refused"}, GateRefused),
        ({"contract_fingerprint": "sha256:" + "0" * 64}, IntegrityError),
        ({"model_version": None}, IntegrityError),
    ):
        altered = tmp_path / next(iter(change))
        altered.mkdir()
        for entry in root.iterdir():
            (altered / entry.name).symlink_to(entry)
        (altered / sagemaker.MANIFEST).unlink()
        (altered / sagemaker.MANIFEST).write_text(json.dumps({**manifest, **change}))
        with pytest.raises(error):
            sagemaker.load(altered)
    other = contracts.example("readmission")
    (tmp_path / "contract").mkdir()
    for entry in root.iterdir():
        if entry.name != sagemaker.CONTRACT:
            (tmp_path / "contract" / entry.name).symlink_to(entry)
    (tmp_path / "contract" / sagemaker.CONTRACT).write_text(other)
    with pytest.raises(IntegrityError):
        sagemaker.load(tmp_path / "contract")

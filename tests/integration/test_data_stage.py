"""DATA against real servers: pseudonyms in OpenBao, zones by identity, DVC versions,
tables checked against the project's contract, synthetic twins of de-identified data."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import hvac
import pytest

import contract as contracts
from safeguards import keys, objectstore, openbao
from safeguards.errors import AccessDenied, ConfigError, GateRefused, IntegrityError
from safeguards.settings import Settings
from sandbox import synth
from sandbox.steps import DataSteward
from sandbox.versions import DatasetRepo
from tests.conftest import HOME

pytestmark = pytest.mark.integration
DIABETES = contracts.parse(contracts.example("diabetes"))


@pytest.fixture
def sandbox(stack: Settings, operator: hvac.Client, tmp_path: Path) -> tuple[Settings, str]:
    """A fresh project whose lake and dataset repository live in a fresh directory."""
    project = f"d{uuid.uuid4().hex[:10]}"
    keys.create_project(operator, stack, project)
    contracts.store(operator, project, contracts.example("diabetes"))
    # Its own audit log too: two logs never share the anchors of one.
    isolated = stack.model_copy(update={"data_dir": tmp_path, "audit_log": f"test-{project}"})
    (tmp_path / "tls").mkdir()
    shutil.copy(stack.ca_bundle, tmp_path / "tls" / "ca.pem")
    shutil.copytree(stack.credentials_dir, tmp_path / "credentials")
    return isolated, project


def test_pseudonyms_are_keyed_stable_and_per_project(
    stack: Settings, project_pair: tuple[str, str]
) -> None:
    a, b = project_pair
    ingest_a = openbao.login(stack, keys.ingest_identity(a))
    values = [f"MRN{n}" for n in range(10_000_000, 10_000_900)]  # more than one batch
    first = keys.pseudonyms(ingest_a, a, HOME, values)
    again = keys.pseudonyms(ingest_a, a, HOME, values[::-1])
    assert first == again
    assert len(set(first.values())) == len(values)
    other = keys.pseudonyms(openbao.login(stack, keys.ingest_identity(b)), b, HOME, values[:5])
    assert all(other[v] != first[v] for v in values[:5])
    with pytest.raises(AccessDenied):
        keys.pseudonyms(openbao.login(stack, keys.identity(a)), a, HOME, values[:5])


def test_sandbox_raw_zone_is_closed_to_the_workload_identity(
    sandbox: tuple[Settings, str],
) -> None:
    settings, project = sandbox
    ingest = objectstore.open_store(settings, project, role="ingest")
    ingest.put("raw-phi", "batch.bin", b"raw phi")
    workload = objectstore.open_store(settings, project, role="workload")
    with pytest.raises(AccessDenied):
        workload.get("raw-phi", "batch.bin")
    assert ingest.get("raw-phi", "batch.bin") == b"raw phi"


def test_lake_zones_follow_the_identity(
    lake: Settings, operator: hvac.Client, lake_pair: tuple[str, str]
) -> None:
    project, _ = lake_pair
    ingest = objectstore.open_store(lake, project, role="ingest")
    workload = objectstore.open_store(lake, project, role="workload")
    ingest.put("raw-phi", "batch.bin", b"raw phi")
    ingest.put("deidentified", "cohort.bin", b"deidentified")
    head = ingest.client.head_object(Bucket=f"{project}-raw-phi", Key="batch.bin")  # type: ignore[attr-defined]
    assert head["SSEKMSKeyId"] == keys.phi_key_name(project, HOME)
    with pytest.raises(AccessDenied):
        workload.get("raw-phi", "batch.bin")
    with pytest.raises(AccessDenied):
        workload.list("raw-phi")
    with pytest.raises(AccessDenied):
        workload.put("deidentified", "cohort.bin", b"overwritten by training")
    assert workload.get("deidentified", "cohort.bin") == b"deidentified"
    workload.put("artifacts", "model.bin", b"weights")
    with pytest.raises(AccessDenied):
        ingest.get("artifacts", "model.bin")


def test_data_stage_end_to_end_with_evidence(sandbox: tuple[Settings, str]) -> None:
    settings, project = sandbox
    steward = DataSteward(settings, project)
    synthetic = steward.synth("base", rows=3000, cohort="older", seed=3)
    assert synthetic["privacy_gate"]["exact_copy_rate"] <= 0.01
    steward.ingest("week-1", steward.repo.read("base"))
    meta = steward.deidentify("week-1", source="week-1")
    root = settings.data_dir / "datasets" / project
    evidence = json.loads((root / "week-1.evidence.json").read_text())
    assert evidence["dataset"]["content_hash"] == meta["content_hash"]
    assert all(v == 0 for v in evidence["residual_scan"].values())
    assert "Residual scan" in (root / "week-1.evidence.html").read_text()
    names = [(v["name"], v["zone"]) for v in steward.repo.versions()]
    assert names == [("week-1", "deidentified"), ("base", "synthetic")]
    assert "MRN" not in steward.repo.read("week-1").astype(str).to_csv()


def test_a_synthetic_twin_mirrors_a_deidentified_version_and_is_gated(
    sandbox: tuple[Settings, str],
) -> None:
    settings, project = sandbox
    steward = DataSteward(settings, project)
    steward.synth("seed", rows=3000, seed=4)
    with pytest.raises(GateRefused, match="no de-identification evidence"):
        steward.synth("copy", rows=1000, source="seed")
    steward.ingest("raw", steward.repo.read("seed"))
    source = steward.deidentify("clean", source="raw")
    twin = steward.synth("twin", rows=2000, seed=5, source="clean")
    assert twin["source"] == f"clean@{source['revision']}"
    assert twin["synthesizer"] == "copula" and twin["privacy_gate"]["dcr_ratio"] >= 0.7
    frame = steward.repo.read("twin")
    assert list(frame.columns) == DIABETES.raw_columns
    steward.ingest("twin-raw", frame)
    assert steward.deidentify("twin-clean", source="twin-raw")["rows"] == 2000


def test_a_table_that_breaks_the_contract_is_refused_before_it_is_stored(
    sandbox: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, project = sandbox
    steward = DataSteward(settings, project)
    frame, _ = synth.synthesize(DIABETES, 50, seed=6)
    path = tmp_path / "raw.csv"
    frame.assign(hba1c=frame["hba1c"].where(frame.index != 7, 44.0)).to_csv(path, index=False)
    with pytest.raises(ConfigError, match="row 8, column hba1c: outside 3-18"):
        steward.ingest_file("bad", path)
    assert steward.store.list("raw-phi") == []


def test_dvc_checks_out_an_old_version_bit_identical_from_the_remote(
    sandbox: tuple[Settings, str],
) -> None:
    settings, project = sandbox
    repo = DatasetRepo(settings, project, openbao.login(settings, keys.ingest_identity(project)))
    v1, _ = synth.synthesize(DIABETES, 2000, "baseline", seed=1)
    v2, _ = synth.synthesize(DIABETES, 2000, "older", seed=2)
    first = repo.commit("cohort", v1, "synthetic")
    repo.commit("cohort", v2, "synthetic")
    shutil.rmtree(repo.root / ".dvc" / "cache")  # force a fetch from the remote
    back = repo.read("cohort", first["revision"])
    assert back.equals(v1)
    remote = settings.data_dir / "lake" / HOME / f"{project}-dvc-remote"
    blobs = b"".join(p.read_bytes() for p in remote.rglob("*") if p.is_file())
    assert blobs and b"MRN1" not in blobs and b"example.org" not in blobs


def test_dvc_version_refuses_a_corrupted_remote_copy(sandbox: tuple[Settings, str]) -> None:
    settings, project = sandbox
    repo = DatasetRepo(settings, project, openbao.login(settings, keys.ingest_identity(project)))
    frame, _ = synth.synthesize(DIABETES, 500, "baseline", seed=1)
    meta = repo.commit("small", frame, "synthetic")
    shutil.rmtree(repo.root / ".dvc" / "cache")
    (repo.root / "small.parquet.sealed").unlink()
    for blob in (settings.data_dir / "lake").rglob("*"):
        if blob.is_file():
            data = bytearray(blob.read_bytes())
            data[-5] ^= 0xFF
            blob.chmod(0o600)
            blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        repo.read("small", meta["revision"])


def test_deidentified_zone_requires_evidence(sandbox: tuple[Settings, str]) -> None:
    settings, project = sandbox
    repo = DatasetRepo(settings, project, openbao.login(settings, keys.ingest_identity(project)))
    with pytest.raises(ConfigError, match="evidence"):
        repo.commit("sneaky", synth.seed_population(10), "deidentified")


def test_dvc_remote_on_the_lake_is_sse_kms(lake: Settings, lake_pair: tuple[str, str]) -> None:
    project, _ = lake_pair
    repo = DatasetRepo(lake, project, openbao.login(lake, keys.ingest_identity(project)))
    frame, _ = synth.synthesize(DIABETES, 1000, "baseline", seed=9)
    meta = repo.commit("lake-cohort", frame, "synthetic")
    shutil.rmtree(repo.root / ".dvc" / "cache")
    assert repo.read("lake-cohort", meta["revision"]).equals(frame)
    ingest = objectstore.open_store(lake, project, role="ingest")
    stored = ingest.list("deidentified", "dvc/")
    assert stored
    for key in stored:
        head = ingest.client.head_object(Bucket=f"{project}-deidentified", Key=key)  # type: ignore[attr-defined]
        assert head["ServerSideEncryption"] == "aws:kms"

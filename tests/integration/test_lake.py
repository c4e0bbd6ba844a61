"""The data lake: SeaweedFS S3 over TLS with SSE-KMS keys in OpenBao, all real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests

from safeguards import credentials, keys, objectstore, openbao
from safeguards.errors import AccessDenied, NotFound, SafeguardError, Unavailable
from safeguards.settings import Settings
from services.seaweedfs.launcher import admin_client
from services.supervisor import Supervisor
from tests.conftest import HOME

pytestmark = pytest.mark.integration

MiB = 1024**2


def s3_client_of(lake: Settings, project: str, role: str = "workload") -> Any:
    who = keys.identity(project) if role == "workload" else keys.ingest_identity(project)
    creds = credentials.read(
        openbao.login(lake, who), objectstore.s3_credentials_path(project, role)
    )
    return objectstore.s3_client(
        lake.s3_url, creds["access_key"], creds["secret_key"], lake.ca_bundle
    )


def store_of(lake: Settings, project: str, role: str = "ingest") -> objectstore.S3ObjectStore:
    """The data steward's store by default: it may write every data zone."""
    store = objectstore.open_store(lake, project, role)
    assert isinstance(store, objectstore.S3ObjectStore)
    return store


@pytest.mark.parametrize("size", [0, 1024, 20 * MiB], ids=["empty", "1KB", "20MB-multipart"])
def test_every_write_is_sse_kms_under_the_projects_key(
    lake: Settings, lake_pair: tuple[str, str], size: int
) -> None:
    project, _ = lake_pair
    store = store_of(lake, project)
    data = os.urandom(size)
    store.put("deidentified", "batch/part-0.bin", data)
    head = store.client.head_object(Bucket=f"{project}-deidentified", Key="batch/part-0.bin")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == keys.key_name(project, HOME)
    assert store.get("deidentified", "batch/part-0.bin") == data


def test_bucket_default_encrypts_even_a_write_without_sse_headers(
    lake: Settings, lake_pair: tuple[str, str]
) -> None:
    project, _ = lake_pair
    client = s3_client_of(lake, project, role="ingest")
    client.put_object(Bucket=f"{project}-synthetic", Key="plain.bin", Body=b"no headers")
    head = client.head_object(Bucket=f"{project}-synthetic", Key="plain.bin")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == keys.key_name(project, HOME)


def _on_disk(root: Path, needles: list[bytes]) -> bool:
    for path in root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            if any(n in content for n in needles):
                return True
    return False


def test_canary_never_reaches_the_servers_disk(
    lake: Settings, operator: hvac.Client, lake_pair: tuple[str, str]
) -> None:
    project, _ = lake_pair
    # Random bytes: SeaweedFS gzips compressible data, which would hide a plaintext leak.
    canary = os.urandom(256 * 1024)
    needles = [canary[i : i + 48] for i in range(0, len(canary) - 48, 16 * 1024)]
    store_of(lake, project).put("raw-phi", "canary.bin", canary)
    data_dir = lake.data_dir / "seaweedfs" / "data"
    assert not _on_disk(data_dir, needles)
    # Control: the same search finds the bytes in a bucket without encryption.
    admin = admin_client(lake, operator)
    admin.create_bucket(Bucket=f"{project}-control")
    admin.put_object(Bucket=f"{project}-control", Key="canary.bin", Body=canary)
    assert _on_disk(data_dir, needles)


def test_plaintext_http_to_any_seaweedfs_port_gets_no_data(lake: Settings) -> None:
    for offset in (2, 10, 11, 12):
        url = f"http://{lake.host}:{lake.port_base + offset}/"
        response = requests.get(url, timeout=5)
        assert response.status_code == 400
        assert "HTTPS" in response.text


def test_internal_ports_demand_a_client_certificate(lake: Settings) -> None:
    for offset in (10, 11, 12):
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(
                f"https://{lake.host}:{lake.port_base + offset}/",
                verify=str(lake.ca_bundle),
                timeout=5,
            )


def test_missing_or_wrong_credentials_are_denied(
    lake: Settings, lake_pair: tuple[str, str]
) -> None:
    project, _ = lake_pair
    store_of(lake, project, role="workload").put("artifacts", "model.bin", b"weights")
    anonymous = requests.get(
        f"{lake.s3_url}/{project}-artifacts/model.bin", verify=str(lake.ca_bundle), timeout=5
    )
    assert anonymous.status_code == 403
    assert b"weights" not in anonymous.content
    creds = credentials.read(openbao.login(lake, keys.identity(project)), f"projects/{project}/s3")
    for access_key, secret_key in (
        (creds["access_key"], "wrong" * 8),
        ("HMNOSUCHKEY0000000", "x" * 40),
    ):
        client = objectstore.s3_client(lake.s3_url, access_key, secret_key, lake.ca_bundle)
        with pytest.raises(AccessDenied):
            objectstore.S3ObjectStore(client, project, HOME).get("artifacts", "model.bin")


def test_project_cannot_read_or_list_another_projects_bucket(
    lake: Settings, lake_pair: tuple[str, str]
) -> None:
    a, b = lake_pair
    store_of(lake, b).put("deidentified", "cohort.parquet", b"b's data")
    intruder = objectstore.S3ObjectStore(
        s3_client_of(lake, a), b, HOME
    )  # a's identity, b's buckets
    with pytest.raises(AccessDenied):
        intruder.get("deidentified", "cohort.parquet")
    with pytest.raises(AccessDenied):
        intruder.list("deidentified")
    with pytest.raises(AccessDenied):
        intruder.put("deidentified", "cohort.parquet", b"overwrite")
    assert store_of(lake, b).get("deidentified", "cohort.parquet") == b"b's data"


def test_shredded_key_makes_the_projects_objects_unreadable(
    lake: Settings, operator: hvac.Client, lake_pair: tuple[str, str]
) -> None:
    project, _ = lake_pair
    store = store_of(lake, project, role="workload")
    store.put("artifacts", "soon-gone.bin", b"readable until shredded")
    assert store.get("artifacts", "soon-gone.bin") == b"readable until shredded"
    keys.shred(operator, project, [HOME])
    with pytest.raises(SafeguardError):
        store.get("artifacts", "soon-gone.bin")


def test_clear_errors_for_missing_bucket_missing_object_and_dead_server(
    lake: Settings, operator: hvac.Client, lake_pair: tuple[str, str]
) -> None:
    project, _ = lake_pair
    store = store_of(lake, project)
    with pytest.raises(NotFound):
        store.get("deidentified", "never-written.bin")
    admin_client(lake, operator).delete_bucket(Bucket=f"{project}-synthetic")
    with pytest.raises(NotFound):
        store.list("synthetic")
    dead = objectstore.s3_client(
        f"https://{lake.host}:1", "HMACCESSKEY0000000", "x" * 40, lake.ca_bundle
    )
    with pytest.raises(Unavailable):
        objectstore.S3ObjectStore(dead, project, HOME).get("artifacts", "x.bin")


UPLOADER = """
import os, sys
from safeguards import objectstore
from safeguards.settings import Settings
settings = Settings(data_dir=sys.argv[1], port_base=int(sys.argv[2]), profile="stack")
store = objectstore.open_store(settings, sys.argv[3], role="ingest")
store.put("deidentified", "big.bin", os.urandom(1024 * 1024 * 1024))
"""


def _parts_in_flight(admin: Any, bucket: str) -> int:
    uploads = admin.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sum(
        len(admin.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", []))
        for u in uploads
    )


@pytest.mark.slow
def test_kill_9_during_a_large_upload_leaves_no_partial_object(
    lake: Settings, operator: hvac.Client, lake_pair: tuple[str, str]
) -> None:
    project, _ = lake_pair
    bucket = f"{project}-deidentified"
    store = store_of(lake, project)
    earlier = os.urandom(3 * MiB)
    store.put("deidentified", "earlier.bin", earlier)
    admin = admin_client(lake, operator)
    supervisor = Supervisor(lake)

    uploader = subprocess.Popen(
        [sys.executable, "-c", UPLOADER, str(lake.data_dir), str(lake.port_base), project],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while _parts_in_flight(admin, bucket) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert uploader.poll() is None, "the upload finished before the server could be killed"
        pid = supervisor.pid("seaweedfs")
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        uploader.wait(timeout=120)
        assert uploader.returncode != 0, "the upload should have failed with its server"
    finally:
        uploader.kill()
        supervisor.up("stack", timeout=180)

    store = store_of(lake, project)
    assert "big.bin" not in store.list("deidentified")
    with pytest.raises(NotFound):
        store.get("deidentified", "big.bin")
    assert store.get("deidentified", "earlier.bin") == earlier

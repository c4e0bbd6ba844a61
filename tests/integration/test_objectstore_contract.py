"""One contract, two stores: S3 with SSE-KMS on the stack, sealed files in the sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from safeguards import keys, objectstore, openbao
from safeguards.errors import AccessDenied, ConfigError, IntegrityError, NotFound
from safeguards.settings import Settings
from tests.conftest import HOME

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sandbox", "stack"])
def store(
    request: pytest.FixtureRequest, stack: Settings, tmp_path: Path
) -> objectstore.ObjectStore:
    if request.param == "stack":
        lake: Settings = request.getfixturevalue("lake")
        project = request.getfixturevalue("lake_pair")[0]
        return objectstore.open_store(lake, project)
    project = request.getfixturevalue("project_pair")[0]
    sandbox = stack.model_copy(update={"data_dir": tmp_path})
    return objectstore.LocalObjectStore(
        sandbox.data_dir / "lake", openbao.login(stack, keys.identity(project)), project, HOME
    )


def test_put_get_list_delete(store: objectstore.ObjectStore) -> None:
    data = os.urandom(4096)
    store.put("artifacts", "cohorts/a.bin", data)
    store.put("artifacts", "cohorts/b.bin", b"")
    store.put("artifacts", "other/c.bin", b"c")
    assert store.get("artifacts", "cohorts/a.bin") == data
    assert store.get("artifacts", "cohorts/b.bin") == b""
    assert sorted(store.list("artifacts", "cohorts/")) == ["cohorts/a.bin", "cohorts/b.bin"]
    store.delete("artifacts", "cohorts/a.bin")
    with pytest.raises(NotFound):
        store.get("artifacts", "cohorts/a.bin")


def test_overwrite_replaces_whole_object(store: objectstore.ObjectStore) -> None:
    store.put("artifacts", "model.bin", b"version one")
    store.put("artifacts", "model.bin", b"version two, longer")
    assert store.get("artifacts", "model.bin") == b"version two, longer"


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", ".hidden", "a/.partial", "sp ace"])
def test_bad_keys_are_refused_before_any_call(store: objectstore.ObjectStore, key: str) -> None:
    with pytest.raises(ConfigError):
        store.put("artifacts", key, b"x")


def test_unknown_zone_is_refused(store: objectstore.ObjectStore) -> None:
    with pytest.raises(ConfigError):
        store.get("scratch", "a.bin")


def test_sandbox_objects_are_sealed_and_bound_to_their_name(
    stack: Settings, project_pair: tuple[str, str], tmp_path: Path
) -> None:
    a, b = project_pair
    store_a = objectstore.LocalObjectStore(
        tmp_path, openbao.login(stack, keys.identity(a)), a, HOME
    )
    canary = os.urandom(1024)
    store_a.put("artifacts", "x.bin", canary)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 1 and canary not in files[0].read_bytes()
    moved = files[0].with_name("y.bin")
    moved.write_bytes(files[0].read_bytes())
    with pytest.raises(IntegrityError):
        store_a.get("artifacts", "y.bin")
    store_b = objectstore.LocalObjectStore(
        tmp_path, openbao.login(stack, keys.identity(b)), a, HOME
    )
    with pytest.raises(AccessDenied):
        store_b.get("artifacts", "x.bin")


SANDBOX_WRITER = """
import os, sys
from pathlib import Path
from safeguards import keys, objectstore, openbao
from safeguards.settings import Settings
settings = Settings(data_dir=sys.argv[1], port_base=int(sys.argv[2]))
bao = openbao.login(settings, keys.identity(sys.argv[3]))
store = objectstore.LocalObjectStore(Path(sys.argv[4]), bao, sys.argv[3], settings.home_region)
store.put("deidentified", "big.bin", os.urandom(512 * 1024 * 1024))
"""


def test_sandbox_writer_killed_mid_write_leaves_no_visible_object(
    stack: Settings, project_pair: tuple[str, str], tmp_path: Path
) -> None:
    project, _ = project_pair
    store = objectstore.LocalObjectStore(
        tmp_path, openbao.login(stack, keys.identity(project)), project, HOME
    )
    store.put("deidentified", "kept.bin", b"intact")
    bucket = tmp_path / HOME / f"{project}-deidentified"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SANDBOX_WRITER,
            str(stack.data_dir),
            str(stack.port_base),
            project,
            str(tmp_path),
        ],
    )
    deadline = time.monotonic() + 60
    while not list(bucket.glob(".big.bin.partial-*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert list(bucket.glob(".big.bin.partial-*")), "the writer was killed before writing"
    assert store.list("deidentified") == ["kept.bin"]
    with pytest.raises(NotFound):
        store.get("deidentified", "big.bin")
    assert store.get("deidentified", "kept.bin") == b"intact"


def test_sandbox_object_moved_to_another_zone_does_not_open(
    stack: Settings, project_pair: tuple[str, str], tmp_path: Path
) -> None:
    project, _ = project_pair
    bao = openbao.login(stack, keys.ingest_identity(project))
    store = objectstore.LocalObjectStore(tmp_path, bao, project, HOME)
    store.put("deidentified", "cohort/a.bin", b"de-identified rows")
    source = tmp_path / HOME / f"{project}-deidentified" / "cohort" / "a.bin"
    target = tmp_path / HOME / f"{project}-synthetic" / "cohort" / "a.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(source.read_bytes())
    with pytest.raises(IntegrityError):
        store.get("synthetic", "cohort/a.bin")

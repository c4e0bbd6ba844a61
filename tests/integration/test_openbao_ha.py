"""OpenBao as the cloud runs it: PostgreSQL storage shared by two nodes, one active and
one standby, each unsealing itself with the static seal's injected key.

The database is the stack's PostgreSQL (through its Unix socket, as its superuser, in a
database of the test's own); the nodes are the real `bao` server, started by the launcher.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import hvac
import psycopg2
import pytest

from safeguards import credentials, openbao
from safeguards.errors import Unavailable
from safeguards.settings import Settings
from services.openbao import launcher
from services.postgres import launcher as postgres
from tests.conftest import free_port_base

pytestmark = pytest.mark.integration

SECRET = "the-value-of-a-test-secret-" + uuid.uuid4().hex


class Node:
    """One OpenBao node: its settings, its process, its log."""

    def __init__(self, settings: Settings, key: str) -> None:
        self.settings, self.key = settings, key
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(launcher.UNSEAL_KEY_ENV, self.key)
        launch = launcher.prepare(self.settings)
        log = (self.settings.data_dir / f"openbao-{self.settings.port_base}.log").open("ab")
        self.process = subprocess.Popen(
            launch.command, env={"PATH": os.environ["PATH"], **launch.env}, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30
        while _state(self.settings) == "down":
            assert self.process.poll() is None, "OpenBao exited at start"
            assert time.monotonic() < deadline, "OpenBao did not answer in 30 s"
            time.sleep(0.2)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def status(self) -> str:
        return _state(self.settings)


def _state(settings: Settings) -> str:
    try:
        return launcher.status(settings)
    except Unavailable:  # not listening yet
        return "down"


def _wait_for(node: Node, wanted: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (state := node.status()) != wanted:
        assert time.monotonic() < deadline, f"node is {state}, not {wanted}, after {timeout} s"
        time.sleep(0.5)


@pytest.fixture
def database(
    lake: Settings, operator: hvac.Client, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A database of its own on the stack's PostgreSQL, given to OpenBao through libpq's
    variables, as the cloud gives it RDS."""
    name = f"openbao_{uuid.uuid4().hex[:10]}"
    admin = credentials.read(operator, postgres.ADMIN_CREDENTIAL)["password"]
    socket_dir = str(lake.data_dir / "postgres")
    params: dict[str, Any] = {
        "host": socket_dir,
        "port": postgres.port(lake),
        "user": postgres.SUPERUSER,
    }
    with closing(psycopg2.connect(dbname="postgres", password=admin, **params)) as conn:
        conn.autocommit = True
        conn.cursor().execute(f"CREATE DATABASE {name}")
    for var, value in {
        "PGHOST": socket_dir,
        "PGPORT": str(postgres.port(lake)),
        "PGUSER": postgres.SUPERUSER,
        "PGPASSWORD": admin,
        "PGDATABASE": name,
        "PGSSLMODE": "disable",
    }.items():
        monkeypatch.setenv(var, value)
    yield name
    with closing(psycopg2.connect(dbname="postgres", password=admin, **params)) as conn:
        conn.autocommit = True
        conn.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def nodes(database: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    """Two nodes sharing one data directory (the cloud's EFS) and one database, each on
    ports of its own, with the same injected unseal key."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    pair = tuple(
        Node(
            Settings(
                data_dir=tmp_path,
                port_base=free_port_base(),
                openbao_storage="postgresql",
                openbao_seal="static",
            ),
            key,
        )
        for _ in range(2)
    )
    yield pair  # type: ignore[misc]
    for node in pair:
        node.kill()


def test_one_node_is_active_the_other_a_standby_that_takes_over_with_the_data(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = nodes
    first.start(monkeypatch)
    launcher.on_start(first.settings)
    assert first.status() == "ready"
    operator = openbao.login(first.settings, "operator")
    operator.secrets.kv.v2.create_or_update_secret(
        "services/ha-test", {"value": SECRET}, mount_point="secret"
    )

    second.start(monkeypatch)
    launcher.on_start(second.settings)  # a standby: returns without bootstrapping again
    assert second.status() == "standby"

    first.kill()
    # The active node's lock lapses 15 s after its last renewal; the standby takes it.
    _wait_for(second, "ready", timeout=60)
    read = openbao.login(second.settings, "operator").secrets.kv.v2.read_secret_version(
        "services/ha-test", mount_point="secret", raise_on_deleted_version=True
    )
    assert read["data"]["data"]["value"] == SECRET


def test_a_node_unseals_itself_and_no_unseal_key_is_kept_on_disk(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = nodes
    first.start(monkeypatch)
    launcher.on_start(first.settings)
    first.kill()
    first.start(monkeypatch)  # nothing submits a key: the static seal opens it
    _wait_for(first, "ready", timeout=30)
    paths = launcher.OpenBaoPaths.of(first.settings)
    assert not paths.unseal_key.exists()
    assert stat.S_IMODE(paths.recovery_key.stat().st_mode) == 0o600
    assert not paths.root_token.exists()


def test_the_database_alone_opens_nothing_without_the_key(
    nodes: tuple[Node, Node], database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker who has the database (a snapshot, a stolen role) but not the injected
    key: the stored values are ciphertext, and a node with another key stays sealed."""
    first, second = nodes
    first.start(monkeypatch)
    launcher.on_start(first.settings)
    openbao.login(first.settings, "operator").secrets.kv.v2.create_or_update_secret(
        "services/ha-test", {"value": SECRET}, mount_point="secret"
    )
    with closing(psycopg2.connect(dbname=database)) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT value FROM openbao_kv_store")
        stored = b"".join(bytes(row[0]) for row in cursor.fetchall())
    assert stored and SECRET.encode() not in stored

    first.kill()
    impostor = Node(second.settings, base64.b64encode(secrets.token_bytes(32)).decode())
    try:
        impostor.start(monkeypatch)
        time.sleep(3)
        assert impostor.status() == "sealed"
    finally:
        impostor.kill()

"""PostgreSQL, MLflow's backend store on the stack: TLS and SCRAM only, secrets in OpenBao."""

from __future__ import annotations

import json
import os
import stat
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests

from safeguards import credentials, openbao
from safeguards.settings import Settings
from services.mlflow import launcher as mlflow
from services.postgres import launcher as postgres
from services.supervisor import Supervisor

pytestmark = pytest.mark.integration


def password(settings: Settings, path: str) -> str:
    return credentials.read(openbao.login(settings, "operator"), path)["password"]


def connect(settings: Settings, secret: str, **options: Any) -> Any:
    """The `mlflow` role over TLS that verifies the server, unless `options` say otherwise."""
    return psycopg2.connect(
        **{
            "host": settings.host,
            "port": postgres.port(settings),
            "dbname": "mlflow",
            "user": "mlflow",
            "password": secret,
            "sslmode": "verify-full",
            "sslrootcert": str(settings.ca_bundle),
            "connect_timeout": 5,
            **options,
        }
    )


def as_mlflow(settings: Settings) -> Any:
    return connect(settings, password(settings, postgres.MLFLOW_CREDENTIAL))


def as_superuser(settings: Settings) -> Any:
    """The superuser, through the Unix socket in the data directory: its only way in."""
    return psycopg2.connect(
        host=str(settings.data_dir / "postgres"),
        port=postgres.port(settings),
        user=postgres.SUPERUSER,
        dbname="postgres",
        password=password(settings, postgres.ADMIN_CREDENTIAL),
    )


def query(conn: Any, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with closing(conn), conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def create_experiment(settings: Settings) -> tuple[str, int]:
    name = f"pg-{uuid.uuid4().hex[:10]}"
    created = requests.post(
        f"{mlflow.url(settings)}/api/2.0/mlflow/experiments/create",
        json={"name": name},
        auth=(mlflow.ADMIN, mlflow.admin_password(settings)),
        verify=str(settings.ca_bundle),
        timeout=30,
    )
    assert created.status_code == 200
    return name, int(created.json()["experiment_id"])


def test_plaintext_is_refused_even_with_the_right_password(lake: Settings) -> None:
    secret = password(lake, postgres.MLFLOW_CREDENTIAL)
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        connect(lake, secret, sslmode="disable")
    [(ssl, version)] = query(
        as_mlflow(lake), "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    )
    assert ssl is True
    assert version in ("TLSv1.2", "TLSv1.3")


def test_wrong_password_and_the_superuser_over_tcp_are_refused(lake: Settings) -> None:
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed") as info:
        connect(lake, "guessed-password-078-05-1120")
    assert "078-05-1120" not in str(info.value)
    admin = password(lake, postgres.ADMIN_CREDENTIAL)
    with pytest.raises(psycopg2.OperationalError, match=r"no pg_hba\.conf entry"):
        connect(lake, admin, user=postgres.SUPERUSER, dbname="postgres")


def test_the_running_server_has_the_safe_settings(lake: Settings) -> None:
    expected = {
        "listen_addresses": lake.host,
        "ssl": "on",
        "ssl_min_protocol_version": "TLSv1.2",
        "password_encryption": "scram-sha-256",
        "log_connections": "on",
        "log_statement": "none",
        "log_min_error_statement": "panic",
        "data_checksums": "on",
    }
    for name, value in expected.items():
        assert query(as_superuser(lake), f"SHOW {name}") == [(value,)], name
    root = lake.data_dir / "postgres"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_ISSOCK((root / f".s.PGSQL.{postgres.port(lake)}").stat().st_mode)


def test_passwords_are_in_openbao_only(tracking: Settings) -> None:
    secrets = [
        password(tracking, path) for path in (postgres.MLFLOW_CREDENTIAL, postgres.ADMIN_CREDENTIAL)
    ]
    assert all(len(s) >= 32 for s in secrets)
    for path in tracking.data_dir.rglob("*"):
        try:
            content = path.read_bytes() if path.is_file() else b""
        except OSError:
            continue  # removed while we walk: a WAL segment, a temporary file
        assert not any(s.encode() in content for s in secrets), path.name
    record = json.loads((tracking.data_dir / "run" / "mlflow.json").read_text())
    assert any(arg.startswith("postgresql+psycopg2://mlflow@") for arg in record["command"])
    cmdline = Path(f"/proc/{record['pid']}/cmdline").read_bytes()
    assert not any(s.encode() in cmdline for s in secrets)
    assert not any(s in arg for s in secrets for arg in record["command"])
    [(verifier,)] = query(
        as_superuser(tracking), "SELECT rolpassword FROM pg_authid WHERE rolname = 'mlflow'"
    )
    assert verifier.startswith("SCRAM-SHA-256$")


def test_mlflow_on_the_stack_tracks_into_postgres(tracking: Settings) -> None:
    name, experiment_id = create_experiment(tracking)
    assert query(
        as_mlflow(tracking), "SELECT experiment_id FROM experiments WHERE name = %s", name
    ) == [(experiment_id,)]


def test_mlflow_keeps_its_users_and_permissions_in_postgres_over_tls(tracking: Settings) -> None:
    user = f"u{uuid.uuid4().hex[:8]}"
    response = requests.post(
        f"{mlflow.url(tracking)}/api/2.0/mlflow/users/create",
        json={"username": user, "password": uuid.uuid4().hex},
        auth=(mlflow.ADMIN, mlflow.admin_password(tracking)),
        verify=str(tracking.ca_bundle),
        timeout=30,
    )
    assert response.status_code == 200
    users = connect(tracking, password(tracking, postgres.MLFLOW_CREDENTIAL), dbname="mlflow_auth")
    assert query(users, "SELECT username FROM users WHERE username = %s", user) == [(user,)]
    config = (tracking.data_dir / "mlflow" / "auth.ini").read_text()
    assert "database_uri = postgresql+psycopg2://mlflow@" in config
    assert "sslmode=verify-full" in config


def test_status_shows_postgres_by_its_address(tracking: Settings) -> None:
    states = {s.name: s for s in Supervisor(tracking).status("stack")}
    assert states["postgres"].state == "running"
    assert states["postgres"].url == f"postgresql://{tracking.host}:{postgres.port(tracking)}"


def test_stop_is_clean_and_a_restart_keeps_the_data(tracking: Settings) -> None:
    name, experiment_id = create_experiment(tracking)
    supervisor = Supervisor(tracking)
    pid = supervisor.pid("postgres")
    assert pid is not None
    supervisor.stop("postgres")
    assert supervisor.pid("postgres") is None
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    log = (tracking.data_dir / "logs" / "postgres.log").read_text().splitlines()
    assert log[-1].endswith("database system is shut down")

    supervisor.up("stack", timeout=120)
    assert query(
        as_mlflow(tracking), "SELECT experiment_id FROM experiments WHERE name = %s", name
    ) == [(experiment_id,)]
    found = requests.get(
        f"{mlflow.url(tracking)}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": name},
        auth=(mlflow.ADMIN, mlflow.admin_password(tracking)),
        verify=str(tracking.ca_bundle),
        timeout=30,
    )
    assert found.status_code == 200

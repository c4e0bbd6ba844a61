"""How the servers start in AWS: OpenBao's storage and seal, the database's CA, the lake's
S3 names. What they do against real servers is in tests/integration (test_openbao_ha,
test_lake_s3)."""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import pytest

from safeguards import objectstore
from safeguards.errors import ConfigError, Unavailable
from safeguards.settings import Settings
from services import container, topology
from services.openbao import launcher as openbao


def test_the_cloud_openbao_has_ha_postgresql_storage_and_the_static_seal(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, openbao_storage="postgresql", openbao_seal="static")
    config = openbao.render_config(settings, openbao.OpenBaoPaths.of(settings))
    assert 'storage "postgresql"' in config and 'ha_enabled = "true"' in config
    assert f'current_key = "env://{openbao.UNSEAL_KEY_ENV}"' in config
    # One file for every node: each advertises its own address through its environment.
    assert "api_addr" not in config and "connection_url" not in config
    stack = openbao.render_config(Settings(data_dir=tmp_path), openbao.OpenBaoPaths.of(settings))
    assert 'storage "raft"' in stack and "seal" not in stack.replace("unseal", "")


def test_the_static_seal_without_its_key_is_refused_before_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(openbao.UNSEAL_KEY_ENV, raising=False)
    settings = Settings(data_dir=tmp_path, openbao_seal="static")
    with pytest.raises(ConfigError, match=openbao.UNSEAL_KEY_ENV):
        openbao.prepare(settings)


def test_a_node_passes_on_the_database_and_the_key_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(openbao.UNSEAL_KEY_ENV, "k" * 44)
    monkeypatch.setenv("PGHOST", "db.internal")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-openbao")
    settings = Settings(
        data_dir=tmp_path, openbao_storage="postgresql", openbao_seal="static", port_base=9200
    )
    env = openbao.prepare(settings).env
    assert env[openbao.UNSEAL_KEY_ENV] == "k" * 44 and env["PGHOST"] == "db.internal"
    assert env["BAO_API_ADDR"] == "https://127.0.0.1:9200"
    assert env["BAO_CLUSTER_ADDR"] == "https://127.0.0.1:9201"
    assert "AWS_SECRET_ACCESS_KEY" not in env


def test_the_database_ca_is_written_for_libpq_and_a_value_without_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    monkeypatch.setenv("DATABASE_CA_PEM", pem)
    container.write_database_ca(tmp_path / "ca.pem")
    assert (tmp_path / "ca.pem").read_text() == pem
    assert stat.S_IMODE((tmp_path / "ca.pem").stat().st_mode) == 0o644
    monkeypatch.setenv("DATABASE_CA_PEM", "a password pasted by mistake")
    with pytest.raises(ConfigError) as refused:
        container.write_database_ca(tmp_path / "other.pem")
    assert "mistake" not in str(refused.value)
    assert not (tmp_path / "other.pem").exists()


def test_zone_keys_are_named_by_the_aliases_terraform_gives_them() -> None:
    assert (
        objectstore.kms_alias("cardio", "raw-phi", "eu-central-1")
        == "alias/hipaa-mlops/eu-central-1/phi-cardio"
    )
    assert objectstore.kms_alias("cardio", "models", "us-east-1").endswith("/models-cardio")
    for zone in ("deidentified", "synthetic", "artifacts"):
        assert objectstore.kms_alias("cardio", zone, "us-east-1").endswith("/proj-cardio")


def test_database_logins_come_as_json_and_a_garbled_one_is_refused_without_echo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENBAO_STORAGE_LOGIN", '{"username": "openbao", "password": "p"}')
    monkeypatch.setenv("MLFLOW_STORE_LOGIN", '{"username": "mlflow", "password": "q"}')
    assert container.database_logins()["mlflow"] == {"username": "mlflow", "password": "q"}
    monkeypatch.setenv("MLFLOW_STORE_LOGIN", "hunter2hunter2")
    with pytest.raises(ConfigError, match="MLFLOW_STORE_LOGIN") as refused:
        container.database_logins()
    assert "hunter2" not in str(refused.value)


def test_a_long_running_server_repeats_its_start_up_step_and_survives_its_failure() -> None:
    calls: list[float] = []

    def again() -> None:
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise Unavailable("OpenBao did not answer")

    child = subprocess.Popen(["sleep", "1.3"])
    assert container.supervise(child, again, every=0.25) == 0
    assert len(calls) >= 3  # the failed second turn did not stop the third
    assert child.returncode == 0


def test_only_openbao_repeats_its_start_up_step() -> None:
    repeating = {s.name for s in topology.SERVICES if s.repeat_on_start_hours is not None}
    assert repeating == {"openbao"}

"""OpenBao restarts with its keys and secrets; the supervisor cleans up after a crash."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import hvac
import pytest

from safeguards import credentials, envelope, keys, openbao
from safeguards.settings import Settings
from services.openbao.launcher import OpenBaoPaths, status
from services.supervisor import Supervisor
from services.topology import services_for
from tests.conftest import HOME, settings_for

pytestmark = pytest.mark.integration


def test_bootstrap_leaves_no_root_token_and_private_files_0600(stack: Settings) -> None:
    paths = OpenBaoPaths.of(stack)
    assert not paths.root_token.exists()
    assert not paths.root_ca_key.exists()
    for secret in (paths.unseal_key, paths.key, *stack.credentials_dir.iterdir()):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret.name


def test_restart_comes_back_unsealed_with_the_same_keys_and_secrets(
    stack: Settings, operator: hvac.Client, project_pair: tuple[str, str]
) -> None:
    project, _ = project_pair
    bao = openbao.login(stack, keys.identity(project))
    sealed = envelope.seal(
        bao, keys.key_name(project, HOME), f"{project}/kept", b"survives a restart"
    )
    password = credentials.ensure_generated(operator, "services/restart-test/admin")

    supervisor = Supervisor(stack)
    supervisor.down("sandbox")  # OpenBao only: a running lake stays up, as in production
    assert all(s.state == "stopped" for s in supervisor.status("sandbox"))
    supervisor.up("sandbox")
    assert status(stack) == "ready"

    again = openbao.login(stack, keys.identity(project))
    assert envelope.open_sealed(again, f"{project}/kept", sealed) == b"survives a restart"
    operator_again = openbao.login(stack, "operator")
    assert credentials.ensure_generated(operator_again, "services/restart-test/admin") == password


def _bao_processes(data_dir: Path) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-f", f"{data_dir}/openbao/config.hcl"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [int(p) for p in out.split()]


@pytest.mark.slow
def test_stack_down_cleans_up_after_a_killed_supervisor(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "stack")
    env = {
        **os.environ,
        "HIPAA_MLOPS_DATA_DIR": str(settings.data_dir),
        "HIPAA_MLOPS_PORT_BASE": str(settings.port_base),
        "HIPAA_MLOPS_REGIONS": settings.regions,
    }
    cli = [sys.executable, "-m", "pipeline.cli"]
    up = subprocess.Popen(
        [*cli, "stack", "up"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pidfile = settings.data_dir / "run" / "openbao.json"
    deadline = time.monotonic() + 60
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    up.send_signal(signal.SIGKILL)
    up.wait(timeout=10)
    assert _bao_processes(settings.data_dir), "the server should outlive its killed supervisor"

    subprocess.run([*cli, "stack", "down"], env=env, cwd=tmp_path, check=True, timeout=60)
    assert _bao_processes(settings.data_dir) == []
    assert not pidfile.exists()

    # And the stack starts again from where the killed supervisor left it.
    subprocess.run([*cli, "stack", "up"], env=env, cwd=tmp_path, check=True, timeout=120)
    try:
        states = Supervisor(settings).status("sandbox")
        servers = [s for s in services_for("sandbox") if not s.per_project]
        assert [s.state for s in states] == ["running"] * len(servers)
    finally:
        Supervisor(settings).down()
    assert _bao_processes(settings.data_dir) == []

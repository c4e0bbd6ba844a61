"""Canary identifiers pushed through every log path never reach any log output."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import hvac
import pytest

from safeguards import envelope, keys, openbao
from safeguards.errors import AccessDenied
from safeguards.settings import Settings
from tests.canaries import CANARIES, NAME, assert_clean
from tests.conftest import HOME, cli

pytestmark = pytest.mark.integration


def test_openbao_client_calls_log_no_identifiers(
    captured: io.StringIO, stack: Settings, project_pair: tuple[str, str]
) -> None:
    a, b = project_pair
    bao_a = openbao.login(stack, keys.identity(a))
    payload = " ".join([*CANARIES.values(), NAME]).encode()
    sealed = envelope.seal(bao_a, keys.key_name(a, HOME), f"{a}/canary", payload)
    try:
        envelope.open_sealed(openbao.login(stack, keys.identity(b)), f"{a}/canary", sealed)
    except AccessDenied as exc:
        logging.getLogger("hipaa_mlops.test").exception("denied: %s", exc)
    assert_clean(captured.getvalue())


def test_openbao_audit_device_holds_no_plaintext(
    stack: Settings, project_pair: tuple[str, str], operator: hvac.Client
) -> None:
    a, _ = project_pair
    bao = openbao.login(stack, keys.identity(a))
    payload = " ".join(CANARIES.values()).encode()
    envelope.seal(bao, keys.key_name(a, HOME), f"{a}/canary", payload)
    operator.secrets.kv.v2.create_or_update_secret(
        f"projects/{a}/mlflow", {"password": CANARIES["ssn"]}, mount_point="secret"
    )
    audit_device = stack.data_dir / "openbao" / "audit.log"
    server_log = stack.data_dir / "logs" / "openbao.log"
    assert_clean(audit_device.read_text() + server_log.read_text())


def test_cli_errors_do_not_echo_input(stack: Settings, tmp_path: Path) -> None:
    bad_project = CANARIES["ssn"]
    result = cli(
        stack, "projects", "create", bad_project, "--contract", "diabetes", ok=False, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "project name is 3-32 characters" in result.stderr
    assert_clean(result.stdout + result.stderr + " ")
    secret = "a-real-looking-secret-" + CANARIES["ssn"]
    placeholder = {
        "HIPAA_MLOPS_OPENBAO_SECRET_ID": "changeme",
        "HIPAA_MLOPS_OPENBAO_ROLE_ID": secret,
    }
    result = cli(stack, "stack", "status", ok=False, cwd=tmp_path, env=placeholder)
    assert "placeholder" in result.stderr
    assert "changeme" not in result.stderr and secret not in result.stderr

"""The MLflow server: TLS only, authentication on, no default credentials."""

from __future__ import annotations

import stat

import hvac
import pytest
import requests

from safeguards import credentials, keys, openbao
from safeguards.errors import AccessDenied
from safeguards.settings import Settings
from services.mlflow import launcher

pytestmark = pytest.mark.integration

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


def test_anonymous_and_wrong_password_get_401_without_echo(stack: Settings) -> None:
    url = launcher.url(stack) + SEARCH
    anonymous = requests.get(url, verify=str(stack.ca_bundle), timeout=10)
    assert anonymous.status_code == 401
    wrong = requests.get(
        url, verify=str(stack.ca_bundle), timeout=10, auth=("admin", "guessed-password-078-05-1120")
    )
    assert wrong.status_code == 401
    assert "078-05-1120" not in wrong.text and "guessed" not in wrong.text


def test_admin_with_the_generated_password_is_let_in(stack: Settings) -> None:
    password = launcher.admin_password(stack)
    assert len(password) >= 32
    response = requests.get(
        launcher.url(stack) + SEARCH,
        verify=str(stack.ca_bundle),
        timeout=10,
        auth=(launcher.ADMIN, password),
    )
    assert response.status_code == 200


def test_no_plaintext_and_no_unverified_client(stack: Settings) -> None:
    plain = launcher.url(stack).replace("https://", "http://") + "/health"
    try:
        response = requests.get(plain, timeout=5)
    except requests.ConnectionError:
        pass
    else:
        assert response.status_code >= 400
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(launcher.url(stack) + "/health", timeout=5)


def test_admin_password_is_only_in_openbao_and_the_0600_auth_config(stack: Settings) -> None:
    password = launcher.admin_password(stack)
    config = stack.data_dir / "mlflow" / "auth.ini"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert password in config.read_text()
    for path in stack.data_dir.rglob("*"):
        if path.is_file() and path != config and path.suffix in (".log", ".json", ".ini", ".env"):
            assert password not in path.read_text(errors="ignore"), path.name


def test_a_projects_user_cannot_see_another_projects_experiment(
    stack: Settings, operator: hvac.Client, project_pair: tuple[str, str]
) -> None:
    a, b = project_pair
    for project in (a, b):
        launcher.provision_project(stack, operator, project)
    launcher.provision_project(stack, operator, a)  # idempotent

    def auth(project: str) -> tuple[str, str]:
        bao = openbao.login(stack, keys.identity(project))
        return launcher.project_user(project), credentials.read(bao, f"projects/{project}/mlflow")[
            "password"
        ]

    base, ca = launcher.url(stack), str(stack.ca_bundle)
    found = requests.get(
        f"{base}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": launcher.experiment_name(a)},
        verify=ca,
        timeout=30,
        auth=auth(a),
    )
    assert found.status_code == 200
    experiment = (
        f"{base}/api/2.0/mlflow/experiments/get?experiment_id="
        + found.json()["experiment"]["experiment_id"]
    )
    assert requests.get(experiment, verify=ca, timeout=30, auth=auth(a)).status_code == 200
    assert requests.get(experiment, verify=ca, timeout=30, auth=auth(b)).status_code == 403
    with pytest.raises(AccessDenied):
        credentials.read(openbao.login(stack, keys.identity(b)), f"projects/{a}/mlflow")

"""Start MLflow's tracking and registry server natively: TLS, basic auth, no defaults.

The server runs MLflow's basic-auth app with ``default_permission = NO_PERMISSIONS``: an
anonymous request gets 401, and a user sees only what it was granted. The admin password
and the Flask session key are generated into OpenBao KV at first start and written only
into the server's 0600 auth config (`provision`, run as the operator: natively by the
supervisor, in the compose stack by the server's init job) and its environment (read at
start as the server's own identity). TLS comes from the stack's PKI
through uvicorn. The server never touches an artifact and holds no storage credential:
each project's experiment keeps its artifacts in the project's own `models` zone, which
only the project's identities reach (`safeguards.artifacts`); an experiment made without a
location gets one that no identity can open. Runs, models, users and permissions are kept
in SQLite under the data directory in the sandbox; on the stack in PostgreSQL over
verified TLS (two databases), the role's password only in the server's environment (a
command line is visible to every local user).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

import hvac
import requests

from safeguards import artifacts, credentials, openbao, pki
from safeguards import projects as tenancy
from safeguards.errors import ConfigError, ServerError
from safeguards.files import write_private
from safeguards.registry import (
    CHAMPION,
    credential_path,
    experiment_name,
    model_name,
    project_user,
    serving_user,
)
from safeguards.settings import Settings
from services.launch import Launch
from services.postgres import launcher as postgres

ADMIN = "admin"
ADMIN_CREDENTIAL = "services/mlflow/admin"
FLASK_SECRET = "services/mlflow/flask-secret"  # noqa: S105 (a KV path)
# The server's own identity: it reads its secrets at start (policy `mlflow`).
IDENTITY = "mlflow"
PLATFORM = "platform"


def _dir(settings: Settings) -> Path:
    return settings.data_dir / "mlflow"


def url(settings: Settings) -> str:
    return settings.mlflow_url


def provision(settings: Settings, operator: hvac.Client) -> None:
    """As the operator: the certificate, the auth config and the server's secret
    environment (0600 files in MLflow's own directory)."""
    root = _dir(settings)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    pki.issue_for(operator, settings, "mlflow")
    password = credentials.ensure_generated(operator, ADMIN_CREDENTIAL)
    if settings.profile == "stack":
        # Beside the tracking store, over verified TLS; ConfigParser reads % as a reference.
        users = postgres.mlflow_uri(settings, "mlflow_auth").replace("%", "%%")
    else:
        users = f"sqlite:///{root / 'auth.db'}"
    auth_config = (
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = {users}\n"
        f"admin_username = {ADMIN}\n"
        f"admin_password = {password}\n"
        "authorization_function = services.mlflow.authz:authenticate_request\n"
        # Password checks are scrypt: without the cache each request costs ~0.4 s.
        "auth_cache_ttl_seconds = 60\n"
    )
    write_private(root / "auth.ini", auth_config.encode())
    credentials.ensure_generated(operator, FLASK_SECRET)
    openbao.ensure_identity(operator, settings, IDENTITY, [IDENTITY])


def prepare(settings: Settings) -> Launch:
    """The server's command line and environment. Its secrets are read as its own identity
    and go into its environment only: a command line is visible to every local user."""
    root = _dir(settings)
    key, cert = pki.server_files(settings, "mlflow")
    bao = openbao.login(settings, IDENTITY)
    env = {
        "MLFLOW_FLASK_SERVER_SECRET_KEY": credentials.read(bao, FLASK_SECRET)["password"],
        "MLFLOW_AUTH_CONFIG_PATH": str(root / "auth.ini"),
        # The job runner serves GenAI evaluation only: seven processes and ~1 GB saved.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    if settings.postgres_addr:
        # An external database's role and password come from the platform's secret store.
        missing = [name for name in ("PGUSER", "PGPASSWORD") if not os.environ.get(name)]
        if missing:
            raise ConfigError(f"an external PostgreSQL needs {' and '.join(missing)}")
        backend = postgres.mlflow_uri(settings)
        env |= {name: os.environ[name] for name in ("PGUSER", "PGPASSWORD")}
    elif settings.profile == "stack":
        backend = postgres.mlflow_uri(settings)
        env["PGPASSWORD"] = credentials.read(bao, postgres.MLFLOW_CREDENTIAL)["password"]
    else:
        backend = f"sqlite:///{root / 'mlflow.db'}"
    port = settings.port("mlflow")
    return Launch(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--app-name",
            "basic-auth",
            "--backend-store-uri",
            backend,
            "--no-serve-artifacts",
            "--default-artifact-root",
            artifacts.location(PLATFORM),
            "--host",
            settings.bind_host,
            "--port",
            str(port),
            "--workers",
            "1",
            "--allowed-hosts",
            ",".join(
                f"{name}:{port}"
                for name in (settings.host, "localhost", "mlflow", *settings.extra_names)
            ),
            "--uvicorn-opts",
            # Clients keep connections alive: without a bound, a graceful stop waits forever.
            f"--ssl-keyfile {key} --ssl-certfile {cert} "
            f"--ssl-ciphers {pki.AEAD_CIPHERS} --timeout-graceful-shutdown 5",
        ],
        env,
    )


def admin_password(settings: Settings, operator: hvac.Client | None = None) -> str:
    """MLflow's admin password, read as the operator (logged in here unless given)."""
    operator = operator or openbao.login(settings, "operator")
    return credentials.read(operator, ADMIN_CREDENTIAL)["password"]


def provision_project(settings: Settings, operator: hvac.Client, project: str) -> None:
    """The project's MLflow users, experiment and registered model.

    Each user's password is generated into the project's own KV path. The operator creates
    the experiment and the registered model and grants the project's user EDIT on them:
    the project logs runs, registers versions and moves aliases, but cannot delete
    versions, grant access to anyone else, or take another project's names first. The
    serving user gets READ only: the MLflow session of the endpoint that may receive PHI
    cannot change the registry. Under ``NO_PERMISSIONS`` neither sees anything else.
    """
    grants = {project_user(project): "EDIT", serving_user(project): "READ"}
    admin = _Admin(settings, operator)
    for user in grants:
        password = credentials.ensure_generated(operator, credential_path(project, user))
        admin.call("2.0/mlflow/users/create", {"username": user, "password": password})
    admin.call(
        "2.0/mlflow/experiments/create",
        {"name": experiment_name(project), "artifact_location": artifacts.location(project)},
    )
    experiment = admin.get(
        "2.0/mlflow/experiments/get-by-name", {"experiment_name": experiment_name(project)}
    )["experiment"]["experiment_id"]
    admin.call("2.0/mlflow/registered-models/create", {"name": model_name(project)})
    for user, permission in grants.items():
        for resource_type, resource_id in (
            ("experiment", experiment),
            ("registered_model", model_name(project)),
        ):
            admin.call(
                "3.0/mlflow/users/permissions/grant",
                {
                    "username": user,
                    "resource_type": resource_type,
                    "resource_id": resource_id,
                    "permission": permission,
                },
            )


def lock_users(settings: Settings, operator: hvac.Client, project: str) -> None:
    """Give the project's MLflow users passwords nobody knows: their sessions stop at once
    (MLflow drops its cached logins of a user whose password changes)."""
    admin = _Admin(settings, operator)
    for user in (project_user(project), serving_user(project)):
        admin.call(
            "2.0/mlflow/users/update-password",
            {"username": user, "password": secrets.token_urlsafe(32)},
            method="PATCH",
        )


def unlock_users(settings: Settings, operator: hvac.Client, project: str) -> None:
    """Give the project's MLflow users back the passwords kept in its KV paths."""
    admin = _Admin(settings, operator)
    for user in (project_user(project), serving_user(project)):
        password = credentials.read(operator, credential_path(project, user))["password"]
        admin.call(
            "2.0/mlflow/users/update-password",
            {"username": user, "password": password},
            method="PATCH",
        )


def remove_project(settings: Settings, operator: hvac.Client, project: str) -> None:
    """Delete the project's registered model (its versions with it), its experiment and
    its users (their permissions with them). MLflow keeps a deleted experiment's runs,
    marked deleted: their params, metrics and lineage tags, whose files are shredded."""
    admin = _Admin(settings, operator)
    if admin.exists("2.0/mlflow/registered-models/get", {"name": model_name(project)}):
        admin.call("2.0/mlflow/registered-models/delete", {"name": model_name(project)}, "DELETE")
    found = admin.exists(
        "2.0/mlflow/experiments/get-by-name", {"experiment_name": experiment_name(project)}
    )
    if found:
        experiment = admin.get(
            "2.0/mlflow/experiments/get-by-name", {"experiment_name": experiment_name(project)}
        )["experiment"]
        if experiment["lifecycle_stage"] == "active":
            admin.call(
                "2.0/mlflow/experiments/delete", {"experiment_id": experiment["experiment_id"]}
            )
    for user in (project_user(project), serving_user(project)):
        if admin.exists("2.0/mlflow/users/get", {"username": user}):
            admin.call("2.0/mlflow/users/delete", {"username": user}, "DELETE")


def existing(settings: Settings, operator: hvac.Client, project: str) -> list[str]:
    """What of `project`'s MLflow names exists already: its experiment, its registered
    model, its users (kind and name each)."""
    admin = _Admin(settings, operator)
    checks = [
        (
            "experiment",
            experiment_name(project),
            "2.0/mlflow/experiments/get-by-name",
            {"experiment_name": experiment_name(project)},
        ),
        (
            "registered model",
            model_name(project),
            "2.0/mlflow/registered-models/get",
            {"name": model_name(project)},
        ),
        *(
            ("user", user, "2.0/mlflow/users/get", {"username": user})
            for user in (project_user(project), serving_user(project))
        ),
    ]
    return [
        f"MLflow {kind} {name}" for kind, name, path, params in checks if admin.exists(path, params)
    ]


def has_champion(settings: Settings, operator: hvac.Client, project: str) -> bool:
    """Whether `project`'s registered model has a champion (a created project that has
    one is served)."""
    return _Admin(settings, operator).has_alias(model_name(project), CHAMPION)


def served_projects(settings: Settings, operator: hvac.Client) -> list[tenancy.Project]:
    """The projects the stack serves: every created project that has a champion."""
    created = tenancy.created(operator)
    if not created:
        return []
    admin = _Admin(settings, operator)
    return [p for p in created if admin.has_alias(model_name(p.name), CHAMPION)]


class _Admin:
    """MLflow's REST API as its admin, over TLS; creating what exists is not an error. The
    admin's password is read with the operator's client it is given (in a container's
    init job, the operator's credentials are not where a login would look)."""

    def __init__(self, settings: Settings, operator: hvac.Client) -> None:
        self.base = f"{url(settings)}/api/"
        self.auth = (ADMIN, admin_password(settings, operator))
        self.verify = str(settings.ca_bundle)

    def call(self, path: str, body: dict[str, str], method: str = "POST") -> None:
        response = requests.request(
            method, self.base + path, json=body, auth=self.auth, verify=self.verify, timeout=30
        )
        if response.status_code != 200 and "RESOURCE_ALREADY_EXISTS" not in response.text:
            raise ServerError(f"MLflow refused {path} ({response.status_code})")

    def exists(self, path: str, params: dict[str, str]) -> bool:
        response = requests.get(
            self.base + path, params=params, auth=self.auth, verify=self.verify, timeout=30
        )
        if response.status_code == 404 or "RESOURCE_DOES_NOT_EXIST" in response.text:
            return False
        if response.status_code != 200:
            raise ServerError(f"MLflow refused {path} ({response.status_code})")
        return True

    def has_alias(self, model: str, alias: str) -> bool:
        """Whether registered model `model` has `alias` (MLflow answers an alias never
        set as an invalid parameter)."""
        response = requests.get(
            self.base + "2.0/mlflow/registered-models/alias",
            params={"name": model, "alias": alias},
            auth=self.auth,
            verify=self.verify,
            timeout=30,
        )
        if response.status_code in (400, 404):
            return False
        if response.status_code != 200:
            raise ServerError(f"MLflow refused reading an alias ({response.status_code})")
        return True

    def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        response = requests.get(
            self.base + path, params=params, auth=self.auth, verify=self.verify, timeout=30
        )
        if response.status_code != 200:
            raise ServerError(f"MLflow refused {path} ({response.status_code})")
        return response.json()  # type: ignore[no-any-return]

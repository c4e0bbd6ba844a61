"""Start MLflow's tracking and registry server natively: TLS, basic auth, no defaults.

The server runs MLflow's basic-auth app with ``default_permission = NO_PERMISSIONS``: an
anonymous request gets 401, and a user sees only what it was granted. The admin password
and the Flask session key are generated into OpenBao KV at first start and written only
into the server's 0600 auth config and environment. TLS comes from the stack's PKI
through uvicorn. Artifacts are proxied by the server (`--serve-artifacts`), so clients
never hold storage credentials: in the sandbox they go to a directory under the data
directory, on the stack to the platform's `artifacts` bucket with SSE-KMS.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hvac
import requests

from safeguards import credentials, keys, objectstore, openbao, pki
from safeguards.errors import ServerError
from safeguards.files import write_private
from safeguards.settings import PORT_OFFSETS, Settings
from services.launch import Launch

ADMIN = "admin"
ADMIN_CREDENTIAL = "services/mlflow/admin"
PLATFORM = "platform"


def _dir(settings: Settings) -> Path:
    return settings.data_dir / "mlflow"


def url(settings: Settings) -> str:
    return f"https://{settings.host}:{settings.port_base + PORT_OFFSETS['mlflow']}"


def prepare(settings: Settings) -> Launch:
    """Certificate, auth config and environment; returns the server's command line."""
    root, tls = _dir(settings), settings.data_dir / "tls"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    operator = openbao.login(settings, "operator")
    pki.issue_server_cert(
        operator, [settings.host, "localhost", "mlflow"], tls / "mlflow.key", tls / "mlflow.pem"
    )
    password = credentials.ensure_generated(operator, ADMIN_CREDENTIAL)
    auth_config = (
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{root / 'auth.db'}\n"
        f"admin_username = {ADMIN}\n"
        f"admin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Password checks are scrypt: without the cache each request costs ~0.4 s.
        "auth_cache_ttl_seconds = 60\n"
    )
    write_private(root / "auth.ini", auth_config.encode())
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(root / "auth.ini"),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": credentials.ensure_generated(
            operator, "services/mlflow/flask-secret"
        ),
        # The job runner serves GenAI evaluation only: seven processes and ~1 GB saved.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    if settings.profile == "stack":
        destination = f"s3://{objectstore.bucket_name(PLATFORM, 'artifacts')}/mlflow"
        s3 = credentials.read(operator, objectstore.s3_credentials_path(PLATFORM, "workload"))
        env |= {
            "MLFLOW_S3_ENDPOINT_URL": settings.s3_url,
            "AWS_ACCESS_KEY_ID": s3["access_key"],
            "AWS_SECRET_ACCESS_KEY": s3["secret_key"],
            "AWS_CA_BUNDLE": str(settings.ca_bundle),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "MLFLOW_S3_UPLOAD_EXTRA_ARGS": json.dumps(
                {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": keys.key_name(PLATFORM)}
            ),
        }
    else:
        destination = str(root / "artifacts")
    port = settings.port_base + PORT_OFFSETS["mlflow"]
    return Launch(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--app-name",
            "basic-auth",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--serve-artifacts",
            "--artifacts-destination",
            destination,
            "--host",
            settings.host,
            "--port",
            str(port),
            "--workers",
            "1",
            "--allowed-hosts",
            f"{settings.host}:{port},localhost:{port},mlflow:{port}",
            "--uvicorn-opts",
            f"--ssl-keyfile {tls / 'mlflow.key'} --ssl-certfile {tls / 'mlflow.pem'}",
        ],
        env,
    )


def admin_password(settings: Settings) -> str:
    return credentials.read(openbao.login(settings, "operator"), ADMIN_CREDENTIAL)["password"]


def project_user(project: str) -> str:
    return keys.identity(project)


def provision(settings: Settings, operator: hvac.Client, project: str) -> None:
    """The project's MLflow user, its password generated into the project's own KV path.

    Under ``NO_PERMISSIONS`` the user sees nothing but what it creates (it becomes MANAGE
    on its own experiments and models) and what is granted to it.
    """
    password = credentials.ensure_generated(operator, f"projects/{project}/mlflow")
    response = requests.post(
        f"{url(settings)}/api/2.0/mlflow/users/create",
        json={"username": project_user(project), "password": password},
        auth=(ADMIN, admin_password(settings)),
        verify=str(settings.ca_bundle),
        timeout=30,
    )
    if response.status_code == 200 or "RESOURCE_ALREADY_EXISTS" in response.text:
        return
    raise ServerError(
        f"MLflow refused to create the user of project '{project}' ({response.status_code})"
    )

"""Start the monitoring worker natively: uvicorn serving `pipeline.worker` over HTTPS.

The certificate comes from the stack's PKI. Like the endpoints, the worker gets every
non-secret setting through its environment; it watches every served project (those with
a champion), each as that project's workload identity, from the list its provision step
writes (`projects.json`, re-written at every start). uvicorn's access log (client
addresses) is off.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hvac

from safeguards import keys, openbao, pki
from safeguards.errors import ConfigError
from safeguards.files import write_private
from safeguards.settings import Settings
from services.launch import Launch, environment
from services.mlflow.launcher import served_projects

APP = "pipeline.worker:create_app"


def url(settings: Settings) -> str:
    return settings.url("monitoring")


def projects_file(settings: Settings) -> Path:
    return settings.data_dir / "monitoring" / "projects.json"


def watched(settings: Settings) -> list[str]:
    """The projects the worker watches, as its provision step listed them."""
    try:
        names = json.loads(projects_file(settings).read_text())
    except FileNotFoundError:
        return []
    except ValueError:
        raise ConfigError(f"{projects_file(settings)} is not a list of projects") from None
    return [keys.validate_project(str(n)) for n in names]


def provision(settings: Settings, operator: hvac.Client) -> None:
    """As the operator: the worker's certificate, the list of served projects, and the
    credentials of each one's workload identity."""
    pki.issue_for(operator, settings, "monitoring")
    projects = [p.name for p in served_projects(settings, operator)]
    for project in projects:
        openbao.ensure_credentials(operator, settings, keys.identity(project))
    write_private(projects_file(settings), json.dumps(projects).encode())


def prepare(settings: Settings) -> Launch:
    key, cert = pki.server_files(settings, "monitoring")
    return Launch(
        [
            sys.executable,
            "-m",
            "uvicorn",
            APP,
            "--factory",
            "--host",
            settings.bind_host,
            "--port",
            str(settings.port("monitoring")),
            "--ssl-certfile",
            str(cert),
            "--ssl-keyfile",
            str(key),
            f"--ssl-ciphers={pki.AEAD_CIPHERS}",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
        ],
        environment(settings),
    )

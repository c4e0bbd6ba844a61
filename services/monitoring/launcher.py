"""Start the monitoring worker natively: uvicorn serving `pipeline.worker` over HTTPS.

The certificate comes from the stack's PKI. Like the endpoint, the worker gets every
non-secret setting through its environment and logs in as its project's workload
identity; uvicorn's access log (client addresses) is off.
"""

from __future__ import annotations

import sys

import hvac

from safeguards import keys, openbao, pki
from safeguards.settings import Settings
from services.launch import Launch, environment

APP = "pipeline.worker:create_app"


def url(settings: Settings) -> str:
    return settings.url("monitoring")


def provision(settings: Settings, operator: hvac.Client) -> None:
    """As the operator: the worker's certificate, and the credentials of the served
    project's workload identity once the project exists."""
    pki.issue_for(operator, settings, "monitoring")
    openbao.ensure_credentials(operator, settings, keys.identity(settings.serving_project))


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

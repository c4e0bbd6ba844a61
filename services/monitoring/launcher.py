"""Start the monitoring worker natively: uvicorn serving `pipeline.worker` over HTTPS.

The certificate comes from the stack's PKI. Like the endpoint, the worker gets every
non-secret setting through its environment and logs in as its project's workload
identity; uvicorn's access log (client addresses) is off.
"""

from __future__ import annotations

import sys

from safeguards import openbao, pki
from safeguards.settings import PORT_OFFSETS, Settings
from services.launch import Launch, environment

APP = "pipeline.worker:create_app"


def url(settings: Settings) -> str:
    return f"https://{settings.host}:{settings.port_base + PORT_OFFSETS['monitoring']}"


def prepare(settings: Settings) -> Launch:
    tls = settings.data_dir / "tls"
    operator = openbao.login(settings, "operator")
    pki.issue_server_cert(
        operator,
        [settings.host, "localhost", "monitoring"],
        tls / "monitoring.key",
        tls / "monitoring.pem",
    )
    return Launch(
        [
            sys.executable,
            "-m",
            "uvicorn",
            APP,
            "--factory",
            "--host",
            settings.host,
            "--port",
            str(settings.port_base + PORT_OFFSETS["monitoring"]),
            "--ssl-certfile",
            str(tls / "monitoring.pem"),
            "--ssl-keyfile",
            str(tls / "monitoring.key"),
            f"--ssl-ciphers={pki.AEAD_CIPHERS}",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
        ],
        environment(settings),
    )

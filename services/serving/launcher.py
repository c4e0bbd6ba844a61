"""Start the serving endpoint natively: one BentoML worker over HTTPS, for one project.

The endpoint runs in one process (`server`: the service's ASGI app under uvicorn, as
BentoML's worker runs it), not under `bentoml serve`, whose process manager (circus)
listens on loopback TCP in plaintext with no credentials. The process listens on the
HTTPS port only; TLS options are uvicorn's (`--ssl-certfile`, `--ssl-keyfile`,
`--ssl-ciphers`).
The certificate comes from the stack's PKI. The service reads its settings from the
environment the supervisor gives it: every non-secret setting is passed on, none of the
caller's AppRole credentials (the endpoint logs in as its project's workload identity).
BentoML keeps its home, and its Prometheus scratch files, under the data directory, and
sends no usage data anywhere.
"""

from __future__ import annotations

import sys

import hvac

from safeguards import keys, openbao, pki
from safeguards.settings import Settings
from services.launch import Launch, environment

SERVICE = "services.serving.service:DiabetesRisk"
SERVER = "services.serving.server"


def url(settings: Settings) -> str:
    return settings.url("serving")


def provision(settings: Settings, operator: hvac.Client) -> None:
    """As the operator: the endpoint's certificate, and the credentials of the served
    project's serving identity once the project exists."""
    pki.issue_for(operator, settings, "serving")
    openbao.ensure_credentials(operator, settings, keys.serving_identity(settings.serving_project))


def prepare(settings: Settings) -> Launch:
    root = settings.data_dir / "serving"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    key, cert = pki.server_files(settings, "serving")
    env = environment(settings) | {
        "BENTOML_HOME": str(root / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
    }
    return Launch(
        [
            sys.executable,
            "-m",
            SERVER,
            SERVICE,
            "--host",
            settings.bind_host,
            "--port",
            str(settings.port("serving")),
            "--ssl-certfile",
            str(cert),
            "--ssl-keyfile",
            str(key),
            f"--ssl-ciphers={pki.AEAD_CIPHERS}",
            # Clients keep connections alive: without a bound, a graceful stop waits forever.
            "--timeout-graceful-shutdown",
            "5",
        ],
        env,
    )

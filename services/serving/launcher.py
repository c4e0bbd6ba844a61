"""Start a project's endpoint natively: one BentoML worker over HTTPS, for one project.

The endpoint runs in one process (`server`: the service's ASGI app under uvicorn, as
BentoML's worker runs it), not under `bentoml serve`, whose process manager (circus)
listens on loopback TCP in plaintext with no credentials. The process listens on the
HTTPS port only; TLS options are uvicorn's (`--ssl-certfile`, `--ssl-keyfile`,
`--ssl-ciphers`).
The stack runs one per served project, each named ``serving-<project>`` with a directory
of its own (`instance`), on its project's port. The certificate comes from the stack's
PKI, for that name too (the endpoint's compose service name). The service reads its
settings, its project and slot included, from the environment the supervisor gives it:
every non-secret setting is passed on, none of the caller's AppRole credentials (the
endpoint logs in as its project's serving identity).
BentoML keeps its home, and its Prometheus scratch files, under the data directory, and
sends no usage data anywhere.
"""

from __future__ import annotations

import sys

import hvac

from safeguards import keys, openbao, pki
from safeguards import projects as tenancy
from safeguards.errors import ConfigError, NotFound
from safeguards.projects import Project
from safeguards.settings import Settings
from services.launch import Launch, environment

SERVICE = "services.serving.service:Endpoint"
SERVER = "services.serving.server"


def settings_of(settings: Settings, project: Project) -> Settings:
    """`settings` as `project`'s endpoint has them: its project and its slot."""
    return settings.model_copy(
        update={"serving_project": project.name, "serving_slot": project.slot}
    )


def project_url(settings: Settings, operator: hvac.Client, project: str) -> str:
    """Where `project`'s endpoint answers (its slot, from the project's record)."""
    record = tenancy.read(operator, project)
    if record is None or record.slot is None:
        raise NotFound(f"project '{project}' has no endpoint (not created, or deleted)")
    return url(settings_of(settings, record))


def instance(settings: Settings) -> str:
    """The endpoint's name, and its directory's: ``serving-<project>``."""
    if settings.serving_project is None or settings.serving_slot is None:
        raise ConfigError("an endpoint serves one project: its project and slot are unset")
    return f"serving-{settings.serving_project}"


def url(settings: Settings) -> str:
    return settings.url("serving")


def provision(settings: Settings, operator: hvac.Client) -> None:
    """As the operator: the endpoint's certificate, and the credentials of its project's
    serving identity."""
    pki.issue_for(operator, settings, instance(settings))
    openbao.ensure_credentials(
        operator, settings, keys.serving_identity(str(settings.serving_project))
    )


def prepare(settings: Settings) -> Launch:
    root = settings.data_dir / instance(settings)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    key, cert = pki.server_files(settings, instance(settings))
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

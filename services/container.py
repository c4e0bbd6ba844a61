"""What each container of the compose stack runs: one step of one server of the topology.

    python -m services.container run SERVICE          the server, beside its start-up steps
    python -m services.container provision SERVICE    its init job, as the operator
    python -m services.container after-start SERVICE  its post-start job, as the operator
    python -m services.container serve                 SageMaker's contract (app image only)
    python -m services.container setup-database        an external PostgreSQL's roles, once

Every container sees the same data directory layout as the native stack (``/data``): its
own volume, with the CA bundle mounted read-only at ``/data/tls``. Only the one-shot jobs
mount the operator's credentials (read-only, at ``/operator``), so a server's container
never holds them. `run` starts the server as a child process, runs its `on_start` step
once it answers, marks itself ready (the health check wants the mark) and passes every
stop signal on to the child until it exits, with the child's status. `serve` is what
SageMaker runs the app image with: the packaged model at ``/opt/ml/model`` on port 8080
(`services.serving.sagemaker`), no server of the stack.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from safeguards import logs, openbao
from safeguards.errors import ConfigError, SafeguardError, Unavailable
from safeguards.settings import Settings, load_settings
from services import healthcheck, topology
from services.postgres import external
from services.topology import Service

log = logging.getLogger(__name__)

OPERATOR = Path("/operator/operator.json")
# The external database's CA bundle (RDS's), handed over as text in DATABASE_CA_PEM: the
# file libpq (PGSSLROOTCERT) and MLflow (HIPAA_MLOPS_POSTGRES_CA) verify the database with.
DATABASE_CA = Path("/tmp/database-ca.pem")  # noqa: S108 (the task's own storage)
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def ready_mark(server: Service) -> Path:
    """What `services.healthcheck` waits for, on the container's tmpfs: a restarted
    container starts unready."""
    return Path("/tmp") / f"{server.name}.ready"  # noqa: S108 (a tmpfs of its own)


def write_database_ca(path: Path = DATABASE_CA) -> None:
    """DATABASE_CA_PEM, if given, into `path`; a value that holds no certificate is refused."""
    pem = os.environ.get("DATABASE_CA_PEM")
    if pem is None:
        return
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigError("DATABASE_CA_PEM holds no PEM certificate")
    path.write_text(pem)
    path.chmod(0o644)


DATABASE_LOGINS = {"openbao": "OPENBAO_STORAGE_LOGIN", "mlflow": "MLFLOW_STORE_LOGIN"}


def database_logins() -> dict[str, dict[str, str]]:
    """Each server's database login, as the secret store injects it: JSON with username
    and password."""
    logins = {}
    for server, variable in (
        ("openbao", "OPENBAO_STORAGE_LOGIN"),
        ("mlflow", "MLFLOW_STORE_LOGIN"),
    ):
        try:
            logins[server] = dict(json.loads(os.environ.get(variable, "")))
        except (ValueError, TypeError):
            raise ConfigError(f"{variable} is not the JSON of a login") from None
    return logins


def run(settings: Settings, server: Service, timeout: float = 120.0) -> int:
    write_database_ca()
    launch = server.prepare(settings)
    child = subprocess.Popen(launch.command, env={**os.environ, **launch.env}, umask=0o077)
    for signum in _FORWARDED:
        signal.signal(signum, lambda received, _: child.send_signal(received))
    if server.on_start is not None:
        url, ca = server.health_url(settings), str(settings.ca_bundle)
        deadline = time.monotonic() + timeout
        while not healthcheck.healthy(url, set(server.alive_statuses), None, ca):
            if child.poll() is not None:
                return child.returncode
            if time.monotonic() > deadline:
                raise Unavailable(f"{server.name} did not answer in {timeout:.0f} s")
            time.sleep(0.2)
        server.on_start(settings)
    ready_mark(server).touch()
    log.info("service ready", extra={"service": server.name})
    if server.on_start is None or server.repeat_on_start_hours is None:
        return child.wait()
    on_start = server.on_start
    return supervise(child, lambda: on_start(settings), server.repeat_on_start_hours * 3600)


def supervise(child: subprocess.Popen[bytes], again: Callable[[], None], every: float) -> int:
    """Wait for `child`, running `again` every `every` seconds meanwhile; a failure of
    `again` is logged and tried at the next turn, never the end of the server."""
    while True:
        try:
            return child.wait(timeout=every)
        except subprocess.TimeoutExpired:
            try:
                again()
            except SafeguardError as exc:
                log.warning("start-up step failed again", extra={"error": str(exc)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.container", description=__doc__.split("\n\n")[0]
    )
    steps = parser.add_subparsers(dest="step", required=True)
    names = [s.name for s in topology.SERVICES]
    for step, text in (
        ("run", "start the server and its start-up step; pass stop signals on"),
        ("provision", "the server's init job: certificates, secrets, config, as the operator"),
        ("after-start", "the server's post-start job, as the operator"),
    ):
        steps.add_parser(step, help=text).add_argument("service", choices=names)
    steps.add_parser(
        "setup-database",
        help="as the master user (libpq's PG* variables), the servers' roles and databases on "
        "an external PostgreSQL; their logins in OPENBAO_STORAGE_LOGIN and MLFLOW_STORE_LOGIN",
    )
    serve = steps.add_parser("serve", help="SageMaker's inference contract: /ping, /invocations")
    serve.add_argument("--model-dir", type=Path, help="the unpacked package (/opt/ml/model)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        logs.configure(settings.log_level, fmt=settings.log_format)
        if args.step == "setup-database":
            write_database_ca()
            created = external.set_up({}, database_logins())
            log.info("database set up", extra={"created": len(created)})
            return 0
        if args.step == "serve":
            # Imported here: every other step of every container starts without MLflow.
            from services.serving import sagemaker

            sagemaker.serve(args.model_dir or sagemaker.MODEL_DIR)
            return 0
        server = topology.service(args.service)
        if args.step == "run":
            return run(settings, server)
        job = server.provision if args.step == "provision" else server.after_start
        if job is not None:
            job(settings, openbao.login(settings, "operator", OPERATOR))
        return 0
    except SafeguardError as exc:
        what = " ".join(filter(None, (args.step, getattr(args, "service", None))))
        print(f"{what}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

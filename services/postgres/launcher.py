"""Start PostgreSQL natively as MLflow's backend store on the stack: TLS and SCRAM only.

The server listens on the stack's loopback address alone and speaks TLS 1.3, or TLS 1.2
with forward-secret AEAD suites only (`pki.AEAD_CIPHERS`), with a certificate from the
stack's PKI. Its pg_hba.conf, rewritten at every start, has no plaintext line: the
`mlflow` role reaches its database over `hostssl` only, the superuser only through the
Unix socket inside the 0700 data directory, and every password is checked with
SCRAM-SHA-256. Both passwords are generated into OpenBao KV. The superuser's reaches initdb
through a 0600 file deleted right after; the role's is sent to the server only as a SCRAM
verifier computed here, and MLflow gets it through its environment. Connections are
logged; statements, their values and error details never are, not even when a statement
fails. Data pages carry checksums. PostgreSQL refuses to run as root: under a root
supervisor (a container, CI) it runs in a user namespace of its own, where that account
is `nobody` and holds no capability outside the namespace.
"""

from __future__ import annotations

import os
import subprocess
from contextlib import closing
from pathlib import Path
from urllib.parse import urlencode

import hvac
import psycopg2
from psycopg2.extensions import encrypt_password

from safeguards import credentials, openbao, pki
from safeguards.errors import ConfigError, ServerError
from safeguards.files import write_private
from safeguards.settings import PORT_OFFSETS, Settings
from services.launch import Launch

BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
ADMIN_CREDENTIAL = "services/postgres/admin"
MLFLOW_CREDENTIAL = "services/postgres/mlflow"

_HBA = """\
# TYPE  DATABASE  USER      ADDRESS       METHOD
local   all       postgres                scram-sha-256
hostssl mlflow    mlflow    127.0.0.1/32  scram-sha-256
"""


def _dir(settings: Settings) -> Path:
    return settings.data_dir / "postgres"


def _binary(name: str) -> str:
    path = BIN / name
    if not path.exists():
        raise ConfigError(f"PostgreSQL 15 is not installed ({path} is missing)")
    return str(path)


def _unprivileged(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["unshare", "--user", "--map-user=65534", "--map-group=65534", *command]


def port(settings: Settings) -> int:
    return settings.port_base + PORT_OFFSETS["postgres"]


def render_config(settings: Settings) -> str:
    root, tls = _dir(settings), settings.data_dir / "tls"
    return f"""\
listen_addresses = '{settings.host}'
port = {port(settings)}
unix_socket_directories = '{root}'
unix_socket_permissions = 0700
password_encryption = scram-sha-256
ssl = on
ssl_cert_file = '{tls / "postgres.pem"}'
ssl_key_file = '{tls / "postgres.key"}'
ssl_min_protocol_version = 'TLSv1.2'
ssl_ciphers = '{pki.AEAD_CIPHERS}'
log_connections = on
log_disconnections = on
log_line_prefix = '%m [%p] %q%u@%d '
log_statement = 'none'
log_min_error_statement = panic
log_error_verbosity = terse
"""


def prepare(settings: Settings) -> Launch:
    """The cluster (first start only), certificate and config; returns the command line."""
    root, tls = _dir(settings), settings.data_dir / "tls"
    operator = openbao.login(settings, "operator")
    if not (root / "PG_VERSION").exists():
        _initdb(root, credentials.ensure_generated(operator, ADMIN_CREDENTIAL))
    pki.issue_server_cert(
        operator,
        [settings.host, "localhost", "postgres"],
        tls / "postgres.key",
        tls / "postgres.pem",
    )
    (root / "postgresql.conf").write_text(render_config(settings))
    (root / "pg_hba.conf").write_text(_HBA)
    return Launch(_unprivileged([_binary("postgres"), "-D", str(root)]))


def _initdb(root: Path, password: str) -> None:
    pwfile = root.with_name("postgres-init.pw")
    write_private(pwfile, password.encode())
    try:
        result = subprocess.run(
            _unprivileged(
                [
                    _binary("initdb"),
                    f"--pgdata={root}",
                    f"--username={SUPERUSER}",
                    f"--pwfile={pwfile}",
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--data-checksums",
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise ConfigError(f"initdb failed: {result.stderr.strip()}")


def after_start(settings: Settings) -> None:
    """Create the `mlflow` role and database once; set the role's password at every start."""
    operator = openbao.login(settings, "operator")
    try:
        with closing(
            psycopg2.connect(
                host=str(_dir(settings)),
                port=port(settings),
                user=SUPERUSER,
                dbname="postgres",
                password=credentials.ensure_generated(operator, ADMIN_CREDENTIAL),
            )
        ) as conn:
            conn.autocommit = True
            verifier = encrypt_password(mlflow_password(operator), "mlflow", conn, "scram-sha-256")
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'mlflow'")
                if cur.fetchone() is None:
                    cur.execute("CREATE ROLE mlflow LOGIN")
                cur.execute("ALTER ROLE mlflow PASSWORD %s", (verifier,))
                cur.execute("SELECT 1 FROM pg_database WHERE datname = 'mlflow'")
                if cur.fetchone() is None:
                    cur.execute("CREATE DATABASE mlflow OWNER mlflow")
    except psycopg2.Error as exc:
        raise ServerError(
            f"setting up MLflow's database failed ({exc.pgcode or type(exc).__name__})"
        ) from exc


def ready(settings: Settings) -> bool:
    """Whether the server answers over verified TLS.

    The probe comes as `mlflow` without a password and hangs up when asked for one: that
    proves the server answers and leaves no failed login in its log.
    """
    conninfo = (
        f"host={settings.host} port={port(settings)} dbname=mlflow user=mlflow "
        f"sslmode=verify-full sslrootcert='{settings.ca_bundle}'"
    )
    check = [_binary("pg_isready"), "--quiet", "--timeout=2", f"--dbname={conninfo}"]
    return subprocess.run(check, check=False).returncode == 0


def mlflow_password(operator: hvac.Client) -> str:
    return credentials.ensure_generated(operator, MLFLOW_CREDENTIAL)


def mlflow_uri(settings: Settings) -> str:
    """MLflow's backend store, without its password (MLflow gets it as PGPASSWORD)."""
    tls = urlencode({"sslmode": "verify-full", "sslrootcert": str(settings.ca_bundle)})
    return f"postgresql+psycopg2://mlflow@{settings.host}:{port(settings)}/mlflow?{tls}"

"""Start PostgreSQL natively as MLflow's backend store on the stack: TLS and SCRAM only.

The server listens on the stack's loopback address alone and speaks TLS 1.3, or TLS 1.2
with forward-secret AEAD suites only (`pki.AEAD_CIPHERS`), with a certificate from the
stack's PKI. Its pg_hba.conf, rewritten at every start, has no plaintext line: the
`mlflow` role reaches its two databases (the tracking store, and `mlflow_auth`: MLflow's
users and permissions) over `hostssl` only, the superuser only through the
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
from safeguards.settings import Settings
from services.launch import Launch

BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
ADMIN_CREDENTIAL = "services/postgres/admin"
MLFLOW_CREDENTIAL = "services/postgres/mlflow"
# MLflow's databases: runs and models; its users and their permissions.
DATABASES = ("mlflow", "mlflow_auth")

IDENTITY = "postgres"


def _hba(settings: Settings) -> str:
    lines = [
        "# TYPE  DATABASE  USER      ADDRESS       METHOD",
        "local   all       postgres                scram-sha-256",
        *(
            f"hostssl {','.join(DATABASES)} mlflow {cidr} scram-sha-256"
            for cidr in settings.bound_cidrs
        ),
    ]
    return "\n".join(lines) + "\n"


def _dir(settings: Settings) -> Path:
    """The server's directory: its Unix socket, its certificate and (`data`) the cluster."""
    return settings.data_dir / "postgres"


def _pgdata(settings: Settings) -> Path:
    return _dir(settings) / "data"


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
    return settings.port("postgres")


def render_config(settings: Settings) -> str:
    key, cert = pki.server_files(settings, "postgres")
    return f"""\
listen_addresses = '{settings.bind_host}'
port = {port(settings)}
unix_socket_directories = '{_dir(settings)}'
unix_socket_permissions = 0700
password_encryption = scram-sha-256
# The images carry no LLVM; MLflow's small queries gain nothing from it natively either.
jit = off
ssl = on
ssl_cert_file = '{cert}'
ssl_key_file = '{key}'
ssl_min_protocol_version = 'TLSv1.2'
ssl_ciphers = '{pki.AEAD_CIPHERS}'
log_connections = on
log_disconnections = on
log_line_prefix = '%m [%p] %q%u@%d '
log_statement = 'none'
log_min_error_statement = panic
log_error_verbosity = terse
"""


def provision(settings: Settings, operator: hvac.Client) -> None:
    """As the operator: the cluster (first start only), the server's identity, its
    certificate and config."""
    root, pgdata = _dir(settings), _pgdata(settings)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    root.chmod(0o700)  # the superuser's Unix socket is here
    if not (pgdata / "PG_VERSION").exists():
        _initdb(pgdata, credentials.ensure_generated(operator, ADMIN_CREDENTIAL))
    openbao.ensure_identity(operator, settings, IDENTITY, [IDENTITY])
    mlflow_password(operator)
    pki.issue_for(operator, settings, "postgres")
    (pgdata / "postgresql.conf").write_text(render_config(settings))
    (pgdata / "pg_hba.conf").write_text(_hba(settings))


def prepare(settings: Settings) -> Launch:
    return Launch(_unprivileged([_binary("postgres"), "-D", str(_pgdata(settings))]))


def _initdb(pgdata: Path, password: str) -> None:
    pwfile = pgdata.with_name("postgres-init.pw")
    write_private(pwfile, password.encode())
    try:
        result = subprocess.run(
            _unprivileged(
                [
                    _binary("initdb"),
                    f"--pgdata={pgdata}",
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


def on_start(settings: Settings) -> None:
    """Create the `mlflow` role and its databases once; set the role's password at every
    start.

    Runs beside the server (in its container on the compose stack), as the server's own
    identity, which may read the two passwords and nothing else; it comes in through the
    Unix socket, the superuser's only way in."""
    bao = openbao.login(settings, IDENTITY)
    try:
        with closing(
            psycopg2.connect(
                host=str(_dir(settings)),
                port=port(settings),
                user=SUPERUSER,
                dbname="postgres",
                password=credentials.read(bao, ADMIN_CREDENTIAL)["password"],
            )
        ) as conn:
            conn.autocommit = True
            mlflow = credentials.read(bao, MLFLOW_CREDENTIAL)["password"]
            verifier = encrypt_password(mlflow, "mlflow", conn, "scram-sha-256")
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'mlflow'")
                if cur.fetchone() is None:
                    cur.execute("CREATE ROLE mlflow LOGIN")
                cur.execute("ALTER ROLE mlflow PASSWORD %s", (verifier,))
                for database in DATABASES:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                    if cur.fetchone() is None:
                        cur.execute(f"CREATE DATABASE {database} OWNER mlflow")
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
        f"host={settings.service_host('postgres')} port={port(settings)} dbname=mlflow user=mlflow "
        f"sslmode=verify-full sslrootcert='{settings.ca_bundle}'"
    )
    check = [_binary("pg_isready"), "--quiet", "--timeout=2", f"--dbname={conninfo}"]
    return subprocess.run(check, check=False).returncode == 0


def mlflow_password(operator: hvac.Client) -> str:
    return credentials.ensure_generated(operator, MLFLOW_CREDENTIAL)


def mlflow_uri(settings: Settings, database: str = "mlflow") -> str:
    """One of MLflow's databases, without its password (MLflow gets it as PGPASSWORD): the
    stack's, or on HIPAA_MLOPS_POSTGRES_ADDR verified with HIPAA_MLOPS_POSTGRES_CA (the
    role then comes from PGUSER)."""
    ca = settings.postgres_ca or settings.ca_bundle
    tls = urlencode({"sslmode": "verify-full", "sslrootcert": str(ca)})
    if settings.postgres_addr:
        return f"postgresql+psycopg2://{settings.postgres_addr}/{database}?{tls}"
    host = settings.service_host("postgres")
    return f"postgresql+psycopg2://mlflow@{host}:{port(settings)}/{database}?{tls}"

"""The control plane's databases on an external PostgreSQL (RDS in AWS), set up once by
its master user: a login role per server, each owning its databases, closed to PUBLIC.

Run as a one-off task (`python -m services.container setup-database`) that the database
admits, with the master user's and each role's credentials injected from the secret store.
Each role's password reaches the server only as a SCRAM verifier computed here. Running it
again changes nothing but the passwords, set anew from the secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import closing
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import encrypt_password

from safeguards.errors import ConfigError, ServerError

# Each server's role owns these databases: OpenBao's storage; MLflow's runs and models,
# and its users and permissions (`services.postgres.launcher.DATABASES`).
OWNED = {"openbao": ("openbao",), "mlflow": ("mlflow", "mlflow_auth")}
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def set_up(
    admin: Mapping[str, Any],
    logins: Mapping[str, Mapping[str, str]],
    owned: Mapping[str, tuple[str, ...]] = OWNED,
) -> list[str]:
    """As the master user (`admin`: libpq parameters), give each server of `owned` its
    role (`logins[server]`: username, password) and databases. Returns what was created."""
    created: list[str] = []
    for server, databases in owned.items():
        login = logins.get(server) or {}
        user, password = login.get("username", ""), login.get("password", "")
        if not _NAME.match(user) or not all(_NAME.match(d) for d in databases):
            raise ConfigError(f"{server}'s database login needs a plain lowercase role name")
        if len(password) < 16:
            raise ConfigError(f"{server}'s database password is missing or too short")
        try:
            with closing(psycopg2.connect(dbname="postgres", **admin)) as conn:
                conn.autocommit = True
                created += _own(conn, user, password, databases)
        except psycopg2.Error as exc:
            raise ServerError(
                f"setting up {server}'s database failed ({exc.pgcode or type(exc).__name__})"
            ) from exc
    return created


def _own(conn: Any, user: str, password: str, databases: tuple[str, ...]) -> list[str]:
    role, created = sql.Identifier(user), []
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
            created.append(f"role {user}")
        verifier = encrypt_password(password, user, conn, "scram-sha-256")
        cur.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD %s").format(role), (verifier,))
        # On RDS the master user is no superuser: it may give a database to a role only
        # while it is a member of that role, and is one no longer afterwards.
        cur.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))
        try:
            for database in databases:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cur.fetchone() is None:
                    name = sql.Identifier(database)
                    cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(name, role))
                    cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(name))
                    created.append(f"database {database}")
        finally:
            cur.execute(sql.SQL("REVOKE {} FROM CURRENT_USER").format(role))
    return created

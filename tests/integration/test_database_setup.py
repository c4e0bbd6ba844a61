"""`setup-database` against a real PostgreSQL (the stack's, as its superuser through the
Unix socket, standing in for RDS's master user): a login role per server that owns its
databases, SCRAM only, closed to PUBLIC, and nothing doubled when run again."""

from __future__ import annotations

import secrets
import uuid
from contextlib import closing
from typing import Any

import hvac
import psycopg2
import pytest

from safeguards import credentials
from safeguards.errors import ConfigError
from safeguards.settings import Settings
from services.postgres import external
from services.postgres import launcher as postgres

pytestmark = pytest.mark.integration


@pytest.fixture
def master(lake: Settings, operator: hvac.Client) -> dict[str, Any]:
    return {
        "host": str(lake.data_dir / "postgres"),
        "port": postgres.port(lake),
        "user": postgres.SUPERUSER,
        "password": credentials.read(operator, postgres.ADMIN_CREDENTIAL)["password"],
    }


def test_each_server_gets_a_scram_role_owning_databases_closed_to_public(
    master: dict[str, Any],
) -> None:
    tag = uuid.uuid4().hex[:8]
    owned = {"openbao": (f"bao_{tag}",), "mlflow": (f"runs_{tag}", f"users_{tag}")}
    logins = {
        server: {"username": f"{server}_{tag}", "password": secrets.token_urlsafe(24)}
        for server in owned
    }
    created = external.set_up(master, logins, owned)
    assert len(created) == 5
    assert external.set_up(master, logins, owned) == []  # again: nothing new

    with closing(psycopg2.connect(dbname="postgres", **master)) as conn, conn.cursor() as cur:
        for server, databases in owned.items():
            user = logins[server]["username"]
            cur.execute(
                "SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = %s", (user,)
            )
            can_login, stored = cur.fetchone()
            assert can_login and stored.startswith("SCRAM-SHA-256$")
            assert logins[server]["password"] not in stored
            for database in databases:
                cur.execute(
                    "SELECT pg_get_userbyid(datdba), has_database_privilege('public', oid, "
                    "'CONNECT') FROM pg_database WHERE datname = %s",
                    (database,),
                )
                assert cur.fetchone() == (user, False)
            # The master user keeps no membership in the servers' roles.
            cur.execute(
                "SELECT count(*) FROM pg_auth_members WHERE roleid = to_regrole(%s)", (user,)
            )
            assert cur.fetchone() == (0,)
    with closing(psycopg2.connect(dbname="postgres", **master)) as conn:
        conn.autocommit = True
        for database in (d for ds in owned.values() for d in ds):
            conn.cursor().execute(f"DROP DATABASE {database}")
        for login in logins.values():
            conn.cursor().execute(f"DROP ROLE {login['username']}")


def test_a_login_that_is_not_one_is_refused_before_anything_is_made(
    master: dict[str, Any],
) -> None:
    weak = {"openbao": {"username": "openbao_x", "password": "short"}}
    with pytest.raises(ConfigError, match="too short") as refused:
        external.set_up(master, weak, {"openbao": ("bao_never",)})
    assert 'short"' not in str(refused.value) and "openbao_x" not in str(refused.value)
    odd = {"openbao": {"username": "Robert'); DROP", "password": "p" * 20}}
    with pytest.raises(ConfigError, match="plain lowercase role name"):
        external.set_up(master, odd, {"openbao": ("bao_never",)})
    with closing(psycopg2.connect(dbname="postgres", **master)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_database WHERE datname = 'bao_never'")
        assert cur.fetchone() == (0,)

"""AppRole secret ids expire, work only from the stack's addresses, and are renewed."""

from __future__ import annotations

import uuid

import hvac
import pytest
from pydantic import SecretStr

from safeguards import keys, openbao
from safeguards.errors import SafeguardError
from safeguards.settings import Settings

pytestmark = pytest.mark.integration


def test_a_projects_secret_ids_expire_and_are_bound_to_the_stacks_addresses(
    stack: Settings, operator: hvac.Client, project_pair: tuple[str, str]
) -> None:
    for identity in (keys.identity(project_pair[0]), "operator", "auditor"):
        role = openbao.bao_role(operator, identity)
        assert role["secret_id_ttl"] == openbao.SECRET_ID_TTL_HOURS * 3600
        assert role["secret_id_bound_cidrs"] == stack.bound_cidrs
        assert role["token_bound_cidrs"] == stack.bound_cidrs


def test_renewal_replaces_a_secret_id_and_the_old_one_stops_working(
    stack: Settings, operator: hvac.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = f"s{uuid.uuid4().hex[:8]}"
    keys.create_project(operator, stack, project)
    identity = keys.serving_identity(project)
    before = openbao._read_credentials(openbao.credentials_path(stack, identity), identity)
    # The clock is glue: pretend every secret id is past half its lifetime.
    monkeypatch.setattr(openbao, "_past_half_life", lambda _: True)
    assert identity in openbao.renew_secret_ids(operator, stack)
    after = openbao._read_credentials(openbao.credentials_path(stack, identity), identity)
    assert after["secret_id"] != before["secret_id"]
    openbao.login(stack, identity)
    stale = stack.model_copy(
        update={
            "openbao_role_id": SecretStr(before["role_id"]),
            "openbao_secret_id": SecretStr(before["secret_id"]),
        }
    )
    with pytest.raises(SafeguardError, match="AppRole login"):
        openbao.login(stale, identity)

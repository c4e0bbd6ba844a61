"""Operator actions are audited in one place, with their outcome, whether they succeed or
fail: against the real OpenBao and the real audit log."""

from __future__ import annotations

import json
from typing import Any

import hvac
import pytest

from safeguards import apikeys, keys
from safeguards.actions import Operator
from safeguards.audit import audit_path
from safeguards.errors import ConfigError
from safeguards.settings import Settings

pytestmark = pytest.mark.integration

ACTOR = "operator:test-actions"


def _lines(settings: Settings) -> list[str]:
    path = audit_path(settings)
    return path.read_text().splitlines() if path.exists() else []


def _entries(settings: Settings, since: int) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, _lines(settings)[since:]) if e["actor"] == ACTOR]


def test_each_action_is_audited_with_its_outcome_success_or_failure(
    stack: Settings, operator: hvac.Client, project_pair: tuple[str, str]
) -> None:
    mine, other = project_pair
    ops = Operator(stack, operator, ACTOR)
    since = len(_lines(stack))

    version = ops.rotate_key(mine, stack.home_region)
    key_id, _ = ops.create_api_key(mine, "clinic-app")
    with pytest.raises(ConfigError):
        ops.create_api_key(mine, "Not A Client!")
    other_key, _ = apikeys.create(operator, other, "their-app")
    with pytest.raises(ConfigError):
        ops.revoke_api_key(mine, other_key)  # another project's key is not this one's
    ops.revoke_api_key(mine, key_id)

    seen = [(e["action"], e["resource"], e["outcome"]) for e in _entries(stack, since)]
    assert seen == [
        ("keys.rotate", f"project/{mine}", "ok"),
        ("serving.keys.create", f"serving/{mine}", "ok"),
        ("serving.keys.create", f"serving/{mine}", "failed"),
        ("serving.keys.revoke", f"serving/{mine}", "failed"),
        ("serving.keys.revoke", f"serving/{mine}", "ok"),
    ]
    rotated, created, refused = _entries(stack, since)[:3]
    assert rotated["details"]["region"] == stack.home_region
    assert keys.describe(operator, mine, stack.home_region)["latest_version"] == version
    assert created["details"]["key_id"] == key_id
    assert refused["details"]["error"] and "key_id" not in refused["details"]
    assert [k["key_id"] for k in apikeys.list_keys(operator, mine)] == []
    assert [k["key_id"] for k in apikeys.list_keys(operator, other)] == [other_key]


def test_an_invalid_project_name_is_refused_before_anything_runs(
    stack: Settings, operator: hvac.Client
) -> None:
    ran: list[bool] = []
    with pytest.raises(ConfigError):
        Operator(stack, operator, ACTOR).project(
            "projects.suspend", "../x", lambda: ran.append(True)
        )
    assert not ran

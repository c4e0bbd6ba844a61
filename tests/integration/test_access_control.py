"""Access control: every identity reaches only its own paths and keys."""

from __future__ import annotations

import hvac
import pytest

from safeguards import credentials, envelope, keys, openbao
from safeguards.audit import AuditLog
from safeguards.errors import AccessDenied
from safeguards.settings import Settings
from tests.conftest import HOME

pytestmark = pytest.mark.integration


def test_project_identity_cannot_use_another_projects_key(
    stack: Settings, project_pair: tuple[str, str]
) -> None:
    a, b = project_pair
    bao_a = openbao.login(stack, keys.identity(a))
    bao_b = openbao.login(stack, keys.identity(b))
    with pytest.raises(AccessDenied):
        keys.new_data_key(bao_a, keys.key_name(b, HOME))
    sealed_by_b = envelope.seal(bao_b, keys.key_name(b, HOME), f"{b}/x", b"b's data")
    with pytest.raises(AccessDenied):
        envelope.open_sealed(bao_a, f"{b}/x", sealed_by_b)


def test_project_identity_cannot_read_another_projects_or_a_services_secrets(
    stack: Settings, operator: hvac.Client, project_pair: tuple[str, str]
) -> None:
    a, b = project_pair
    bao_a = openbao.login(stack, keys.identity(a))
    bao_b = openbao.login(stack, keys.identity(b))
    credentials.ensure_generated(operator, f"projects/{b}/mlflow")
    credentials.ensure_generated(operator, "services/test/admin")
    assert credentials.read(bao_b, f"projects/{b}/mlflow")
    with pytest.raises(AccessDenied):
        credentials.read(bao_a, f"projects/{b}/mlflow")
    with pytest.raises(AccessDenied):
        credentials.read(bao_a, "services/test/admin")


def test_project_identity_cannot_administer(stack: Settings, project_pair: tuple[str, str]) -> None:
    a, b = project_pair
    bao_a = openbao.login(stack, keys.identity(a))
    with pytest.raises(AccessDenied):
        keys.rotate(bao_a, a, HOME)
    with pytest.raises(AccessDenied):
        keys.shred(bao_a, b, [HOME])
    with pytest.raises(AccessDenied), openbao.openbao_errors("policy write"):
        bao_a.sys.create_or_update_policy("escalate", 'path "*" { capabilities = ["sudo"] }')


def test_operator_manages_keys_but_cannot_decrypt(
    stack: Settings, operator: hvac.Client, project_pair: tuple[str, str]
) -> None:
    a, _ = project_pair
    sealed = envelope.seal(
        openbao.login(stack, keys.identity(a)), keys.key_name(a, HOME), f"{a}/x", b"data"
    )
    with pytest.raises(AccessDenied):
        envelope.open_sealed(operator, f"{a}/x", sealed)
    with pytest.raises(AccessDenied):
        keys.new_data_key(operator, keys.key_name(a, HOME))


def test_operator_cannot_destroy_an_audit_key(
    operator: hvac.Client, project_pair: tuple[str, str]
) -> None:
    for key in ("audit-operator", f"audit-{keys.identity(project_pair[0])}"):
        with pytest.raises(AccessDenied), openbao.openbao_errors("audit key delete"):
            operator.secrets.transit.delete_key(key)


def test_auditor_can_verify_but_not_write(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    auditor = openbao.login(stack, "auditor")
    log = AuditLog(
        tmp_path_factory.mktemp("audit") / "audit.jsonl", auditor, anchor="audit/auditor-test"
    )
    with pytest.raises(AccessDenied):
        log.append("auditor", "forge", "anything")

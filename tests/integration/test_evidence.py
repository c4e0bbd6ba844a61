"""`hipaa-mlops evidence` against the real stack: the whole report from the command line on
the stack profile (no red control, written 0600, audited with its SHA-256, no credential
value in it), and each check turned red by the fault it exists to find, made for real on
the servers and files: a file open to others, a plaintext file in the lake, a weak
generated credential, an AppRole whose secret ids never expire, a policy of one project
that names another's key, a tampered audit log.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from pathlib import Path

import hvac
import pytest

from pipeline import evidence
from safeguards import credentials, keys, openbao, residency
from safeguards.audit import AuditLog, audit_path
from safeguards.settings import Settings
from services.supervisor import Supervisor
from tests.conftest import REGIONS, LakeStack, cli

pytestmark = pytest.mark.integration


def test_the_report_of_the_running_stack_has_no_red_control_and_is_audited(
    lake: Settings, operator: hvac.Client, tmp_path: Path
) -> None:
    # Every server of the stack running (earlier modules may have stopped some).
    Supervisor(lake).up("stack", timeout=180)
    LakeStack(lake).create(operator, f"p{uuid.uuid4().hex[:10]}", REGIONS)
    # Keys and identities only: no contract, no bucket in the lakes.
    keys.create_project(operator, lake, f"p{uuid.uuid4().hex[:10]}")
    done = cli(lake, "evidence", "--tests", str(tmp_path / "none.xml"))
    json_path = Path(done.stdout.split("(and ")[-1].split(")")[0])
    reports = sorted((lake.data_dir / "evidence").glob("evidence-*.json"))
    assert reports and json_path.name == reports[-1].name
    report = json.loads(reports[-1].read_bytes())
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert evidence.FAIL not in statuses.values(), statuses
    for live in ("transport", "credentials", "identities", "least privilege",
                 "encryption at rest", "key rotation", "residency", "audit chain",
                 "file modes"):  # fmt: skip
        assert statuses[live] == evidence.PASS, live
    assert statuses["security tests"] == evidence.NA
    by_name = {c["name"]: c for c in report["checks"]}
    # Prometheus scrapes served projects only, and none is served here: test_prometheus
    # runs this check over a served project's real series.
    assert by_name["metrics"]["status"] in (evidence.PASS, evidence.NA)
    assert by_name["transport"]["evidence"]["ports"] >= 6
    assert by_name["encryption at rest"]["evidence"]["projects"] >= 2
    for path in reports[-1], reports[-1].with_suffix(".html"):
        assert path.stat().st_mode & 0o777 == 0o600
    page = reports[-1].with_suffix(".html").read_text()
    for control in evidence.CONTROLS:
        assert control in page
    secret = credentials.read(operator, "services/mlflow/admin")["password"]
    assert secret not in page and secret not in reports[-1].read_text()
    audit = audit_path(lake).read_text().splitlines()
    (entry,) = [
        e
        for e in map(json.loads, audit)
        if e["action"] == "evidence.report" and e["resource"] == f"evidence/{reports[-1].name}"
    ]
    assert entry["details"]["sha256"] == hashlib.sha256(reports[-1].read_bytes()).hexdigest()
    assert entry["actor"].startswith("operator:") and entry["details"]["red"] == "0"


def test_a_server_that_does_not_answer_turns_its_check_red(
    lake: Settings, operator: hvac.Client, tmp_path: Path
) -> None:
    Supervisor(lake).up("stack", timeout=180)
    Supervisor(lake).stop("prometheus")
    try:
        report = evidence.collect(
            lake, operator, openbao.login(lake, "auditor"), tmp_path / "none.xml"
        )
    finally:
        Supervisor(lake).up("stack", timeout=180)
    (metrics,) = [c for c in report.checks if c.name == "metrics"]
    assert metrics.status == evidence.FAIL
    assert metrics.summary == "could not be checked: ConnectionError"
    assert report.red == [metrics]


def test_a_file_open_to_others_turns_file_modes_red(stack: Settings) -> None:
    victim = audit_path(stack)
    before = victim.stat().st_mode & 0o777
    victim.chmod(0o644)
    try:
        check = evidence.check_file_modes(stack)
    finally:
        victim.chmod(before)
    assert check.status == evidence.FAIL and check.evidence["exposed"] == 1
    assert evidence.check_file_modes(stack).status == evidence.PASS


def test_a_plaintext_file_in_the_lake_turns_encryption_red(
    stack: Settings, operator: hvac.Client
) -> None:
    project = f"p{uuid.uuid4().hex[:10]}"
    keys.create_project(operator, stack, project)
    zone = stack.data_dir / "lake" / REGIONS[0] / f"{project}-deidentified"
    zone.mkdir(parents=True, mode=0o700)
    (zone / "leak.csv").write_bytes(b"age,glucose\n50,140\n")
    try:
        check = evidence.check_encryption(stack, operator)
    finally:
        (zone / "leak.csv").unlink()
    assert check.status == evidence.FAIL and check.evidence["misencrypted"] == 1
    assert evidence.check_encryption(stack, operator).status == evidence.PASS


def test_a_weak_generated_credential_turns_credentials_red(
    stack: Settings, operator: hvac.Client
) -> None:
    path = f"services/evidence-{uuid.uuid4().hex[:8]}/admin"
    operator.secrets.kv.v2.create_or_update_secret(
        path=path, secret={"password": "changeme"}, mount_point="secret"
    )
    try:
        check = evidence.check_credentials(stack, operator)
    finally:
        # The operator may not delete under services/: a strong version replaces it.
        operator.secrets.kv.v2.create_or_update_secret(
            path=path, secret={"password": secrets.token_urlsafe(32)}, mount_point="secret"
        )
    assert check.status == evidence.FAIL and check.evidence["weak"] == 1
    assert "changeme" not in json.dumps(check.evidence) + check.summary
    assert evidence.check_credentials(stack, operator).status == evidence.PASS


def test_secret_ids_that_never_expire_turn_identities_red(
    stack: Settings, operator: hvac.Client
) -> None:
    role = f"evidence-{uuid.uuid4().hex[:8]}"
    operator.auth.approle.create_or_update_approle(
        role, token_policies=["default"], secret_id_ttl="0", token_ttl="1h",
        token_max_ttl="24h", secret_id_bound_cidrs=["127.0.0.0/8"],
        token_bound_cidrs=["127.0.0.0/8"],
    )  # fmt: skip
    try:
        check = evidence.check_identities(stack, operator)
    finally:
        operator.auth.approle.delete_role(role)
    assert check.status == evidence.FAIL and role in check.summary
    assert evidence.check_identities(stack, operator).status == evidence.PASS


def test_a_policy_naming_another_projects_key_turns_least_privilege_red(
    stack: Settings, operator: hvac.Client, project_pair: tuple[str, str]
) -> None:
    alpha, beta = project_pair
    assert evidence.check_policies(operator).status == evidence.PASS
    name = keys.identity(alpha)
    rules = operator.sys.read_policy(name)["data"]["rules"]
    stolen = (
        f'path "transit/decrypt/{keys.key_name(beta, REGIONS[0])}" {{ capabilities = ["update"] }}'
    )
    operator.sys.create_or_update_policy(name, rules + "\n" + stolen + "\n")
    try:
        check = evidence.check_policies(operator)
    finally:
        keys.apply_policies(operator, alpha, residency.allowed(operator, alpha))
    assert check.status == evidence.FAIL and check.evidence["violations"] == 1
    flagged = [who for who, _ in check.details if who.endswith("(VIOLATION)")]
    assert flagged == [f"{name} (VIOLATION)"]
    assert evidence.check_policies(operator).status == evidence.PASS


def test_a_tampered_audit_log_turns_the_audit_chain_red(
    stack: Settings, operator: hvac.Client, tmp_path: Path
) -> None:
    own = stack.model_copy(update={"data_dir": tmp_path, "audit_log": f"ev-{uuid.uuid4().hex[:8]}"})
    log = AuditLog.of(own, operator)
    for n in range(3):
        log.append("operator:test", "evidence.test", f"thing/{n}")
    auditor = openbao.login(stack, "auditor")
    assert evidence.check_audit(own, auditor).status == evidence.PASS
    path = tmp_path / "audit" / "audit.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("thing/1", "thing/9")
    path.write_text("\n".join(lines) + "\n")
    check = evidence.check_audit(own, auditor)
    assert check.status == evidence.FAIL

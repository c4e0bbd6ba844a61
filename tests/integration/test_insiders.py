"""Insiders: every identity a project holds, turned against other projects and the platform.

Three projects in two regions: alpha (the attacker's, at home in us-east), beta (created,
the victim, in eu-central), gamma (not created yet). Each of alpha's identities — its
workload, its data steward, its serving endpoint, its two MLflow users and its API key —
tries every operation on beta's resources, on gamma's future names, on its own records
that only the operator may write (its contract and its regions among them), on its own
kind of key in the region it may not keep data in, and on the platform's (audit keys and
anchors, policies, AppRoles, MLflow admin, operator records and endpoint slots, PKI); its
API key, on beta's endpoint. Every attempt runs against the real OpenBao and MLflow
servers; the matrix is printed, and everything must be denied except the documented rows.
Then alpha is suspended, and then deleted: both times the matrix runs again with
everything alpha held, and nothing at all is allowed, alpha's own rows included.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import hvac
import hvac.exceptions
import pytest
import requests

import contract as contracts
from pipeline import projects
from safeguards import apikeys, audit, credentials, keys, openbao
from safeguards.errors import AccessDenied, SafeguardError
from safeguards.registry import (
    credential_path,
    experiment_name,
    model_name,
    project_user,
    serving_user,
)
from safeguards.registry import url as registry_url
from safeguards.settings import Settings
from services import topology
from services.serving import launcher as serving
from services.supervisor import Supervisor
from services.topology import Instance
from tests.conftest import HOME, REGIONS, endpoint

pytestmark = pytest.mark.integration

DENIED, ALLOWED, NA = "denied", "ALLOWED", "."
AWAY = REGIONS[1]
IDENTITIES = ("workload", "steward", "serving", "mlflow-user", "mlflow-serving", "api-key")

# The only operations an identity of alpha may perform in this matrix, and why.
DOCUMENTED = {
    ("audit: verify any signer's entry", "workload"): "verifying reveals only validity",
    ("audit: verify any signer's entry", "steward"): "verifying reveals only validity",
    ("audit: read the anchors", "workload"): "an appender finds the last anchor",
    ("audit: read the anchors", "steward"): "an appender finds the last anchor",
    ("audit: create a new anchor", "workload"): "forward-only; a forged one fails verify",
    ("audit: create a new anchor", "steward"): "forward-only; a forged one fails verify",
    ("alpha: read its training password", "workload"): "its own, to train",
    ("alpha: new raw-PHI data key", "steward"): "the steward's job: ingestion",
    ("alpha: new project data key", "workload"): "its own data",
    ("alpha: new project data key", "steward"): "writes de-identified data",
    ("alpha: new project data key", "serving"): "seals its captured features",
    ("alpha: open its model files", "workload"): "its own models, to evaluate and monitor",
    ("alpha: open its model files", "serving"): "loads its champion",
    ("alpha: read its own experiment", "mlflow-user"): "its own (and the control row)",
    ("alpha: read its own experiment", "mlflow-serving"): "its own (and the control row)",
}


@dataclass
class Alpha:
    """Everything the attacker holds: alpha's identities and credentials."""

    settings: Settings
    bao: dict[str, hvac.Client]
    mlflow_password: dict[str, str]
    api_key: str
    # Beta's endpoint, which alpha's key is tried on.
    beta_endpoint: str


@pytest.fixture(scope="module")
def names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:6]
    return {
        "alpha": f"alpha{tag}",
        "beta": f"beta{tag}",
        "gamma": f"gamma{tag}",
        "home": HOME,
        "away": AWAY,
    }


@pytest.fixture(scope="module")
def alpha(stack: Settings, operator: hvac.Client, names: dict[str, str]) -> Iterator[Alpha]:
    for project, region in ((names["alpha"], HOME), (names["beta"], AWAY)):
        text = contracts.example("diabetes")
        projects.create_project(operator, stack, project, text, lambda: None, [region])
    a = names["alpha"]
    bao = {
        "workload": openbao.login(stack, keys.identity(a)),
        "steward": openbao.login(stack, keys.ingest_identity(a)),
        "serving": openbao.login(stack, keys.serving_identity(a)),
    }
    passwords = {
        "mlflow-user": credentials.read(operator, credential_path(a, project_user(a)))["password"],
        "mlflow-serving": credentials.read(operator, credential_path(a, serving_user(a)))[
            "password"
        ],
    }
    # An anchor the operator wrote, for the overwrite and delete attempts; under a prefix
    # of its own, so that the session's audit log keeps verifying.
    audit.AuditLog(stack.data_dir / "audit" / "insiders.jsonl", operator, ANCHORS).append(
        "tester", "insiders.setup", "audit/insiders"
    )
    _, key = apikeys.create(operator, a, "insider")
    beta = endpoint(stack, operator, names["beta"])
    supervisor = Supervisor(beta)
    supervisor.start(Instance(topology.service("serving"), beta))
    try:
        yield Alpha(stack, bao, passwords, key, serving.url(beta))
    finally:
        supervisor.stop(f"serving-{names['beta']}")


def _openbao(action: Callable[[hvac.Client], object]) -> Callable[[Alpha, str], str]:
    def attempt(who: Alpha, identity: str) -> str:
        if identity not in who.bao:
            return NA
        try:
            action(who.bao[identity])
        except (hvac.exceptions.Forbidden, AccessDenied):
            return DENIED
        except (hvac.exceptions.VaultError, SafeguardError):
            return ALLOWED  # past the policy, refused for another reason
        return ALLOWED

    return attempt


def _mlflow(
    method: str, path: str, body: Callable[[dict[str, str]], dict[str, object]]
) -> Callable[[Alpha, str], str]:
    def attempt(who: Alpha, identity: str) -> str:
        if identity not in who.mlflow_password:
            return NA
        a = NAMES["alpha"]
        user = project_user(a) if identity == "mlflow-user" else serving_user(a)
        payload = {"params" if method == "GET" else "json": body(NAMES)}
        response = requests.request(
            method,
            f"{registry_url(who.settings)}/api/{path}",
            **payload,  # type: ignore[arg-type]
            auth=(user, who.mlflow_password[identity]),
            verify=str(who.settings.ca_bundle),
            timeout=30,
        )
        return DENIED if response.status_code in (401, 403) else ALLOWED

    return attempt


def _endpoint(who: Alpha, identity: str) -> str:
    if identity != "api-key":
        return NA
    response = requests.post(
        f"{who.beta_endpoint}/v1/predict",
        json=contracts.parse(contracts.example("diabetes")).example(),
        headers={"Authorization": f"Bearer {who.api_key}"},
        verify=str(who.settings.ca_bundle),
        timeout=30,
    )
    return DENIED if response.status_code in (401, 403) else ALLOWED


NAMES: dict[str, str] = {}
ANCHORS = "audit/insiders"
_CIPHERTEXT = "vault:v1:" + base64.b64encode(b"\0" * 44).decode()
_INPUT = base64.b64encode(b"forged").decode()


def _kv(path: str) -> Callable[[hvac.Client], object]:
    return lambda b: b.secrets.kv.v2.create_or_update_secret(
        path.format(**NAMES), {"x": "y"}, mount_point="secret"
    )


def _kv_read(path: str) -> Callable[[hvac.Client], object]:
    return lambda b: b.secrets.kv.v2.read_secret_version(
        path.format(**NAMES), mount_point="secret", raise_on_deleted_version=True
    )


def _write(path: str, **data: object) -> Callable[[hvac.Client], object]:
    return lambda b: b.write_data(path.format(**NAMES), data=data)


def _anchor(b: hvac.Client) -> str:
    names = b.secrets.kv.v2.list_secrets(ANCHORS, mount_point="secret")["data"]["keys"]
    return f"{ANCHORS}/{names[0]}"


ROWS: list[tuple[str, Callable[[Alpha, str], str]]] = [
    ("beta: new data key", _openbao(_write("transit/datakey/plaintext/{away}.proj-{beta}"))),
    (
        "beta: decrypt",
        _openbao(_write("transit/decrypt/{away}.proj-{beta}", ciphertext=_CIPHERTEXT)),
    ),
    ("beta: new raw-PHI data key", _openbao(_write("transit/datakey/plaintext/{away}.phi-{beta}"))),
    (
        "beta: new models data key",
        _openbao(_write("transit/datakey/plaintext/{away}.models-{beta}")),
    ),
    (
        "beta: open its model files",
        _openbao(_write("transit/decrypt/{away}.models-{beta}", ciphertext=_CIPHERTEXT)),
    ),
    (
        "beta: pseudonym HMAC",
        _openbao(_write("transit/hmac/{away}.pseudonym-{beta}", input=_INPUT)),
    ),
    ("beta: rotate its key", _openbao(_write("transit/keys/{away}.proj-{beta}/rotate"))),
    (
        "beta: allow deleting its key",
        _openbao(_write("transit/keys/{away}.proj-{beta}/config", deletion_allowed=True)),
    ),
    ("beta: read its training password", _openbao(_kv_read("projects/{beta}/mlflow"))),
    ("beta: read its contract", _openbao(_kv_read("projects/{beta}/contract"))),
    ("beta: rewrite its S3 record", _openbao(_kv("projects/{beta}/s3"))),
    (
        "beta: list its API keys",
        _openbao(
            lambda b: b.secrets.kv.v2.list_secrets(
                f"projects/{NAMES['beta']}/api-keys", mount_point="secret"
            )
        ),
    ),
    ("beta: add an API key", _openbao(_kv("projects/{beta}/api-keys/{beta}_0000000000000000"))),
    (
        "beta: new secret id for its AppRole",
        _openbao(_write("auth/approle/role/project-{beta}/secret-id")),
    ),
    ("beta: sign as beta", _openbao(_write("transit/hmac/audit-project-{beta}", input=_INPUT))),
    (
        "alpha: read its own experiment",
        _mlflow(
            "GET",
            "2.0/mlflow/experiments/get-by-name",
            lambda n: {"experiment_name": experiment_name(n["alpha"])},
        ),
    ),
    (
        "beta: read its experiment",
        _mlflow(
            "GET",
            "2.0/mlflow/experiments/get-by-name",
            lambda n: {"experiment_name": experiment_name(n["beta"])},
        ),
    ),
    (
        "beta: set its champion alias",
        _mlflow(
            "POST",
            "2.0/mlflow/registered-models/alias",
            lambda n: {"name": model_name(n["beta"]), "alias": "champion", "version": "1"},
        ),
    ),
    (
        "beta: grant itself MANAGE on beta's model",
        _mlflow(
            "POST",
            "3.0/mlflow/users/permissions/grant",
            lambda n: {
                "username": project_user(n["alpha"]),
                "resource_type": "registered_model",
                "resource_id": model_name(n["beta"]),
                "permission": "MANAGE",
            },
        ),
    ),
    (
        "gamma (future): create its experiment",
        _mlflow(
            "POST",
            "2.0/mlflow/experiments/create",
            lambda n: {"name": experiment_name(n["gamma"])},
        ),
    ),
    (
        "gamma (future): create its registered model",
        _mlflow(
            "POST",
            "2.0/mlflow/registered-models/create",
            lambda n: {"name": model_name(n["gamma"])},
        ),
    ),
    (
        "alpha-b (prefix): create its experiment",
        _mlflow(
            "POST",
            "2.0/mlflow/experiments/create",
            lambda n: {"name": experiment_name(f"{n['alpha']}-b")},
        ),
    ),
    (
        "alpha-b (prefix): create its registered model",
        _mlflow(
            "POST",
            "2.0/mlflow/registered-models/create",
            lambda n: {"name": model_name(f"{n['alpha']}-b")},
        ),
    ),
    (
        "alpha: rename its model to gamma's",
        _mlflow(
            "POST",
            "2.0/mlflow/registered-models/rename",
            lambda n: {
                "name": model_name(n["alpha"]),
                "new_name": model_name(n["gamma"]),
            },
        ),
    ),
    (
        "alpha: new data key outside its region",
        _openbao(_write("transit/datakey/plaintext/{away}.proj-{alpha}")),
    ),
    (
        "alpha: create a key outside its region",
        _openbao(_write("transit/keys/{away}.proj-{alpha}")),
    ),
    ("alpha: rewrite its regions", _openbao(_kv("projects/{alpha}/residency"))),
    ("beta: read its regions", _openbao(_kv_read("projects/{beta}/residency"))),
    ("alpha: rewrite its own S3 record", _openbao(_kv("projects/{alpha}/s3"))),
    ("alpha: rewrite its steward's S3 record", _openbao(_kv("ingest/{alpha}/s3"))),
    ("alpha: rewrite its MLflow password", _openbao(_kv("projects/{alpha}/mlflow"))),
    ("alpha: rewrite its contract", _openbao(_kv("projects/{alpha}/contract"))),
    ("alpha: add an API key", _openbao(_kv("projects/{alpha}/api-keys/{alpha}_0000000000000000"))),
    ("alpha: read its training password", _openbao(_kv_read("projects/{alpha}/mlflow"))),
    (
        "alpha: new raw-PHI data key",
        _openbao(_write("transit/datakey/plaintext/{home}.phi-{alpha}")),
    ),
    (
        "alpha: new project data key",
        _openbao(_write("transit/datakey/plaintext/{home}.proj-{alpha}")),
    ),
    (
        "alpha: open its model files",
        _openbao(_write("transit/decrypt/{home}.models-{alpha}", ciphertext=_CIPHERTEXT)),
    ),
    ("audit: sign as the operator", _openbao(_write("transit/hmac/audit-operator", input=_INPUT))),
    (
        "audit: verify any signer's entry",
        _openbao(_write("transit/verify/audit-operator", input=_INPUT, hmac="vault:v1:AAAA")),
    ),
    ("audit: read the anchors", _openbao(lambda b: b.read(f"secret/data/{_anchor(b)}"))),
    (
        "audit: overwrite an anchor",
        _openbao(
            lambda b: b.secrets.kv.v2.create_or_update_secret(
                _anchor(b), {"seq": 1, "mac": "forged"}, mount_point="secret"
            )
        ),
    ),
    (
        "audit: delete an anchor",
        _openbao(lambda b: b.secrets.kv.v2.delete_latest_version_of_secret(_anchor(b), "secret")),
    ),
    (
        "audit: destroy an anchor's history",
        _openbao(lambda b: b.secrets.kv.v2.delete_metadata_and_all_versions(_anchor(b), "secret")),
    ),
    (
        "audit: limit an anchor's versions",
        _openbao(
            lambda b: b.secrets.kv.v2.update_metadata(
                _anchor(b), max_versions=1, mount_point="secret"
            )
        ),
    ),
    (
        "audit: create a new anchor",
        _openbao(
            lambda b: b.secrets.kv.v2.create_or_update_secret(
                f"{ANCHORS}/999999999999-{uuid.uuid4().hex[:16]}",
                {"seq": 999999999999, "mac": "forged"},
                cas=0,
                mount_point="secret",
            )
        ),
    ),
    (
        "audit: delete the operator's key",
        _openbao(lambda b: b.secrets.transit.delete_key("audit-operator")),
    ),
    (
        "policies: write one",
        _openbao(
            lambda b: b.sys.create_or_update_policy("escalate", 'path "*" {capabilities=["sudo"]}')
        ),
    ),
    ("policies: read the operator's", _openbao(lambda b: b.sys.read_policy("operator"))),
    ("operator: new secret id", _openbao(_write("auth/approle/role/operator/secret-id"))),
    ("operator: MLflow admin password", _openbao(_kv_read("services/mlflow/admin"))),
    ("operator: record gamma as created", _openbao(_kv("services/projects/{gamma}"))),
    ("operator: claim an endpoint slot", _openbao(_kv("services/slots/199"))),
    (
        "PKI: issue a server certificate",
        _openbao(_write("pki/issue/server", common_name="localhost")),
    ),
    (
        "MLflow: create a user",
        _mlflow(
            "POST", "2.0/mlflow/users/create", lambda n: {"username": "x", "password": "y" * 20}
        ),
    ),
    ("another project's endpoint: predict", _endpoint),
]


def _matrix(
    alpha: Alpha, title: str, capsys: pytest.CaptureFixture[str]
) -> dict[str, dict[str, str]]:
    """Every row tried with every identity alpha holds, printed."""
    matrix = {label: {i: attempt(alpha, i) for i in IDENTITIES} for label, attempt in ROWS}
    width = max(len(label) for label in matrix)
    lines = [f"{title:<{width}}  " + "  ".join(f"{i:>14}" for i in IDENTITIES)]
    for label, row in matrix.items():
        lines.append(f"{label:<{width}}  " + "  ".join(f"{row[i]:>14}" for i in IDENTITIES))
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    return matrix


def _allowed(matrix: dict[str, dict[str, str]]) -> list[str]:
    return [
        f"{label} by {identity}"
        for label, row in matrix.items()
        for identity, verdict in row.items()
        if verdict == ALLOWED
    ]


def test_every_identity_of_a_project_is_denied_all_but_the_documented(
    alpha: Alpha, names: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    NAMES.update(names)
    matrix = _matrix(alpha, "operation of alpha against", capsys)
    unexpected = [
        f"{label} by {identity}"
        for label, row in matrix.items()
        for identity, verdict in row.items()
        if verdict == ALLOWED and (label, identity) not in DOCUMENTED
    ]
    assert not unexpected, f"allowed beyond the documented rows: {unexpected}"
    missing = [
        f"{label} by {identity}"
        for (label, identity) in DOCUMENTED
        if matrix[label][identity] != ALLOWED
    ]
    assert not missing, f"documented rows no longer allowed (update DOCUMENTED): {missing}"


def test_once_suspended_and_once_deleted_a_project_is_denied_everything(
    stack: Settings,
    operator: hvac.Client,
    alpha: Alpha,
    names: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    NAMES.update(names)
    beta = endpoint(stack, operator, names["beta"])
    supervisor = Supervisor(stack)

    projects.suspend(operator, stack, names["alpha"], supervisor)
    # Beta has no champion: the stack does not serve it, the test does.
    Supervisor(beta).start(Instance(topology.service("serving"), beta))
    suspended = _matrix(alpha, "alpha suspended, against", capsys)
    assert _allowed(suspended) == []
    assert suspended["alpha: read its training password"]["workload"] == DENIED

    projects.delete(operator, stack, names["alpha"], supervisor, now=True)
    Supervisor(beta).start(Instance(topology.service("serving"), beta))
    assert _allowed(_matrix(alpha, "alpha deleted, against", capsys)) == []

"""A project's endpoint against the real server over TLS: keys, input refusals without
echo, per-record batches, the published OpenAPI document, predictions equal to the
registry's model, a champion swapped under load with no failed request, no PHI in the
server's log, captured predictions sealed in the lake, and a project without a champion
told so."""

from __future__ import annotations

import io
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from unittest import mock

import hvac
import numpy as np
import pandas as pd
import pytest
import requests

import contract as contracts
from model import twin
from model.train import TrainConfig
from pipeline import projects
from pipeline.training import ModelSteward
from safeguards import apikeys, credentials, keys, objectstore, openbao
from safeguards.registry import credential_path, model_name, serving_user
from safeguards.registry import url as registry_url
from safeguards.settings import Settings
from services import topology
from services.serving import capture, edge, inputs, launcher
from services.supervisor import Supervisor
from services.topology import Instance
from tests.canaries import CANARIES, NAME, assert_clean
from tests.conftest import HOME, deidentified_project, endpoint, wait_until

pytestmark = pytest.mark.integration

APPROVER = "operator:test-serving"
WEAK = TrainConfig(C=0.0003)
KEY_TTL = 2.0
DIABETES = contracts.parse(contracts.example("diabetes"))
IDENTIFIERS = set(DIABETES.never_model_inputs)
RECORD = {
    "age": 50, "sex": "F", "bmi": 27.0, "fasting_glucose": 100.0, "hba1c": 5.6,
    "systolic_bp": 125, "diastolic_bp": 80, "insulin": 12.0, "pregnancies": 1,
    "family_history": False, "physical_activity": "moderate", "smoking": "never",
}  # fmt: skip
# Invalid bodies, most carrying canary identifiers: each refused without repeating them.
INVALID: list[bytes] = [
    json.dumps(RECORD | {"ssn": CANARIES["ssn"], "name": NAME}).encode(),
    json.dumps(
        RECORD | {"mrn": CANARIES["mrn"], "zip": "02139", "email": CANARIES["email"]}
    ).encode(),
    json.dumps(RECORD | {"age": CANARIES["ssn"], "sex": NAME, "bmi": CANARIES["phone"]}).encode(),
    json.dumps(RECORD | {NAME: CANARIES["dob"]}).encode(),
    json.dumps(RECORD | {"age": 250}).encode(),
    f'{{"age": 61, "name": "{NAME}", "ssn": {CANARIES["ssn"]}'.encode(),
]


@dataclass
class Endpoint:
    settings: Settings
    project: str
    steward: ModelSteward
    key: str
    url: str

    @property
    def ca(self) -> str:
        return str(self.settings.ca_bundle)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def post(
        self, path: str, body: Any, key: str | None = None, session: Any = requests
    ) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return session.post(  # type: ignore[no-any-return]
            self.url + path,
            data=data,
            headers={**self.auth(key), "Content-Type": "application/json"},
            verify=self.ca,
            timeout=30,
        )

    def ready_version(self) -> str | None:
        response = requests.get(self.url + "/readyz", verify=self.ca, timeout=10)
        return response.json()["model_version"] if response.status_code == 200 else None


@pytest.fixture(scope="module")
def served(stack: Settings, operator: hvac.Client) -> Iterator[Endpoint]:
    """A project made by `projects create`, with a promoted champion, and the stack told to
    serve it, as `model promote` does (polling every second, short key cache and capture
    batches): its own endpoint starts on its own port."""
    project = deidentified_project(stack, operator, seed=5, served=True)
    steward = ModelSteward(stack, project)
    weak = steward.train("clean", config=WEAK).registered.version
    assert steward.promote(weak, APPROVER).decision.approved
    settings = stack.model_copy(
        update={
            "serving_poll_seconds": 1.0,
            "serving_key_cache_seconds": KEY_TTL,
            "serving_capture_records": 500,
            "serving_capture_seconds": 2.0,
        }
    )
    supervisor = Supervisor(settings)
    try:
        supervisor.serve()
        _, key = apikeys.create(operator, project, "test-client")
        instance = endpoint(settings, operator, project)
        running = Endpoint(instance, project, steward, key, launcher.url(instance))
        wait_until(lambda: running.ready_version() == weak, 60, "the first champion being served")
        yield running
    finally:
        supervisor.stop(f"serving-{project}")


def test_the_serving_user_reads_the_registry_but_cannot_change_it(served: Endpoint) -> None:
    project, user = served.project, serving_user(served.project)
    bao = openbao.login(served.settings, keys.identity(project))
    password = credentials.read(bao, credential_path(project, user))["password"]
    base, name = f"{registry_url(served.settings)}/api/2.0/mlflow", model_name(project)

    def call(method: str, path: str, body: dict[str, str]) -> int:
        kwargs = {"json": body} if method == "POST" else {"params": body}
        response = requests.request(
            method,
            f"{base}/{path}",
            auth=(user, password),
            verify=served.ca,
            timeout=30,
            **kwargs,
        )
        return response.status_code

    assert call("GET", "registered-models/get", {"name": name}) == 200
    assert call("GET", "registered-models/alias", {"name": name, "alias": "champion"}) == 200
    alias = {"name": name, "alias": "champion", "version": "1"}
    assert call("POST", "registered-models/alias", alias) == 403
    assert call("POST", "model-versions/create", {"name": name, "source": "models:/x"}) == 403
    assert (
        call("POST", "registered-models/set-tag", {"name": name, "key": "k", "value": "v"}) == 403
    )


def test_plaintext_is_refused(served: Endpoint) -> None:
    host, port = served.settings.host, int(served.url.rsplit(":", 1)[1])
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{host}:{port}/healthz", timeout=5)
    with socket.create_connection((host, port), timeout=5) as raw:
        raw.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        answer = raw.recv(4096)
    assert not answer.startswith(b"HTTP/")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(served.url + "/healthz", timeout=5)


def test_health_and_readiness_are_open_and_readiness_names_the_version(
    served: Endpoint,
) -> None:
    assert requests.get(served.url + "/healthz", verify=served.ca, timeout=10).ok
    ready = requests.get(served.url + "/readyz", verify=served.ca, timeout=10)
    champion = served.steward.registry.champion()
    assert champion is not None
    assert ready.json() == {"status": "ready", "model_version": str(champion.version)}


def test_missing_wrong_revoked_and_other_project_keys_are_refused(
    served: Endpoint, operator: hvac.Client, project_pair: tuple[str, str]
) -> None:
    key_id, secret = served.key.split(".", 1)
    other_project, _ = project_pair
    _, other_key = apikeys.create(operator, other_project, "test-client")
    cases = {
        "missing": (None, 401),
        "not bearer": ("Basic " + served.key, 401),
        "malformed": ("Bearer " + key_id, 401),
        "wrong secret": (f"Bearer {key_id}.{secret[::-1]}", 401),
        "unknown key id": (f"Bearer {served.project}_{'0' * 16}.{secret}", 401),
        "another project's key": ("Bearer " + other_key, 403),
    }
    for case, (header, status) in cases.items():
        headers = {"Authorization": header} if header else {}
        for method, path in (("POST", "/v1/predict"), ("GET", "/metrics")):
            response = requests.request(
                method,
                served.url + path,
                json=RECORD,
                headers=headers,
                verify=served.ca,
                timeout=10,
            )
            assert response.status_code == status, (case, path)
            assert secret not in response.text and secret[::-1] not in response.text
        if status == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer"
    assert served.post("/v1/predict", RECORD).status_code == 200
    metrics = requests.get(
        served.url + "/metrics", headers=served.auth(), verify=served.ca, timeout=10
    )
    assert metrics.status_code == 200 and "serving_predicted_risk_bucket" in metrics.text
    assert "serving_gc_tracked_objects" in metrics.text
    unknown = requests.get(
        served.url + "/docs.json", headers=served.auth(), verify=served.ca, timeout=10
    )
    assert unknown.status_code == 404

    revoked_id, revoked = apikeys.create(operator, served.project, "leaving-client")
    assert served.post("/v1/predict", RECORD, key=revoked).status_code == 200
    apikeys.revoke(operator, served.project, revoked_id)
    wait_until(
        lambda: served.post("/v1/predict", RECORD, key=revoked).status_code == 401,
        KEY_TTL + 5,
        "the revoked key being refused",
    )


def test_invalid_inputs_and_identifiers_get_422_without_the_value(served: Endpoint) -> None:
    for body in INVALID:
        response = served.post("/v1/predict", body)
        assert response.status_code == 422, body
        assert response.json()["problems"], body
        assert_clean(response.text)
    batch = served.post("/v1/predict/batch", {"records": [RECORD, json.loads(INVALID[0])]})
    assert batch.status_code == 422
    assert {p["field"] for p in batch.json()["problems"]} == {"records[1].ssn", "records[1].name"}
    assert_clean(batch.text)
    too_many = served.post("/v1/predict/batch", {"records": [RECORD] * 1001})
    assert too_many.status_code == 422
    too_large = served.post("/v1/predict", b"{" + b" " * (1024 * 1024) + b"}")
    assert too_large.status_code == 413


def _records(endpoint: Endpoint, rows: int) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Rows of the de-identified training set as request records, and as the model's input."""
    frame, _ = endpoint.steward.training_data("clean")
    sample = frame.sample(rows, random_state=1)
    return inputs.request_records(sample, DIABETES), contracts.model_frame(sample, DIABETES)


def test_predictions_are_the_onnx_twins_and_equal_the_models_own(served: Endpoint) -> None:
    records, frame = _records(served, 25)
    version = served.ready_version()
    assert version is not None
    runs = served.steward.registry.load_served(version, DIABETES.features)
    assert runs.format == "onnx", "our logistic pipeline converts, so its twin serves"
    expected = runs.probabilities(frame)
    own = served.steward.load(version).probabilities(frame)
    assert np.abs(expected - own).max() <= twin.TOLERANCE
    log = (served.settings.data_dir / "logs" / f"serving-{served.project}.log").read_text()
    loaded = [json.loads(line) for line in log.splitlines() if '"serving champion"' in line]
    assert loaded[-1]["version"] == version and loaded[-1]["format"] == "onnx"
    batch = served.post("/v1/predict/batch", {"records": records})
    assert batch.status_code == 200
    assert batch.json()["model_version"] == version
    assert batch.json()["probabilities"] == pytest.approx(expected.tolist(), abs=1e-12)
    ids = batch.json()["prediction_ids"]
    assert len(ids) == len(set(ids)) == len(records)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    for record, probability in zip(records[:5], expected[:5], strict=True):
        single = served.post("/v1/predict", record)
        assert single.headers["X-Model-Version"] == version
        assert single.json() == {
            "model_version": version,
            "probability": pytest.approx(probability, abs=1e-12),
            "prediction_id": mock.ANY,
        }


def _session(endpoint: Endpoint) -> requests.Session:
    session = requests.Session()
    session.verify = endpoint.ca
    return session


def test_a_promoted_champion_is_swapped_in_under_load_without_a_failed_request(
    served: Endpoint,
) -> None:
    before = served.ready_version()
    strong = served.steward.train("clean").registered.version
    stop = threading.Event()
    results: list[tuple[int, str | None]] = []

    def load() -> None:
        session = _session(served)
        for _ in range(300):  # at most 4 x 300 requests, paced, and never past the deadline
            if stop.is_set():
                return
            response = served.post("/v1/predict", RECORD, session=session)
            version = response.json().get("model_version") if response.ok else None
            results.append((response.status_code, version))
            time.sleep(0.05)

    with ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(load) for _ in range(4)]
        try:
            promotion = served.steward.promote(strong, APPROVER)
            assert promotion.decision.approved, promotion.decision.failed
            wait_until(lambda: served.ready_version() == strong, 30, "the swap to the new champion")
            time.sleep(1)
        finally:
            stop.set()
        for worker in workers:
            worker.result(timeout=60)

    statuses = [status for status, _ in results]
    versions = [version for _, version in results]
    assert statuses and set(statuses) == {200}, f"{len(statuses)} requests"
    assert set(versions) == {before, strong}
    assert versions[-4:] == [strong] * 4


def test_thousands_of_requests_get_no_5xx_and_leave_no_phi_in_the_log(served: Endpoint) -> None:
    records, _ = _records(served, 50)
    kinds = ["batch" if i % 10 == 0 else "invalid" if i % 7 == 0 else "single" for i in range(2000)]
    sessions = threading.local()

    def request(i: int) -> tuple[str, int]:
        if not hasattr(sessions, "session"):
            sessions.session = _session(served)
        if kinds[i] == "single":
            body: Any = records[i % 50]
            path = "/v1/predict"
        elif kinds[i] == "batch":
            body, path = {"records": records[i % 40 : i % 40 + 10]}, "/v1/predict/batch"
        else:
            body, path = INVALID[i % len(INVALID)], "/v1/predict"
        return kinds[i], served.post(path, body, session=sessions.session).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(request, range(2000), timeout=300))
    assert time.monotonic() - started < 300
    assert not [o for o in outcomes if o[1] >= 500]
    assert {status for kind, status in outcomes if kind != "invalid"} == {200}
    assert {status for kind, status in outcomes if kind == "invalid"} == {422}

    log = (served.settings.data_dir / "logs" / f"serving-{served.project}.log").read_text()
    assert '"services.serving.access"' in log
    assert_clean(log)


def _tracked_objects(endpoint: Endpoint) -> int:
    metrics = requests.get(
        endpoint.url + "/metrics", headers=endpoint.auth(), verify=endpoint.ca, timeout=10
    ).text
    return int(float(re.findall(r"^serving_gc_tracked_objects (\S+)$", metrics, re.M)[0]))


def test_answered_requests_leave_nothing_for_the_garbage_collector(served: Endpoint) -> None:
    # A tracing span or an uncancelled timer per request kept tens of objects alive for
    # seconds after each answer, and the full collections walking them stalled the
    # endpoint (`bench.serving`'s p99).
    session = _session(served)
    served.post("/v1/predict", RECORD, session=session)
    before = _tracked_objects(served)
    for _ in range(1000):
        assert served.post("/v1/predict", RECORD, session=session).status_code == 200
    assert _tracked_objects(served) - before < 1000


def test_a_body_sent_too_slowly_gets_504_and_frees_its_slot(served: Endpoint) -> None:
    host, port = served.settings.host, int(served.url.rsplit(":", 1)[1])
    tls = ssl.create_default_context(cafile=served.ca)
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {served.key}\r\nContent-Length: 200\r\n\r\n{{"
    )
    started = time.monotonic()
    with (
        socket.create_connection((host, port), timeout=30) as raw,
        tls.wrap_socket(raw, server_hostname=host) as conn,
    ):
        conn.sendall(head.encode())
        answer = conn.recv(4096)
    waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 504"), answer[:40]
    assert edge.TIMEOUT_SECONDS <= waited < edge.TIMEOUT_SECONDS + 10
    assert served.post("/v1/predict", RECORD).status_code == 200


def test_captured_predictions_are_sealed_in_the_lake_without_identifiers(
    served: Endpoint,
) -> None:
    store = objectstore.open_store(served.settings, served.project)
    wait_until(lambda: bool(store.list(capture.ZONE, "capture/")), 15, "a capture batch")
    names = store.list(capture.ZONE, "capture/")
    tables = [pd.read_parquet(io.BytesIO(store.get(capture.ZONE, name))) for name in names]
    captured = pd.concat(tables)
    assert list(captured.columns) == [*DIABETES.features, *capture.EXTRA]
    assert not set(captured.columns) & IDENTIFIERS
    assert captured["probability"].between(0, 1).all()
    assert captured["prediction_id"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert captured["prediction_id"].is_unique
    assert set(captured["model_version"]) <= {v.version for v in served.steward.registry.versions()}
    on_disk = served.settings.data_dir / "lake" / HOME / f"{served.project}-artifacts" / names[0]
    sealed = on_disk.read_bytes()
    assert sealed.startswith(b"HMENV1") and b"PAR1" not in sealed[:64]
    assert b"fasting_glucose" not in sealed


def test_the_openapi_document_is_published_from_the_contract(served: Endpoint) -> None:
    response = requests.get(served.url + "/openapi.json", verify=served.ca, timeout=10)
    assert response.status_code == 200
    document = response.json()
    record = document["components"]["schemas"]["Record"]
    assert list(record["properties"]) == DIABETES.features
    assert record["additionalProperties"] is False
    assert set(document["paths"]) == {
        "/v1/predict", "/v1/predict/batch", "/healthz", "/readyz", "/metrics"
    }  # fmt: skip


def test_a_batch_can_be_answered_per_record(served: Endpoint) -> None:
    records = [RECORD, RECORD | {"age": 250, "ssn": CANARIES["ssn"]}, RECORD | {"bmi": 31.5}]
    refused = served.post("/v1/predict/batch", {"records": records})
    assert refused.status_code == 422
    answer = served.post("/v1/predict/batch", {"records": records, "on_invalid": "report"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [p is None for p in body["probabilities"]] == [False, True, False]
    assert [i is None for i in body["prediction_ids"]] == [False, True, False]
    [invalid] = body["invalid"]
    assert invalid["index"] == 1
    assert {p["field"] for p in invalid["problems"]} == {"age", "ssn"}
    assert_clean(answer.text)
    none_valid = served.post("/v1/predict/batch", {"records": records[1:2], "on_invalid": "report"})
    assert none_valid.status_code == 422 and none_valid.json()["error"] == "no valid record"


def test_a_project_without_a_champion_is_told_so(served: Endpoint, operator: hvac.Client) -> None:
    """Its endpoint (started here by hand: the stack serves projects with a champion)
    answers 503 and names what is missing; its key is still its own."""
    project = f"n{served.project[1:]}"
    projects.create_project(
        operator, served.settings, project, contracts.example("diabetes"), lambda: None
    )
    instance = endpoint(served.settings, operator, project)
    supervisor = Supervisor(instance)
    try:
        supervisor.start(Instance(topology.service("serving"), instance))
        url = launcher.url(instance)
        _, key = apikeys.create(operator, project, "early-client")
        answer = requests.post(
            url + "/v1/predict",
            json=RECORD,
            headers={"Authorization": f"Bearer {key}"},
            verify=served.ca,
            timeout=10,
        )
        assert answer.status_code == 503
        assert answer.json() == {"error": f"project {project} has no champion model yet"}
        ready = requests.get(url + "/readyz", verify=served.ca, timeout=10)
        assert ready.status_code == 503 and ready.json()["unavailable"] == ["champion"]
        other = served.post("/v1/predict", RECORD, key=key)
        assert other.status_code == 403
    finally:
        supervisor.stop(f"serving-{project}")


def test_readiness_follows_openbao(served: Endpoint) -> None:
    supervisor = Supervisor(served.settings)

    def readiness() -> requests.Response:
        return requests.get(served.url + "/readyz", verify=served.ca, timeout=10)

    supervisor.stop("openbao")
    try:
        wait_until(lambda: readiness().status_code == 503, 15, "readiness reporting OpenBao")
        body = readiness().json()
        assert body["unavailable"] == ["openbao"] and body["model_version"] is not None
    finally:
        supervisor.up("sandbox")
    wait_until(lambda: readiness().status_code == 200, 15, "readiness once OpenBao is back")

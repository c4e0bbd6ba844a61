"""The serving endpoint's pieces that need no server: input model, errors, keys, capture."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

import contract as contracts
from safeguards import apikeys
from safeguards.errors import ConfigError, Unavailable
from safeguards.registry import credential_path
from services.launch import environment
from services.serving import capture, inputs, openapi
from tests.canaries import CANARIES, NAME, assert_clean

DIABETES = contracts.parse(contracts.example("diabetes"))
READMISSION = contracts.parse(contracts.example("readmission"))
MODELS = inputs.RequestModels(DIABETES)
FEATURES = DIABETES.features
IDENTIFIERS = [
    c.name for c in DIABETES.with_role(contracts.Role.IDENTIFIER, contracts.Role.QUASI_IDENTIFIER)
]
RECORD = {
    "age": 50, "sex": "F", "bmi": 27.0, "fasting_glucose": 100.0, "hba1c": 5.6,
    "systolic_bp": 125, "diastolic_bp": 80, "insulin": 12.0, "pregnancies": 1,
    "family_history": False, "physical_activity": "moderate", "smoking": "never",
}  # fmt: skip
SERVING = Path(__file__).resolve().parents[2] / "services" / "serving"


def _refusal(body: bytes, batch: bool = False) -> list[dict[str, str]]:
    parse = MODELS.parse_batch if batch else MODELS.parse_record
    with pytest.raises(inputs.InvalidInput) as refused:
        parse(body)
    return refused.value.problems


@pytest.mark.parametrize("contract", [DIABETES, READMISSION], ids=["diabetes", "readmission"])
def test_the_record_is_the_contracts_features_with_their_ranges_and_categories(
    contract: contracts.Contract,
) -> None:
    schema = inputs.RequestModels(contract).record.model_json_schema()
    assert list(schema["properties"]) == contract.features
    assert set(schema["required"]) == {
        f for f in contract.features if not contract.column(f).missing
    }
    assert schema["additionalProperties"] is False
    for name in contract.features:
        column, spec = contract.column(name), schema["properties"][name]
        if column.range is not None:
            bounds = spec.get("anyOf", [spec])[0]
            assert (bounds["minimum"], bounds["maximum"]) == column.range
        if column.categories is not None:
            assert spec["enum"] == list(column.categories)


def test_a_feature_the_contract_allows_to_be_missing_may_be_null() -> None:
    models = inputs.RequestModels(READMISSION)
    record = models.parse_record(json.dumps(READMISSION.example() | {"hemoglobin": None}).encode())
    assert np.isnan(models.columns([record])["hemoglobin"][0])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"age": 17}, "age"),
        ({"age": 121}, "age"),
        ({"bmi": 80.5}, "bmi"),
        ({"systolic_bp": 59}, "systolic_bp"),
        ({"insulin": -1.0}, "insulin"),
        ({"sex": "X"}, "sex"),
        ({"smoking": "sometimes"}, "smoking"),
        ({"age": "61"}, "age"),
        ({"family_history": "yes"}, "family_history"),
        ({"hba1c": None}, "hba1c"),
    ],
)
def test_out_of_range_and_mistyped_values_are_refused_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    [problem] = _refusal(json.dumps(RECORD | change).encode())
    assert problem["field"] == field


def test_a_missing_feature_is_named() -> None:
    record = {k: v for k, v in RECORD.items() if k != "hba1c"}
    assert _refusal(json.dumps(record).encode()) == [
        {"field": "hba1c", "message": "Field required"}
    ]


@pytest.mark.parametrize("identifier", [*IDENTIFIERS, "zip_code", "patient_name"])
def test_identifier_fields_are_refused_not_ignored(identifier: str) -> None:
    [problem] = _refusal(json.dumps(RECORD | {identifier: CANARIES["ssn"]}).encode())
    assert problem["field"] == identifier
    assert "refused" in problem["message"]


def test_errors_never_repeat_a_submitted_value_or_a_made_up_field_name() -> None:
    leaky = RECORD | {
        "age": CANARIES["ssn"],
        "sex": NAME,
        "smoking": CANARIES["email"],
        "bmi": CANARIES["phone"],
        "name": NAME,
        "mrn": CANARIES["mrn"],
        "note": f"seen {CANARIES['dob']}",
        NAME: CANARIES["dob"],
        CANARIES["ssn"]: 1,
    }
    bodies = [
        json.dumps(leaky).encode(),
        json.dumps({"records": [RECORD, leaky]}).encode(),
        f'{{"age": {CANARIES["ssn"]}, "name": "{NAME}"'.encode(),
        f"[{json.dumps(NAME)}]".encode(),
    ]
    for body in bodies:
        problems = _refusal(body, batch=b"records" in body)
        text = json.dumps(problems)
        assert_clean(text)
        assert "<undeclared field>" in text or "body" in text


def test_a_batch_is_bounded() -> None:
    ok, _ = MODELS.parse_batch(json.dumps({"records": [RECORD] * inputs.MAX_BATCH}).encode())
    assert len(ok) == inputs.MAX_BATCH
    for records in ([], [RECORD] * (inputs.MAX_BATCH + 1)):
        [problem] = _refusal(json.dumps({"records": records}).encode(), batch=True)
        assert problem["field"] == "records"


def test_a_batch_is_refused_whole_unless_it_asks_for_a_report_per_record() -> None:
    records = [RECORD, RECORD | {"age": 250, "ssn": CANARIES["ssn"]}, RECORD]
    [*problems] = _refusal(json.dumps({"records": records}).encode(), batch=True)
    assert {p["field"] for p in problems} == {"records[1].age", "records[1].ssn"}
    body = json.dumps({"records": records, "on_invalid": "report"}).encode()
    parsed, invalid = MODELS.parse_batch(body)
    assert [r is not None for r in parsed] == [True, False, True]
    [bad] = invalid
    assert bad.index == 1 and {p["field"] for p in bad.problems} == {"age", "ssn"}
    assert_clean(bad.model_dump_json())
    with pytest.raises(inputs.InvalidInput):
        MODELS.parse_batch(json.dumps({"records": records, "on_invalid": "maybe"}).encode())


def test_the_model_input_is_typed_as_in_training() -> None:
    frame = pd.DataFrame(MODELS.columns([MODELS.parse_record(json.dumps(RECORD).encode())]))
    assert list(frame.columns) == FEATURES
    categorical = {"sex", "physical_activity", "smoking"}
    assert all(frame[c].dtype == "float64" for c in FEATURES if c not in categorical)
    assert frame.loc[0, "family_history"] == float(bool(RECORD["family_history"]))
    pd.testing.assert_frame_equal(frame, contracts.model_frame(pd.DataFrame([RECORD]), DIABETES))


def test_the_openapi_document_describes_the_contracts_request() -> None:
    document = openapi.document(MODELS, "alpha", "1.4")
    schemas = document["components"]["schemas"]
    assert list(schemas["Record"]["properties"]) == FEATURES
    assert schemas["Batch"]["properties"]["records"]["maxItems"] == inputs.MAX_BATCH
    predict = document["paths"]["/v1/predict"]["post"]
    assert predict["security"] == [{"apiKey": []}]
    assert set(predict["responses"]) == {"200", "401", "403", "413", "422", "503"}
    assert "diabetes_5y" in document["info"]["description"]
    json.dumps(document)


# -- API keys --------------------------------------------------------------------------


def _key(project: str) -> tuple[str, str]:
    key_id = f"{project}_0123456789abcdef"
    return key_id, f"{key_id}.{'s' * 43}"


def test_keys_are_256_bit_secrets_stored_as_sha256() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.stored: dict[str, dict[str, str]] = {}

        def create_or_update_secret(self, path: str, record: dict[str, str], **_: object) -> None:
            self.stored[path] = record

    kv = Recorder()
    bao = SimpleNamespace(secrets=SimpleNamespace(kv=SimpleNamespace(v2=kv)))
    key_id, key = apikeys.create(bao, "alpha", "clinic-app")  # type: ignore[arg-type]
    assert re.fullmatch(r"alpha_[0-9a-f]{16}", key_id)
    secret = key.removeprefix(f"{key_id}.")
    assert len(secret) == 43  # 32 bytes, URL-safe base64
    [(path, record)] = kv.stored.items()
    assert path == f"projects/alpha/api-keys/{key_id}"
    assert record["sha256"] == apikeys.digest(secret) != secret
    assert secret not in json.dumps(record)


def test_the_verifier_tells_missing_malformed_wrong_foreign_and_valid_keys_apart() -> None:
    key_id, key = _key("alpha")
    stored = {key_id: apikeys.digest(key.split(".", 1)[1])}
    asked: list[str] = []

    def lookup(kid: str) -> str | None:
        asked.append(kid)
        return stored.get(kid)

    verifier = apikeys.KeyVerifier("alpha", lookup, ttl_seconds=60)

    def verdict(header: str | None) -> apikeys.Verdict:
        return asyncio.run(verifier.verify(header))

    assert verdict(f"Bearer {key}").status == 200
    assert verdict(f"bearer {key}").key_id == key_id
    assert verdict(None).reason == "missing_key"
    for malformed in (key, f"Basic {key}", "Bearer ", f"Bearer {key_id}", f"Bearer {key}x"):
        assert verdict(malformed).status == 401, malformed
    wrong = verdict(f"Bearer {key_id}.{'t' * 43}")
    assert (wrong.status, wrong.reason) == (401, "invalid_key")
    unknown = verdict(f"Bearer {_key('alpha')[0][:-1]}0.{'s' * 43}")
    assert unknown.status == 401
    foreign = verdict(f"Bearer {_key('beta')[1]}")
    assert (foreign.status, foreign.key_id) == (403, None)
    assert asked.count(key_id) == 1, "a cached digest is not looked up again"
    assert all(kid.startswith("alpha_") for kid in asked), (
        "another project's key is never looked up"
    )


def test_a_revoked_key_stops_working_when_its_cache_entry_expires() -> None:
    key_id, key = _key("alpha")
    stored = {key_id: apikeys.digest(key.split(".", 1)[1])}
    verifier = apikeys.KeyVerifier("alpha", stored.get, ttl_seconds=0.2)
    assert asyncio.run(verifier.verify(f"Bearer {key}")).status == 200
    del stored[key_id]
    assert asyncio.run(verifier.verify(f"Bearer {key}")).status == 200
    asyncio.run(asyncio.sleep(0.3))
    assert asyncio.run(verifier.verify(f"Bearer {key}")).status == 401


def test_an_unreachable_key_store_is_503_not_401() -> None:
    def down(_: str) -> str | None:
        raise Unavailable("OpenBao is unreachable")

    verifier = apikeys.KeyVerifier("alpha", down, ttl_seconds=60)
    verdict = asyncio.run(verifier.verify(f"Bearer {_key('alpha')[1]}"))
    assert (verdict.status, verdict.reason) == (503, "key_store_unavailable")


def test_each_mlflow_user_has_its_own_password_path() -> None:
    assert credential_path("alpha", "project-alpha") == "projects/alpha/mlflow"
    assert credential_path("alpha", "serving-alpha") == "projects/alpha/mlflow-serving"
    with pytest.raises(ConfigError):
        credential_path("alpha", "serving-beta")


# -- capture ---------------------------------------------------------------------------


class MemoryStore:
    project = "alpha"

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put(self, zone: str, key: str, data: bytes) -> None:
        self.objects[(zone, key)] = data


def test_capture_writes_features_and_predictions_in_batches_and_at_close() -> None:
    store = MemoryStore()
    dropped: list[int] = []
    writer = capture.Capture(
        lambda: store, DIABETES, records=3, seconds=3600, on_drop=dropped.append
    )
    records, _ = MODELS.parse_batch(json.dumps({"records": [RECORD] * 2}).encode())
    writer.add(records, [0.25, 0.5], "7", ["a" * 32, "b" * 32])
    writer.flush()
    writer.add(records[:1], [0.75], "8", ["c" * 32])
    writer.close()
    assert len(store.objects) == 2 and not dropped
    for (zone, key), data in store.objects.items():
        assert zone == "artifacts"
        assert re.fullmatch(r"capture/\d{4}-\d{2}-\d{2}/[0-9a-f]{32}\.parquet", key)
        table = pd.read_parquet(io.BytesIO(data))
        assert list(table.columns) == [*FEATURES, *capture.EXTRA]
        assert not set(table.columns) & set(IDENTIFIERS)
        assert str(table["predicted_at"].dt.tz) == "UTC"
    tables = pd.concat(pd.read_parquet(io.BytesIO(d)) for d in store.objects.values())
    assert sorted(tables["probability"]) == [0.25, 0.5, 0.75]
    assert set(tables["model_version"]) == {"7", "8"}
    assert sorted(tables["prediction_id"]) == ["a" * 32, "b" * 32, "c" * 32]


def test_capture_is_bounded_and_counts_what_it_drops() -> None:
    dropped: list[int] = []
    writer = capture.Capture(MemoryStore, DIABETES, records=1, seconds=3600, on_drop=dropped.append)
    records, _ = MODELS.parse_batch(json.dumps({"records": [RECORD] * 15}).encode())
    writer.add(records, [0.1] * 15, "1", [f"{i:032x}" for i in range(15)])
    assert dropped == [5]


# -- deployment files ------------------------------------------------------------------


def test_the_launcher_passes_settings_but_no_credentials() -> None:
    from safeguards.settings import Settings

    settings = Settings(
        openbao_role_id="r" * 36, openbao_secret_id="s" * 36, serving_project="alpha"
    )
    env = environment(settings)
    assert env["HIPAA_MLOPS_SERVING_PROJECT"] == "alpha"
    assert not any("ROLE_ID" in k or "SECRET_ID" in k for k in env)
    assert "r" * 36 not in json.dumps(env)


def test_the_bentofile_names_the_service_and_the_locked_requirements() -> None:
    config = yaml.safe_load((SERVING / "bentofile.yaml").read_text())
    module, _, name = config["service"].partition(":")
    assert module == "services.serving.service" and name == "Endpoint"
    assert config["python"]["requirements_txt"].endswith("requirements.lock")
    assert not any("tests" in pattern for pattern in config["include"])


def test_the_served_app_opens_no_span_and_keeps_no_timer_per_request() -> None:
    # BentoML's container is per process, and building the app reloads its configuration
    # from the service: a fresh interpreter builds it as the server does.
    check = (
        "from _bentoml_impl.loader import load\n"
        "from bentoml._internal.configuration.containers import BentoMLContainer\n"
        "from bentoml._internal.server.http.traffic import TimeoutMiddleware\n"
        "from services.serving import server\n"
        "service = load('services.serving.service:Endpoint', standalone_load=True)\n"
        "app = server.without_bentoml_timeout(service.to_asgi(is_main=True))\n"
        "urls = BentoMLContainer.tracing_excluded_urls.get()\n"
        "paths = ('/v1/predict', '/v1/predict/batch', '/metrics', '/readyz')\n"
        "assert all(urls.url_disabled('https://127.0.0.1:8220' + p) for p in paths)\n"
        "names = [m.cls.__name__ for m in app.user_middleware]\n"
        "assert 'Edge' in names and 'OpenTelemetryMiddleware' in names, names\n"
        "assert not any(m.cls is TimeoutMiddleware for m in app.user_middleware), names\n"
    )
    subprocess.run([sys.executable, "-c", check], check=True, timeout=120)


def test_prediction_ids_are_distinct_random_version_4_uuids() -> None:
    ids = capture.prediction_ids(100_000)
    assert len(set(ids)) == len(ids) == 100_000
    parsed = [uuid.UUID(hex=i) for i in ids[:1000]]
    assert all(
        u.version == 4 and u.variant == uuid.RFC_4122 and u.hex == i
        for u, i in zip(parsed, ids, strict=False)
    )
    assert not set(ids) & set(capture.prediction_ids(100_000))
    assert capture.prediction_ids(0) == []

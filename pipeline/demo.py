"""`make demo`: the lifecycle, end to end, on the sandbox stack.

Today it runs the security core, DATA, TRAIN and DEPLOY: OpenBao, MLflow and the
serving endpoint started natively over TLS, a project's keys and MLflow users, an object
in the sandbox's encrypted lake, synthetic patients through the privacy gate, ingestion
and Safe Harbor de-identification with its evidence report and a DVC version, a model
trained with its lineage, registered and promoted through the gate with its model card,
the champion served over HTTPS with an API key (a record carrying an SSN refused), key
rotation, and an audit chain that verifies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import requests
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.training import ModelSteward
from safeguards import keys, objectstore, openbao
from safeguards.audit import AuditLog
from safeguards.errors import GateRefused, IntegrityError, Unavailable
from safeguards.settings import Settings
from sandbox.steps import DataSteward
from services.mlflow import launcher as mlflow
from services.serving import apikeys, inputs
from services.serving import launcher as serving
from services.supervisor import Supervisor

PROJECT = "diabetes"
ACTOR = "pipeline:demo"


def run_demo(settings: Settings, console: Console, keep: bool = False) -> None:
    settings = settings.model_copy(update={"serving_project": PROJECT})
    supervisor = Supervisor(settings)
    results: list[tuple[str, str]] = []
    started = time.monotonic()
    audit_path = settings.data_dir / "audit" / "audit.jsonl"
    versions: dict[str, str] = {}

    def start_stack() -> str:
        supervisor.up("sandbox")
        return (
            f"OpenBao {settings.openbao_url}, MLflow {mlflow.url(settings)} and the endpoint "
            f"{serving.url(settings)} ready over TLS, verified with {settings.ca_bundle}"
        )

    def create_project() -> str:
        operator = openbao.login(settings, "operator")
        keys.create_project(operator, settings, PROJECT)
        mlflow.provision(settings, operator, PROJECT)
        AuditLog(audit_path, operator).append(ACTOR, "projects.create", f"project/{PROJECT}")
        return (
            f"project '{PROJECT}' has transit key {keys.key_name(PROJECT)}, its own AppRoles, "
            f"and MLflow users with EDIT (training) and READ (serving) on "
            f"{mlflow.experiment_name(PROJECT)}"
        )

    def store_object() -> str:
        store = objectstore.open_store(settings, PROJECT)
        record = json.dumps({"age": 57, "bmi": 31.2, "hba1c": 6.1}).encode()
        store.put("artifacts", "demo/record-1.json", record)
        assert store.get("artifacts", "demo/record-1.json") == record
        path = settings.data_dir / "lake" / f"{PROJECT}-artifacts" / "demo" / "record-1.json"
        sealed = path.read_bytes()
        path.write_bytes(sealed[:-1] + bytes([sealed[-1] ^ 1]))
        try:
            store.get("artifacts", "demo/record-1.json")
        except IntegrityError:
            pass
        else:
            raise AssertionError("a tampered object opened")
        finally:
            path.write_bytes(sealed)
        bao = openbao.login(settings, keys.identity(PROJECT))
        AuditLog(audit_path, bao).append(ACTOR, "object.put", f"{PROJECT}-artifacts/demo")
        return f"stored {len(record)} B sealed under a fresh data key; a flipped bit is refused"

    def synthesise() -> str:
        meta = DataSteward(settings, PROJECT).synth("patients", rows=20_000, seed=0)
        gate = meta["privacy_gate"]
        return (
            f"{meta['rows']:,} synthetic PHI-shaped patients, privacy gate passed "
            f"(exact copies {gate['exact_copy_rate']:.2%}, DCR ratio {gate['dcr_ratio']:.2f})"
        )

    def deidentify() -> str:
        steward = DataSteward(settings, PROJECT)
        steward.ingest("week-1", steward.repo.read("patients"))
        meta = steward.deidentify("week-1", source="week-1")
        return (
            f"Safe Harbor de-identified, versioned with DVC at {meta['revision'][:12]}; "
            f"evidence: datasets/{PROJECT}/week-1.evidence.html"
        )

    def train_model() -> str:
        trained = ModelSteward(settings, PROJECT).train("week-1", actor=ACTOR)
        registered = trained.registered
        versions["candidate"] = registered.version
        return (
            f"version {registered.version} of {mlflow.model_name(PROJECT)} registered with "
            f"its lineage; held-out AUROC {trained.evaluation.auroc:.3f}, "
            f"largest subgroup gap {trained.evaluation.max_subgroup_gap:.3f}"
        )

    def promote_model() -> str:
        steward = ModelSteward(settings, PROJECT)
        promotion = steward.promote(versions["candidate"], approver=ACTOR)
        failed = [c for c in promotion.decision.failed if c.name != "beats_champion"]
        if failed:
            reasons = ", ".join(f"{c.name}: {c.reason}" for c in failed)
            raise GateRefused(f"the promotion gate refused the demo's model ({reasons})")
        card = steward.card(versions["candidate"], settings.data_dir / "reports")
        outcome = (
            f"version {promotion.version} is the champion"
            if promotion.decision.approved
            else f"version {promotion.version} held: no better than champion "
            f"{promotion.champion} on the same rows"
        )
        return (
            f"gate ran {len(promotion.decision.checks)} checks; {outcome}; "
            f"card: {card.relative_to(settings.data_dir)}"
        )

    def serve() -> str:
        champion = ModelSteward(settings, PROJECT).registry.champion()
        assert champion is not None
        url, ca = serving.url(settings), str(settings.ca_bundle)
        deadline = time.monotonic() + 60
        while requests.get(f"{url}/readyz", verify=ca, timeout=10).json().get(
            "model_version"
        ) != str(champion.version):
            if time.monotonic() > deadline:
                raise Unavailable("the endpoint did not load the champion within 60 s")
            time.sleep(0.5)
        operator = openbao.login(settings, "operator")
        key_id, key = apikeys.create(operator, PROJECT, "demo")
        AuditLog(audit_path, operator).append(
            ACTOR, "serving.keys.create", f"serving/{PROJECT}/{key_id}", client="demo"
        )
        auth = {"Authorization": f"Bearer {key}"}
        scored = requests.post(
            f"{url}/v1/predict", json=inputs.EXAMPLE, headers=auth, verify=ca, timeout=10
        )
        with_ssn = requests.post(
            f"{url}/v1/predict",
            json={**inputs.EXAMPLE, "ssn": "078-05-1120"},
            headers=auth,
            verify=ca,
            timeout=10,
        )
        anonymous = requests.post(f"{url}/v1/predict", json=inputs.EXAMPLE, verify=ca, timeout=10)
        return (
            f"{url}/v1/predict scored a patient at {scored.json()['probability']:.3f} with "
            f"version {scored.json()['model_version']}; a record with an SSN got "
            f"{with_ssn.status_code}, a request without an API key {anonymous.status_code}"
        )

    def rotate_key() -> str:
        operator = openbao.login(settings, "operator")
        version = keys.rotate(operator, PROJECT)
        store = objectstore.open_store(settings, PROJECT)
        store.get("artifacts", "demo/record-1.json")  # sealed before the rotation
        AuditLog(audit_path, operator).append(ACTOR, "keys.rotate", f"project/{PROJECT}")
        return f"project key rotated to version {version}; older objects still open"

    def verify_audit() -> str:
        result = AuditLog(audit_path, openbao.login(settings, "auditor")).verify()
        return f"audit chain verified by the auditor identity: {result.entries} entries"

    steps: list[tuple[str, Callable[[], str]]] = [
        ("start the sandbox stack", start_stack),
        ("create the project key", create_project),
        ("store an encrypted object", store_object),
        ("synthesise patients", synthesise),
        ("ingest and de-identify", deidentify),
        ("train and register the model", train_model),
        ("promote it through the gate", promote_model),
        ("serve the champion over HTTPS", serve),
        ("rotate the project key", rotate_key),
        ("verify the audit chain", verify_audit),
    ]
    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("demo", total=len(steps))
            for title, step in steps:
                progress.update(task, description=title)
                results.append((title, step()))
                progress.advance(task)
    finally:
        if not keep:
            supervisor.down()
    table = Table("step", "result", title=f"hipaa-mlops demo ({time.monotonic() - started:.1f} s)")
    for title, outcome in results:
        table.add_row(title, outcome)
    console.print(table)
    console.print(f"data directory: {settings.data_dir}  audit log: {audit_path}")
    console.print(
        "servers left running (stop with `hipaa-mlops stack down`)"
        if keep
        else "servers stopped (KEEP=1 leaves them running)"
    )

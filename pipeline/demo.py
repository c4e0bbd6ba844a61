"""`make demo`: the lifecycle, end to end, on the sandbox stack.

OpenBao, MLflow and the monitoring worker start natively over TLS. A project is created
from the shipped diabetes contract and gets its keys and MLflow users; an object goes
into the sandbox's encrypted lake; synthetic patients pass the privacy gate, are
ingested, de-identified under Safe Harbor with an evidence report and versioned with
DVC; a model is trained with its lineage, registered and promoted through the gate with
its model card; the champion is served over HTTPS by the project's own endpoint with an
API key (a record carrying an SSN refused). Then the loop: patients like the training
population are scored and their outcomes reported, and monitoring finds no drift; an
older population arrives (a new de-identified week of data and its traffic), monitoring
detects the drift, the retrain pipeline trains on the new week and promotes through the
gate, and the endpoint swaps to the new champion by itself. Last, the project key is
rotated and the audit chain verified.

The monitoring runs are the worker's own job (`pipeline.monitor.watch`), called here
rather than waited for, so the demo does not depend on the worker's interval.

Each run is a whole loop on a project of its own: `diabetes` the first time, then
`diabetes-2`, `diabetes-3`, ... (taken from the audit log, checked against OpenBao),
its endpoint started once it has a champion (on its own port) and the worker restarted
to watch it.
"""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import requests
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import contract as contracts
from monitoring import lake
from pipeline import projects
from pipeline.monitor import report_outcomes, watch
from pipeline.training import ModelSteward
from safeguards import apikeys, keys, objectstore, openbao
from safeguards.audit import AuditLog
from safeguards.errors import ConfigError, GateRefused, IntegrityError, Unavailable
from safeguards.files import write_private
from safeguards.registry import experiment_name, model_name
from safeguards.registry import url as registry_url
from safeguards.settings import Settings
from sandbox import synth
from sandbox.steps import DataSteward
from services.serving import inputs
from services.serving import launcher as serving
from services.supervisor import Supervisor

BASE_PROJECT = "diabetes"
ACTOR = "pipeline:demo"
# The population that arrives after deployment: fifteen years older on average.
SHIFTED = "older"


def _next_project(audit_path: Path) -> str:
    """The first of diabetes, diabetes-2, ... that no `projects.create` entry names.

    The log is only read here, not verified (the last step does that); a name it misses is
    caught against OpenBao before the project is created."""
    taken: set[str] = set()
    if audit_path.exists():
        for line in audit_path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("action") == "projects.create":
                taken.add(str(entry["resource"]).removeprefix("project/"))
    names = itertools.chain([BASE_PROJECT], (f"{BASE_PROJECT}-{n}" for n in itertools.count(2)))
    return next(name for name in names if name not in taken)


def run_demo(settings: Settings, console: Console, keep: bool = False) -> None:
    audit_path = settings.data_dir / "audit" / "audit.jsonl"
    project = _next_project(audit_path)
    # Capture batches are written every two seconds, so monitoring sees traffic at once.
    settings = settings.model_copy(update={"serving_capture_seconds": 2.0})
    contract = contracts.parse(contracts.example(BASE_PROJECT))
    supervisor = Supervisor(settings)
    results: list[tuple[str, str]] = []
    started = time.monotonic()
    versions: dict[str, str] = {}
    client: dict[str, str] = {}
    endpoint: dict[str, str] = {}
    reports: list[str] = []
    fetched: list[Path] = []

    def start_stack() -> str:
        states = supervisor.up("sandbox")
        endpoints = sum(s.name.startswith("serving-") for s in states)
        return (
            f"OpenBao {settings.openbao_url}, MLflow {registry_url(settings)}, the worker and "
            f"{endpoints} endpoint(s) of earlier runs ready over TLS, verified with "
            f"{settings.ca_bundle}"
        )

    def create_project() -> str:
        operator = openbao.login(settings, "operator")
        if project in keys.projects(operator):
            raise ConfigError(
                f"project {project} exists but the audit log does not record its creation; "
                "run the demo on a fresh HIPAA_MLOPS_DATA_DIR"
            )
        projects.create_project(
            operator, settings, project, contracts.example(BASE_PROJECT), reload_lake=lambda: None
        )
        AuditLog.of(settings, operator).append(ACTOR, "projects.create", f"project/{project}")
        return (
            f"project '{project}' from contract {contract.name} ({len(contract.features)} "
            f"features), in region {settings.home_region}: transit key "
            f"{keys.key_name(project, settings.home_region)}, its own AppRoles, and MLflow "
            f"users with EDIT (training) and READ (serving) on {experiment_name(project)}"
        )

    def store_object() -> str:
        store = objectstore.open_store(settings, project)
        record = json.dumps({"age": 57, "bmi": 31.2, "hba1c": 6.1}).encode()
        store.put("artifacts", "demo/record-1.json", record)
        assert store.get("artifacts", "demo/record-1.json") == record
        lake = settings.data_dir / "lake" / store.region
        path = lake / f"{project}-artifacts" / "demo" / "record-1.json"
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
        bao = openbao.login(settings, keys.identity(project))
        AuditLog.of(settings, bao).append(ACTOR, "object.put", f"{project}-artifacts/demo")
        return f"stored {len(record)} B sealed under a fresh data key; a flipped bit is refused"

    def synthesise() -> str:
        meta = DataSteward(settings, project).synth("patients", rows=20_000, seed=0)
        gate = meta["privacy_gate"]
        return (
            f"{meta['rows']:,} synthetic PHI-shaped patients, privacy gate passed "
            f"(exact copies {gate['exact_copy_rate']:.2%}, DCR ratio {gate['dcr_ratio']:.2f})"
        )

    def deidentify() -> str:
        steward = DataSteward(settings, project)
        steward.ingest("week-1", steward.repo.read("patients"))
        meta = steward.deidentify("week-1", source="week-1")
        return (
            f"Safe Harbor de-identified, versioned with DVC at {meta['revision'][:12]}; "
            f"evidence: datasets/{project}/week-1.evidence.html"
        )

    def train_model() -> str:
        trained = ModelSteward(settings, project).train("week-1", actor=ACTOR)
        registered = trained.registered
        versions["candidate"] = registered.version
        return (
            f"version {registered.version} of {model_name(project)} registered with "
            f"its lineage; held-out AUROC {trained.evaluation.auroc:.3f}, "
            f"largest subgroup gap {trained.evaluation.max_subgroup_gap:.3f}"
        )

    def promote_model() -> str:
        steward = ModelSteward(settings, project)
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
        champion = ModelSteward(settings, project).registry.champion()
        if champion is None:
            raise GateRefused(f"project {project} has no champion to serve")
        supervisor.serve()
        operator = openbao.login(settings, "operator")
        endpoint["url"] = serving.project_url(settings, operator, project)
        url, ca = endpoint["url"], str(settings.ca_bundle)
        _wait_for_version(url, ca, champion.version)
        key_id, key = apikeys.create(operator, project, "demo")
        AuditLog.of(settings, operator).append(
            ACTOR, "serving.keys.create", f"serving/{project}/{key_id}", client="demo"
        )
        client["key"] = key
        auth = {"Authorization": f"Bearer {key}"}
        patient = inputs.request_records(synth.seed_population(1, seed=7), contract)[0]
        scored = requests.post(
            f"{url}/v1/predict", json=patient, headers=auth, verify=ca, timeout=10
        )
        with_ssn = requests.post(
            f"{url}/v1/predict",
            json={**patient, "ssn": "078-05-1120"},
            headers=auth,
            verify=ca,
            timeout=10,
        )
        anonymous = requests.post(f"{url}/v1/predict", json=patient, verify=ca, timeout=10)
        return (
            f"{url}/v1/predict scored a patient at {scored.json()['probability']:.3f} with "
            f"version {scored.json()['model_version']}; a record with an SSN got "
            f"{with_ssn.status_code}, a request without an API key {anonymous.status_code}"
        )

    def stable_traffic() -> str:
        scored = _score_cohort(
            settings, endpoint["url"], contract, project, client["key"], "baseline", 1500, 101
        )
        watched = watch(settings, project, ACTOR)
        checked = watched.checked
        if checked.analysis is None or checked.analysis.drifted or watched.retrained:
            raise AssertionError(f"monitoring of the training population: {checked.reason}")
        reports.append(str(checked.report))
        a = checked.analysis
        realised = a.realised_auroc.value if a.realised_auroc else float("nan")
        return (
            f"{scored:,} patients like the training population scored, outcomes reported; "
            f"no drift ({len(a.drifted_features)} of 12 features outside their band), "
            f"estimated AUROC {a.estimated_auroc.value:.3f}, realised {realised:.3f}"
        )

    def population_shift() -> str:
        steward = DataSteward(settings, project)
        steward.synth("patients-week-2", rows=20_000, cohort=SHIFTED, seed=1)
        steward.ingest("week-2", steward.repo.read("patients-week-2"))
        meta = steward.deidentify("week-2", source="week-2")
        scored = _score_cohort(
            settings, endpoint["url"], contract, project, client["key"], SHIFTED, 2500, 102
        )
        return (
            f"a new week of {meta['rows']:,} {SHIFTED} patients de-identified and versioned "
            f"at {meta['revision'][:12]}; {scored:,} of them scored"
        )

    def detect_and_retrain() -> str:
        watched = watch(settings, project, ACTOR)
        checked, result = watched.checked, watched.retrained
        if checked.analysis is None or not checked.analysis.drifted:
            raise AssertionError(f"monitoring missed the shifted population: {checked.reason}")
        reports.append(str(checked.report))
        if result is None or result.outcome != "promoted":
            detail = watched.retrain_error or (result.reason if result else "no retrain")
            raise GateRefused(f"the drift retrain did not promote: {detail}")
        versions["retrained"] = str(result.version)
        return (
            f"drift in {', '.join(checked.analysis.drifted_features)}; the retrain pipeline "
            f"trained version {result.version} on {result.dataset} and the gate promoted it "
            f"over version {result.champion}"
        )

    def swap() -> str:
        url, ca = endpoint["url"], str(settings.ca_bundle)
        version = versions["retrained"]
        _wait_for_version(url, ca, version)
        scored = requests.post(
            f"{url}/v1/predict",
            json=contract.example(),
            headers={"Authorization": f"Bearer {client['key']}"},
            verify=ca,
            timeout=10,
        )
        scored.raise_for_status()
        return f"the endpoint swapped to version {scored.json()['model_version']} by itself"

    def collect_reports() -> str:
        fetched.extend(_fetch_reports(settings, project, reports))
        return (
            f"{len(fetched)} HTML reports decrypted from the lake into "
            f"{fetched[0].parent.relative_to(settings.data_dir)}/ "
            f"(`hipaa-mlops monitor reports -p {project}` lists them all)"
        )

    def rotate_key() -> str:
        operator = openbao.login(settings, "operator")
        version = keys.rotate(operator, project, settings.home_region)
        store = objectstore.open_store(settings, project)
        store.get("artifacts", "demo/record-1.json")  # sealed before the rotation
        AuditLog.of(settings, operator).append(ACTOR, "keys.rotate", f"project/{project}")
        return f"project key rotated to version {version}; older objects still open"

    def verify_audit() -> str:
        result = AuditLog.of(settings, openbao.login(settings, "auditor")).verify()
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
        ("score patients, monitor", stable_traffic),
        ("an older population arrives", population_shift),
        ("detect drift, retrain, promote", detect_and_retrain),
        ("serve the new champion", swap),
        ("collect the monitoring reports", collect_reports),
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
    if fetched:
        console.print(f"monitoring reports (HTML): {', '.join(str(p) for p in fetched)}")
    console.print(
        "servers left running (stop with `hipaa-mlops stack down`)"
        if keep
        else "servers stopped (KEEP=1 leaves them running)"
    )


def _wait_for_version(url: str, ca: str, version: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while requests.get(f"{url}/readyz", verify=ca, timeout=10).json().get("model_version") != str(
        version
    ):
        if time.monotonic() > deadline:
            raise Unavailable(f"the endpoint did not load version {version} within {seconds} s")
        time.sleep(0.5)


def _score_cohort(
    settings: Settings,
    url: str,
    contract: contracts.Contract,
    project: str,
    key: str,
    cohort: str,
    rows: int,
    seed: int,
) -> int:
    """Score `rows` new patients of `cohort` as a client would, then report their outcomes
    by the prediction ids the endpoint returned; waits until the capture holds them."""
    store = objectstore.open_store(settings, project)
    patients, _ = synth.synthesize(contract, rows, cohort, seed)
    captured = _captured_rows(store)
    records = inputs.request_records(patients, contract)
    ids: list[str] = []
    for start in range(0, rows, inputs.MAX_BATCH):
        answer = requests.post(
            f"{url}/v1/predict/batch",
            json={"records": records[start : start + inputs.MAX_BATCH]},
            headers={"Authorization": f"Bearer {key}"},
            verify=str(settings.ca_bundle),
            timeout=60,
        )
        answer.raise_for_status()
        ids.extend(answer.json()["prediction_ids"])
    outcomes = pd.DataFrame({"prediction_id": ids, "outcome": patients[contract.label].to_numpy()})
    report_outcomes(settings, project, outcomes, ACTOR)
    deadline = time.monotonic() + 30
    while _captured_rows(store) < captured + rows:
        if time.monotonic() > deadline:
            raise Unavailable("the endpoint did not capture the predictions within 30 s")
        time.sleep(1)
    return rows


def _captured_rows(store: objectstore.ObjectStore) -> int:
    names = store.list(lake.ZONE, lake.CAPTURE)
    return sum(len(pd.read_parquet(io.BytesIO(store.get(lake.ZONE, n)))) for n in names)


def _fetch_reports(settings: Settings, project: str, names: list[str]) -> list[Path]:
    """The run's monitoring reports, decrypted from the lake into the reports directory."""
    store = objectstore.open_store(settings, project)
    into = settings.data_dir / "reports"
    into.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = []
    for name in names:
        short = name.removeprefix(lake.REPORTS)
        write_private(into / short, lake.report(store, short))
        paths.append(into / short)
    return paths

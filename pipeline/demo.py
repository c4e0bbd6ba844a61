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
from dataclasses import dataclass
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
from safeguards import keys, objectstore, openbao
from safeguards.actions import Operator
from safeguards.audit import AuditLog, audit_path
from safeguards.errors import (
    ConfigError,
    GateRefused,
    IntegrityError,
    SafeguardError,
    Unavailable,
)
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


class StepFailed(SafeguardError):
    """A demo step found the platform not doing what the step shows."""


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[], str]


class Demo:
    """The lifecycle on project `project`, step by step: each step a method that uses what
    the earlier ones left on the instance and returns one line of what it showed."""

    def __init__(self, settings: Settings, project: str) -> None:
        # Capture batches are written every two seconds, so monitoring sees traffic at once.
        self.settings = settings.model_copy(update={"serving_capture_seconds": 2.0})
        self.project = project
        self.contract = contracts.parse(contracts.example(BASE_PROJECT))
        self.supervisor = Supervisor(self.settings)
        self.url = self.key = self.candidate = self.retrained = ""
        self.reports: list[str] = []
        self.fetched: list[Path] = []

    def steps(self) -> list[Step]:
        return [
            Step("start the sandbox stack", self.start_stack),
            Step("create the project key", self.create_project),
            Step("store an encrypted object", self.store_object),
            Step("synthesise patients", self.synthesise),
            Step("ingest and de-identify", self.deidentify),
            Step("train and register the model", self.train_model),
            Step("promote it through the gate", self.promote_model),
            Step("serve the champion over HTTPS", self.serve),
            Step("score patients, monitor", self.stable_traffic),
            Step("an older population arrives", self.population_shift),
            Step("detect drift, retrain, promote", self.detect_and_retrain),
            Step("serve the new champion", self.swap),
            Step("collect the monitoring reports", self.collect_reports),
            Step("rotate the project key", self.rotate_key),
            Step("verify the audit chain", self.verify_audit),
        ]

    def operator(self) -> Operator:
        return Operator(self.settings, openbao.login(self.settings, "operator"), ACTOR)

    def start_stack(self) -> str:
        states = self.supervisor.up("sandbox")
        endpoints = sum(s.name.startswith("serving-") for s in states)
        return (
            f"OpenBao {self.settings.openbao_url}, MLflow {registry_url(self.settings)}, the "
            f"worker and {endpoints} endpoint(s) of earlier runs ready over TLS, verified with "
            f"{self.settings.ca_bundle}"
        )

    def create_project(self) -> str:
        ops, project = self.operator(), self.project
        if project in keys.projects(ops.bao):
            raise ConfigError(
                f"project {project} exists but the audit log does not record its creation; "
                "run the demo on a fresh HIPAA_MLOPS_DATA_DIR"
            )
        text = contracts.example(BASE_PROJECT)
        ops.project(
            "projects.create",
            project,
            lambda: projects.create_project(
                ops.bao, self.settings, project, text, reload_lake=lambda: None
            ),
        )
        home = self.settings.home_region
        return (
            f"project '{project}' from contract {self.contract.name} "
            f"({len(self.contract.features)} features), in region {home}: transit key "
            f"{keys.key_name(project, home)}, its own AppRoles, and MLflow users with EDIT "
            f"(training) and READ (serving) on {experiment_name(project)}"
        )

    def store_object(self) -> str:
        bao = openbao.login(self.settings, keys.identity(self.project))
        store = objectstore.store_with(self.settings, bao, self.project, "workload")
        if not isinstance(store, objectstore.LocalObjectStore):
            raise ConfigError("the demo runs on the sandbox profile")
        record = json.dumps({"age": 57, "bmi": 31.2, "hba1c": 6.1}).encode()
        store.put("artifacts", "demo/record-1.json", record)
        if store.get("artifacts", "demo/record-1.json") != record:
            raise StepFailed("the lake returned other bytes than were stored")
        path = store.sealed_path("artifacts", "demo/record-1.json")
        sealed = path.read_bytes()
        path.write_bytes(sealed[:-1] + bytes([sealed[-1] ^ 1]))
        try:
            store.get("artifacts", "demo/record-1.json")
        except IntegrityError:
            pass
        else:
            raise StepFailed("an object with a flipped bit opened")
        finally:
            path.write_bytes(sealed)
        AuditLog.of(self.settings, bao).append(
            ACTOR, "object.put", f"{self.project}-artifacts/demo"
        )
        return f"stored {len(record)} B sealed under a fresh data key; a flipped bit is refused"

    def synthesise(self) -> str:
        meta = DataSteward(self.settings, self.project).synth("patients", rows=20_000, seed=0)
        gate = meta["privacy_gate"]
        return (
            f"{meta['rows']:,} synthetic PHI-shaped patients, privacy gate passed "
            f"(exact copies {gate['exact_copy_rate']:.2%}, DCR ratio {gate['dcr_ratio']:.2f})"
        )

    def deidentify(self) -> str:
        steward = DataSteward(self.settings, self.project)
        steward.ingest("week-1", steward.repo.read("patients"))
        meta = steward.deidentify("week-1", source="week-1")
        return (
            f"Safe Harbor de-identified, versioned with DVC at {meta['revision'][:12]}; "
            f"evidence: datasets/{self.project}/week-1.evidence.html"
        )

    def train_model(self) -> str:
        trained = ModelSteward(self.settings, self.project).train("week-1", actor=ACTOR)
        self.candidate = trained.registered.version
        return (
            f"version {self.candidate} of {model_name(self.project)} registered with "
            f"its lineage; held-out AUROC {trained.evaluation.auroc:.3f}, "
            f"largest subgroup gap {trained.evaluation.max_subgroup_gap:.3f}"
        )

    def promote_model(self) -> str:
        steward = ModelSteward(self.settings, self.project)
        promotion = steward.promote(self.candidate, approver=ACTOR)
        failed = [c for c in promotion.decision.failed if c.name != "beats_champion"]
        if failed:
            reasons = ", ".join(f"{c.name}: {c.reason}" for c in failed)
            raise GateRefused(f"the promotion gate refused the demo's model ({reasons})")
        card = steward.card(self.candidate, self.settings.data_dir / "reports")
        outcome = (
            f"version {promotion.version} is the champion"
            if promotion.decision.approved
            else f"version {promotion.version} held: no better than champion "
            f"{promotion.champion} on the same rows"
        )
        return (
            f"gate ran {len(promotion.decision.checks)} checks; {outcome}; "
            f"card: {card.relative_to(self.settings.data_dir)}"
        )

    def serve(self) -> str:
        champion = ModelSteward(self.settings, self.project).registry.champion()
        if champion is None:
            raise GateRefused(f"project {self.project} has no champion to serve")
        self.supervisor.serve()
        ops = self.operator()
        self.url = serving.project_url(self.settings, ops.bao, self.project)
        url, ca = self.url, str(self.settings.ca_bundle)
        _wait_for_version(url, ca, champion.version)
        _, self.key = ops.create_api_key(self.project, "demo")
        auth = {"Authorization": f"Bearer {self.key}"}
        patient = inputs.request_records(synth.seed_population(1, seed=7), self.contract)[0]
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

    def _score(self, cohort: str, rows: int, seed: int) -> int:
        return _score_cohort(
            self.settings, self.url, self.contract, self.project, self.key, cohort, rows, seed
        )

    def stable_traffic(self) -> str:
        scored = self._score("baseline", 1500, 101)
        watched = watch(self.settings, self.project, ACTOR)
        checked = watched.checked
        if checked.analysis is None or checked.analysis.drifted or watched.retrained:
            raise StepFailed(f"monitoring of the training population: {checked.reason}")
        self.reports.append(str(checked.report))
        a = checked.analysis
        realised = a.realised_auroc.value if a.realised_auroc else float("nan")
        return (
            f"{scored:,} patients like the training population scored, outcomes reported; "
            f"no drift ({len(a.drifted_features)} of 12 features outside their band), "
            f"estimated AUROC {a.estimated_auroc.value:.3f}, realised {realised:.3f}"
        )

    def population_shift(self) -> str:
        steward = DataSteward(self.settings, self.project)
        steward.synth("patients-week-2", rows=20_000, cohort=SHIFTED, seed=1)
        steward.ingest("week-2", steward.repo.read("patients-week-2"))
        meta = steward.deidentify("week-2", source="week-2")
        scored = self._score(SHIFTED, 2500, 102)
        return (
            f"a new week of {meta['rows']:,} {SHIFTED} patients de-identified and versioned "
            f"at {meta['revision'][:12]}; {scored:,} of them scored"
        )

    def detect_and_retrain(self) -> str:
        watched = watch(self.settings, self.project, ACTOR)
        checked, result = watched.checked, watched.retrained
        if checked.analysis is None or not checked.analysis.drifted:
            raise StepFailed(f"monitoring missed the shifted population: {checked.reason}")
        self.reports.append(str(checked.report))
        if result is None or result.outcome != "promoted":
            detail = watched.retrain_error or (result.reason if result else "no retrain")
            raise GateRefused(f"the drift retrain did not promote: {detail}")
        self.retrained = str(result.version)
        return (
            f"drift in {', '.join(checked.analysis.drifted_features)}; the retrain pipeline "
            f"trained version {result.version} on {result.dataset} and the gate promoted it "
            f"over version {result.champion}"
        )

    def swap(self) -> str:
        ca = str(self.settings.ca_bundle)
        _wait_for_version(self.url, ca, self.retrained)
        scored = requests.post(
            f"{self.url}/v1/predict",
            json=self.contract.example(),
            headers={"Authorization": f"Bearer {self.key}"},
            verify=ca,
            timeout=10,
        )
        if scored.status_code != 200:
            raise StepFailed(f"the new champion answered {scored.status_code}")
        return f"the endpoint swapped to version {scored.json()['model_version']} by itself"

    def collect_reports(self) -> str:
        self.fetched = _fetch_reports(self.settings, self.project, self.reports)
        return (
            f"{len(self.fetched)} HTML reports decrypted from the lake into "
            f"{self.fetched[0].parent.relative_to(self.settings.data_dir)}/ "
            f"(`hipaa-mlops monitor reports -p {self.project}` lists them all)"
        )

    def rotate_key(self) -> str:
        version = self.operator().rotate_key(self.project, self.settings.home_region)
        store = objectstore.open_store(self.settings, self.project)
        store.get("artifacts", "demo/record-1.json")  # sealed before the rotation
        return f"project key rotated to version {version}; older objects still open"

    def verify_audit(self) -> str:
        result = AuditLog.of(self.settings, openbao.login(self.settings, "auditor")).verify()
        return f"audit chain verified by the auditor identity: {result.entries} entries"


def run_demo(settings: Settings, console: Console, keep: bool = False) -> None:
    demo = Demo(settings, _next_project(audit_path(settings)))
    steps = demo.steps()
    results: list[tuple[str, str]] = []
    started = time.monotonic()
    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("demo", total=len(steps))
            for step in steps:
                progress.update(task, description=step.title)
                results.append((step.title, step.run()))
                progress.advance(task)
    finally:
        if not keep:
            demo.supervisor.down()
    table = Table("step", "result", title=f"hipaa-mlops demo ({time.monotonic() - started:.1f} s)")
    for title, outcome in results:
        table.add_row(title, outcome)
    console.print(table)
    console.print(f"data directory: {settings.data_dir}  audit log: {audit_path(settings)}")
    if demo.fetched:
        console.print(f"monitoring reports (HTML): {', '.join(str(p) for p in demo.fetched)}")
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

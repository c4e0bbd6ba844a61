"""FAULTS, for `make hardening`: kill -9 of each server at a random point of a retrain
under load, then the invariants.

Each round makes a newer de-identified dataset version, starts `hipaa-mlops retrain` as a
person would (its own process) while the endpoint takes predictions and readiness probes,
and at a random point of the retrain (seeded; drawn from the duration of a first round
without a fault) sends SIGKILL to the process group of one server: OpenBao, every
region's SeaweedFS, PostgreSQL, MLflow, the endpoint, the monitoring worker, or the
retrain itself. After the retrain has ended (or at least `OUTAGE` seconds), `stack up`
starts what is down and the retrain runs again. Then, counted per round:

- **lost or half-visible**: an object listed before the round that is gone after it, an
  object listed that cannot be read in full, a dataset version that does not read back
  against its content hash;
- **champion**: the alias names a version the gate approved, the last of the champion
  history, at most one version per dataset version, and the endpoint serves it;
- **audit**: the log verifies as the auditor, every line an entry;
- **unclear errors**: a retrain that ended with anything but success or one `error:`
  line of ours (a traceback, or an unexpected error of ours, is unclear); an endpoint
  answer of 500, or an error that is not one line of JSON;
- **readiness**: `/readyz` answering ready while OpenBao was down (after the probe's
  cache of 2 s and its timeout);
- **recovery**: the seconds from `stack up` until the endpoint is ready again;
- **capture**: every prediction the load was answered is in a capture batch or in the
  endpoint's dropped-records counter (not for the endpoint's own kill, which takes its
  buffer with it: those rows are the figure "capture rows lost with the endpoint").
"""

from __future__ import annotations

import io
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import requests
from botocore.exceptions import BotoCoreError, ClientError

from bench.serving import RECORD
from pipeline.retrain import retrain
from pipeline.training import DECISION_TAG, ModelSteward
from safeguards import openbao
from safeguards.audit import AuditLog, audit_path
from safeguards.errors import SafeguardError
from safeguards.objectstore import bucket_name
from safeguards.settings import Settings
from sandbox.steps import DataSteward
from services import topology
from services.launch import environment
from services.seaweedfs import launcher as seaweedfs
from services.supervisor import Supervisor

TARGETS = ("openbao", "seaweedfs", "postgres", "mlflow", "serving", "monitoring", "retrain")
ACTOR = "pipeline:hardening"
OUTAGE = 10.0  # the least time a server stays down
GRACE = 5.0  # the endpoint's OpenBao probe: a 2 s cache and a 2 s timeout
_DROPPED = re.compile(rb"^serving_capture_dropped_records_total (\S+)$", re.MULTILINE)


@dataclass
class Load:
    """Predictions and readiness probes against the endpoint, from two threads, until
    stopped: each answer kept with its time, status (0: no connection) and whether an
    error was clear."""

    url: str
    key: str
    ca: str
    answers: list[tuple[float, str, int, bool]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.verify, session.trust_env = self.ca, False
        return session

    def _keep(self, kind: str, response: requests.Response | None) -> None:
        status = 0 if response is None else response.status_code
        clear = True
        if response is not None and status >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            message = body.get("error") if isinstance(body, dict) else None
            ready_probe = kind == "ready" and isinstance(body, dict) and "unavailable" in body
            clear = status != 500 and (
                ready_probe or (isinstance(message, str) and "\n" not in message)
            )
        self.answers.append((time.monotonic(), kind, status, clear))

    def _predict(self) -> None:
        with self._session() as session:
            while not self._stop.is_set():
                try:
                    response = session.post(
                        f"{self.url}/v1/predict", json=RECORD,
                        headers={"Authorization": f"Bearer {self.key}"}, timeout=10,
                    )  # fmt: skip
                except requests.RequestException:
                    response = None
                    time.sleep(0.2)
                self._keep("predict", response)
                if response is not None and response.status_code == 200:
                    self.ids.append(response.json()["prediction_id"])
                time.sleep(0.02)

    def _ready(self) -> None:
        with self._session() as session:
            while not self._stop.wait(0.5):
                try:
                    response = session.get(f"{self.url}/readyz", timeout=10)
                except requests.RequestException:
                    response = None
                self._keep("ready", response)

    def __enter__(self) -> Load:
        self._threads = [
            threading.Thread(target=t, daemon=True) for t in (self._predict, self._ready)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


@dataclass
class Round:
    target: str
    retrain_seconds: float = 0.0
    killed_during_retrain: bool = False
    recovery_seconds: float = 0.0
    figures: Counter[str] = field(default_factory=Counter)


class Faults:
    def __init__(self, settings: Settings, project: str, url: str, key: str, seed: int) -> None:
        self.settings, self.project, self.url, self.key = settings, project, url, key
        self.supervisor = Supervisor(settings)
        self.random = random.Random(seed)
        self.rounds = 0

    # -- the lake, the datasets, the registry ----------------------------------------------

    def _lakes(self) -> list[Any]:
        # Logged in afresh: OpenBao may have been restarted since.
        operator = openbao.login(self.settings, "operator")
        return [
            seaweedfs.admin_client(seaweedfs.in_region(self.settings, r), operator)
            for r in self.settings.region_names
        ]

    def objects(self) -> dict[tuple[int, str, str], str]:
        """Every object of every lake: (lake, bucket, key) to its ETag."""
        found = {}
        for n, client in enumerate(self._lakes()):
            for bucket in client.list_buckets().get("Buckets", []):
                pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"])
                for page in pages:
                    for obj in page.get("Contents", []):
                        found[n, bucket["Name"], obj["Key"]] = obj["ETag"]
        return found

    def unreadable(self, objects: dict[tuple[int, str, str], str]) -> int:
        """Objects listed that do not read back in full."""
        lakes, bad = self._lakes(), 0
        for lake, bucket, key in objects:
            try:
                got = lakes[lake].get_object(Bucket=bucket, Key=key)
                bad += len(got["Body"].read()) != got["ContentLength"]
            except (BotoCoreError, ClientError):
                bad += 1
        return bad

    def datasets_unreadable(self) -> int:
        data = DataSteward(self.settings, self.project)
        bad = 0
        for version in data.repo.versions():
            try:
                data.repo.read(version["name"], version["revision"])
            except SafeguardError:
                bad += 1
        return bad

    def champion_inconsistencies(self) -> int:
        registry = ModelSteward(self.settings, self.project).registry
        champion = registry.champion()
        if champion is None:
            return 1
        per_revision = Counter(v.tags.get("dataset.revision") for v in registry.versions())
        problems = int(champion.tags.get(DECISION_TAG) != "approved")
        problems += registry.history()[-1:] != [champion.version]
        problems += sum(n - 1 for n in per_revision.values())
        deadline = time.monotonic() + 60
        while self._served() != champion.version:
            if time.monotonic() > deadline:
                return problems + 1
            time.sleep(0.5)
        return problems

    def _served(self) -> str | None:
        try:
            response = requests.get(
                f"{self.url}/readyz", verify=str(self.settings.ca_bundle), timeout=5
            )
        except requests.RequestException:
            return None
        return response.json().get("model_version") if response.status_code == 200 else None

    def audit_problems(self) -> int:
        path = audit_path(self.settings)
        try:
            verified = AuditLog.of(self.settings, openbao.login(self.settings, "auditor")).verify()
        except SafeguardError:
            return 1
        return int(verified.entries != len(path.read_bytes().splitlines()))

    def captured(self) -> set[str]:
        """The prediction ids of every capture batch in the project's lakes."""
        ids: set[str] = set()
        bucket = bucket_name(self.project, "artifacts")
        for client in self._lakes():
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix="capture/"
            ):
                for obj in page.get("Contents", []):
                    body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                    ids |= set(pd.read_parquet(io.BytesIO(body))["prediction_id"])
        return ids

    def dropped(self) -> float:
        response = requests.get(
            f"{self.url}/metrics", headers={"Authorization": f"Bearer {self.key}"},
            verify=str(self.settings.ca_bundle), timeout=10,
        )  # fmt: skip
        return sum(float(v) for v in _DROPPED.findall(response.content))

    # -- one round -----------------------------------------------------------------------------

    def _newer_dataset(self) -> None:
        self.rounds += 1
        data = DataSteward(self.settings, self.project)
        name = f"fault-{self.rounds}"
        data.synth(name, rows=6000, cohort="older", seed=700 + self.rounds)
        data.ingest(name, data.repo.read(name))
        data.deidentify(name, source=name)

    def _pids(self, target: str) -> list[int]:
        names = self.supervisor.names(topology.service(target))
        return [pid for pid in map(self.supervisor.pid, names) if pid is not None]

    def _retrain(self) -> subprocess.Popen[str]:
        env = {
            **environment(self.settings),
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/"),
        }
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "retrain", "-p", self.project],
            env={**env, "HIPAA_MLOPS_LOG_LEVEL": "WARNING"},
            cwd=self.settings.data_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip

    def run(self, target: str | None, kill_at: float = 0.0) -> Round:
        """One round; `target` None is the round without a fault, which times the retrain."""
        result = Round(target or "none")
        result.figures.update({"retrains hung": 0, "reruns failed": 0})
        self._newer_dataset()
        before = self.objects()
        dropped_before = self.dropped()
        with Load(self.url, self.key, str(self.settings.ca_bundle)) as load:
            started = time.monotonic()
            process = self._retrain()
            killed = restarted = started
            if target is not None:
                while process.poll() is None and time.monotonic() - started < kill_at:
                    time.sleep(0.05)
                result.killed_during_retrain = process.poll() is None
                pids = [process.pid] if target == "retrain" else self._pids(target)
                for pid in pids:
                    os.killpg(pid, signal.SIGKILL)
                killed = time.monotonic()
            try:
                _, stderr = process.communicate(timeout=600)
            except subprocess.TimeoutExpired:
                process.kill()
                _, stderr = process.communicate()
                result.figures["retrains hung"] += 1
            result.retrain_seconds = time.monotonic() - started
            if target != "retrain":
                result.figures["unclear errors"] += not _clear(process.returncode, stderr)
                result.figures["retrains ended by the fault"] += process.returncode != 0
            if target is not None:
                time.sleep(max(0.0, killed + OUTAGE - time.monotonic()))
                restarted = time.monotonic()
                self.supervisor.up(self.settings.profile, timeout=120)
                deadline = time.monotonic() + 120
                while self._served() is None and time.monotonic() < deadline:
                    time.sleep(0.2)
                result.recovery_seconds = time.monotonic() - restarted
                result.figures["not recovered"] += self._served() is None
            time.sleep(self.settings.serving_capture_seconds + 1)
        # The rerun: what an operator (or the next schedule) does after the fault.
        try:
            retrain(self.settings, self.project, "manual", ACTOR)
        except SafeguardError:
            result.figures["reruns failed"] += 1
        time.sleep(self.settings.serving_capture_seconds + 1)
        after = self.objects()
        result.figures["objects lost"] = sum(k not in after for k in before)
        result.figures["objects half-visible"] = self.unreadable(after)
        result.figures["dataset versions unreadable"] = self.datasets_unreadable()
        result.figures["champion inconsistent"] = self.champion_inconsistencies()
        result.figures["audit chain invalid"] = self.audit_problems()
        down = [a for a in load.answers if killed + GRACE <= a[0] <= restarted]
        result.figures["unclear errors"] += sum(not clear for *_, clear in load.answers)
        if target == "openbao":
            probes = [status for _, kind, status, _ in down if kind == "ready"]
            result.figures["readiness probes while OpenBao was down"] = len(probes)
            result.figures["ready while OpenBao was down"] = probes.count(200)
        scored = set(load.ids)
        lost = len(scored - self.captured())
        if target == "serving":
            result.figures["capture rows lost with the endpoint"] = lost
        else:
            dropped = self.dropped() - dropped_before
            result.figures["capture drops counted"] = int(dropped)
            result.figures["capture rows unaccounted"] = max(0, lost - int(dropped))
        result.figures["predictions"] = len(scored)
        return result

    def all(self) -> list[Round]:
        """The round without a fault, then one per target at a random point of the retrain."""
        rounds = [self.run(None)]
        baseline = rounds[0].retrain_seconds
        for target in TARGETS:
            rounds.append(self.run(target, self.random.uniform(0.05, 0.95) * baseline))
        return rounds


def _clear(code: int | None, stderr: str) -> bool:
    """A retrain's end is clear: success, or exit 1 with one `error:` line of ours (the
    rest of its stderr is JSON log lines); never a traceback or an unexpected error."""
    plain = [line for line in stderr.splitlines() if line and not line.startswith("{")]
    if code == 0:
        return not plain
    return (
        code == 1
        and len(plain) == 1
        and plain[0].startswith("error:")
        and "unexpected" not in plain[0]
    )


def figures(rounds: list[Round]) -> dict[str, float]:
    """The table's rows: every round's counts summed, how many kills landed inside a
    retrain, and each server's recovery."""
    total: Counter[str] = Counter()
    for r in rounds:
        total.update(r.figures)
    return {
        "rounds (one per server, and one without a fault)": len(rounds),
        "kills inside a running retrain": sum(r.killed_during_retrain for r in rounds),
        **dict(sorted(total.items())),
        **{f"recovery s: {r.target}": round(r.recovery_seconds, 1) for r in rounds[1:]},
    }

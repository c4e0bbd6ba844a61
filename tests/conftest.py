"""Shared fixtures: one real sandbox stack per test session, started natively."""

from __future__ import annotations

import io
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import hvac
import pytest

import contract as contracts
from pipeline import projects
from safeguards import keys, logs, openbao
from safeguards import projects as tenancy
from safeguards.settings import LAKE_PORTS, SERVING_PORTS, SERVING_SLOTS, Settings
from sandbox.steps import DataSteward
from services import topology
from services.mlflow import launcher as mlflow
from services.seaweedfs import launcher as seaweedfs
from services.serving import launcher as serving
from services.supervisor import Supervisor
from services.topology import Instance

# Ports a session's stack may use: its servers', and endpoints for this many projects.
ENDPOINT_SLOTS = 60
# The session's stack keeps data in two regions, each with its own lake and keys; projects
# live at home unless a test says otherwise.
# What the stack creates is its user's alone, as under every command of ours (the CLI
# sets the same umask), whichever process starts it.
os.umask(0o077)
REGIONS = ("us-east", "eu-central")
HOME = REGIONS[0]


def wait_until(
    condition: Callable[[], bool], seconds: float, what: str, every: float = 0.2
) -> None:
    """Poll `condition` every `every` seconds until it holds; fail naming `what` after
    `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"{what} did not happen within {seconds:.0f} s")


def free_port_base(span: int = SERVING_PORTS + ENDPOINT_SLOTS) -> int:
    """A port with `span` free ports above it on loopback (servers bind base .. base + 16,
    endpoints base + 20 and up), and the second region's lake's block free too. Below the
    kernel's ephemeral range, so that no outgoing connection takes a server's port while
    the server restarts."""
    ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    region = SERVING_PORTS + SERVING_SLOTS
    for _ in range(50):
        base = 10_000 + secrets.randbelow(ephemeral - region - len(LAKE_PORTS) - 10_000)
        wanted = [*range(base, base + span), *range(base + region, base + region + len(LAKE_PORTS))]
        try:
            for port in wanted:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range on loopback")


def cli(
    settings: Settings,
    *args: str,
    ok: bool = True,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`hipaa-mlops ARGS` as a user runs it against the stack of `settings` (with `env` on
    top of its settings); asserts it succeeds (or, `ok=False`, fails)."""
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "HIPAA_MLOPS_DATA_DIR": str(settings.data_dir),
        "HIPAA_MLOPS_PORT_BASE": str(settings.port_base),
        "HIPAA_MLOPS_PROFILE": settings.profile,
        "HIPAA_MLOPS_REGIONS": settings.regions,
        "COLUMNS": "200",
        **(env or {}),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (result.returncode == 0) == ok, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def settings_for(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        port_base=free_port_base(),
        profile="sandbox",
        regions=",".join(REGIONS),
    )


@pytest.fixture(scope="session", autouse=True)
def _commit_in_the_results(record_testsuite_property: Callable[[str, object], None]) -> None:
    """The commit the suite ran at, in its JUnit file (`hipaa-mlops evidence` reports it)."""
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        check=False,
    )
    record_testsuite_property("commit", done.stdout.strip() or "unknown")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A running, bootstrapped sandbox stack; stopped when the session ends."""
    settings = settings_for(tmp_path_factory.mktemp("stack"))
    supervisor = Supervisor(settings)
    try:
        supervisor.up("sandbox")
        yield settings
    finally:
        supervisor.down()


@pytest.fixture(scope="session")
def operator(stack: Settings) -> hvac.Client:
    return openbao.login(stack, "operator")


@pytest.fixture
def project_pair(stack: Settings, operator: hvac.Client) -> tuple[str, str]:
    """Two fresh projects with their own keys and identities."""
    names = tuple(f"p{uuid.uuid4().hex[:10]}" for _ in range(2))
    for name in names:
        keys.create_project(operator, stack, name)
    return names[0], names[1]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged through the configured PHI-safe handler during the test."""
    stream = io.StringIO()
    handler = logs.configure("DEBUG", stream)
    yield stream
    logging.getLogger().removeHandler(handler)


@pytest.fixture(scope="session")
def lake(stack: Settings) -> Settings:
    """The same stack with a lake per region started too (profile `stack`); stopped with
    `stack`."""
    Supervisor(stack).up("stack", timeout=120)
    return stack.model_copy(update={"profile": "stack"})


@pytest.fixture(scope="module")
def tracking(stack: Settings, lake: Settings) -> Iterator[Settings]:
    """MLflow restarted with the stack's settings (PostgreSQL for runs, models, users and
    permissions); the
    session started it for the sandbox. The sandbox's MLflow is back when the module ends."""
    Supervisor(lake).stop("mlflow")
    try:
        Supervisor(lake).up("stack", timeout=180)
        yield lake
    finally:
        Supervisor(lake).stop("mlflow")
        Supervisor(stack).up("sandbox")


class LakeStack:
    """The lake as `projects create|suspend|resume|delete` drive it, where no endpoint
    runs: SeaweedFS re-reads its identities for real; there is nothing to serve."""

    def __init__(self, lake: Settings) -> None:
        self.supervisor = Supervisor(lake)

    def reload(self, name: str) -> None:
        self.supervisor.reload(name)

    def serve(self) -> None:
        """No endpoint runs beside the lake in these tests."""

    def create(
        self, operator: hvac.Client, project: str, regions: Sequence[str] | None = None
    ) -> None:
        """`projects create PROJECT --contract diabetes [--region R ...]` on the lake."""
        settings = self.supervisor.settings
        projects.create_project(
            operator,
            settings,
            project,
            contracts.example("diabetes"),
            lambda: projects.reload_lakes(settings, self),
            regions,
        )


def provision(settings: Settings, operator: hvac.Client, project: str) -> None:
    """Provision `project` on the running lake, reloading the lakes as `projects create`
    does."""
    seaweedfs.provision_project(
        settings, operator, project, lambda: projects.reload_lakes(settings, Supervisor(settings))
    )


def contract_project(
    settings: Settings, operator: hvac.Client, project: str, contract: str = "diabetes"
) -> None:
    """A project's keys, identities, MLflow users and contract (on the lake, its buckets
    too), without the record `projects create` writes: the stack does not serve it."""
    if settings.profile == "stack":
        provision(settings, operator, project)
    else:
        keys.create_project(operator, settings, project)
    mlflow.provision_project(settings, operator, project)
    contracts.store(operator, project, contracts.example(contract))


def deidentified_project(
    settings: Settings,
    operator: hvac.Client,
    rows: int = 6000,
    seed: int = 3,
    project: str | None = None,
    served: bool = False,
) -> str:
    """A project of the diabetes contract with a de-identified dataset `clean`: synthetic
    `patients`, ingested as `raw`, de-identified. `served`: made by `projects create`, so
    the stack serves it once it has a champion."""
    project = project or f"p{uuid.uuid4().hex[:10]}"
    if served:
        reload = lambda: projects.reload_lakes(settings, Supervisor(settings))  # noqa: E731
        projects.create_project(
            operator, settings, project, contracts.example("diabetes"), reload_lake=reload
        )
    else:
        contract_project(settings, operator, project)
    steward = DataSteward(settings, project)
    steward.synth("patients", rows=rows, seed=seed)
    steward.ingest("raw", steward.repo.read("patients"))
    steward.deidentify("clean", source="raw")
    return project


def endpoint(settings: Settings, operator: hvac.Client, project: str) -> Settings:
    """`settings` as the endpoint of `project` (a project `projects create` made) has them."""
    record = tenancy.read(operator, project)
    assert record is not None and record.slot is not None
    return serving.settings_of(settings, record)


def endpoint_url(settings: Settings, operator: hvac.Client, project: str) -> str:
    return serving.project_url(settings, operator, project)


@pytest.fixture(scope="session")
def endpoint_project(stack: Settings, operator: hvac.Client) -> Iterator[Settings]:
    """The settings of a project's endpoint: the project made by `projects create`, without
    a champion yet, so the stack does not start it by itself (see `running_endpoint`)."""
    project = f"e{uuid.uuid4().hex[:10]}"
    projects.create_project(operator, stack, project, contracts.example("diabetes"), lambda: None)
    instance = endpoint(stack, operator, project)
    try:
        yield instance
    finally:
        Supervisor(instance).stop(f"serving-{project}")


@pytest.fixture(scope="module")
def running_endpoint(endpoint_project: Settings) -> Settings:
    """That endpoint, running (started again if an earlier module stopped the stack)."""
    Supervisor(endpoint_project).start(Instance(topology.service("serving"), endpoint_project))
    return endpoint_project


@pytest.fixture
def lake_pair(lake: Settings, operator: hvac.Client) -> tuple[str, str]:
    """Two fresh projects with S3 identities and SSE-KMS buckets."""
    names = tuple(f"l{uuid.uuid4().hex[:10]}" for _ in range(2))
    for name in names:
        provision(lake, operator, name)
    return names[0], names[1]

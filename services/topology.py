"""The stack's topology, described once.

Every server the stack runs: which profiles include it, its port (relative to the
settings' ``port_base``), its health check over verified TLS (HTTPS, or the server's own
protocol), and its four steps:

- ``provision``, as the operator: certificates, generated secrets, configuration files;
- ``prepare``, beside the server, without the operator: its command line and environment;
- ``on_start``, beside the server once it answers (unseal, database roles);
- ``after_start``, as the operator once it answers (the lake's own buckets).

A server marked ``per_project`` (the endpoint) runs once for every served project, each
instance with its project and slot in its own settings (`instances`); one marked
``per_region`` (the lake) runs once for every region of the platform, each instance with
its region in its settings. The native
supervisor runs all four steps in this order, instance by instance, and stops them in
reverse. The compose stack (`services.compose`) is generated from this table: each
server is a container running ``prepare`` and ``on_start``; ``provision`` runs in a
one-shot init job per server, the only containers that hold the operator's credentials,
and ``after_start`` in a one-shot job once the server is healthy.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import hvac

from safeguards.errors import ConfigError
from safeguards.projects import Project
from safeguards.settings import Settings
from services.launch import Launch
from services.mlflow import launcher as mlflow
from services.monitoring import launcher as monitoring
from services.openbao import launcher as openbao
from services.postgres import launcher as postgres
from services.prometheus import launcher as prometheus
from services.seaweedfs import launcher as seaweedfs
from services.serving import launcher as serving


@dataclass(frozen=True, kw_only=True)
class Service:
    name: str
    profiles: frozenset[str]
    health_path: str = ""
    # Statuses that mean "the server answers" (it may still need `after_start`).
    alive_statuses: frozenset[int] = frozenset({200})
    # A server that speaks no HTTP, or wants credentials even for its health check: its
    # own check, true when it answers, replaces the GET.
    probe: Callable[[Settings], bool] | None = None
    # What a container's own health check accepts (it holds no credentials to ask with).
    ready_statuses: frozenset[int] = frozenset({200})
    scheme: str = "https"
    provision: Callable[[Settings, hvac.Client], None] | None = None
    prepare: Callable[[Settings], Launch]
    on_start: Callable[[Settings], None] | None = None
    # In a long-running container, `on_start` again this often (OpenBao's renews the
    # secret ids past half their life; the native stack renews them at `stack up`).
    repeat_on_start_hours: float | None = None
    after_start: Callable[[Settings, hvac.Client], None] | None = None
    # Sent to the process group by `down`; it must stop the server cleanly within seconds.
    stop_signal: signal.Signals = signal.SIGTERM
    # The image its container runs, and the compose networks it is on: `data` is
    # internal; a service on `edge` too has its port published on the host's loopback.
    image: str = "app"
    networks: tuple[str, ...] = ("edge", "data")
    # The servers it talks to, which must be ready before it starts (compose's
    # `depends_on`; the native supervisor starts servers in this table's order).
    needs: tuple[str, ...] = ("openbao",)
    # One instance per served project (`instances`), each with its own port and volume.
    per_project: bool = False
    # One instance per region of the platform, each with its own ports and volume.
    per_region: bool = False

    def port(self, settings: Settings) -> int:
        return settings.port(self.name)

    def health_url(self, settings: Settings) -> str:
        return f"{self.scheme}://{settings.host}:{self.port(settings)}{self.health_path}"


SERVICES: tuple[Service, ...] = (
    Service(
        name="openbao",
        profiles=frozenset({"sandbox", "stack"}),
        # 200 active, 429 standby, 501 uninitialised, 503 sealed: all mean "listening".
        health_path="/v1/sys/health",
        alive_statuses=frozenset({200, 429, 501, 503}),
        prepare=openbao.prepare,
        on_start=openbao.on_start,
        repeat_on_start_hours=6.0,
        needs=(),
    ),
    Service(
        name="seaweedfs",
        profiles=frozenset({"stack"}),
        # The S3 gateway's liveness; after_start then waits for a real SSE-KMS write.
        health_path="/healthz",
        alive_statuses=frozenset({200}),
        provision=seaweedfs.provision,
        prepare=seaweedfs.prepare,
        after_start=seaweedfs.after_start,
        image="seaweedfs",
        per_region=True,
    ),
    Service(
        name="postgres",
        profiles=frozenset({"stack"}),
        probe=postgres.ready,
        scheme="postgresql",
        provision=postgres.provision,
        prepare=postgres.prepare,
        on_start=postgres.on_start,
        image="postgres",
        networks=("data",),
        # SIGTERM waits for every client to leave; SIGINT ends their sessions, checkpoints.
        stop_signal=signal.SIGINT,
    ),
    Service(
        name="mlflow",
        profiles=frozenset({"sandbox", "stack"}),
        health_path="/health",
        alive_statuses=frozenset({200}),
        provision=mlflow.provision,
        prepare=mlflow.prepare,
        needs=("openbao", "seaweedfs", "postgres"),
    ),
    Service(
        name="serving",
        profiles=frozenset({"sandbox", "stack"}),
        # Alive; `/readyz` tells whether the champion is loaded.
        health_path="/healthz",
        alive_statuses=frozenset({200}),
        provision=serving.provision,
        prepare=serving.prepare,
        needs=("openbao", "seaweedfs", "mlflow"),
        per_project=True,
    ),
    Service(
        name="monitoring",
        profiles=frozenset({"sandbox", "stack"}),
        health_path="/healthz",
        alive_statuses=frozenset({200}),
        provision=monitoring.provision,
        prepare=monitoring.prepare,
        # Prometheus scrapes it; nobody on the host needs it.
        networks=("data",),
        needs=("openbao", "seaweedfs", "mlflow"),
    ),
    Service(
        name="prometheus",
        profiles=frozenset({"stack"}),
        # Every path asks for the password, this one too: an anonymous GET gets 401 even
        # while storage loads, so the probe asks as Prometheus's user.
        health_path="/-/ready",
        probe=prometheus.ready,
        # Asked without the password, a listening Prometheus answers 401.
        ready_statuses=frozenset({200, 401}),
        provision=prometheus.provision,
        prepare=prometheus.prepare,
        image="prometheus",
        # Its provision step asks MLflow which projects have a champion, to scrape them.
        needs=("openbao", "mlflow"),
    ),
)


@dataclass(frozen=True)
class Instance:
    """A server as it runs: a service, and the settings of its process (for an endpoint,
    its project and slot)."""

    service: Service
    settings: Settings

    @property
    def name(self) -> str:
        if self.service.per_project:
            return f"{self.service.name}-{self.settings.serving_project}"
        if self.service.per_region:
            return self.settings.lake_name(self.settings.lake_region)
        return self.service.name

    def health_url(self) -> str:
        return self.service.health_url(self.settings)


def instances(service: Service, settings: Settings, served: Sequence[Project]) -> list[Instance]:
    """`service`'s instances: one per served project if it is per-project, one per region
    if it is per-region, else itself."""
    if service.per_region:
        return [
            Instance(service, settings.model_copy(update={"region": region}))
            for region in settings.region_names
        ]
    if not service.per_project:
        return [Instance(service, settings)]
    return [Instance(service, serving.settings_of(settings, p)) for p in served]


def services_for(profile: str) -> list[Service]:
    """The servers of `profile`, in start order; an unknown profile is refused, never an
    empty stack."""
    found = [s for s in SERVICES if profile in s.profiles]
    if not found:
        raise ConfigError("the profile is sandbox or stack")
    return found


def service(name: str) -> Service:
    """The service named `name`, or of which `name` is an instance (``serving-<project>``,
    ``seaweedfs-<region>``)."""
    for s in SERVICES:
        if name == s.name or ((s.per_project or s.per_region) and name.startswith(f"{s.name}-")):
            return s
    raise ConfigError(f"no server is named '{name}'")

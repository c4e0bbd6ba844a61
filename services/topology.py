"""The stack's topology, described once.

Every server the stack runs: which profiles include it, its port (relative to the
settings' ``port_base``), its health check over verified TLS (HTTPS, or the server's own
protocol), how to prepare, start and stop it natively, and what to do once it answers.
The native supervisor starts services in this order and stops them in reverse; the
compose stack is checked against this table.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass

from safeguards.settings import PORT_OFFSETS, Settings
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
    port_offset: int
    health_path: str = ""
    # Statuses that mean "the server answers" (it may still need `after_start`).
    alive_statuses: frozenset[int] = frozenset({200})
    # A server that speaks no HTTP, or wants credentials even for its health check: its
    # own check, true when it answers, replaces the GET.
    probe: Callable[[Settings], bool] | None = None
    scheme: str = "https"
    prepare: Callable[[Settings], Launch]
    after_start: Callable[[Settings], None] | None = None
    # Sent to the process group by `down`; it must stop the server cleanly within seconds.
    stop_signal: signal.Signals = signal.SIGTERM

    def port(self, settings: Settings) -> int:
        return settings.port_base + self.port_offset

    def health_url(self, settings: Settings) -> str:
        return f"{self.scheme}://{settings.host}:{self.port(settings)}{self.health_path}"


SERVICES: tuple[Service, ...] = (
    Service(
        name="openbao",
        profiles=frozenset({"sandbox", "stack"}),
        port_offset=PORT_OFFSETS["openbao"],
        # 200 active, 429 standby, 501 uninitialised, 503 sealed: all mean "listening".
        health_path="/v1/sys/health",
        alive_statuses=frozenset({200, 429, 501, 503}),
        prepare=openbao.prepare,
        after_start=openbao.after_start,
    ),
    Service(
        name="seaweedfs",
        profiles=frozenset({"stack"}),
        port_offset=PORT_OFFSETS["seaweedfs"],
        # The S3 gateway's liveness; after_start then waits for a real SSE-KMS write.
        health_path="/healthz",
        alive_statuses=frozenset({200}),
        prepare=seaweedfs.prepare,
        after_start=seaweedfs.after_start,
    ),
    Service(
        name="postgres",
        profiles=frozenset({"stack"}),
        port_offset=PORT_OFFSETS["postgres"],
        probe=postgres.ready,
        scheme="postgresql",
        prepare=postgres.prepare,
        after_start=postgres.after_start,
        # SIGTERM waits for every client to leave; SIGINT ends their sessions, checkpoints.
        stop_signal=signal.SIGINT,
    ),
    Service(
        name="mlflow",
        profiles=frozenset({"sandbox", "stack"}),
        port_offset=PORT_OFFSETS["mlflow"],
        health_path="/health",
        alive_statuses=frozenset({200}),
        prepare=mlflow.prepare,
    ),
    Service(
        name="serving",
        profiles=frozenset({"sandbox", "stack"}),
        port_offset=PORT_OFFSETS["serving"],
        # Alive; `/readyz` tells whether a champion is loaded (none on a fresh stack).
        health_path="/healthz",
        alive_statuses=frozenset({200}),
        prepare=serving.prepare,
    ),
    Service(
        name="monitoring",
        profiles=frozenset({"sandbox", "stack"}),
        port_offset=PORT_OFFSETS["monitoring"],
        health_path="/healthz",
        alive_statuses=frozenset({200}),
        prepare=monitoring.prepare,
    ),
    Service(
        name="prometheus",
        profiles=frozenset({"stack"}),
        port_offset=PORT_OFFSETS["prometheus"],
        # Every path asks for the password, this one too: an anonymous GET gets 401 even
        # while storage loads, so the probe asks as Prometheus's user.
        health_path="/-/ready",
        probe=prometheus.ready,
        prepare=prometheus.prepare,
    ),
)


def services_for(profile: str) -> list[Service]:
    return [s for s in SERVICES if profile in s.profiles]

"""A small native supervisor for the stack's servers.

`up` provisions each server of a profile as the operator, starts it as its own process
group (so it outlives the command that started it), records it in a pid file, waits for
its health check over verified TLS and runs its post-start steps. The endpoint runs once
for every project with a champion (`serving-<project>`, on its project's port). `down`
stops them in reverse order from the pid files alone, so it cleans up after a supervisor
that crashed or was killed. A pid file is trusted only while the process it names has the
same start time, so a recycled pid is never signalled. Logs and data live under the
settings' data directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from safeguards import openbao
from safeguards.errors import Unavailable
from safeguards.settings import Settings
from services import topology
from services.mlflow.launcher import served_projects
from services.topology import Instance, Service, services_for

log = logging.getLogger(__name__)


# Servers get a minimal environment: nothing of the caller's (cloud credentials, tokens)
# leaks into them, and whatever they create is private to the user (umask 077).
_BASE_ENV = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
_HEALTHY = frozenset({200})


@dataclass(frozen=True)
class ServiceState:
    name: str
    pid: int | None
    state: str  # running | stopped | unhealthy
    url: str


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a live process `pid`, None if it is gone or a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name: state is the 3rd, starttime the 22nd.
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run_dir = settings.data_dir / "run"
        self.log_dir = settings.data_dir / "logs"

    def _pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def _record(self, name: str) -> dict[str, Any] | None:
        """The pid file of `name`'s running process, or None (stale ones are removed)."""
        path = self._pidfile(name)
        try:
            record: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if _start_time(record["pid"]) != record["start_time"]:
            path.unlink(missing_ok=True)
            return None
        return record

    def pid(self, name: str) -> int | None:
        """The pid of server `name`'s running process (`serving-<project>` for an
        endpoint), or None."""
        record = self._record(name)
        return None if record is None else int(record["pid"])

    def names(self, service: Service) -> list[str]:
        """The names of `service`'s instances: itself, each region's lake, or each endpoint
        with a pid file."""
        if service.per_region:
            return [instance.name for instance in self.instances(service)]
        if not service.per_project:
            return [service.name]
        return sorted(p.stem for p in self.run_dir.glob(f"{service.name}-*.json"))

    def instances(self, service: Service) -> list[Instance]:
        """`service`'s instances to run now: for the endpoint, one per served project
        (read as the operator, so MLflow must be up)."""
        served = []
        if service.per_project:
            served = served_projects(self.settings, openbao.login(self.settings, "operator"))
        return topology.instances(service, self.settings, served)

    def up(self, profile: str, timeout: float = 60.0) -> list[ServiceState]:
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for server in services_for(profile):
            for instance in self.instances(server):
                self.start(instance, timeout)
        return self.status(profile)

    def start(self, instance: Instance, timeout: float = 60.0) -> None:
        """Start one instance unless it runs, wait until it answers, run its post-start
        steps: what `up` does for each."""
        server, settings = instance.service, instance.settings
        if self.pid(instance.name) is None:
            self._launch(instance)
        self._wait_alive(instance, timeout)
        if server.on_start is not None:
            server.on_start(settings)
        if server.after_start is not None:
            server.after_start(settings, openbao.login(settings, "operator"))
        log.info("service ready", extra={"service": instance.name})

    def _provision(self, instance: Instance) -> None:
        if instance.service.provision is not None:
            operator = openbao.login(instance.settings, "operator")
            instance.service.provision(instance.settings, operator)

    def _launch(self, instance: Instance) -> None:
        self._provision(instance)
        launch = instance.service.prepare(instance.settings)
        logfile = (self.log_dir / f"{instance.name}.log").open("ab")
        process = subprocess.Popen(
            launch.command,
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**_BASE_ENV, **launch.env},
            cwd=self.settings.data_dir,
            umask=0o077,
        )
        logfile.close()
        record = {
            "pid": process.pid,
            "start_time": _start_time(process.pid),
            "command": launch.command,
            "url": instance.health_url(),
        }
        self._pidfile(instance.name).write_text(json.dumps(record))
        log.info("service started", extra={"service": instance.name, "pid": process.pid})

    def _probe(self, service: Service, url: str, statuses: frozenset[int]) -> bool:
        """Whether `service` answers: its own probe, or an HTTPS GET with one of `statuses`."""
        if service.probe is not None:
            return service.probe(self.settings)
        try:
            response = requests.get(url, verify=str(self.settings.ca_bundle), timeout=2)
        except requests.RequestException:
            return False
        return response.status_code in statuses

    def _wait_alive(self, instance: Instance, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._probe(
                instance.service, instance.health_url(), instance.service.alive_statuses
            ):
                return
            if self.pid(instance.name) is None:
                raise Unavailable(
                    f"{instance.name} exited during start; see {self.log_dir / instance.name}.log"
                )
            time.sleep(0.2)
        raise Unavailable(f"{instance.name} did not answer its health check in {timeout:.0f} s")

    def reload(self, name: str) -> None:
        """Provision a running server again and have it re-read its configuration (SIGHUP)."""
        server = topology.service(name)
        pid = self.pid(name)
        if pid is None:
            raise Unavailable(f"{name} is not running")
        instance = next(i for i in self.instances(server) if i.name == name)
        self._provision(instance)
        os.kill(pid, signal.SIGHUP)

    def serve(self) -> None:
        """After the served projects changed (a first champion, a suspension, a deletion):
        start the endpoints of the projects served now, stop the others, and restart the
        monitoring worker and reload Prometheus (if it runs) so they watch those only."""
        endpoint = topology.service("serving")
        served = {instance.name for instance in self.instances(endpoint)}
        for name in self.names(endpoint):
            if name not in served:
                self.stop(name)
        self.stop("monitoring")
        self.up(self.settings.profile)
        if self.pid("prometheus") is not None:
            self.reload("prometheus")

    def down(self, profile: str = "stack", timeout: float = 20.0) -> None:
        """Stop every server of `profile` (the default covers both profiles)."""
        for service in reversed(services_for(profile)):
            for name in self.names(service):
                self._stop(service, name, timeout)

    def stop(self, name: str, timeout: float = 20.0) -> None:
        """Stop one server as `down` does (``serving``: every endpoint, ``serving-<p>``:
        one; ``seaweedfs``: every region's lake, ``seaweedfs-<region>``: one); `up` starts
        it again."""
        service = topology.service(name)
        for running in self.names(service):
            if name in (service.name, running):
                self._stop(service, running, timeout)

    def _stop(self, service: Service, name: str, timeout: float) -> None:
        pid = self.pid(name)
        if pid is None:
            return
        os.killpg(pid, service.stop_signal)
        deadline = time.monotonic() + timeout
        while self.pid(name) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.pid(name) is not None:
            log.warning("service ignored its stop signal; killing", extra={"service": name})
            os.killpg(pid, signal.SIGKILL)
        self._pidfile(name).unlink(missing_ok=True)
        log.info("service stopped", extra={"service": name})

    def status(self, profile: str = "stack") -> list[ServiceState]:
        states = []
        for service in services_for(profile):
            for name in self.names(service):
                record = self._record(name)
                url = "" if service.per_project else service.health_url(self.settings)
                if service.per_region:
                    url = next(i.health_url() for i in self.instances(service) if i.name == name)
                if record is None:
                    state, pid = "stopped", None
                else:
                    pid, url = int(record["pid"]), str(record.get("url", url))
                    healthy = self._probe(service, url, _HEALTHY)
                    state = "running" if healthy else "unhealthy"
                states.append(ServiceState(name, pid, state, url))
        return states

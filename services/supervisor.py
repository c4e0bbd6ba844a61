"""A small native supervisor for the stack's servers.

`up` provisions each server of a profile as the operator, starts it as its own process
group (so it outlives the command that started it), records it in a pid file, waits for
its health check over verified TLS and runs its post-start steps. `down` stops them in
reverse order from the pid files alone, so it cleans up after a supervisor that crashed
or was killed. A pid file is trusted only while the process it names has the same start
time, so a recycled pid is never signalled. Logs and data live under the settings' data directory.
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

import requests

from safeguards import openbao
from safeguards.errors import Unavailable
from safeguards.settings import Settings
from services import topology
from services.topology import Service, services_for

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

    def _pidfile(self, service: Service) -> Path:
        return self.run_dir / f"{service.name}.json"

    def pid(self, service: Service) -> int | None:
        """The pid of `service`'s running process, or None (stale pid files are removed)."""
        path = self._pidfile(service)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if _start_time(record["pid"]) != record["start_time"]:
            path.unlink(missing_ok=True)
            return None
        return int(record["pid"])

    def up(self, profile: str, timeout: float = 60.0) -> list[ServiceState]:
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for server in services_for(profile):
            if self.pid(server) is None:
                self._start(server)
            self._wait_alive(server, timeout)
            if server.on_start is not None:
                server.on_start(self.settings)
            if server.after_start is not None:
                server.after_start(self.settings, openbao.login(self.settings, "operator"))
            log.info("service ready", extra={"service": server.name})
        return self.status(profile)

    def _provision(self, service: Service) -> None:
        if service.provision is not None:
            service.provision(self.settings, openbao.login(self.settings, "operator"))

    def _start(self, service: Service) -> None:
        self._provision(service)
        launch = service.prepare(self.settings)
        logfile = (self.log_dir / f"{service.name}.log").open("ab")
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
        }
        self._pidfile(service).write_text(json.dumps(record))
        log.info("service started", extra={"service": service.name, "pid": process.pid})

    def _probe(self, service: Service, statuses: frozenset[int]) -> bool:
        """Whether `service` answers: its own probe, or an HTTPS GET with one of `statuses`."""
        if service.probe is not None:
            return service.probe(self.settings)
        try:
            response = requests.get(
                service.health_url(self.settings), verify=str(self.settings.ca_bundle), timeout=2
            )
        except requests.RequestException:
            return False
        return response.status_code in statuses

    def _wait_alive(self, service: Service, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._probe(service, service.alive_statuses):
                return
            if self.pid(service) is None:
                raise Unavailable(
                    f"{service.name} exited during start; see {self.log_dir / service.name}.log"
                )
            time.sleep(0.2)
        raise Unavailable(f"{service.name} did not answer its health check in {timeout:.0f} s")

    def reload(self, name: str) -> None:
        """Provision a running server again and have it re-read its configuration (SIGHUP)."""
        server = topology.service(name)
        pid = self.pid(server)
        if pid is None:
            raise Unavailable(f"{name} is not running")
        self._provision(server)
        os.kill(pid, signal.SIGHUP)

    def project_created(self) -> None:
        """Nothing to do natively: servers read a new project's credentials from the data
        directory, where `projects create` wrote them."""

    def down(self, profile: str = "stack", timeout: float = 20.0) -> None:
        """Stop every service of `profile` (the default covers both profiles)."""
        for service in reversed(services_for(profile)):
            self._stop(service, timeout)

    def stop(self, name: str, timeout: float = 20.0) -> None:
        """Stop one service as `down` does; `up` starts it again."""
        self._stop(topology.service(name), timeout)

    def _stop(self, service: Service, timeout: float) -> None:
        pid = self.pid(service)
        if pid is None:
            return
        os.killpg(pid, service.stop_signal)
        deadline = time.monotonic() + timeout
        while self.pid(service) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.pid(service) is not None:
            log.warning("service ignored its stop signal; killing", extra={"service": service.name})
            os.killpg(pid, signal.SIGKILL)
        self._pidfile(service).unlink(missing_ok=True)
        log.info("service stopped", extra={"service": service.name})

    def status(self, profile: str = "stack") -> list[ServiceState]:
        states = []
        for service in services_for(profile):
            pid = self.pid(service)
            if pid is None:
                state = "stopped"
            else:
                state = "running" if self._probe(service, _HEALTHY) else "unhealthy"
            states.append(ServiceState(service.name, pid, state, service.health_url(self.settings)))
        return states

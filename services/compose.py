"""The compose stack: `compose/compose.yaml`, generated from the topology, and the class
that runs it with the same interface as the native supervisor.

    python -m services.compose render     # print the compose file the topology gives

Each server of the `stack` profile is a container that runs `python -m services.container
run NAME` in its image. Before it, a one-shot `NAME-init` job provisions it as the
operator (certificates, secrets, config) into the server's own volume; a server with an
operator step once it answers (the lake's buckets) gets a `NAME-ready` job after it. Only
those jobs mount the operator's credentials. Every volume is mounted at the same path as
the native data directory, so each launcher's files are where the native stack has them.

Each project's endpoint is a container too, `serving-<project>`, with its own init job
and volume, on its project's port: those change as projects get champions, so they are
not in the committed file but in ``compose.projects.yaml`` in the stack's data directory,
which `ComposeStack` writes and passes to every `docker compose` command after it. The
same holds for the lake of each region beyond home (`HIPAA_MLOPS_REGIONS`):
`seaweedfs-<region>`, with its jobs and volume, in ``compose.regions.yaml``.

Nothing is defaulted: images, ports and the settings file come from the environment that
`ComposeStack` gives `docker compose` (`${VAR:?}` where compose needs a value). Ports are
published on 127.0.0.1 only, and only for the servers on the `edge` network; `data` is
internal. Every container runs as uid 10001 with a read-only root, no capabilities and
no privilege escalation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from safeguards import openbao
from safeguards.errors import ConfigError, Unavailable
from safeguards.files import write_private
from safeguards.projects import Project
from safeguards.settings import COMPOSE_SUBNETS, Settings
from services import container, topology
from services.launch import environment
from services.mlflow.launcher import served_projects
from services.openbao.launcher import BOOTSTRAP_IDENTITIES
from services.supervisor import ServiceState, Supervisor
from services.topology import Instance, Service

COMPOSE_FILE = Path(__file__).resolve().parents[1] / "compose" / "compose.yaml"
IMAGES = ("app", "seaweedfs", "postgres", "prometheus")
USER = "10001:10001"
# Settings each container gets from its own definition, not from the shared settings file.
_PER_CONTAINER = {
    "data_dir", "host", "profile", "network", "runtime", "audit_log", "image_digest",
    "serving_project", "serving_slot", "region",
}  # fmt: skip
_HARDENED: dict[str, Any] = {
    "user": USER,
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "tmpfs": ["/tmp"],  # noqa: S108 (a tmpfs of its own per container)
    "env_file": ["${HIPAA_MLOPS_COMPOSE_ENV:?set by hipaa-mlops stack up}"],
}


def _var(name: str) -> str:
    return name.upper().replace("-", "_")


def image_ref(image: str) -> str:
    return f"${{HIPAA_MLOPS_IMAGE_{_var(image)}:?run make images}}"


def _port(server: Service) -> str:
    return f"${{HIPAA_MLOPS_PORT_{_var(server.name)}:?}}"


def _health(server: Service, port: str) -> dict[str, str]:
    """What the image's health check (`services.healthcheck`) asks, inside the container."""
    path = server.health_path if server.scheme == "https" else ""
    health = {
        "HIPAA_MLOPS_HEALTH_URL": f"{server.scheme}://127.0.0.1:{port}{path}",
        "HIPAA_MLOPS_HEALTH_STATUSES": " ".join(map(str, sorted(server.ready_statuses))),
    }
    if server.on_start is not None:
        health["HIPAA_MLOPS_HEALTH_READY_MARK"] = str(container.ready_mark(server))
    return health


def _environment(server: Service, name: str | None = None) -> dict[str, str]:
    return {
        "HIPAA_MLOPS_SERVICE": name or server.name,
        "HIPAA_MLOPS_PROFILE": "stack",
        "HIPAA_MLOPS_RUNTIME": "compose",
        "HIPAA_MLOPS_NETWORK": "compose",
        # One audit log per volume: the server and its jobs share its chain.
        "HIPAA_MLOPS_AUDIT_LOG": name or server.name,
        "HIPAA_MLOPS_IMAGE_DIGEST": f"${{HIPAA_MLOPS_IMAGE_ID_{_var(server.image)}:?}}",
    }


def _job(
    server: Service, step: str, depends: dict[str, Any], instance: Instance | None = None
) -> dict[str, Any]:
    name = server.name if instance is None else instance.name
    return {
        "image": image_ref(server.image),
        "command": [step, server.name],
        **_HARDENED,
        "environment": _environment(server, name) | _instance_env(instance),
        "volumes": [f"{name}:/data", "ca:/data/tls:ro", "credentials:/operator:ro"],
        "networks": ["data"],
        "depends_on": depends,
        "healthcheck": {"disable": True},
        "restart": "no",
    }


def _ready(name: str) -> dict[str, Any]:
    """What `depends_on` waits for to call server `name` ready."""
    if topology.service(name).after_start is not None:
        return {f"{name}-ready": {"condition": "service_completed_successfully"}}
    return {name: {"condition": "service_healthy"}}


def _instance_env(instance: Instance | None) -> dict[str, str]:
    """An endpoint's project and slot, a further region's lake its region, set in its own
    containers only."""
    if instance is None:
        return {}
    own = instance.settings
    if instance.service.per_region:
        return {"HIPAA_MLOPS_REGION": str(own.region)}
    return {
        "HIPAA_MLOPS_SERVING_PROJECT": str(own.serving_project),
        "HIPAA_MLOPS_SERVING_SLOT": str(own.serving_slot),
    }


def _server(server: Service, instance: Instance | None = None) -> dict[str, Any]:
    name = server.name if instance is None else instance.name
    port = _port(server) if instance is None else str(instance.settings.port(server.name))
    volumes = [f"{name}:/data", "ca:/data/tls:ro"]
    if server.name == "openbao":
        # It makes the CA bundle and the operator's and auditor's credentials.
        volumes = ["openbao:/data", "ca:/data/tls", "credentials:/data/credentials"]
    depends: dict[str, Any] = {}
    for need in server.needs:
        depends |= _ready(need)
    if server.provision is not None:
        depends[f"{name}-init"] = {"condition": "service_completed_successfully"}
    definition: dict[str, Any] = {
        "image": image_ref(server.image),
        "command": ["run", server.name],
        **_HARDENED,
        "environment": _environment(server, name) | _instance_env(instance) | _health(server, port),
        "volumes": volumes,
        "networks": list(server.networks),
    }
    if "edge" in server.networks:
        definition["ports"] = [f"127.0.0.1:{port}:{port}"]
    if depends:
        definition["depends_on"] = depends
    definition |= {
        "healthcheck": {
            "test": ["CMD", "python", "-m", "services.healthcheck"],
            "interval": "2s",
            "timeout": "5s",
            "retries": 5,
            "start_period": "180s",
        },
        "stop_signal": server.stop_signal.name,
        "stop_grace_period": "20s",
        "restart": "unless-stopped",
    }
    return definition


def render() -> dict[str, Any]:
    """The compose file: every server of the `stack` profile, its jobs, networks, volumes."""
    services: dict[str, Any] = {}
    for server in _fixed():
        if server.provision is not None:
            # A provision step may read from the servers it needs (the worker's and
            # Prometheus's ask MLflow which projects have a champion).
            depends: dict[str, Any] = {"openbao": {"condition": "service_healthy"}}
            for need in server.needs:
                depends |= _ready(need)
            services[f"{server.name}-init"] = _job(server, "provision", depends)
        services[server.name] = _server(server)
        if server.after_start is not None:
            services[f"{server.name}-ready"] = _job(
                server, "after-start", {server.name: {"condition": "service_healthy"}}
            )
    names = [s.name for s in _fixed()]
    return {
        "services": services,
        "networks": {
            "edge": {"ipam": {"config": [{"subnet": COMPOSE_SUBNETS["edge"]}]}},
            # Internal (no route out), and without an address on the host's side of the
            # bridge: the host cannot reach a container on it either.
            "data": {
                "internal": True,
                "driver_opts": {"com.docker.network.bridge.inhibit_ipv4": "true"},
                "ipam": {"config": [{"subnet": COMPOSE_SUBNETS["data"]}]},
            },
        },
        "volumes": {name: {} for name in ("ca", "credentials", *names)},
    }


def _fixed() -> list[Service]:
    """The servers of the committed file: all but the per-project endpoints."""
    return [s for s in topology.services_for("stack") if not s.per_project]


def render_projects(settings: Settings, served: list[Project]) -> dict[str, Any]:
    """The per-project part of the stack: each served project's endpoint, its init job
    and its volume, on its project's port."""
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    for server in topology.services_for("stack"):
        if not server.per_project:
            continue
        for instance in topology.instances(server, settings, served):
            init = {"openbao": {"condition": "service_healthy"}}
            services[f"{instance.name}-init"] = _job(server, "provision", init, instance)
            services[instance.name] = _server(server, instance)
            volumes[instance.name] = {}
    return {"services": services, "volumes": volumes}


def render_regions(settings: Settings) -> dict[str, Any]:
    """The lakes of the regions beyond home (the committed file has the home region's):
    each with its init and ready jobs and its volume, on its region's ports."""
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    for server in _fixed():
        if not server.per_region:
            continue
        for instance in topology.instances(server, settings, []):
            if instance.settings.lake_region == settings.home_region:
                continue
            depends: dict[str, Any] = {"openbao": {"condition": "service_healthy"}}
            services[f"{instance.name}-init"] = _job(server, "provision", depends, instance)
            services[instance.name] = _server(server, instance)
            ready = {instance.name: {"condition": "service_healthy"}}
            services[f"{instance.name}-ready"] = _job(server, "after-start", ready, instance)
            volumes[instance.name] = {}
            # The servers that need the home lake wait for this one too (and `up --wait`
            # takes its finished ready job as done, not as a container that stopped).
            for other in _fixed():
                if server.name in other.needs:
                    waits = services.setdefault(other.name, {"depends_on": {}})["depends_on"]
                    waits[f"{instance.name}-ready"] = {
                        "condition": "service_completed_successfully"
                    }
    return {"services": services, "volumes": volumes}


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """Each service in full (no YAML anchors for what they share); lists on one line."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def represent_list(self, data: Any) -> yaml.Node:
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(list, _Dumper.represent_list)


def render_text() -> str:
    header = (
        "# Generated from services/topology.py by `python -m services.compose render`;\n"
        "# tests/unit/test_compose.py fails when the two differ. Start it with `make up`.\n"
    )
    body = yaml.dump(render(), Dumper=_Dumper, sort_keys=False, width=100)
    return header + str(body)


def _docker(what: str, *args: str) -> str:
    """Run the docker CLI; its output, or one line naming `what` failed."""
    if shutil.which("docker") is None:
        raise Unavailable("the docker CLI is not installed: run `make engine`")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST")}
    result = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"docker {what} failed: {detail[:300]}")
    return result.stdout


class ComposeStack:
    """The compose stack, run through `docker compose`, as `Supervisor` runs the native one.

    The host keeps what a client needs and nothing of any server: the CA bundle and the
    operator's and auditor's credentials, copied from OpenBao's container at `up` (and the
    credentials of projects it creates, as natively)."""

    def __init__(self, settings: Settings) -> None:
        if settings.runtime != "compose":
            raise ConfigError("the compose stack needs HIPAA_MLOPS_RUNTIME=compose")
        self.settings = settings
        self.project = f"hipaa-mlops-{settings.port_base}"
        # The containers' settings, and the values compose interpolates into the file.
        self.settings_file = settings.data_dir / "compose.env"
        self.variables_file = settings.data_dir / "compose.vars"
        self.projects_file = settings.data_dir / "compose.projects.yaml"
        # The lakes of the regions beyond home, when the settings name more than one.
        self.regions_file = settings.data_dir / "compose.regions.yaml"

    def write_files(self) -> None:
        """The containers' shared settings and compose's variables, from these settings and
        the images `make images` recorded."""
        from services.containers.images import load_record

        record = load_record()
        missing = [name for name in IMAGES if name not in record]
        if missing:
            raise ConfigError(f"images {', '.join(missing)} are not built: run `make images`")
        shared = {
            k: v
            for k, v in environment(self.settings).items()
            if k.removeprefix("HIPAA_MLOPS_").lower() not in _PER_CONTAINER
        }
        variables = {"COMPOSE_PROJECT_NAME": self.project}
        for name in IMAGES:
            variables[f"HIPAA_MLOPS_IMAGE_{_var(name)}"] = record[name]["tag"]
            variables[f"HIPAA_MLOPS_IMAGE_ID_{_var(name)}"] = record[name]["id"]
        for server in _fixed():
            variables[f"HIPAA_MLOPS_PORT_{_var(server.name)}"] = str(
                self.settings.port(server.name)
            )
        variables["HIPAA_MLOPS_COMPOSE_ENV"] = str(self.settings_file)
        self.settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path, values in ((self.settings_file, shared), (self.variables_file, variables)):
            write_private(path, "".join(f"{k}={v}\n" for k, v in values.items()).encode())
        regions = render_regions(self.settings)
        if regions["services"]:
            body = yaml.dump(regions, Dumper=_Dumper, sort_keys=False)
            write_private(self.regions_file, body.encode())
        else:
            self.regions_file.unlink(missing_ok=True)

    def compose(self, *args: str) -> str:
        """Run `docker compose` on this stack; its output, or one line on failure."""
        files = ["-f", str(COMPOSE_FILE)]
        for extra in (self.regions_file, self.projects_file):
            if extra.exists():
                files += ["-f", str(extra)]
        return _docker(
            f"compose {args[0]}", "compose", *files, "--env-file", str(self.variables_file), *args
        )

    def up(self, profile: str = "stack", timeout: float = 300.0) -> list[ServiceState]:
        if profile != "stack":
            raise ConfigError("the compose stack runs the stack profile; the sandbox is native")
        if (self.settings.data_dir / "openbao").exists():
            raise ConfigError(
                "this data directory belongs to a native stack: give the compose stack its own "
                "HIPAA_MLOPS_DATA_DIR"
            )
        others = self.others()
        if others:
            raise ConfigError(
                f"another compose stack ({', '.join(others)}) holds the stack's networks: "
                "take it down first (`docker compose -p NAME down`)"
            )
        self.write_files()
        self.compose("up", "--detach", "--wait", "--wait-timeout", str(round(timeout)))
        self.started()
        self.serve()
        return self.status()

    def others(self) -> list[str]:
        """The other stacks of ours on this engine: their networks have the same fixed
        subnets (OpenBao binds the identities' secret ids to them), so only one runs."""
        names = set(
            _docker(
                "network ls", "network", "ls", "--filter", "label=com.docker.compose.project",
                "--format", '{{.Label "com.docker.compose.project"}}',
            ).split()
        )  # fmt: skip
        return sorted(n for n in names if n.startswith("hipaa-mlops-") and n != self.project)

    def started(self) -> None:
        """Once every server is healthy: the client's files, and the secret ids of the
        projects' identities renewed (OpenBao's container renews the operator's and the
        auditor's, whose copies the host takes at every start)."""
        self._fetch_client_files()
        operator = openbao.login(self.settings, "operator")
        openbao.renew_secret_ids(operator, self.settings, skip=frozenset(BOOTSTRAP_IDENTITIES))

    def _fetch_client_files(self) -> None:
        tls, creds = self.settings.ca_bundle.parent, self.settings.credentials_dir
        for directory in (tls, creds):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.compose("cp", "openbao:/data/tls/ca.pem", str(self.settings.ca_bundle))
        for identity in BOOTSTRAP_IDENTITIES:
            path = openbao.credentials_path(self.settings, identity)
            self.compose("cp", f"openbao:/data/credentials/{identity}.json", str(path))
            path.chmod(0o600)

    def down(self, profile: str = "stack", timeout: float = 20.0) -> None:
        """Stop and remove the containers; the volumes (data, keys, audit logs) stay."""
        self.compose("down", "--timeout", str(round(timeout)))

    def remove(self) -> None:
        """Stop the stack and delete its volumes: every key, object and log is gone, and
        with them what the host held of it (the CA bundle, every identity's credentials,
        the list of its endpoints)."""
        self.compose("down", "--volumes", "--timeout", "20")
        shutil.rmtree(self.settings.credentials_dir, ignore_errors=True)
        self.settings.ca_bundle.unlink(missing_ok=True)
        self.projects_file.unlink(missing_ok=True)
        self.regions_file.unlink(missing_ok=True)

    def stop(self, name: str, timeout: float = 20.0) -> None:
        self.compose("stop", "--timeout", str(round(timeout)), name)

    def restart(self, *names: str, timeout: float = 300.0) -> None:
        """Recreate servers (their volumes stay) and wait until they are healthy."""
        self.compose(
            "up", "--detach", "--wait", "--wait-timeout", str(round(timeout)),
            "--no-deps", "--force-recreate", *names,
        )  # fmt: skip

    def reload(self, name: str) -> None:
        """Provision a running server again (its init job) and signal it to re-read it."""
        self.compose("run", "--rm", "--no-deps", f"{name}-init")
        self.compose("kill", "--signal", "SIGHUP", name)

    def serve(self, timeout: float = 300.0) -> None:
        """An endpoint for every served project, and none for the others (the projects
        file written again, each new endpoint provisioned and started, each endpoint of a
        project no longer served removed); on a change, the worker and Prometheus given
        the projects they watch (their init jobs) and restarted or reloaded."""
        before = set(self._endpoints())
        served = served_projects(self.settings, openbao.login(self.settings, "operator"))
        rendered = render_projects(self.settings, served)
        gone = sorted(before - set(rendered["services"]))
        if gone:
            # While the file still names them.
            self.compose("rm", "--stop", "--force", *gone)
        body = yaml.dump(rendered, Dumper=_Dumper, sort_keys=False)
        write_private(self.projects_file, body.encode())
        started = [name for name in self._endpoints() if name not in before]
        if not started and not gone:
            # The worker's and Prometheus's init jobs listed the same projects at `up`.
            return
        for name in started:
            self.compose("run", "--rm", "--no-deps", f"{name}-init")
        self.compose(
            "up", "--detach", "--wait", "--wait-timeout", str(round(timeout)), "--no-deps",
            *started,
        )  # fmt: skip
        self.compose("run", "--rm", "--no-deps", "monitoring-init")
        self.restart("monitoring", timeout=timeout)
        self.reload("prometheus")

    def _endpoints(self) -> dict[str, str]:
        """The endpoints the projects file lists, each with its URL."""
        try:
            listed = yaml.safe_load(self.projects_file.read_text()) or {}
        except FileNotFoundError:
            return {}
        return {
            name: self.settings.model_copy(
                update={"serving_slot": int(service["environment"]["HIPAA_MLOPS_SERVING_SLOT"])}
            ).url("serving")
            for name, service in listed.get("services", {}).items()
            if not name.endswith("-init")
        }

    def status(self, profile: str = "stack") -> list[ServiceState]:
        running = {}
        for line in self.compose("ps", "--all", "--format", "json").splitlines():
            if line.strip():
                entry = json.loads(line)
                running[entry["Service"]] = entry
        names = [
            (i.name, i.health_url())
            for s in _fixed()
            for i in topology.instances(s, self.settings, [])
        ]
        names += list(self._endpoints().items())
        states = []
        for name, url in names:
            entry = running.get(name, {})
            state = "stopped"
            if entry.get("State") == "running":
                state = "running" if entry.get("Health") == "healthy" else "unhealthy"
            states.append(ServiceState(name, None, state, url))
        return states


def stack_for(settings: Settings) -> Supervisor | ComposeStack:
    """The stack the settings name: native processes, or the compose stack."""
    return ComposeStack(settings) if settings.runtime == "compose" else Supervisor(settings)


if __name__ == "__main__":
    if sys.argv[1:] != ["render"]:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(0 if sys.argv[1:] in (["--help"], ["-h"]) else 2)
    sys.stdout.write(render_text())

"""The compose file is the topology's, and holds the rules every container must keep.

Read from the committed `compose/compose.yaml`: it must be what `services.compose`
renders from `services/topology.py`, so the native and the compose stack cannot list
different servers, ports, certificates, health checks or dependencies. Each project's
endpoint is rendered at run time into the data directory (`render_projects`), under the
same rules.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from safeguards.projects import Project
from safeguards.settings import COMPOSE_SUBNETS, PORT_OFFSETS, Settings
from services import compose, topology
from services.openbao.launcher import SERVER_DOMAINS

FILE = yaml.safe_load(compose.COMPOSE_FILE.read_text())
SERVICES: dict[str, Any] = FILE["services"]
FIXED = [s for s in topology.services_for("stack") if not s.per_project]
SERVERS = [s.name for s in FIXED]
SERVED = [Project("alpha", "created", 0), Project("beta", "created", 4)]
PROJECTS = compose.render_projects(Settings(port_base=8200), SERVED)


def test_the_committed_file_is_the_topology_rendered() -> None:
    assert compose.COMPOSE_FILE.read_text() == compose.render_text(), (
        "run `python -m services.compose render > compose/compose.yaml`"
    )


def test_every_server_of_the_stack_profile_and_only_those_is_a_long_running_service() -> None:
    long_running = [n for n, s in SERVICES.items() if s["restart"] == "unless-stopped"]
    assert long_running == SERVERS
    assert set(SERVERS) == set(PORT_OFFSETS)


def test_each_server_runs_its_own_topology_entry_with_a_tls_health_check() -> None:
    for server in FIXED:
        service = SERVICES[server.name]
        assert service["command"] == ["run", server.name]
        environment = service["environment"]
        assert environment["HIPAA_MLOPS_SERVICE"] == server.name
        assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "services.healthcheck"]
        # Over TLS, at the topology's health path, on the server's own port.
        port = f"${{HIPAA_MLOPS_PORT_{server.name.upper()}:?}}"
        expected = f"{server.scheme}://127.0.0.1:{port}"
        if server.scheme == "https":
            expected += server.health_path
        assert environment["HIPAA_MLOPS_HEALTH_URL"] == expected
        assert server.scheme in ("https", "postgresql")
        # Ready once its start-up step (unseal, database roles) is done, not before.
        assert ("HIPAA_MLOPS_HEALTH_READY_MARK" in environment) == (server.on_start is not None)
        # Its certificate is issued for the name the other containers reach it by.
        assert server.name in SERVER_DOMAINS


def test_dependencies_are_the_topologys_needs_and_wait_for_health() -> None:
    for server in FIXED:
        depends = SERVICES[server.name].get("depends_on", {})
        waited = {n.removesuffix("-ready") for n in depends if not n.endswith("-init")}
        assert waited == set(server.needs), server.name
        for name, condition in depends.items():
            expected = "service_healthy"
            if name.endswith(("-init", "-ready")):
                expected = "service_completed_successfully"
            assert condition == {"condition": expected}, (server.name, name)
        assert (f"{server.name}-init" in depends) == (server.provision is not None)


def test_only_jobs_hold_the_operators_credentials_and_only_read_them() -> None:
    for name, service in SERVICES.items():
        mounts = [v for v in service["volumes"] if v.startswith("credentials:")]
        if name.endswith(("-init", "-ready")):
            assert mounts == ["credentials:/operator:ro"], name
            assert service["restart"] == "no"
        elif name == "openbao":
            assert mounts == ["credentials:/data/credentials"]  # it makes them
        else:
            assert mounts == [], name


def test_each_server_mounts_its_own_volume_and_the_ca_read_only() -> None:
    for name in SERVERS:
        volumes = SERVICES[name]["volumes"]
        assert volumes[0] == f"{name}:/data"
        assert ("ca:/data/tls" if name == "openbao" else "ca:/data/tls:ro") in volumes
        assert not any(v.split(":")[0] in SERVERS and v != volumes[0] for v in volumes), name
    assert set(FILE["volumes"]) == {"ca", "credentials", *SERVERS}


def test_every_container_is_unprivileged_read_only_and_without_capabilities() -> None:
    for name, service in SERVICES.items():
        assert service["user"] == "10001:10001", name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert "privileged" not in service and "network_mode" not in service, name


def test_ports_are_published_on_loopback_only_and_only_for_edge_servers() -> None:
    published = {}
    for name, service in SERVICES.items():
        for mapping in service.get("ports", []):
            assert re.fullmatch(r"127\.0\.0\.1:\$\{(\w+):\?\}:\$\{\1:\?\}", mapping), mapping
            published[name] = mapping
    assert set(published) == {s.name for s in topology.SERVICES if "edge" in s.networks} & set(
        SERVERS
    )
    assert "postgres" not in published and "monitoring" not in published


def test_the_data_network_is_internal_and_both_have_fixed_subnets() -> None:
    networks = FILE["networks"]
    assert networks["data"]["internal"] is True
    assert networks["data"]["driver_opts"] == {"com.docker.network.bridge.inhibit_ipv4": "true"}
    assert "internal" not in networks["edge"]
    for name, subnet in COMPOSE_SUBNETS.items():
        assert networks[name]["ipam"]["config"] == [{"subnet": subnet}]
    for name in ("postgres", "monitoring"):
        assert SERVICES[name]["networks"] == ["data"]


def test_images_are_pinned_by_the_build_and_no_value_is_defaulted() -> None:
    text = compose.COMPOSE_FILE.read_text()
    assert "latest" not in text
    assert not re.search(r"\$\{[A-Z_]+(:-|-)", text), "a variable with a default"
    for name, service in SERVICES.items():
        assert re.fullmatch(r"\$\{HIPAA_MLOPS_IMAGE_\w+:\?run make images\}", service["image"])
        for key, value in service["environment"].items():
            assert not re.search(r"PASSWORD|SECRET|TOKEN|ROLE_ID", key), (name, key)
            variables = re.findall(r"\$\{[^}]*\}", value)
            assert all(v.endswith(":?}") for v in variables), (name, key)


def test_each_served_project_gets_an_endpoint_of_its_own_under_the_same_rules() -> None:
    services, volumes = PROJECTS["services"], PROJECTS["volumes"]
    assert set(services) == {
        "serving-alpha",
        "serving-alpha-init",
        "serving-beta",
        "serving-beta-init",
    }
    assert set(volumes) == {"serving-alpha", "serving-beta"}
    for project, port in (("alpha", 8220), ("beta", 8224)):
        name = f"serving-{project}"
        endpoint, init = services[name], services[f"{name}-init"]
        assert endpoint["command"] == ["run", "serving"]
        assert endpoint["ports"] == [f"127.0.0.1:{port}:{port}"]
        assert endpoint["volumes"] == [f"{name}:/data", "ca:/data/tls:ro"]
        assert init["volumes"] == [f"{name}:/data", "ca:/data/tls:ro", "credentials:/operator:ro"]
        for service in (endpoint, init):
            env = service["environment"]
            assert (env["HIPAA_MLOPS_SERVING_PROJECT"], env["HIPAA_MLOPS_SERVING_SLOT"]) == (
                project, str(port - 8220)
            )  # fmt: skip
            assert env["HIPAA_MLOPS_AUDIT_LOG"] == name
            assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
            assert service["user"] == "10001:10001"
        assert endpoint["environment"]["HIPAA_MLOPS_HEALTH_URL"] == (
            f"https://127.0.0.1:{port}/healthz"
        )
        assert endpoint["depends_on"]["serving-" + project + "-init"] == {
            "condition": "service_completed_successfully"
        }
        assert any(fnmatch.fnmatch(name, domain) for domain in SERVER_DOMAINS)
    assert compose.render_projects(Settings(), []) == {"services": {}, "volumes": {}}


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI on this machine")
def test_docker_compose_validates_the_file() -> None:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        pytest.skip("the Compose CLI plugin is not installed (make compose-cli)")
    env = {name: "x" for name in re.findall(r"\$\{(\w+):\?", compose.COMPOSE_FILE.read_text())}
    env |= {n: "8200" for n in env if n.startswith("HIPAA_MLOPS_PORT_")}
    env["HIPAA_MLOPS_COMPOSE_ENV"] = "/dev/null"
    result = subprocess.run(
        ["docker", "compose", "-f", str(compose.COMPOSE_FILE), "config", "--quiet"],
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr

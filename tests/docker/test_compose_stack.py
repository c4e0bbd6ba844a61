"""The compose stack against its real containers: what the native tests assert, asserted
of `make up`'s stack. Every published port speaks TLS only, verified with the stack's CA;
the data plane cannot be reached from the host; a project goes from data to a score over
HTTPS with an API key through the same CLI as natively; another project is refused
everything of it; containers restart with their data, unsealed; the audit chains verify.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import ssl
import subprocess
import tarfile
from pathlib import Path

import botocore.exceptions
import hvac
import pytest
import requests

import contract as contracts
from safeguards import credentials, keys, objectstore, openbao
from safeguards.audit import ANCHORS, AuditLog
from safeguards.errors import AccessDenied, ConfigError
from safeguards.objectstore import s3_client
from safeguards.settings import COMPOSE_SUBNETS, LAKE_PORTS
from services.compose import ComposeStack
from services.containers.images import load_record
from services.prometheus import launcher as prometheus
from services.seaweedfs import launcher as seaweedfs
from services.topology import services_for
from tests.conftest import HOME, REGIONS, endpoint_url, free_port_base, wait_until
from tests.docker.conftest import Running

# The first test waits for the stack to come up (two minutes on a loaded 2-core machine).
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

PROJECT, OTHER = "diabetes", "otherteam"
AWAY = REGIONS[1]
FIXED = [s for s in services_for("stack") if not s.per_project]
PUBLISHED = [s.name for s in FIXED if "edge" in s.networks]
UNPUBLISHED = [s.name for s in FIXED if "edge" not in s.networks]
RECORD = contracts.parse(contracts.example("diabetes")).example()
# SeaweedFS's master, volume and filer ports and their gRPC, and the S3 gateway's gRPC:
# never published; the first six on its container's loopback only.
SEAWEEDFS_INTERNAL = range(10, 17)
SEAWEEDFS_INSIDE = range(10, 16)


def _handshake(running: Running, port: int) -> str:
    context = ssl.create_default_context(cafile=str(running.settings.ca_bundle))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return str(tls.version())


def _plaintext_answer(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(3)
        try:
            return raw.recv(64)
        except (TimeoutError, ConnectionResetError):
            return b""


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_every_server_is_healthy(compose_stack: Running) -> None:
    states = {s.name: s.state for s in compose_stack.stack.status()}
    lakes = [compose_stack.settings.lake_name(region) for region in REGIONS]
    assert states == {name: "running" for name in {*(s.name for s in FIXED), *lakes}}


def test_a_second_stack_is_refused_while_one_runs(compose_stack: Running, tmp_path: Path) -> None:
    settings = compose_stack.settings.model_copy(
        update={"data_dir": tmp_path, "port_base": compose_stack.settings.port_base + 100}
    )
    with pytest.raises(ConfigError, match=compose_stack.stack.project):
        ComposeStack(settings).up()
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_ports_speak_tls_only_verified_with_the_stack_ca(
    compose_stack: Running, name: str
) -> None:
    port = compose_stack.settings.port(name)
    assert _handshake(compose_stack, port) in ("TLSv1.2", "TLSv1.3")
    answer = _plaintext_answer(port)
    # Nothing, a TLS alert, or Go's one-line "HTTP request to an HTTPS server" refusal.
    assert answer == b"" or answer[:1] == b"\x15" or answer.startswith(b"HTTP/1.0 400"), answer


def _host_addresses() -> list[ipaddress.IPv4Interface]:
    shown = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True)
    return [
        ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}")
        for link in json.loads(shown.stdout)
        for a in link.get("addr_info", [])
    ]


def _networks(running: Running, service: str) -> dict[str, dict[str, str]]:
    """The service's container's networks by compose network name."""
    container = running.compose.get_container(service).ID
    shown = subprocess.run(
        ["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", container],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    project = running.stack.project
    return {k.removeprefix(f"{project}_"): v for k, v in json.loads(shown.stdout).items()}


def _address(running: Running, service: str, network: str) -> str:
    return _networks(running, service)[network]["IPAddress"]


def test_the_data_plane_cannot_be_reached_from_the_host(compose_stack: Running) -> None:
    settings = compose_stack.settings
    hidden = [settings.port(n) for n in UNPUBLISHED]
    hidden += [settings.port_base + offset for offset in SEAWEEDFS_INTERNAL]
    hidden += [settings.lake_port(AWAY, n) for n in LAKE_PORTS if n != "s3"]
    assert not [p for p in hidden if _connects("127.0.0.1", p)]
    # Its servers' only addresses are on the internal network, and the host has no address
    # there (its bridge carries none), so no route from the host leads to them. (Nothing
    # is sent: a connection would leave by the default route.)
    data = ipaddress.IPv4Network(COMPOSE_SUBNETS["data"])
    assert not [a for a in _host_addresses() if a.ip in data]
    for name in UNPUBLISHED:
        networks = _networks(compose_stack, name)
        addresses = [ipaddress.IPv4Address(n["IPAddress"]) for n in networks.values()]
        assert addresses and all(a in data for a in addresses), name
    # SeaweedFS's master, volume and filer listen on its container's loopback only: its
    # address on `edge` (which the host's side of that bridge reaches) answers on the S3
    # port and the S3 gateway's gRPC port (mutual TLS) alone.
    seaweedfs = _address(compose_stack, "seaweedfs", "edge")
    assert _connects(seaweedfs, settings.port("seaweedfs"))
    inside = [settings.port_base + offset for offset in SEAWEEDFS_INSIDE]
    assert not [p for p in inside if _connects(seaweedfs, p)]


def _url(running: Running) -> str:
    return endpoint_url(running.settings, openbao.login(running.settings, "operator"), PROJECT)


def _score(running: Running, key: str) -> requests.Response:
    return requests.post(
        f"{_url(running)}/v1/predict",
        json=RECORD,
        headers={"Authorization": f"Bearer {key}"},
        verify=str(running.settings.ca_bundle),
        timeout=30,
    )


@pytest.fixture(scope="module")
def served(compose_stack: Running) -> str:
    """A project from data to champion through the CLI (whose first promotion starts the
    project's endpoint container); its API key."""
    cli = compose_stack.cli
    cli("projects", "create", PROJECT, "--contract", "diabetes")
    cli("data", "synth", "patients", "--project", PROJECT, "--rows", "6000", "--seed", "3")
    cli("data", "ingest", "--project", PROJECT, "--name", "raw", "--synthetic", "patients")
    cli("data", "deidentify", "clean", "--project", PROJECT, "--source", "raw")
    cli("model", "train", "--project", PROJECT, "--dataset", "clean")
    cli("model", "promote", "1", "--project", PROJECT)
    key = cli("serving", "keys", "create", "--project", PROJECT, "--client", "tests").stdout
    ready = f"{_url(compose_stack)}/readyz"

    def loaded() -> bool:
        response = requests.get(ready, verify=str(compose_stack.settings.ca_bundle), timeout=5)
        return response.status_code == 200

    wait_until(loaded, 120, "the endpoint loading the champion", every=1)
    return key.strip()


def test_a_project_goes_from_data_to_a_score_over_https_with_a_key(
    compose_stack: Running, served: str
) -> None:
    response = _score(compose_stack, served)
    assert response.status_code == 200, response.text
    assert 0.0 <= response.json()["probability"] <= 1.0
    assert _score(compose_stack, "diabetes_0000000000000000.not-a-key").status_code == 401
    states = {s.name: s for s in compose_stack.stack.status()}
    assert states[f"serving-{PROJECT}"].state == "running"
    assert states[f"serving-{PROJECT}"].url == _url(compose_stack)
    port = int(_url(compose_stack).rsplit(":", 1)[1])
    assert _handshake(compose_stack, port) in ("TLSv1.2", "TLSv1.3")


def test_prometheus_scrapes_the_projects_endpoint_and_worker_with_its_key(
    compose_stack: Running, served: str
) -> None:
    settings = compose_stack.settings

    def up() -> list[str]:
        answer = requests.get(
            f"{prometheus.url(settings)}/api/v1/query",
            params={"query": f'up{{project="{PROJECT}"}}'},
            auth=(prometheus.ADMIN, prometheus.admin_password(settings)),
            verify=str(settings.ca_bundle),
            timeout=10,
        )
        return sorted(r["value"][1] for r in answer.json()["data"]["result"])

    wait_until(lambda: up() == ["1", "1"], 90, "the project's two targets scraped", every=2)


def test_another_project_is_refused_everything_of_the_first(
    compose_stack: Running, served: str
) -> None:
    settings = compose_stack.settings
    compose_stack.cli("projects", "create", OTHER, "--contract", "readmission")
    intruder = openbao.login(settings, keys.identity(OTHER))
    with pytest.raises(AccessDenied):
        credentials.read(intruder, objectstore.s3_credentials_path(PROJECT, "workload"))
    own = credentials.read(intruder, objectstore.s3_credentials_path(OTHER, "workload"))
    s3 = s3_client(settings.s3_url, own["access_key"], own["secret_key"], settings.ca_bundle)
    for zone in ("raw-phi", "deidentified", "artifacts"):
        with pytest.raises(Exception, match="AccessDenied"):
            s3.list_objects_v2(Bucket=objectstore.bucket_name(PROJECT, zone))
    other_key = compose_stack.cli(
        "serving", "keys", "create", "--project", OTHER, "--client", "intruder"
    ).stdout.strip()
    # A valid key, of another project: refused as such.
    assert _score(compose_stack, other_key).status_code == 403


def test_restarted_containers_keep_their_data_and_come_back_unsealed(
    compose_stack: Running, served: str
) -> None:
    before = _score(compose_stack, served).json()["probability"]
    compose_stack.stack.restart("openbao", f"serving-{PROJECT}")
    operator = openbao.login(compose_stack.settings, "operator")
    assert keys.describe(operator, PROJECT, HOME)["latest_version"] == 1
    assert _score(compose_stack, served).json()["probability"] == before


def test_a_suspended_project_loses_its_endpoint_container_and_gets_it_back(
    compose_stack: Running, served: str
) -> None:
    endpoint = f"serving-{PROJECT}"
    compose_stack.cli("projects", "suspend", PROJECT)
    assert endpoint not in {s.name for s in compose_stack.stack.status()}
    running = compose_stack.stack.compose("ps", "--all", "--format", "{{.Service}}").split()
    assert endpoint not in running
    with pytest.raises(requests.ConnectionError):
        _score(compose_stack, served)

    compose_stack.cli("projects", "resume", PROJECT)
    states = {s.name: s.state for s in compose_stack.stack.status()}
    assert states[endpoint] == "running"
    wait_until(
        lambda: _score(compose_stack, served).status_code == 200, 120, "the endpoint back", every=1
    )


def test_a_deleted_project_leaves_no_identity_and_no_bucket(compose_stack: Running) -> None:
    gone = "gone"
    compose_stack.cli("projects", "create", gone, "--contract", "readmission")
    compose_stack.cli("projects", "delete", gone, "--now", "--confirm", gone)
    operator = openbao.login(compose_stack.settings, "operator")
    for who in (f"project-{gone}", f"ingest-{gone}", f"serving-{gone}"):
        with pytest.raises(hvac.exceptions.InvalidPath):
            operator.auth.approle.read_role(who)
    admin = seaweedfs.admin_client(compose_stack.settings, operator)
    for zone in objectstore.ZONES:
        with pytest.raises(botocore.exceptions.ClientError):
            admin.head_bucket(Bucket=objectstore.bucket_name(gone, zone))


def test_a_project_in_another_region_keeps_its_data_in_that_regions_lake(
    compose_stack: Running,
) -> None:
    settings, away = compose_stack.settings, "euteam"
    port = settings.lake_port(AWAY)
    assert _handshake(compose_stack, port) in ("TLSv1.2", "TLSv1.3")
    assert _plaintext_answer(port)[:1] in (b"", b"\x15", b"H")
    compose_stack.cli("projects", "create", away, "--contract", "readmission", "--region", AWAY)
    compose_stack.cli("data", "synth", "patients", "--project", away, "--rows", "500")
    operator = openbao.login(settings, "operator")
    lake = seaweedfs.admin_client(seaweedfs.in_region(settings, AWAY), operator)
    # Its dataset versions: DVC pushes them to its de-identified zone, SSE-KMS.
    bucket = objectstore.bucket_name(away, "deidentified")
    names = [o["Key"] for o in lake.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert names
    for name in names:
        assert lake.head_object(Bucket=bucket, Key=name)["SSEKMSKeyId"] == keys.key_name(away, AWAY)
    with pytest.raises(botocore.exceptions.ClientError):
        seaweedfs.admin_client(settings, operator).head_bucket(Bucket=bucket)
    refused = compose_stack.cli(
        "data", "synth", "again", "--project", away, "--rows", "100",
        check=False,
        env={"HIPAA_MLOPS_REGION": HOME},
    )  # fmt: skip
    assert refused.returncode == 1
    assert f"may not keep data in region '{HOME}'" in refused.stderr


def test_the_app_image_serves_a_packaged_champion_under_sagemakers_contract(
    compose_stack: Running, served: str, tmp_path: Path
) -> None:
    """The image the stack runs, started as SageMaker starts it (`serve`, the package at
    /opt/ml/model, port 8080, no network but the published port), scores as the stack's
    endpoint does."""
    archive = tmp_path / "model.tar.gz"
    compose_stack.cli("model", "package", "1", "--project", PROJECT, "--out", str(archive))
    model = tmp_path / "model"
    with tarfile.open(archive) as tar:
        tar.extractall(model, filter="data")
    for path in [model, *model.rglob("*")]:
        os.chown(path, 10001, 10001)
    port = free_port_base(span=1)
    name = f"sagemaker-{compose_stack.stack.project}"
    image = load_record()["app"]["tag"]
    subprocess.run(
        [
            "docker", "run", "--detach", "--rm", "--name", name, "--read-only",
            "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
            "--volume", f"{model}:/opt/ml/model:ro", "--publish", f"127.0.0.1:{port}:8080",
            image, "serve",
        ],
        capture_output=True, check=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"

        def pinged() -> bool:
            try:
                return requests.get(f"{url}/ping", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(pinged, 120, "the image answering /ping", every=1)
        answer = requests.post(f"{url}/invocations", json=RECORD, timeout=30)
        assert answer.status_code == 200, answer.text
        expected = _score(compose_stack, served).json()["probability"]
        assert answer.json()["probability"] == pytest.approx(expected, abs=1e-9)
        refused = requests.post(
            f"{url}/invocations", json={**RECORD, "ssn": "078-05-1120"}, timeout=30
        )
        assert refused.status_code == 422 and "078-05-1120" not in refused.text
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)


def test_training_lineage_names_the_image_the_worker_runs(compose_stack: Running) -> None:
    digest = compose_stack.exec(
        "monitoring", "python", "-c",
        "from safeguards.settings import load_settings; print(load_settings().image_digest)",
    ).strip()  # fmt: skip
    container = compose_stack.compose.get_container("monitoring").ID
    image = subprocess.run(
        ["docker", "inspect", "-f", "{{.Image}}", container],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert digest == image == load_record()["app"]["id"]


def test_every_audit_chain_verifies(compose_stack: Running, served: str, tmp_path: Path) -> None:
    verified = compose_stack.cli("audit", "verify").stdout
    assert "audit chain verified" in verified
    auditor = openbao.login(compose_stack.settings, "auditor")
    # Prometheus's init job recorded the API key it made, in its own volume's chain.
    copy = tmp_path / "prometheus.jsonl"
    compose_stack.stack.compose("cp", "prometheus:/data/audit/audit.jsonl", str(copy))
    result = AuditLog(copy, auditor, anchor=f"{ANCHORS}/prometheus").verify()
    assert result.entries >= 1

"""Prometheus on the stack: TLS only, basic auth on every path, the serving endpoint scraped
over verified TLS with an API key, the alert rules loaded, no secret where it should not be."""

from __future__ import annotations

import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests

from safeguards import apikeys, keys, pki
from safeguards.settings import Settings
from services.mlflow import launcher as mlflow
from services.prometheus import launcher
from services.supervisor import Supervisor
from services.topology import SERVICES

pytestmark = pytest.mark.integration

PROMETHEUS = next(s for s in SERVICES if s.name == "prometheus")
PATHS = ("/-/healthy", "/-/ready", "/api/v1/query?query=up", "/metrics", "/graph")


@pytest.fixture(scope="module")
def scraping(stack: Settings, lake: Settings, operator: hvac.Client) -> Iterator[Settings]:
    """Serving and Prometheus restarted for a fresh project, scraping every second; the
    next `up` starts both again with the stack's defaults. Prometheus's key is made before
    the project exists, as on a fresh stack."""
    project = f"m{uuid.uuid4().hex[:10]}"
    settings = stack.model_copy(
        update={"serving_project": project, "prometheus_scrape_seconds": 1.0}
    )
    supervisor = Supervisor(settings)
    for name in ("prometheus", "serving"):
        supervisor.stop(name)
    launcher.ensure_scrape_key(settings, operator)
    keys.create_project(operator, stack, project)
    mlflow.provision_project(stack, operator, project)
    try:
        supervisor.up("stack")
        yield settings
    finally:
        for name in ("prometheus", "serving"):
            supervisor.stop(name)


def get(settings: Settings, path: str, auth: tuple[str, str] | None = None) -> requests.Response:
    return requests.get(
        launcher.url(settings) + path, auth=auth, verify=str(settings.ca_bundle), timeout=10
    )


def admin(settings: Settings) -> tuple[str, str]:
    return launcher.ADMIN, launcher.admin_password(settings)


def query(settings: Settings, promql: str) -> list[dict[str, Any]]:
    response = requests.get(
        launcher.url(settings) + "/api/v1/query",
        params={"query": promql},
        auth=admin(settings),
        verify=str(settings.ca_bundle),
        timeout=10,
    )
    assert response.status_code == 200
    return list(response.json()["data"]["result"])


def test_plaintext_and_unverified_clients_get_nothing(scraping: Settings) -> None:
    plain = launcher.url(scraping).replace("https://", "http://") + "/-/healthy"
    response = requests.get(plain, timeout=5)
    assert response.status_code == 400
    assert "Healthy" not in response.text
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(launcher.url(scraping) + "/-/healthy", timeout=5)


@pytest.mark.parametrize("path", PATHS)
def test_every_path_needs_the_password(scraping: Settings, path: str) -> None:
    assert get(scraping, path).status_code == 401
    wrong = get(scraping, path, (launcher.ADMIN, "guessed-password-078-05-1120"))
    assert wrong.status_code == 401
    assert "078-05-1120" not in wrong.text
    assert get(scraping, path, admin(scraping)).status_code == 200


def test_the_serving_endpoint_is_scraped_with_its_api_key(scraping: Settings) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if [r["value"][1] for r in query(scraping, 'up{job="serving"}')] == ["1"]:
            break
        time.sleep(0.5)
    else:
        pytest.fail("Prometheus did not scrape the serving endpoint within 60 s")
    assert query(scraping, 'serving_model_version{job="serving"}')
    targets = get(scraping, "/api/v1/targets", admin(scraping)).json()["data"]["activeTargets"]
    assert {t["labels"]["job"] for t in targets} == {"serving", "monitoring"}
    assert all(t["scrapeUrl"].startswith("https://") for t in targets)


def test_the_alert_rules_are_loaded(scraping: Settings) -> None:
    groups = get(scraping, "/api/v1/rules", admin(scraping)).json()["data"]["groups"]
    assert [g["name"] for g in groups] == ["hipaa-mlops"]
    names = {rule["name"] for rule in groups[0]["rules"]}
    assert {"DataDrift", "TargetDown", "ServingErrorRate", "MonitoringStale"} <= names
    assert all(rule["health"] != "err" for rule in groups[0]["rules"])


def test_admin_lifecycle_and_foreign_origins_are_refused(scraping: Settings) -> None:
    base, auth, ca = launcher.url(scraping), admin(scraping), str(scraping.ca_bundle)
    snapshot = requests.post(base + "/api/v1/admin/tsdb/snapshot", auth=auth, verify=ca, timeout=10)
    assert snapshot.status_code != 200
    assert requests.post(base + "/-/reload", auth=auth, verify=ca, timeout=10).status_code == 403
    for origin, allowed in (("https://elsewhere.example", False), (base, True)):
        response = requests.get(
            base + "/api/v1/query?query=up",
            headers={"Origin": origin},
            auth=auth,
            verify=ca,
            timeout=10,
        )
        assert ("Access-Control-Allow-Origin" in response.headers) is allowed, origin


def test_secrets_stay_off_the_command_line_and_in_private_files(scraping: Settings) -> None:
    password = launcher.admin_password(scraping)
    key = launcher.key_file(scraping).read_text()
    pid = Supervisor(scraping).pid(PROMETHEUS)
    assert pid is not None
    for exposed in (Path(f"/proc/{pid}/cmdline"), Path(f"/proc/{pid}/environ")):
        content = exposed.read_bytes().decode(errors="ignore")
        assert password not in content and key not in content, exposed.name
    root = scraping.data_dir / "prometheus"
    private = [root / "web.yml", root / "prometheus.yml", launcher.key_file(scraping)]
    for path in [*private, pki.server_files(scraping, "prometheus")[0]]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    log = scraping.data_dir / "logs" / "prometheus.log"
    for path in [root / "web.yml", root / "prometheus.yml", log]:
        text = path.read_text(errors="ignore")
        assert password not in text and key not in text, path.name
    assert "$2b$" in (root / "web.yml").read_text()


def test_the_key_is_reused_across_restarts_and_replaced_once_revoked(
    scraping: Settings, operator: hvac.Client
) -> None:
    supervisor, project = Supervisor(scraping), scraping.serving_project
    key = launcher.key_file(scraping).read_text()

    def restart() -> None:
        supervisor.stop("prometheus")
        supervisor.up("stack")

    restart()
    assert launcher.key_file(scraping).read_text() == key
    mine = [k for k in apikeys.list_keys(operator, project) if k["client"] == launcher.CLIENT]
    assert [k["key_id"] for k in mine] == [key.partition(".")[0]]

    apikeys.revoke(operator, project, key.partition(".")[0])
    restart()
    assert launcher.key_file(scraping).read_text() != key

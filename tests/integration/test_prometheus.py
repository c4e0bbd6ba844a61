"""Prometheus on the stack: TLS only, basic auth on every path, each served project's
endpoint and worker metrics scraped over verified TLS with that project's own API key and
labelled with it, the alert rules loaded, no secret where it should not be."""

from __future__ import annotations

import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests

from pipeline import evidence
from pipeline.training import ModelSteward
from safeguards import apikeys, keys, pki
from safeguards.settings import Settings
from services.prometheus import launcher
from services.supervisor import Supervisor
from tests.conftest import deidentified_project

pytestmark = pytest.mark.integration

PATHS = ("/-/healthy", "/-/ready", "/api/v1/query?query=up", "/metrics", "/graph")


@dataclass(frozen=True)
class Scraping:
    settings: Settings
    project: str


@pytest.fixture(scope="module")
def scraped(stack: Settings, lake: Settings, operator: hvac.Client) -> Iterator[Scraping]:
    """A project with a champion, and Prometheus and the worker started again for it,
    Prometheus scraping every second; the next `up` starts both with the defaults."""
    project = deidentified_project(stack, operator, rows=3000, seed=13, served=True)
    steward = ModelSteward(stack, project)
    assert steward.promote(
        steward.train("clean").registered.version, "operator:t"
    ).decision.approved
    settings = stack.model_copy(update={"prometheus_scrape_seconds": 1.0})
    supervisor = Supervisor(settings)
    for name in ("prometheus", "monitoring"):
        supervisor.stop(name)
    try:
        supervisor.up("stack")
        yield Scraping(settings, project)
    finally:
        for name in ("prometheus", f"serving-{project}"):
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


def test_plaintext_and_unverified_clients_get_nothing(scraped: Scraping) -> None:
    plain = launcher.url(scraped.settings).replace("https://", "http://") + "/-/healthy"
    response = requests.get(plain, timeout=5)
    assert response.status_code == 400
    assert "Healthy" not in response.text
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(launcher.url(scraped.settings) + "/-/healthy", timeout=5)


@pytest.mark.parametrize("path", PATHS)
def test_every_path_needs_the_password(scraped: Scraping, path: str) -> None:
    assert get(scraped.settings, path).status_code == 401
    wrong = get(scraped.settings, path, (launcher.ADMIN, "guessed-password-078-05-1120"))
    assert wrong.status_code == 401
    assert "078-05-1120" not in wrong.text
    assert get(scraped.settings, path, admin(scraped.settings)).status_code == 200


def test_each_served_project_is_scraped_with_its_own_key_and_labelled(scraped: Scraping) -> None:
    mine = f'project="{scraped.project}"'
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        up = query(scraped.settings, f"up{{{mine}}}")
        if sorted(r["value"][1] for r in up) == ["1", "1"]:
            break
        time.sleep(0.5)
    else:
        pytest.fail("Prometheus did not scrape the project's endpoint and worker within 60 s")
    assert {r["metric"]["job"] for r in up} == {"serving", "monitoring"}
    assert query(scraped.settings, f'serving_model_version{{job="serving", {mine}}}')
    answer = get(scraped.settings, "/api/v1/targets", admin(scraped.settings))
    targets = answer.json()["data"]["activeTargets"]
    assert {t["labels"]["job"] for t in targets} == {"serving", "monitoring"}
    assert all(t["scrapeUrl"].startswith("https://") for t in targets)
    config = (scraped.settings.data_dir / "prometheus" / "prometheus.yml").read_text()
    assert str(launcher.key_file(scraped.settings, scraped.project)) in config


def test_the_evidence_finds_no_identifier_in_any_scraped_series(
    scraped: Scraping, operator: hvac.Client
) -> None:
    """`hipaa-mlops evidence`'s metrics check over the real series of a served project."""
    settings = scraped.settings.model_copy(update={"profile": "stack"})
    # A project of keys alone, without a contract, is no reason to fail.
    keys.create_project(operator, settings, f"p{uuid.uuid4().hex[:10]}")
    deadline = time.monotonic() + 60
    while not query(settings, f'up{{project="{scraped.project}"}}'):
        assert time.monotonic() < deadline, "nothing scraped within 60 s"
        time.sleep(0.5)
    check = evidence.check_metrics(settings, operator)
    assert check.status == evidence.PASS, check.summary
    assert check.evidence["series"] > 10 and check.evidence["findings"] == 0


def test_the_alert_rules_are_loaded(scraped: Scraping) -> None:
    groups = get(scraped.settings, "/api/v1/rules", admin(scraped.settings)).json()["data"][
        "groups"
    ]
    assert [g["name"] for g in groups] == ["hipaa-mlops"]
    names = {rule["name"] for rule in groups[0]["rules"]}
    assert {"DataDrift", "TargetDown", "ServingErrorRate", "MonitoringStale"} <= names
    assert all(rule["health"] != "err" for rule in groups[0]["rules"])


def test_admin_lifecycle_and_foreign_origins_are_refused(scraped: Scraping) -> None:
    base, auth, ca = (
        launcher.url(scraped.settings),
        admin(scraped.settings),
        str(scraped.settings.ca_bundle),
    )
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


def test_secrets_stay_off_the_command_line_and_in_private_files(scraped: Scraping) -> None:
    password = launcher.admin_password(scraped.settings)
    key = launcher.key_file(scraped.settings, scraped.project).read_text()
    pid = Supervisor(scraped.settings).pid("prometheus")
    assert pid is not None
    for exposed in (Path(f"/proc/{pid}/cmdline"), Path(f"/proc/{pid}/environ")):
        content = exposed.read_bytes().decode(errors="ignore")
        assert password not in content and key not in content, exposed.name
    root = scraped.settings.data_dir / "prometheus"
    private = [
        root / "web.yml",
        root / "prometheus.yml",
        launcher.key_file(scraped.settings, scraped.project),
    ]
    for path in [*private, pki.server_files(scraped.settings, "prometheus")[0]]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    log = scraped.settings.data_dir / "logs" / "prometheus.log"
    for path in [root / "web.yml", root / "prometheus.yml", log]:
        text = path.read_text(errors="ignore")
        assert password not in text and key not in text, path.name
    assert "$2b$" in (root / "web.yml").read_text()


def test_the_key_is_reused_across_restarts_and_replaced_once_revoked(
    scraped: Scraping, operator: hvac.Client
) -> None:
    supervisor, project = Supervisor(scraped.settings), scraped.project
    key = launcher.key_file(scraped.settings, scraped.project).read_text()

    def restart() -> None:
        supervisor.stop("prometheus")
        supervisor.up("stack")

    restart()
    assert launcher.key_file(scraped.settings, scraped.project).read_text() == key
    mine = [k for k in apikeys.list_keys(operator, project) if k["client"] == launcher.CLIENT]
    assert [k["key_id"] for k in mine] == [key.partition(".")[0]]

    apikeys.revoke(operator, project, key.partition(".")[0])
    restart()
    assert launcher.key_file(scraped.settings, scraped.project).read_text() != key

"""The alert rules and Prometheus's rendered configuration, checked with promtool: no server."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from safeguards import pki
from safeguards.files import write_private
from safeguards.projects import Project
from safeguards.settings import Settings
from services.prometheus import launcher

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
ALERTS = {
    "DataDrift",
    "FeatureDrift",
    "EstimatedAurocDrop",
    "RealisedAurocDrop",
    "ServingErrorRate",
    "ServingLatencyHigh",
    "MonitoringStale",
    "CaptureDropping",
    "TargetDown",
}
# The only template an annotation may hold: a label that never carries a sample's value.
_LABEL = re.compile(r"\s*\$labels\.(project|feature|method|job|instance)\s*")
SERVED = [Project("alpha", "created", 0), Project("beta", "created", 3)]


def promtool(*args: str) -> str:
    result = subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    assert [g["name"] for g in groups] == ["hipaa-mlops"]
    return list(groups[0]["rules"])


@pytest.fixture
def configured(tmp_path: Path) -> Settings:
    """Settings in `tmp_path` with the files promtool checks: CA, certificate, key file."""
    settings = Settings(data_dir=tmp_path, profile="stack", prometheus_scrape_seconds=2)
    root_key = tmp_path / "root.key"
    key, cert = pki.server_files(settings, "prometheus")
    for directory in (settings.ca_bundle.parent, key.parent):
        directory.mkdir(parents=True)
    pki.create_root(root_key, settings.ca_bundle)
    pki.issue_bootstrap_server_cert(
        root_key,
        settings.ca_bundle,
        [settings.host, "localhost"],
        key,
        cert,
    )
    for project in SERVED:
        key = f"{project.name}_0123456789abcdef.not-a-real-key".encode()
        write_private(launcher.key_file(settings, project.name), key)
    return settings


def test_alert_rules_are_valid() -> None:
    assert "SUCCESS: 9 rules found" in promtool("check", "rules", str(MONITORING / "alerts.yml"))


def test_alert_rules_pass_their_unit_tests() -> None:
    assert "SUCCESS" in promtool("test", "rules", str(MONITORING / "alerts_test.yml"))


def test_every_alert_is_unit_tested() -> None:
    tests = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert {str(rule["alert"]) for rule in rules()} == ALERTS == tested


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: str(rule["alert"]))
def test_alerts_have_a_severity_and_template_only_labels(rule: dict[str, Any]) -> None:
    assert set(rule["labels"]) == {"severity"}
    assert rule["labels"]["severity"] in {"info", "warning", "critical"}
    assert set(rule["annotations"]) == {"summary", "description"}
    for text in rule["annotations"].values():
        for template in re.findall(r"{{(.*?)}}", text):
            assert _LABEL.fullmatch(template), template


def test_rendered_scrape_config_passes_promtool(configured: Settings, tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(launcher.render_config(configured, SERVED))
    out = promtool("check", "config", str(path))
    assert "SUCCESS: 9 rules found" in out


def test_each_project_is_scraped_with_its_own_key_over_verified_tls(
    configured: Settings,
) -> None:
    text = launcher.render_config(configured, SERVED)
    config = yaml.safe_load(text)
    assert config["global"] == {"scrape_interval": "2000ms", "evaluation_interval": "2000ms"}
    assert config["rule_files"] == [str(MONITORING / "alerts.yml")]
    assert set(config) == {"global", "rule_files", "scrape_configs"}  # no remote write
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"serving-alpha", "monitoring-alpha", "serving-beta", "monitoring-beta"}
    base = configured.port_base
    targets = {name: job["static_configs"][0]["targets"] for name, job in jobs.items()}
    assert targets["serving-alpha"] == [f"{configured.host}:{base + 20}"]
    assert targets["serving-beta"] == [f"{configured.host}:{base + 23}"]
    assert targets["monitoring-alpha"] == targets["monitoring-beta"]
    for name, job in jobs.items():
        kind, _, project = name.partition("-")
        assert job["static_configs"][0]["labels"] == {"project": project}
        assert job["relabel_configs"] == [{"target_label": "job", "replacement": kind}]
        assert job["scheme"] == "https"
        assert job["tls_config"] == {"ca_file": str(configured.ca_bundle), "min_version": "TLS12"}
        assert job["authorization"] == {
            "type": "Bearer",
            "credentials_file": str(launcher.key_file(configured, project)),
        }
    assert "insecure" not in text and "server_name" not in text and "http://" not in text


def test_web_config_passes_promtool_and_holds_only_a_bcrypt_hash(
    configured: Settings, tmp_path: Path
) -> None:
    password = secrets.token_urlsafe(32)
    hashed = launcher.bcrypt_hash(password)
    path = tmp_path / "web.yml"
    path.write_text(launcher.render_web_config(configured, hashed))
    promtool("check", "web-config", str(path))
    text = path.read_text()
    assert password not in text
    config = yaml.safe_load(text)
    assert config["basic_auth_users"] == {launcher.ADMIN: hashed}
    assert config["tls_server_config"]["min_version"] == "TLS12"
    assert hashed.startswith("$2b$10$") and hashed != launcher.bcrypt_hash(password)

"""Start Prometheus natively: TLS and basic auth on its listener, verified TLS to every
target, the stack's alert rules (`monitoring/alerts.yml`) loaded.

Prometheus comes from Debian's package (`make prometheus`) and listens on the stack's
loopback address only, TLS 1.3 or TLS 1.2 with ECDHE-AEAD suites (`pki.AEAD_SUITES`), with
a certificate from the stack's PKI. Every path, health checks included, asks for the
password of its one user, which is generated into OpenBao KV; the 0600 web config holds
only its bcrypt hash. Targets are scraped over HTTPS verified with the stack's CA bundle,
never without verification: every served project's endpoint, and the monitoring worker
once per project, each with an API key of that project kept in a 0600 file (OpenBao
stores keys hashed, so that file is its only plaintext copy), and every series labelled
with its project. One project's key reads nothing of another's. No secret is ever
on the command line. The admin API, the HTTP lifecycle endpoints, remote write and its
receiver stay off; the TSDB is bounded. Alerts are evaluated and shown by its API only:
there is no Alertmanager to send them anywhere.
"""

from __future__ import annotations

import re
import shutil
from importlib.resources import files
from pathlib import Path

import bcrypt
import hvac
import requests
import yaml

from safeguards import apikeys, credentials, openbao, pki
from safeguards.actions import Operator
from safeguards.errors import ConfigError, SafeguardError
from safeguards.files import write_private
from safeguards.projects import Project
from safeguards.settings import Settings
from services.launch import Launch
from services.mlflow.launcher import served_projects
from services.serving import launcher as serving

ADMIN = "prometheus-admin"
ADMIN_CREDENTIAL = "services/prometheus/admin"
# The client its API keys are issued to, as `serving keys list` shows it.
CLIENT = "prometheus"
ACTOR = "pipeline:stack"
# Shipped in the `monitoring` package, beside the worker that exports their metrics.
RULES = Path(str(files("monitoring").joinpath("alerts.yml")))
# The targets whose /metrics takes an API key of a project: each endpoint, and the
# worker (which answers with the metrics of the key's project). MLflow is not among them:
# its exporter needs prometheus-flask-exporter (not installed), and under basic auth only
# MLflow's admin may read its /metrics.
KEYED_TARGETS = ("serving", "monitoring")


def _dir(settings: Settings) -> Path:
    return settings.data_dir / "prometheus"


def port(settings: Settings) -> int:
    return settings.port("prometheus")


def url(settings: Settings) -> str:
    return settings.url("prometheus")


def key_file(settings: Settings, project: str) -> Path:
    """The 0600 file with Prometheus's API key of `project`."""
    return _dir(settings) / "keys" / f"{project}.key"


def _binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise ConfigError("Prometheus is not installed: run `make prometheus`")
    return found


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def render_config(settings: Settings, served: list[Project]) -> str:
    """prometheus.yml: the alert rules, and for each served project its endpoint and the
    worker, over HTTPS verified with the CA, with that project's key, labelled with it."""
    interval = _duration(settings.prometheus_scrape_seconds)
    jobs = []
    for project in served:
        instance = serving.settings_of(settings, project)
        for name in KEYED_TARGETS:
            jobs.append(
                {
                    "job_name": f"{name}-{project.name}",
                    "scheme": "https",
                    "metrics_path": "/metrics",
                    "tls_config": {"ca_file": str(settings.ca_bundle), "min_version": "TLS12"},
                    "authorization": {
                        "type": "Bearer",
                        "credentials_file": str(key_file(settings, project.name)),
                    },
                    "static_configs": [
                        {
                            "targets": [f"{instance.service_host(name)}:{instance.port(name)}"],
                            "labels": {"project": project.name},
                        }
                    ],
                    # One job per project and target, each named for what it scrapes.
                    "relabel_configs": [{"target_label": "job", "replacement": name}],
                }
            )
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(RULES)],
        "scrape_configs": jobs,
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def render_web_config(settings: Settings, password_hash: str) -> str:
    """The web config: Prometheus's TLS listener and its one user's bcrypt hash."""
    key, cert = pki.server_files(settings, "prometheus")
    config = {
        "tls_server_config": {
            "cert_file": str(cert),
            "key_file": str(key),
            "min_version": "TLS12",
            "cipher_suites": list(pki.AEAD_SUITES),
        },
        "basic_auth_users": {ADMIN: password_hash},
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def bcrypt_hash(password: str) -> str:
    """The password as bcrypt, the only form Prometheus's web config takes.

    The password is 256 random bits, so the hash's cost adds no strength: cost 10 keeps
    each check short (Prometheus caches the ones that pass).
    """
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()


def ensure_scrape_key(settings: Settings, operator: hvac.Client, project: str) -> None:
    """Write Prometheus's API key of `project` to its 0600 file, made once.

    The file is reused across restarts while OpenBao still holds the key (revoked, it is
    replaced).
    """
    path = key_file(settings, project)
    if path.exists():
        key_id = path.read_text().partition(".")[0]
        if any(k["key_id"] == key_id for k in apikeys.list_keys(operator, project)):
            return
    _, key = Operator(settings, operator, ACTOR).create_api_key(project, CLIENT)
    path.parent.mkdir(exist_ok=True, mode=0o700)
    write_private(path, key.encode())


def provision(settings: Settings, operator: hvac.Client) -> None:
    """As the operator: certificate, web config, an API key per served project and the
    scrape config."""
    root = _dir(settings)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    pki.issue_for(operator, settings, "prometheus")
    password = credentials.ensure_generated(operator, ADMIN_CREDENTIAL)
    write_private(root / "web.yml", render_web_config(settings, bcrypt_hash(password)).encode())
    served = served_projects(settings, operator)
    for project in served:
        ensure_scrape_key(settings, operator, project.name)
    write_private(root / "prometheus.yml", render_config(settings, served).encode())


def prepare(settings: Settings) -> Launch:
    root = _dir(settings)
    return Launch(
        [
            _binary(),
            f"--config.file={root / 'prometheus.yml'}",
            f"--web.config.file={root / 'web.yml'}",
            f"--web.listen-address={settings.bind_host}:{port(settings)}",
            # By default any origin's pages may read the API; here only its own may.
            f"--web.cors.origin={re.escape(url(settings))}",
            f"--storage.tsdb.path={root / 'data'}",
            "--storage.tsdb.retention.time=15d",
            "--storage.tsdb.retention.size=1GB",
        ]
    )


def admin_password(settings: Settings) -> str:
    return credentials.read(openbao.login(settings, "operator"), ADMIN_CREDENTIAL)["password"]


def ready(settings: Settings) -> bool:
    """Whether Prometheus is ready, asked as its user over verified TLS.

    An anonymous probe would get 401 from a server that is still loading its storage, so
    the probe reads the password from OpenBao and asks `/-/ready`.
    """
    try:
        response = requests.get(
            url(settings) + "/-/ready",
            auth=(ADMIN, admin_password(settings)),
            verify=str(settings.ca_bundle),
            timeout=2,
        )
    except (SafeguardError, requests.RequestException):
        return False
    return response.status_code == 200

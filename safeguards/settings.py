"""One typed settings object for every command and service.

Read from the environment (prefix ``HIPAA_MLOPS_``) and an optional ``.env``. There is no
default for any secret: the stack generates its own credentials at first start and keeps
them in OpenBao. A secret that is set by hand must not be a placeholder.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from safeguards.errors import ConfigError

# Values that are no credential: defaults, placeholders, template syntax.
PLACEHOLDERS = re.compile(
    r"^(|changeme|changethis|change-me|secret|password\d*|admin|root|test|example|placeholder"
    r"|todo|xxx+|none|null|<.*>|your[-_].*|\$\{.*\})$",
    re.IGNORECASE,
)


# Regions: each has a lake of its own. The first region listed is home: OpenBao, MLflow
# and PostgreSQL run there, and its lake listens at `port_base` + 2 with its internal
# listeners at + 10 to + 16 (`LAKE_PORTS`). Each further region's lake has a block of its
# own above the endpoint slots.
# A project name: it is part of key, bucket, policy and API key names.
PROJECT = r"[a-z][a-z0-9-]{1,30}[a-z0-9]"
MAX_REGIONS = 4
REGION = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
AWS_REGION = r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$"
DNS_NAME = (
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)
LAKE_PORTS = {
    "s3": 2,
    "master": 10,
    "volume": 11,
    "filer": 12,
    "master-grpc": 13,
    "volume-grpc": 14,
    "filer-grpc": 15,
    "s3-grpc": 16,
}

# Each server's port above `port_base`, the one place they are defined.
PORT_OFFSETS = {
    "openbao": 0,
    "seaweedfs": LAKE_PORTS["s3"],
    "mlflow": 3,
    "postgres": 4,
    "monitoring": 6,
    "prometheus": 7,
}
# Each project's endpoint listens at `port_base` + this + its slot (`projects create` gives
# every project a slot of its own); at most `SERVING_SLOTS` projects.
SERVING_PORTS = 20
SERVING_SLOTS = 200
_REGION_BLOCK = SERVING_PORTS + SERVING_SLOTS
# The compose stack's networks (`compose/compose.yaml`): `edge` carries the published
# ports, `data` is internal. Clients of the compose stack come from these only.
COMPOSE_SUBNETS = {"edge": "10.89.10.0/24", "data": "10.89.11.0/24"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HIPAA_MLOPS_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    profile: Literal["sandbox", "stack"] = "sandbox"
    data_dir: Path = Field(
        default=Path(".hipaa-mlops"),
        description="Logs, server data, certificates and sandbox credentials live here.",
    )
    host: str = Field(default="127.0.0.1", description="Loopback address servers bind to.")
    runtime: Literal["native", "compose"] = Field(
        default="native",
        description="How the stack's servers run: native processes, or the compose stack.",
    )
    network: Literal["loopback", "compose"] = Field(
        default="loopback",
        description="Where this process runs: on the host (servers on the loopback address) "
        "or in a container of the compose stack (servers by their service names).",
    )
    port_base: int = Field(
        default=8200,
        ge=1024,
        le=65535 - _REGION_BLOCK - len(LAKE_PORTS) * (MAX_REGIONS - 1),
        description="OpenBao listens here; others above it.",
    )
    regions: str = Field(
        default="us-east",
        description="Comma-separated regions the platform keeps data in, home first; each "
        "has its own lake and its own keys.",
    )
    region: str | None = Field(
        default=None,
        pattern=REGION,
        description="The region this process runs in (a lake's own, or a workload pinned to "
        "one); unset, each project's data is reached in its primary region.",
    )
    aws_regions: str = Field(
        default="us-east=us-east-1,eu-central=eu-central-1",
        description="Comma-separated region=AWS region pairs: where `promote --to aws` "
        "serves each of a project's regions.",
    )
    audit_log: str = Field(
        default="platform",
        pattern=r"^[a-z][a-z0-9-]{1,62}$",
        description="The audit log's name: its anchors live under secret/audit/anchors/<name>.",
    )
    openbao_bound_cidrs: str | None = Field(
        default=None,
        description="Comma-separated CIDRs that AppRole secret ids and tokens work from, "
        "and PostgreSQL accepts MLflow from; unset, loopback natively and the compose "
        "stack's subnets under compose (in AWS, the VPC's).",
    )
    openbao_addr: str | None = Field(
        default=None, description="An external OpenBao; by default the stack's own."
    )
    openbao_storage: Literal["raft", "postgresql"] = Field(
        default="raft",
        description="OpenBao's storage: raft in its data directory, or PostgreSQL (reached "
        "through the libpq PG* variables) with high availability: one active node, the "
        "others standbys.",
    )
    openbao_seal: Literal["shamir", "static"] = Field(
        default="shamir",
        description="How OpenBao unseals: one Shamir key in a 0600 file it is given at every "
        "start, or itself, with the 32-byte key in OPENBAO_UNSEAL_KEY (injected from a "
        "secret store; recovery keys then replace the unseal key).",
    )
    server_names: str = Field(
        default="",
        description="Comma-separated DNS names this server is also reached by (a load "
        "balancer's): in its certificate and the names it answers to.",
    )
    mlflow_addr: str | None = Field(
        default=None, description="An external MLflow; by default the stack's own."
    )
    postgres_addr: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$",
        description="host:port of an external PostgreSQL for MLflow's store (the user and "
        "password then come from PGUSER and PGPASSWORD); by default the stack's own.",
    )
    postgres_ca: Path | None = Field(
        default=None,
        description="The CA bundle that verifies the external PostgreSQL; by default the stack's.",
    )
    job_dirs: bool = Field(
        default=False,
        description="In AWS: each project's jobs mount a data directory of their own, "
        "jobs/<project> of the control plane's; OpenBao's active node keeps the CA bundle "
        "and the project's workload credentials there, and nothing else of the platform.",
    )
    lake: Literal["seaweedfs", "s3"] = Field(
        default="seaweedfs",
        description="The stack's lakes, or Amazon S3: buckets <s3_bucket_prefix>-<project>-"
        "<region>-<zone>, credentials from the AWS default chain (a task's role), objects "
        "under each zone's KMS key.",
    )
    s3_bucket_prefix: str = Field(
        default="hipaa-mlops",
        pattern=r"^[a-z0-9][a-z0-9-]{1,30}$",
        description="The first part of every S3 bucket's name under HIPAA_MLOPS_LAKE=s3.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto", description="Log lines as JSON, as text, or (auto) text in a terminal."
    )
    s3_endpoint: str | None = Field(
        default=None, description="An external S3 endpoint; by default the stack's SeaweedFS."
    )
    image_digest: str | None = Field(
        default=None, description="Digest of the container image this runs in, for lineage."
    )
    # Set by the stack for each endpoint process: the one project it serves, and its slot.
    serving_project: str | None = Field(
        default=None,
        pattern=rf"^{PROJECT}$",
        description="The project an endpoint process serves (set per process by the stack).",
    )
    serving_slot: int | None = Field(
        default=None,
        ge=0,
        lt=SERVING_SLOTS,
        description="The endpoint's port is port_base + 20 + this (set per process).",
    )
    serving_poll_seconds: float = Field(
        default=5.0, ge=0.5, le=300, description="How often serving checks the champion alias."
    )
    serving_key_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        le=600,
        description="How long serving trusts a looked-up API key; a revoked key stops within it.",
    )
    serving_capture_records: int = Field(
        default=1000, ge=1, le=100_000, description="Captured predictions per Parquet batch."
    )
    serving_capture_seconds: float = Field(
        default=60.0, ge=0.5, le=3600, description="Longest wait before a capture batch is written."
    )
    monitor_interval_seconds: float = Field(
        default=300.0, ge=1, le=86_400, description="How often the monitoring worker runs."
    )
    monitor_window_rows: int = Field(
        default=10_000,
        ge=100,
        le=10_000_000,
        description="The newest captured predictions of the champion that each run analyses.",
    )
    monitor_chunk_rows: int = Field(
        default=500, ge=50, le=1_000_000, description="Rows per NannyML chunk."
    )
    retrain_cron: str = Field(
        default="0 3 * * mon",
        description="When the worker retrains on the newest de-identified data (crontab, UTC).",
    )
    retrain_on_drift: bool = Field(
        default=True, description="Whether detected drift starts a retrain."
    )
    prometheus_scrape_seconds: float = Field(
        default=15.0,
        ge=1,
        le=300,
        description="How often Prometheus scrapes its targets and evaluates the alert rules.",
    )
    # Injected by an orchestrator in production instead of the sandbox's credential files.
    openbao_role_id: SecretStr | None = None
    openbao_secret_id: SecretStr | None = None

    @field_validator("openbao_role_id", "openbao_secret_id")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value().strip()
            if PLACEHOLDERS.match(raw) or len(raw) < 16:
                raise ValueError(
                    "is a placeholder or too short; leave it unset in the sandbox or inject "
                    "the real value issued by OpenBao"
                )
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: str) -> str:
        names = [r.strip() for r in value.split(",")]
        if not 1 <= len(names) <= MAX_REGIONS or len(set(names)) != len(names):
            raise ValueError(f"lists 1 to {MAX_REGIONS} distinct regions")
        if not all(re.match(REGION, r) for r in names):
            raise ValueError("a region is 2-32 lowercase letters, digits and dashes")
        return ",".join(names)

    @field_validator("aws_regions")
    @classmethod
    def _aws_regions(cls, value: str) -> str:
        pairs = [p.strip().partition("=") for p in value.split(",") if p.strip()]
        if not all(
            re.match(REGION, ours) and re.match(AWS_REGION, theirs) for ours, _, theirs in pairs
        ):
            raise ValueError("lists region=AWS region pairs, e.g. us-east=us-east-1")
        return ",".join(f"{ours}={theirs}" for ours, _, theirs in pairs)

    @model_validator(mode="after")
    def _region_is_ours(self) -> Settings:
        if self.region is not None and self.region not in self.region_names:
            raise ValueError("HIPAA_MLOPS_REGION is not one of HIPAA_MLOPS_REGIONS")
        return self

    @property
    def region_names(self) -> tuple[str, ...]:
        """The platform's regions, home first."""
        return tuple(self.regions.split(","))

    @property
    def aws_region_map(self) -> dict[str, str]:
        """Each region's AWS region (HIPAA_MLOPS_AWS_REGIONS)."""
        return dict(p.split("=") for p in self.aws_regions.split(",") if p)

    @property
    def home_region(self) -> str:
        return self.region_names[0]

    @property
    def lake_region(self) -> str:
        """The region whose lake this process is, or talks to by default."""
        return self.region or self.home_region

    def lake_name(self, region: str) -> str:
        """The server name of `region`'s lake: ``seaweedfs`` at home, else
        ``seaweedfs-<region>``."""
        if region not in self.region_names:
            raise ConfigError(f"'{region}' is not one of the platform's regions")
        return "seaweedfs" if region == self.home_region else f"seaweedfs-{region}"

    def lake_port(self, region: str, listener: str = "s3") -> int:
        """The port of `listener` of `region`'s lake (`LAKE_PORTS`)."""
        self.lake_name(region)  # refuses a region that is not the platform's
        index = self.region_names.index(region)
        if index == 0:
            return self.port_base + LAKE_PORTS[listener]
        block = _REGION_BLOCK + len(LAKE_PORTS) * (index - 1)
        return self.port_base + block + list(LAKE_PORTS).index(listener)

    def lake_url(self, region: str) -> str:
        """The S3 endpoint of `region`'s lake, from where this process runs."""
        if self.s3_endpoint and region == self.home_region:
            return self.s3_endpoint
        host = self.lake_name(region) if self.network == "compose" else self.host
        return f"https://{host}:{self.lake_port(region)}"

    @field_validator("openbao_bound_cidrs")
    @classmethod
    def _cidrs(cls, value: str | None) -> str | None:
        for cidr in (value or "0.0.0.0/0").split(","):
            ipaddress.ip_network(cidr.strip())
        return value

    @field_validator("server_names")
    @classmethod
    def _dns_names(cls, value: str) -> str:
        names = [n.strip().lower() for n in value.split(",") if n.strip()]
        if not all(re.match(DNS_NAME, n) for n in names):
            raise ValueError("lists DNS names, e.g. openbao-1234.elb.us-east-1.amazonaws.com")
        return ",".join(names)

    @property
    def extra_names(self) -> list[str]:
        """HIPAA_MLOPS_SERVER_NAMES, as a list."""
        return [n for n in self.server_names.split(",") if n]

    @property
    def bound_cidrs(self) -> list[str]:
        if self.openbao_bound_cidrs is not None:
            return [c.strip() for c in self.openbao_bound_cidrs.split(",")]
        if self.runtime == "compose":
            return list(COMPOSE_SUBNETS.values())
        return ["127.0.0.0/8"]

    def port(self, service: str) -> int:
        """The port `service` listens on (the same on the host and in its container); an
        endpoint's follows its project's slot."""
        if service == "seaweedfs":
            return self.lake_port(self.lake_region)
        if service == "serving":
            if self.serving_slot is None:
                raise ConfigError("an endpoint's port follows its project's slot, unset here")
            return self.port_base + SERVING_PORTS + self.serving_slot
        return self.port_base + PORT_OFFSETS[service]

    def service_host(self, service: str) -> str:
        """The name or address that reaches `service` from where this process runs (an
        endpoint's compose name is `serving-<project>`)."""
        if self.network != "compose":
            return self.host
        if service == "seaweedfs":
            return self.lake_name(self.lake_region)
        return f"serving-{self.serving_project}" if service == "serving" else service

    @property
    def bind_host(self) -> str:
        """The address servers listen on: loopback natively, every interface of their
        own container in the compose stack (each container has its own network)."""
        return "0.0.0.0" if self.network == "compose" else self.host  # noqa: S104

    def url(self, service: str) -> str:
        return f"https://{self.service_host(service)}:{self.port(service)}"

    @field_validator("retrain_cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger.from_crontab(value, timezone="UTC")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def ca_bundle(self) -> Path:
        """The one CA bundle every client verifies servers with."""
        return self.data_dir / "tls" / "ca.pem"

    @property
    def credentials_dir(self) -> Path:
        return self.data_dir / "credentials"

    @property
    def s3_url(self) -> str:
        return self.lake_url(self.lake_region)

    @property
    def openbao_url(self) -> str:
        return self.openbao_addr or self.url("openbao")

    @property
    def mlflow_url(self) -> str:
        return self.mlflow_addr or self.url("mlflow")


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with validation errors as one clear ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"HIPAA_MLOPS_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            if e["loc"]
            else e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None

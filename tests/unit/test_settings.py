from __future__ import annotations

import pytest

from safeguards.errors import ConfigError
from safeguards.settings import load_settings


@pytest.mark.parametrize(
    "placeholder",
    [
        "changeme",
        "CHANGETHIS",
        "",
        "password",
        "<secret-id>",
        "your-secret-id",
        "${SECRET_ID}",
        "short-one",
    ],
)
def test_placeholder_secret_is_refused_without_echoing_it(placeholder: str) -> None:
    with pytest.raises(ConfigError, match="HIPAA_MLOPS_OPENBAO_SECRET_ID") as info:
        load_settings(openbao_secret_id=placeholder)
    if placeholder:
        assert placeholder not in str(info.value)


def test_real_looking_secret_is_accepted() -> None:
    settings = load_settings(openbao_secret_id="9f0c2b1e-3d4a-4c5b-8e7f-1a2b3c4d5e6f")
    assert settings.openbao_secret_id is not None
    assert "9f0c2b1e" not in repr(settings)


def test_defaults_need_no_secret(tmp_path: object) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.openbao_secret_id is None
    assert settings.openbao_url.startswith("https://")
    assert settings.ca_bundle.is_absolute()


def test_a_retrain_schedule_that_is_not_a_crontab_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match="HIPAA_MLOPS_RETRAIN_CRON"):
        load_settings(retrain_cron="every monday")
    assert load_settings(retrain_cron="30 2 * * sun").retrain_cron == "30 2 * * sun"


def test_every_regions_lake_has_ports_of_its_own_above_the_endpoints() -> None:
    from safeguards.settings import LAKE_PORTS, MAX_REGIONS, SERVING_PORTS, SERVING_SLOTS

    regions = ["us-east", "eu-central", "ap-south", "ca-1"][:MAX_REGIONS]
    settings = load_settings(regions=",".join(regions), port_base=65535 - 244)
    ports = [settings.lake_port(r, n) for r in regions for n in LAKE_PORTS]
    assert len(set(ports)) == len(ports) and max(ports) <= 65535
    endpoints = range(
        settings.port_base + SERVING_PORTS, settings.port_base + SERVING_PORTS + SERVING_SLOTS
    )
    assert not [p for p in ports if p in endpoints]
    assert settings.lake_port("us-east") == settings.port("seaweedfs")
    away = settings.model_copy(update={"region": "eu-central"})
    assert away.port("seaweedfs") == settings.lake_port("eu-central")
    assert settings.lake_name("us-east") == "seaweedfs"
    assert settings.lake_name("eu-central") == "seaweedfs-eu-central"


@pytest.mark.parametrize(
    ("regions", "region", "problem"),
    [
        ("us-east,us-east", None, "distinct"),
        ("us-east,eu-central,a1,b2,c3", None, "1 to 4"),
        ("us.east", None, "lowercase"),
        ("us-east", "eu-central", "not one of HIPAA_MLOPS_REGIONS"),
    ],
)
def test_regions_that_cannot_be_told_apart_or_are_not_the_platforms_are_refused(
    regions: str, region: str | None, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(regions=regions, region=region)


def test_server_names_are_dns_names_and_a_bad_one_is_refused_without_echo() -> None:
    settings = load_settings(server_names="OpenBao-1.elb.us-east-1.amazonaws.com, mlflow.internal")
    assert settings.extra_names == ["openbao-1.elb.us-east-1.amazonaws.com", "mlflow.internal"]
    with pytest.raises(ConfigError, match="HIPAA_MLOPS_SERVER_NAMES") as info:
        load_settings(server_names="host name with spaces")
    assert "spaces" not in str(info.value)


def test_bound_cidrs_set_by_hand_win_over_the_runtimes_default() -> None:
    assert load_settings().bound_cidrs == ["127.0.0.0/8"]
    assert load_settings(runtime="compose").bound_cidrs == ["10.89.10.0/24", "10.89.11.0/24"]
    vpc = load_settings(runtime="compose", openbao_bound_cidrs="10.0.1.0/24,10.0.2.0/24")
    assert vpc.bound_cidrs == ["10.0.1.0/24", "10.0.2.0/24"]
    with pytest.raises(ConfigError, match="HIPAA_MLOPS_OPENBAO_BOUND_CIDRS"):
        load_settings(openbao_bound_cidrs="10.0.1.0/33")


def test_external_mlflow_and_postgresql_replace_the_stacks_own() -> None:
    from services.postgres import launcher as postgres

    stack = load_settings(profile="stack")
    assert stack.mlflow_url == stack.url("mlflow")
    assert "mlflow@127.0.0.1" in postgres.mlflow_uri(stack)
    cloud = load_settings(
        mlflow_addr="https://mlflow-1.elb.us-east-1.amazonaws.com:8203",
        postgres_addr="db.abc.us-east-1.rds.amazonaws.com:5432",
        postgres_ca="/tmp/database-ca.pem",
    )
    assert cloud.mlflow_url == "https://mlflow-1.elb.us-east-1.amazonaws.com:8203"
    uri = postgres.mlflow_uri(cloud, "mlflow_auth")
    assert uri.startswith(
        "postgresql+psycopg2://db.abc.us-east-1.rds.amazonaws.com:5432/mlflow_auth?"
    )
    assert "sslmode=verify-full" in uri and "sslrootcert=%2Ftmp%2Fdatabase-ca.pem" in uri
    with pytest.raises(ConfigError, match="HIPAA_MLOPS_POSTGRES_ADDR"):
        load_settings(postgres_addr="db.example.org")

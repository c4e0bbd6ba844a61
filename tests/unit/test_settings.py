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

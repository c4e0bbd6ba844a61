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

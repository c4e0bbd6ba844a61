from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli import app
from safeguards.errors import ConfigError
from services import topology


def _commands(command: Any, path: list[str]) -> list[list[str]]:
    """Every command and group under `command`, so a new one cannot miss its help."""
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, [*path, name])
    return found


COMMANDS = _commands(typer.main.get_command(app), [])


def test_the_command_list_covers_every_stage() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {"monitor run", "monitor outcomes", "retrain", "serving keys create", "demo"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_shred_refuses_a_mismatched_confirmation(tmp_path: object) -> None:
    result = CliRunner().invoke(
        app,
        ["keys", "shred", "alpha", "--confirm", "beta"],
        env={"HIPAA_MLOPS_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 2
    assert "does not match" in result.output


def test_an_unknown_profile_is_refused_and_starts_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["stack", "up", "--profile", "production"], env={"HIPAA_MLOPS_DATA_DIR": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert "sandbox" in result.output and "stack" in result.output
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError):
        topology.services_for("production")

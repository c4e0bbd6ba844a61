from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

COMMANDS = [
    [],
    ["stack"],
    ["stack", "up"],
    ["stack", "down"],
    ["stack", "status"],
    ["audit"],
    ["audit", "verify"],
    ["keys"],
    ["projects"],
    ["data"],
    ["data", "synth"],
    ["data", "ingest"],
    ["data", "deidentify"],
    ["data", "versions"],
    ["data", "show"],
    ["projects", "create"],
    ["keys", "show"],
    ["keys", "rotate"],
    ["keys", "revoke-below"],
    ["keys", "shred"],
    ["model"],
    ["model", "train"],
    ["model", "evaluate"],
    ["model", "promote"],
    ["model", "rollback"],
    ["model", "versions"],
    ["model", "card"],
    ["serving"],
    ["serving", "keys"],
    ["serving", "keys", "create"],
    ["serving", "keys", "list"],
    ["serving", "keys", "revoke"],
    ["demo"],
]


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

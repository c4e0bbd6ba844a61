"""The compose stack, brought up once per session by testcontainers' `DockerCompose`.

Skipped, with the reason, where no Docker engine, Compose CLI plugin or built image is
at hand (`make engine compose-cli images` provide them; `.ci/run` does). The stack gets a
fresh data directory and free ports, and its containers and volumes are removed at the end.
Ryuk, testcontainers' reaper, is an image that no registry here serves: it is off, and the
fixture cleans up itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from testcontainers.compose import DockerCompose

from safeguards.settings import Settings
from services.compose import COMPOSE_FILE, IMAGES, ComposeStack
from services.containers.images import load_record
from tests.conftest import REGIONS, free_port_base

os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"


def _missing() -> str | None:
    """Why the compose stack cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker CLI (make engine)"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
        return "no Docker engine answers (make engine)"
    if subprocess.run(
        ["docker", "compose", "version"], capture_output=True, check=False
    ).returncode:
        return "no Compose CLI plugin (make compose-cli)"
    missing = [name for name in IMAGES if name not in load_record()]
    if missing:
        return f"images {', '.join(missing)} not built (make images)"
    return None


@dataclass
class Running:
    settings: Settings
    stack: ComposeStack
    compose: DockerCompose

    def cli(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`hipaa-mlops ARGS` on the host, against the compose stack (with `env` on top of
        its settings)."""
        environment = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/"),
            "HIPAA_MLOPS_DATA_DIR": str(self.settings.data_dir),
            "HIPAA_MLOPS_RUNTIME": "compose",
            "HIPAA_MLOPS_PROFILE": "stack",
            "HIPAA_MLOPS_PORT_BASE": str(self.settings.port_base),
            "HIPAA_MLOPS_REGIONS": self.settings.regions,
            **(env or {}),
        }
        hipaa_mlops = Path(sys.executable).with_name("hipaa-mlops")
        result = subprocess.run(
            [str(hipaa_mlops), *args], env=environment, capture_output=True, text=True, timeout=900
        )
        if check:
            assert result.returncode == 0, result.stderr[-2000:]
        return result

    def exec(self, service: str, *command: str) -> str:
        stdout, stderr, code = self.compose.exec_in_container(list(command), service)
        assert code == 0, stderr[-2000:]
        return stdout


def _remove_leftovers(stack: ComposeStack, temp_root: Path) -> None:
    """Take down the stacks earlier test sessions left behind (a session killed before its
    teardown; dockerd restarts their containers): only one stack runs on an engine. A stack
    that is not a test session's is left alone, and fails the session."""
    for name in stack.others():
        listed = subprocess.run(
            ["docker", "ps", "--all", "--filter", f"label=com.docker.compose.project={name}",
             "--format", '{{.Label "com.docker.compose.project.environment_file"}}'],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        if not listed or not all(Path(f).is_relative_to(temp_root) for f in listed):
            pytest.fail(f"another compose stack runs on this engine: {name}")
        subprocess.run(
            ["docker", "compose", "-p", name, "down", "--volumes", "--remove-orphans"],
            capture_output=True, check=True,
        )  # fmt: skip


@pytest.fixture(scope="session")
def compose_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    reason = _missing()
    if reason is not None:
        pytest.skip(reason)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("compose"),
        runtime="compose",
        profile="stack",
        port_base=free_port_base(),
        regions=",".join(REGIONS),
    )
    stack = ComposeStack(settings)
    _remove_leftovers(stack, tmp_path_factory.getbasetemp().parent)
    stack.write_files()
    compose = DockerCompose(
        context=COMPOSE_FILE.parent,
        # The lakes of the regions beyond home are in a file of the stack's own.
        compose_file_name=[COMPOSE_FILE.name, str(stack.regions_file)],
        env_file=str(stack.variables_file),
        wait=True,
    )
    try:
        try:
            compose.start()
        except subprocess.CalledProcessError as error:
            stdout, _ = compose.get_logs()
            pytest.fail(
                f"the compose stack did not come up:\n{error.stderr[-2000:]}\n{stdout[-4000:]}"
            )
        stack.started()
        yield Running(settings, stack, compose)
    finally:
        # The projects' endpoints are in the stack's own projects file, which only
        # `ComposeStack` passes to `docker compose`: it takes them down too.
        stack.remove()
        compose.stop(down=True)

"""The images' Dockerfiles and tags, read statically: no Docker engine needed."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from services.containers import images

ROOT = Path(__file__).resolve().parents[2]
BUILT = [image for image in images.IMAGES if image.parent]
LABELS = (
    "org.opencontainers.image.title",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.source",
    "io.hipaa-mlops.lock-sha256",
)
# Each server's directory under /data, pre-created so that named volumes copy its owner.
DATA_DIRECTORIES = {
    *("tls", "credentials", "openbao", "seaweedfs", "postgres"),
    *("mlflow", "serving", "monitoring", "prometheus"),
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.I)


def instructions(image: images.Image) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments left out."""
    text = image.dockerfile(ROOT).read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.strip().partition(" ") for line in joined.splitlines())
        if word
    ]


def arguments(image: images.Image, instruction: str) -> list[str]:
    return [rest for word, rest in instructions(image) if word == instruction]


def test_every_image_but_the_imported_base_has_a_dockerfile_and_no_other_exists() -> None:
    names = {path.name.removesuffix(".Dockerfile") for path in (ROOT / "compose/images").iterdir()}
    assert names == {image.name for image in BUILT}


@pytest.mark.parametrize("image", BUILT, ids=lambda image: image.name)
def test_the_image_runs_unprivileged_with_a_health_check(image: images.Image) -> None:
    user = arguments(image, "USER")
    assert user and user[-1] == "10001:10001"
    health = arguments(image, "HEALTHCHECK")
    assert health and health[-1].endswith('CMD ["python", "-m", "services.healthcheck"]')


@pytest.mark.parametrize("image", BUILT, ids=lambda image: image.name)
def test_the_image_is_built_on_ours_and_fetches_nothing(image: images.Image) -> None:
    text = image.dockerfile(ROOT).read_text()
    assert "latest" not in text
    assert arguments(image, "ARG")[0] == image.parent_arg
    assert {f.split()[0] for f in arguments(image, "FROM")} == {f"${{{image.parent_arg}}}"}
    assert not arguments(image, "ADD")
    assert not re.search(r"https?://|curl |wget |pip download", text)


@pytest.mark.parametrize("image", BUILT, ids=lambda image: image.name)
def test_no_secret_is_built_in(image: images.Image) -> None:
    """Neither an ENV (kept in the image) nor an ARG (kept in its history) names a secret."""
    names = [
        name
        for word, rest in instructions(image)
        if word in ("ENV", "ARG")
        for name in re.findall(r"(?:^|\s)([A-Za-z_]\w*)(?:=|$)", rest)
    ]
    assert images.BY_NAME[image.name].parent_arg in names
    assert not [name for name in names if SECRET_NAME.search(name)]


@pytest.mark.parametrize("image", BUILT, ids=lambda image: image.name)
def test_the_image_carries_its_labels(image: images.Image) -> None:
    labels = " ".join(arguments(image, "LABEL"))
    for label in LABELS:
        assert f"{label}=" in labels
    assert f'title="hipaa-mlops {image.name}"' in labels


def test_the_app_image_runs_the_container_entry_under_tini_with_its_data_directories() -> None:
    app = images.BY_NAME["app"]
    assert arguments(app, "ENTRYPOINT") == [
        '["/usr/bin/tini", "--", "python", "-m", "services.container"]'
    ]
    assert arguments(app, "WORKDIR") == ["/data"]
    env = " ".join(arguments(app, "ENV"))
    for setting in ("HIPAA_MLOPS_DATA_DIR=/data", "PATH=/opt/venv/bin:", "BENTOML_DO_NOT_TRACK="):
        assert setting in env
    run = " ".join(arguments(app, "RUN"))
    listed = re.search(r"for dir in ([^;]+);", run)
    assert listed and set(listed.group(1).split()) == DATA_DIRECTORIES
    assert "--no-index" in run and "-m 0700" in run


def test_the_tag_follows_the_lock_the_commit_and_the_changes() -> None:
    commit = "cf2d3242f793b85f34a1f988d1ddd0d438f1dc3b"
    clean = images.image_tag(commit, b"numpy==2.3.0\n")
    assert clean == images.image_tag(commit, b"numpy==2.3.0\n")
    assert clean.startswith("cf2d3242f793-") and "latest" not in clean
    assert images.image_tag(commit, b"numpy==2.3.1\n") != clean
    assert images.image_tag("0" * 40, b"numpy==2.3.0\n") != clean
    dirty = images.image_tag(commit, b"numpy==2.3.0\n", b"a change")
    assert dirty.startswith(clean + "-dirty-")
    assert images.image_tag(commit, b"numpy==2.3.0\n", b"another change") != dirty
    assert re.fullmatch(r"[\w][\w.-]{0,127}", dirty)


def test_one_image_is_built_with_the_images_it_is_built_on() -> None:
    assert [image.name for image in images.wanted("seaweedfs")] == ["base", "app", "seaweedfs"]
    assert images.wanted(None) == list(images.IMAGES)


def test_the_docker_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv", ".hipaa-mlops"} <= set(ignored)


def test_the_app_image_leaves_out_every_development_tool_and_nothing_it_runs() -> None:
    declared = re.search(r'ARG UNUSED="([^"]+)"', images.BY_NAME["app"].dockerfile().read_text())
    assert declared is not None
    unused = re.compile(f"^({declared.group(1)})$")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev = {re.split(r"[<>=\[]", spec)[0] for spec in project["optional-dependencies"]["dev"]}
    assert all(unused.match(name) for name in dev)
    runtime = {re.split(r"[<>=\[]", spec)[0] for spec in project["dependencies"]}
    assert not [name for name in runtime if unused.match(name)]

"""The images' Dockerfiles and tags, read statically: no Docker engine needed."""

from __future__ import annotations

import os
import re
import stat
import tarfile
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
    # ADD only unpacks a server's tarball, a local file of the build context.
    server = images.SERVER_OF.get(image.name)
    assert arguments(image, "ADD") == ([f"{server.archive} /"] if server else [])
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


def stage(image: images.Image, index: int) -> list[tuple[str, str]]:
    """The instructions of one stage of a multi-stage Dockerfile (0: the first)."""
    stages: list[list[tuple[str, str]]] = []
    for word, rest in instructions(image):
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, rest))
    return stages[index]


def test_the_app_venv_has_no_installer_and_no_sample_data_and_still_imports() -> None:
    builder = " ".join(rest for word, rest in stage(images.BY_NAME["app"], 0) if word == "RUN")
    assert "python3 -m venv --without-pip /opt/venv" in builder
    assert "rm -rf /opt/venv/lib/python3.11/site-packages/nannyml/datasets/data" in builder
    smoke = re.search(r'-c "(import [^"]+)"', builder)
    assert smoke and {"nannyml", "nannyml.datasets", "mlflow", "bentoml"} <= {
        name.strip() for name in smoke.group(1).removeprefix("import ").split(",")
    }
    # Both stages install with pip run from the wheel that python3-venv ships; neither
    # calls a pip installed in the venv.
    run = " ".join(arguments(images.BY_NAME["app"], "RUN"))
    assert run.count('"$1/pip" install') == 2
    assert not re.search(r"(^|[\s/])(pip|pip3) install|-m pip", run)


def test_a_code_change_does_not_rebuild_the_dependency_layer() -> None:
    final = stage(images.BY_NAME["app"], 1)
    venv = final.index(("COPY", "--from=builder /opt/venv /opt/venv"))
    project = final.index(("COPY", "project/ /tmp/project/"))
    assert venv < project
    assert all(word != "COPY" or "project" not in rest for word, rest in final[:venv])


def test_the_servers_are_in_their_own_images_only() -> None:
    assert {server.name for server in images.SERVERS} == {"postgres", "prometheus"}
    for server in images.SERVERS:
        assert images.BY_NAME[server.name].parent == "app"
        assert not set(server.packages) & set(images.BOOTSTRAP_PACKAGES)
        assert not set(server.stripped) & set(images.STRIPPED)
    assert "postgresql-15" in images.SERVER_OF["postgres"].packages
    assert "prometheus" in images.SERVER_OF["prometheus"].packages


def test_the_base_key_ignores_the_servers_and_each_server_key_follows_the_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, keys = images.rootfs_key(), {s.name: images.server_key(s) for s in images.SERVERS}
    assert len(set(keys.values())) == len(keys)
    more = images.Server("postgres", ("postgresql-15", "postgresql-contrib"))
    assert images.server_key(more) != keys["postgres"]
    monkeypatch.setattr(images, "SERVERS", (more,))
    assert images.rootfs_key() == base
    monkeypatch.setattr(images, "BOOTSTRAP_PACKAGES", (*images.BOOTSTRAP_PACKAGES, "curl"))
    assert images.rootfs_key() != base
    assert images.server_key(images.SERVER_OF["postgres"]) != keys["postgres"]


def test_a_server_tarball_carries_what_the_install_added_or_changed_and_no_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rootfs = tmp_path / "rootfs"
    for relative in ("etc", "usr/bin", "usr/lib", "var/log", "var/cache/apt"):
        (rootfs / relative).mkdir(parents=True)
    for relative in ("etc/passwd", "etc/group", "etc/ld.so.cache", "usr/bin/python3"):
        (rootfs / relative).write_text("base\n")
    (rootfs / "usr/bin/unchanged").write_text("base\n")
    (rootfs / "usr/bin/gone").write_text("base\n")
    old = 1_700_000_000
    for path in (rootfs, *rootfs.rglob("*")):
        os.utime(path, (old, old), follow_symlinks=False)
    before = images.manifest(rootfs)

    # The install: new files, a symlink and a directory; a rewritten file; a changed mode;
    # the account files, a log and a cache changed; a file removed.
    (rootfs / "usr/lib/postgresql/15/bin").mkdir(parents=True)
    (rootfs / "usr/lib/postgresql/15/bin/postgres").write_text("server\n")
    (rootfs / "usr/lib/postgresql/15/bin/postgres").chmod(0o755)
    (rootfs / "usr/bin/pg_isready").symlink_to("../lib/postgresql/15/bin/pg_isready")
    (rootfs / "etc/ld.so.cache").write_text("base and the server\n")
    (rootfs / "usr/bin/python3").chmod(0o4755)
    (rootfs / "etc/passwd").write_text("base\npostgres\n")
    (rootfs / "etc/group-").write_text("base\n")
    (rootfs / "var/log/dpkg.log").write_text("installed\n")
    (rootfs / "var/cache/apt/pkgcache.bin").write_text("cache\n")
    (rootfs / "usr/bin/gone").unlink()
    after = images.manifest(rootfs)

    carried = images.changes(before, after)
    assert carried == [
        "etc",
        "etc/ld.so.cache",
        "usr/bin",
        "usr/bin/pg_isready",
        "usr/bin/python3",
        "usr/lib",
        "usr/lib/postgresql",
        "usr/lib/postgresql/15",
        "usr/lib/postgresql/15/bin",
        "usr/lib/postgresql/15/bin/postgres",
    ]
    tarball = tmp_path / "server.tar"
    images.write_tarball(rootfs, carried, tarball, "test-server-tar")
    with tarfile.open(tarball) as archive:
        members = {member.name.removeprefix("./"): member for member in archive.getmembers()}
    assert list(members) == carried
    assert members["usr/bin/pg_isready"].issym()
    assert members["usr/bin/pg_isready"].linkname == "../lib/postgresql/15/bin/pg_isready"
    assert members["usr/bin/python3"].mode == 0o4755
    assert members["usr/lib/postgresql/15/bin/postgres"].mode == 0o755
    assert members["usr/lib"].isdir()
    uid, gid = os.getuid(), os.getgid()
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(uid, gid, "", "")}


def test_a_server_tarball_refuses_what_it_cannot_carry(tmp_path: Path) -> None:
    before = images.manifest(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    after = images.manifest(tmp_path)
    assert stat.S_ISFIFO(after["fifo"][0])
    with pytest.raises(SystemExit, match="fifo"):
        images.changes(before, after)


@pytest.mark.parametrize("server", images.SERVERS, ids=lambda server: server.name)
def test_each_server_image_unpacks_the_tarball_its_build_context_holds(
    server: images.Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    made = tmp_path / f"server-{server.name}-0123456789ab.tar"
    made.write_bytes(b"a tarball")
    monkeypatch.setattr(images, "server_tarball", lambda wanted: made if wanted == server else None)
    image = images.BY_NAME[server.name]
    tree = images.Snapshot(tmp_path / "tree", "0" * 40, dirty=False)
    context = images.context(image, tree)
    assert [path.name for path in context.iterdir()] == [server.archive]
    assert (context / server.archive).read_bytes() == b"a tarball"
    assert arguments(image, "ADD") == [f"{server.archive} /"]
    # Unpacked before the checks, which run as the servers do; the labels last.
    names = [word for word, _ in instructions(image)]
    assert names.index("ADD") < names.index("RUN") < names.index("LABEL")
    assert 'test "$(id -u)" = 10001' in " ".join(arguments(image, "RUN"))

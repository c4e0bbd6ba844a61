"""Build the stack's container images with no network inside any build.

    python -m services.containers.images build [--only NAME]
    python -m services.containers.images list

`base` is Debian bookworm from debootstrap (minbase) with Python 3.11 and tini, its security
updates applied, imported with `docker import`: no image registry is needed. `app` is built
on it from a wheelhouse of the locked requirements, downloaded on the host once per lock,
plus the project's own wheel; `seaweedfs`, `postgres` and `prometheus` are built on `app`.
PostgreSQL and Prometheus are in their own images only: each is installed on the host, in a
chroot, in a copy of the base's root file system, and what that adds or changes is kept
as a tarball (`server-NAME-<hash12>.tar`) that the image's Dockerfile unpacks with ADD.
Every `docker build` runs with --network=none and the classic builder.

Tags. `base` is tagged by its recipe (suite, mirrors, packages, clean-up, what the import
adds): bookworm-<hash12>. The others share one tag, <commit12>-<lock sha256[:12]>, and where the
working tree is not clean -dirty-<hash12> of every file git sees (tracked, or untracked
and not ignored), so that a rebuild after any change gets a new tag. An image whose tag
exists is not rebuilt. Each build works from one snapshot of those files, taken at its
start, so the tag, the lock and the project's wheel agree however the tree changes meanwhile.

The root file system tarball, the servers' tarballs, the wheelhouse and the build contexts
are cached under ~/.cache/hipaa-mlops/ (never in the repository); each image's reference
and ID are recorded in .hipaa-mlops/images.json (`load_record()`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from safeguards.files import write_private
from services.containers import apt_install, can_provision, services_not_started
from services.gobuild import cache_dir
from services.seaweedfs.build import ensure_built

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = Path("compose/images")
LOCK = ROOT / "requirements.lock"
REPOSITORY = "hipaa-mlops"

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# Installed by debootstrap itself: none of them starts a service.
BOOTSTRAP_PACKAGES = ("ca-certificates", "python3", "python3-venv", "libgomp1", "tini")
# Left in a root file system by debootstrap and apt, and not wanted in an image: apt's
# lists and caches (emptied), the host's resolver and name (Docker provides both at run
# time), and ssl-cert's snakeoil key pair (PostgreSQL's dependency), which would be one
# private key in every container.
EMPTIED = ("var/lib/apt/lists", "var/cache/apt")
REMOVED = (
    "etc/resolv.conf",
    "etc/hostname",
    "etc/ssl/private/ssl-cert-snakeoil.key",
    "etc/ssl/certs/ssl-cert-snakeoil.pem",
)
# Shipped by every package and unused here, removed for size: documentation, translations.
STRIPPED = ("usr/share/doc", "usr/share/man", "usr/share/locale")


APT = "apt-get -y -q -o Dpkg::Options::=--force-confold --no-install-recommends"


@dataclass(frozen=True)
class Server:
    """Debian packages that only one image gets: installed with services kept from
    starting and no recommendations, in a chroot in a copy of the base's root file system;
    what that adds or changes goes into a tarball that the image's Dockerfile unpacks."""

    #: the image that gets them
    name: str
    packages: tuple[str, ...]
    #: what they ship and the stack does not use, removed for size
    stripped: tuple[str, ...] = ()
    #: run in the chroot before the packages are installed
    setup: str = ""
    #: paths the install must not have created
    absent: tuple[str, ...] = ()

    @property
    def archive(self) -> str:
        """The tarball's name in the image's build context (`ADD <archive> /`)."""
        return f"server-{self.name}.tar"


# PostgreSQL without its LLVM JIT (the stack's config turns it off, `jit = off`) and with
# no `main` cluster (postgresql-common is installed first and told not to create one);
# Prometheus without the time-zone database of its web UI, which the stack does not serve
# (its API and rules need none of it).
SERVERS = (
    Server(
        "postgres",
        ("postgresql-15",),
        setup=(
            f"{APT} install postgresql-common"
            " && sed -i -E '/^#?[[:space:]]*create_main_cluster[[:space:]]*=/d'"
            " /etc/postgresql-common/createcluster.conf"
            " && echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf"
        ),
        absent=("var/lib/postgresql/15/main",),
        stripped=(
            "usr/lib/postgresql/15/lib/bitcode",
            "usr/lib/postgresql/15/lib/llvmjit.so",
            "usr/lib/postgresql/15/lib/llvmjit_types.bc",
            "usr/lib/x86_64-linux-gnu/libLLVM-14.so.1",
            "usr/lib/x86_64-linux-gnu/libLLVM-14.so",
        ),
    ),
    Server("prometheus", ("prometheus",), stripped=("usr/share/javascript/moment-timezone",)),
)
SERVER_OF = {server.name: server for server in SERVERS}
# What a server's install changes and its tarball does not carry: the account files (the
# app image adds its own user to them, which an overwrite would drop: the accounts the
# packages create are left out, and the files they own keep a numeric owner with no name;
# nothing runs as them, the launchers run every server as uid 10001 in its own data
# directory), dpkg's backup, apt's and the system's caches, logs and scratch, and what
# Docker provides at run time. Each entry is a path and everything under it.
UNCARRIED = (
    *(
        f"etc/{name}{suffix}"
        for name in ("passwd", "group", "shadow", "gshadow")
        for suffix in ("", "-")
    ),
    "var/lib/dpkg/status-old",
    "var/cache",
    "var/log",
    "var/lib/apt",
    "tmp",
    "run",
    "etc/resolv.conf",
    "etc/hostname",
)
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What `docker import` adds to the root file system (an imported image has no ENV).
IMPORT_CHANGES = (
    f"ENV PATH={CHROOT_PATH}",
    "ENV LANG=C.UTF-8",
    'LABEL org.opencontainers.image.title="hipaa-mlops base"',
)

CONSOLE = Console(stderr=True, soft_wrap=True)


@dataclass(frozen=True)
class Image:
    name: str
    #: the image this one is built FROM, passed to its Dockerfile as a build argument
    parent: str = ""
    parent_arg: str = ""

    def dockerfile(self, root: Path = ROOT) -> Path:
        return root / DOCKERFILES / f"{self.name}.Dockerfile"


IMAGES = (
    Image("base"),
    Image("app", parent="base", parent_arg="BASE"),
    Image("seaweedfs", parent="app", parent_arg="APP_IMAGE"),
    Image("postgres", parent="app", parent_arg="APP_IMAGE"),
    Image("prometheus", parent="app", parent_arg="APP_IMAGE"),
)
BY_NAME = {image.name: image for image in IMAGES}


# -- tags and the record -----------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rootfs_key() -> str:
    recipe = [SUITE, MIRROR, SECURITY_MIRROR, BOOTSTRAP_PACKAGES, EMPTIED, REMOVED, STRIPPED]
    return f"{SUITE}-{sha256(json.dumps(recipe).encode())[:12]}"


def server_key(server: Server) -> str:
    """The base's recipe, the server's packages and clean-up, and what its tarball leaves out."""
    recipe = [
        rootfs_key(), server.name, server.packages, server.stripped, server.setup, UNCARRIED,
    ]  # fmt: skip
    return sha256(json.dumps(recipe).encode())[:12]


def base_tag() -> str:
    return f"{SUITE}-{sha256(json.dumps([rootfs_key(), IMPORT_CHANGES]).encode())[:12]}"


def image_tag(commit: str, lock: bytes, changes: bytes = b"") -> str:
    """The tag of every image but `base`: the commit, the lock's digest and, where the
    working tree has changes, their digest."""
    tag = f"{commit[:12]}-{sha256(lock)[:12]}"
    return f"{tag}-dirty-{sha256(changes)[:12]}" if changes else tag


def git(*args: str) -> bytes:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"`git {' '.join(args)}` failed: images are tagged by the git commit")
    return done.stdout


@dataclass(frozen=True)
class Snapshot:
    """A copy of the files git sees (tracked or not ignored), taken once per build: the
    tag, the lock, the Dockerfiles and the project's wheel all come from the same bytes,
    however the working tree changes meanwhile."""

    root: Path
    commit: str
    dirty: bool

    @property
    def lock(self) -> bytes:
        return (self.root / LOCK.name).read_bytes()

    def contents(self) -> bytes:
        files = sorted(path for path in self.root.rglob("*") if path.is_file())
        return b"\0".join(
            part
            for path in files
            for part in (os.fsencode(path.relative_to(self.root)), path.read_bytes())
        )

    @property
    def tag(self) -> str:
        return image_tag(self.commit, self.lock, self.contents() if self.dirty else b"")


def snapshot(into: Path) -> Snapshot:
    commit = git("rev-parse", "HEAD").decode().strip()
    dirty = bool(git("status", "--porcelain"))
    names = git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split(b"\0")
    for name in filter(None, names):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            target = into / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return Snapshot(into, commit, dirty)


def reference(name: str, tag: str) -> str:
    return f"{REPOSITORY}/{name}:{tag}"


def record_path() -> Path:
    return ROOT / ".hipaa-mlops" / "images.json"


def load_record() -> dict[str, dict[str, str]]:
    """Each built image's name -> {"tag": full reference (hipaa-mlops/NAME:TAG), "id":
    image ID (sha256:..., its content digest)}; empty before the first build."""
    try:
        record: dict[str, dict[str, str]] = json.loads(record_path().read_text())
    except FileNotFoundError:
        return {}
    return record


def record_image(name: str, ref: str) -> None:
    """Add an image's reference and ID to the record (others' entries kept)."""
    built = image_id(ref)
    if built is None:
        raise SystemExit(f"{ref} was built but `docker image inspect` does not find it")
    record = {**load_record(), name: {"tag": ref, "id": built}}
    write_private(record_path(), (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


# -- running steps -----------------------------------------------------------------------


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    """A spinner while a long step runs, then its duration."""
    started = time.monotonic()
    with CONSOLE.status(f"{title} …"):
        yield
    CONSOLE.print(f"[green]✓[/] {title} ({time.monotonic() - started:.0f} s)")


def run(command: Sequence[str], log: str, env: dict[str, str] | None = None) -> None:
    """Run a command with its output in a log file; on failure, the log's tail and one line."""
    path = cache_dir() / "logs" / f"{log}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0:
        for line in path.read_text(errors="replace").splitlines()[-15:]:
            CONSOLE.print(line, style="dim", markup=False, highlight=False)
        raise SystemExit(f"`{' '.join(command[:3])} …` failed (exit {done.returncode}): see {path}")


def image_id(ref: str) -> str | None:
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


# -- base: debootstrap, then `docker import` ---------------------------------------------


def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return [point for point in points if point.startswith(prefix)]


def remove_rootfs(rootfs: Path) -> None:
    """Remove a root file system, never through a mount (a bound /dev is the host's)."""
    for point in sorted(mounts_under(rootfs), reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)
    if mounts_under(rootfs):
        raise SystemExit(f"{rootfs} still has mounts; unmount them and remove it by hand")
    shutil.rmtree(rootfs, ignore_errors=False)


def in_chroot(rootfs: Path, script: str, log: str) -> None:
    env = {"PATH": CHROOT_PATH, "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"}
    run(["chroot", str(rootfs), "/bin/sh", "-euxc", script], log, env=env)


def clean(rootfs: Path, stripped: Sequence[str]) -> None:
    """Empty apt's lists and caches, remove what an image must not hold, strip for size."""
    for entry in (child for emptied in EMPTIED for child in (rootfs / emptied).iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for relative in REMOVED:
        (rootfs / relative).unlink(missing_ok=True)
    for relative in stripped:
        path = rootfs / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def upgrade(rootfs: Path) -> None:
    """Security (and stable) updates, with no service started."""
    (rootfs / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {SUITE} main\n"
        f"deb {MIRROR} {SUITE}-updates main\n"
        f"deb {SECURITY_MIRROR} {SUITE}-security main\n"
    )
    with services_not_started(rootfs / "usr/sbin/policy-rc.d"):
        in_chroot(rootfs, f"apt-get update -q && {APT} dist-upgrade", "base-upgrade")
    clean(rootfs, STRIPPED)


def base_tarball() -> Path:
    tarball = cache_dir() / f"rootfs-{rootfs_key()}.tar"
    if tarball.is_file():
        return tarball
    if not can_provision():
        raise SystemExit("building the base image needs root on Debian (debootstrap, chroot)")
    if shutil.which("debootstrap") is None:
        apt_install("debootstrap")
    rootfs = cache_dir() / "rootfs" / f"{rootfs_key()}.partial"
    if rootfs.exists():
        remove_rootfs(rootfs)
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    with step(f"debootstrap --variant=minbase {SUITE}"):
        include = ",".join(BOOTSTRAP_PACKAGES)
        command = ["debootstrap", "--variant=minbase", f"--include={include}", SUITE]
        run([*command, str(rootfs), MIRROR], "base-debootstrap")
    with step("apt-get dist-upgrade in the chroot"):
        upgrade(rootfs)
    partial = tarball.with_name(tarball.name + ".partial")
    with step(f"tar {tarball.name}"):
        run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], "base-tar")
    # A server's tarball holds what it changed in the base tarball it was made on.
    for server in SERVERS:
        server_tarball_path(server).unlink(missing_ok=True)
    partial.replace(tarball)
    remove_rootfs(rootfs)
    return tarball


# -- the servers: installed in a copy of the base's root file system ---------------------

#: what tells that a path changed: its type, size, mtime, permissions, owner, link target
Entry = tuple[int, int, int, int, int, int, str]
CARRIED_TYPES = frozenset((stat.S_IFREG, stat.S_IFLNK, stat.S_IFDIR))


def manifest(rootfs: Path) -> dict[str, Entry]:
    """Every path under a root file system, relative, with what tells a change; symlinks
    are not followed."""
    found: dict[str, Entry] = {}
    for top, dirs, files in os.walk(rootfs):
        for name in (*dirs, *files):
            path = os.path.join(top, name)
            info = os.lstat(path)
            target = os.readlink(path) if stat.S_ISLNK(info.st_mode) else ""
            found[os.path.relpath(path, rootfs)] = (
                stat.S_IFMT(info.st_mode), info.st_size, info.st_mtime_ns,
                stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, target,
            )  # fmt: skip
    return found


def uncarried(relative: str) -> bool:
    return any(relative == path or relative.startswith(f"{path}/") for path in UNCARRIED)


def changes(before: dict[str, Entry], after: dict[str, Entry]) -> list[str]:
    """The paths that are new or changed in `after`, UNCARRIED ones aside, parents first.
    A path that `after` no longer has is not among them: a tarball unpacked on the base
    cannot remove it (none is expected: the install only adds packages), so it stays."""
    found = sorted(
        path for path, entry in after.items() if before.get(path) != entry and not uncarried(path)
    )
    others = [path for path in found if after[path][0] not in CARRIED_TYPES]
    if others:
        raise SystemExit(f"neither a file, a symlink nor a directory: {', '.join(others[:5])}")
    return found


def server_tarball_path(server: Server) -> Path:
    return cache_dir() / f"server-{server.name}-{server_key(server)}.tar"


def install_server(rootfs: Path, server: Server) -> None:
    """The server's packages (after its setup) with no service started."""
    # apt resolves the mirror's name from within the chroot
    shutil.copyfile("/etc/resolv.conf", rootfs / "etc/resolv.conf")
    log = f"server-{server.name}"
    with services_not_started(rootfs / "usr/sbin/policy-rc.d"):
        in_chroot(rootfs, "apt-get update -q", f"{log}-update")
        if server.setup:
            in_chroot(rootfs, server.setup, f"{log}-setup")
        in_chroot(rootfs, f"{APT} install {' '.join(server.packages)}", log)
    clean(rootfs, (*STRIPPED, *server.stripped))
    made = [path for path in server.absent if (rootfs / path).exists()]
    if made:
        raise SystemExit(f"installing {server.name} created {', '.join(made)}")


def write_tarball(rootfs: Path, paths: Sequence[str], tarball: Path, log: str) -> None:
    """These paths (not what is under them), with numeric owners and their modes."""
    listing = tarball.with_name(tarball.name + ".list")
    listing.write_bytes(b"".join(os.fsencode(f"./{path}") + b"\0" for path in paths))
    command = ["tar", "--numeric-owner", "--no-recursion", "-C", str(rootfs), "-cf", str(tarball)]
    try:
        run([*command, "--null", "--verbatim-files-from", "-T", str(listing)], log)
    finally:
        listing.unlink()


def server_tarball(server: Server) -> Path:
    """What installing the server in the base's root file system adds or changes."""
    tarball = server_tarball_path(server)
    if tarball.is_file():
        return tarball
    base = base_tarball()
    if not can_provision():
        raise SystemExit(f"making {tarball.name} needs root on Debian (chroot)")
    rootfs = cache_dir() / "rootfs" / f"{tarball.stem}.partial"
    if rootfs.exists():
        remove_rootfs(rootfs)
    rootfs.mkdir(parents=True)
    log = f"server-{server.name}"
    # The copy comes from the base's tarball, exactly what `docker import` made the base of.
    with step(f"copy {base.name} for {server.name}"):
        run(["tar", "--numeric-owner", "-C", str(rootfs), "-xpf", str(base)], f"{log}-copy")
        before = manifest(rootfs)
    with step(f"install {', '.join(server.packages)} in the chroot"):
        install_server(rootfs, server)
    partial = tarball.with_name(tarball.name + ".partial")
    with step(f"tar {tarball.name}"):
        after = manifest(rootfs)
        write_tarball(rootfs, changes(before, after), partial, f"{log}-tar")
        gone = [path for path in before.keys() - after.keys() if not uncarried(path)]
        if gone:
            CONSOLE.print(f"{len(gone)} paths removed by the install stay in the image: "
                          f"{', '.join(sorted(gone)[:5])}", style="yellow")  # fmt: skip
    partial.replace(tarball)
    remove_rootfs(rootfs)
    return tarball


def build_base(ref: str) -> None:
    tarball = base_tarball()
    with step(f"docker import {ref}"):
        flags = [arg for change in IMPORT_CHANGES for arg in ("--change", change)]
        run(["docker", "import", *flags, str(tarball), ref], "base-import")


# -- app and the images on it ------------------------------------------------------------


def wheelhouse(lock: Path) -> Path:
    """Wheels of every locked requirement, made on the host once per lock."""
    target = cache_dir() / "wheels" / sha256(lock.read_bytes())[:12]
    if target.is_dir():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    pins = locked(lock)
    seed(partial, pins)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    with step(f"pip download the lock's {len(pins)} requirements"):
        run([*pip, "download", "--no-deps", "-r", str(lock), "-d", str(partial)], "wheels")
    sdists = [path for path in partial.iterdir() if not path.name.endswith(".whl")]
    for sdist in sdists:
        with step(f"pip wheel {sdist.name}"):
            run([*pip, "wheel", "--no-deps", str(sdist), "-w", str(partial)], "wheels-sdist")
        sdist.unlink()
    partial.replace(target)
    return target


def normalized(name: str, version: str) -> str:
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


def locked(lock: Path) -> set[str]:
    """The lock's pins, as normalized name==version."""
    lines = (line.split("#")[0].strip() for line in lock.read_text().splitlines())
    return {normalized(*line.split("==", 1)) for line in lines if "==" in line}


def seed(partial: Path, pins: set[str]) -> None:
    """Links to the wheels that earlier wheelhouses hold of the same pins: pip download
    then fetches only what a changed lock changed."""
    for wheel in (cache_dir() / "wheels").glob("*/*.whl"):
        name, version = wheel.name.split("-")[:2]
        if normalized(name, version) in pins and not (partial / wheel.name).exists():
            link_or_copy(wheel, partial / wheel.name)


def context(image: Image, tree: Snapshot) -> Path:
    """A fresh build context holding only what the image's Dockerfile copies."""
    path = cache_dir() / "context" / image.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    if image.name == "app":
        lock = path / LOCK.name
        shutil.copy2(tree.root / LOCK.name, lock)
        (path / "wheels").mkdir()
        for wheel in wheelhouse(lock).iterdir():
            link_or_copy(wheel, path / "wheels" / wheel.name)
        with step("pip wheel the project"):
            pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel"]
            run([*pip, "--no-deps", str(tree.root), "-w", str(path / "project")], "project")
    elif image.name == "seaweedfs":
        link_or_copy(ensure_built(), path / "weed")
    elif image.name in SERVER_OF:
        server = SERVER_OF[image.name]
        link_or_copy(server_tarball(server), path / server.archive)
    return path


def source_url() -> str:
    """The origin remote's URL, else the project's name (a clone need not have a remote)."""
    command = ["git", "remote", "get-url", "origin"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else REPOSITORY


def build_on_parent(
    image: Image, ref: str, parent: str, tree: Snapshot, cache: bool = True
) -> None:
    path = context(image, tree)
    args = {
        image.parent_arg: parent,
        "REVISION": tree.commit,
        "SOURCE": source_url(),
        "LOCK_SHA256": sha256(tree.lock),
    }
    dockerfile = str(image.dockerfile(tree.root))
    command = ["docker", "build", "--network=none", "-f", dockerfile, "-t", ref]
    command += [] if cache else ["--no-cache"]
    command += [arg for name, value in args.items() for arg in ("--build-arg", f"{name}={value}")]
    with step(f"docker build {ref}"):
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        run([*command, str(path)], f"build-{image.name}", env=env)
    shutil.rmtree(path)


def wanted(only: str | None) -> list[Image]:
    """The images to make: all, or one and the images it is built on."""
    if only is None:
        return list(IMAGES)
    chain = [BY_NAME[only]]
    while chain[0].parent:
        chain.insert(0, BY_NAME[chain[0].parent])
    return chain


def build(only: str | None, cache: bool = True) -> None:
    if not docker_answers():
        raise SystemExit("no Docker engine answers: run `make engine` first")
    with tempfile.TemporaryDirectory() as scratch:
        tree = snapshot(Path(scratch))
        refs = {image.name: reference(image.name, tree.tag) for image in IMAGES}
        refs["base"] = reference("base", base_tag())
        for image in wanted(only):
            ref = refs[image.name]
            if image_id(ref) is None:
                if image.parent:
                    build_on_parent(image, ref, refs[image.parent], tree, cache)
                else:
                    build_base(ref)
            else:
                CONSOLE.print(f"[green]✓[/] {ref} exists")
            record_image(image.name, ref)
    CONSOLE.print(f"recorded in {record_path()}")


def docker_answers() -> bool:
    done = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return done.returncode == 0


def show() -> None:
    """One line per recorded image: name, reference, ID, size (or why it has none)."""
    for name, entry in sorted(load_record().items()):
        done = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}} {{.Size}}", entry["tag"]],
            capture_output=True,
            text=True,
            check=False,
        )
        found, _, size = done.stdout.strip().partition(" ")
        state = f"{int(size) / 1e6:.0f} MB" if found == entry["id"] else "missing or replaced"
        print(f"{name:<11} {entry['tag']:<72} {entry['id'][:19]}  {state}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.containers.images",
        description="Build the stack's images with no network inside any build, and list them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build_parser = commands.add_parser("build", help="build the images whose tag does not exist")
    build_parser.add_argument(
        "--only", choices=list(BY_NAME), help="build this image (and any it is built on)"
    )
    build_parser.add_argument(
        "--no-cache",
        action="store_true",
        help="rebuild every layer (the base's tarball and the wheelhouse stay cached)",
    )
    commands.add_parser("list", help="show the recorded images, their IDs and sizes")
    options = parser.parse_args(argv)
    if shutil.which("docker") is None:
        raise SystemExit("no `docker` CLI on PATH: run `make engine` first")
    if options.command == "build":
        build(options.only, cache=not options.no_cache)
    else:
        show()


if __name__ == "__main__":
    main()

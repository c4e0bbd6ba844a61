"""Files that hold secrets or must never be seen half-written."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file atomically with mode 0600 from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# Opening a directory or a file here never follows a symbolic link.
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _walk(root: Path, parts: list[str], create: bool) -> int | None:
    """A descriptor of root/parts..., every step opened without following a link; None
    when a step is missing and `create` is false."""
    fd = os.open(root, _DIRECTORY)
    try:
        for part in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o700, dir_fd=fd)
            try:
                inner = os.open(part, _DIRECTORY, dir_fd=fd)
            except FileNotFoundError:
                if create:
                    raise
                os.close(fd)
                return None
            os.close(fd)
            fd = inner
    except OSError:
        os.close(fd)
        raise
    return fd


def write_beneath(root: Path, relative: str, data: bytes, mode: int = 0o600) -> None:
    """Write root/`relative` atomically with `mode`, through no symbolic link: in a
    directory that someone less trusted can write (a job's), a planted link can neither
    redirect the write nor the rename. Refused with OSError if a step is not a directory."""
    *dirs, name = relative.split("/")
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = _walk(root, dirs, create=True)
    assert fd is not None
    try:
        tmp = f".{name}.tmp-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=fd)
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=fd)
        with os.fdopen(out, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
    finally:
        os.close(fd)


def read_beneath(root: Path, relative: str) -> bytes | None:
    """root/`relative` if it is a regular file reached through no symbolic link; None if it
    is missing. OSError if a step is a link or not a directory."""
    *dirs, name = relative.split("/")
    fd = _walk(root, dirs, create=False)
    if fd is None:
        return None
    try:
        try:
            file = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
        except FileNotFoundError:
            return None
        with os.fdopen(file, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise OSError("not a regular file")
            return f.read()
    finally:
        os.close(fd)

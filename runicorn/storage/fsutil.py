"""Crash-safe file primitives: atomic replace, directory fsync, one batched filesystem flush."""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import secrets
from pathlib import Path

from runicorn.errors import DiskFullError, RunicornError

TMP_PREFIX = ".rn-tmp-"


def tmp_name(path: Path) -> Path:
    """A temporary sibling of PATH (same directory, so rename is atomic)."""
    return path.with_name(f"{TMP_PREFIX}{path.name[:40]}-{secrets.token_hex(6)}")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace PATH with DATA: write a temp sibling, fsync, rename, fsync the directory.

    A reader (or a crash) sees either the old file or the new one, never a mix.
    """
    path = Path(path)
    tmp = tmp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        unlink_quietly(tmp)
        raise_os_error(exc, path)
    if durable:
        fsync_dir(path.parent)


def unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def raise_os_error(exc: OSError, path) -> None:
    """Turn the OS errors users can act on into one-line RunicornErrors."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DiskFullError(path) from None
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        raise RunicornError(f"permission denied writing {path}; check the file's permissions") from None
    raise exc


_libc = None


def flush_filesystem(path: Path) -> None:
    """Make everything written so far on PATH's filesystem durable, in one call (syncfs(2)).

    This is the batched durability step: objects are written without a per-file fsync, then
    flushed together before any pointer or manifest that names them is written.
    """
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if not hasattr(_libc, "syncfs") or _libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


FSYNC_EACH_MAX = 128


def make_durable(paths: list[str], fs_root: Path) -> None:
    """Make the files PATHS (and their directory entries) durable before anything names them.

    A few files are fsynced one by one (so a small `add` never waits for unrelated dirty data);
    many are flushed with one syncfs of their filesystem (one fsync per small file costs about
    0.25 ms here, 25 s for 100k files).
    """
    if not paths:
        return
    if len(paths) > FSYNC_EACH_MAX:
        flush_filesystem(fs_root)
        return
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for directory in {os.path.dirname(p) for p in paths}:
        fsync_dir(Path(directory))


def unlink_all(paths) -> None:
    for path in paths:
        unlink_quietly(path)


def sweep_tmp(directory: Path) -> int:
    """Remove the temp files a killed Runicorn command left in DIRECTORY.

    Only call it while holding the repository lock: then no live writer owns one of them."""
    return remove_stale_tmp(directory, 0)


def remove_stale_tmp(directory: Path, older_than: float) -> int:
    """Delete temp files a killed process left in DIRECTORY (never younger than OLDER_THAN s)."""
    import time

    removed = 0
    cutoff = time.time() - older_than
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if (entry.name.startswith(TMP_PREFIX) and not entry.is_dir(follow_symlinks=False)
                and entry.stat(follow_symlinks=False).st_mtime <= cutoff):
            unlink_quietly(Path(entry.path))
            removed += 1
    return removed

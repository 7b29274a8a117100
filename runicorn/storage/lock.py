"""The repository lock: writing commands hold it, reading commands never take it.

An fcntl lock (through filelock) is released by the kernel when its process dies, so a
`kill -9` never leaves a lock that needs manual clean-up.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import filelock

from runicorn.errors import LockTimeoutError

FIRST_WAIT_S = 0.5


@contextmanager
def repo_lock(path: Path, timeout: float, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the lock at PATH; wait up to TIMEOUT seconds, telling ON_WAIT once that we wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.UnixFileLock(str(path))
    try:
        lock.acquire(timeout=min(FIRST_WAIT_S, timeout))
    except filelock.Timeout:
        if on_wait:
            on_wait(f"waiting for another Runicorn command to finish (lock {path}, up to {timeout:g} s)")
        try:
            lock.acquire(timeout=max(timeout - FIRST_WAIT_S, 0))
        except filelock.Timeout:
            raise LockTimeoutError(path, timeout) from None
    try:
        _write_owner(path)
        yield
    finally:
        lock.release()


def _write_owner(path: Path) -> None:
    # Informational only (doctor shows it); the kernel lock is what excludes.
    try:
        Path(str(path) + ".owner").write_text(f"{os.getpid()}\n")
    except OSError:
        pass

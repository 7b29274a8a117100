"""Reading the workspace: stat walk, memo lookups, parallel hashing, Merkle trees.

Read-only with respect to the workspace and the cache; only the stat memo learns new oids.
Symlinks inside a tracked folder are never followed: they are skipped and reported.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from runicorn.storage import manifest
from runicorn.storage.hashing import hash_bytes, hash_many
from runicorn.storage.index import StatMemo
from runicorn.storage.manifest import Entry, Tree
from runicorn.storage.safepath import problem_with_name


@dataclass(slots=True)
class FileState:
    rel: str  # relative to the tracked root
    ino: int
    size: int
    mtime_ns: int
    executable: bool
    nlink: int
    oid: str | None = None
    stale_oid: str | None = None  # what the memo held for this inode before it changed


@dataclass
class DirScan:
    files: dict[str, FileState] = field(default_factory=dict)
    dirs: dict[str, "DirScan"] = field(default_factory=dict)


@dataclass
class Snapshot:
    """The workspace content of one tracked path."""

    kind: str  # "file" | "dir"
    oid: str
    size: int
    files: list[FileState]
    trees: dict[str, bytes]  # manifest oid -> encoded manifest (dirs only)
    skipped: list[str]  # symlinks, unsafe names, ignored entries
    executable: bool = False

    @property
    def file_count(self) -> int:
        return len(self.files)


def _state(rel: str, st: os.stat_result) -> FileState:
    return FileState(rel, st.st_ino, st.st_size, st.st_mtime_ns, bool(st.st_mode & stat.S_IXUSR), st.st_nlink)


def scan_dir(top: Path, ignored: Callable[[str, bool], bool], prefix: str = "", skipped: list | None = None) -> DirScan:
    """Stat every file under TOP without following symlinks."""
    scan = DirScan()
    skipped = skipped if skipped is not None else []
    with os.scandir(top) as it:
        entries = list(it)
    for entry in entries:
        rel = prefix + entry.name
        if problem_with_name(entry.name) or entry.is_symlink():
            skipped.append(rel)
        elif entry.is_dir(follow_symlinks=False):
            if not ignored(rel, True):
                scan.dirs[entry.name] = scan_dir(Path(entry.path), ignored, rel + "/", skipped)
        elif entry.is_file(follow_symlinks=False):
            if not ignored(rel, False):
                scan.files[entry.name] = _state(rel, entry.stat(follow_symlinks=False))
        else:
            skipped.append(rel)  # sockets, fifos, devices
    return scan


def _all_files(scan: DirScan, out: list[FileState]) -> list[FileState]:
    out.extend(scan.files.values())
    for sub in scan.dirs.values():
        _all_files(sub, out)
    return out


def fill_oids(base: Path, files: list[FileState], memo: StatMemo, jobs: int, on_hashed=None) -> list[FileState]:
    """Set .oid on every file: from the memo when its stat is unchanged, else by hashing.

    Returns the files that were hashed (the caller may record them in the memo).
    """
    pending = []
    for f in files:
        f.oid = memo.get(f.ino, f.size, f.mtime_ns)
        if f.oid is None:
            pending.append(f)
    if pending:
        oids = hash_many([base / f.rel for f in pending], jobs, on_hashed)
        for f, oid in zip(pending, oids):
            f.oid = oid
        for f in pending:
            old = memo.recorded_oid(f.ino)
            if old is not None and old != f.oid:
                f.stale_oid = old
    return pending


def _build(scan: DirScan, trees: dict[str, bytes]) -> tuple[Tree, int, int]:
    tree: Tree = {}
    total = count = 0
    for name, sub in scan.dirs.items():
        subtree, size, files = _build(sub, trees)
        data = manifest.encode(subtree)
        oid = hash_bytes(data)
        trees[oid] = data
        tree[name] = Entry("dir", oid, size, False, files)
        total, count = total + size, count + files
    for name, f in scan.files.items():
        tree[name] = Entry("file", f.oid, f.size, f.executable, 1)
        total, count = total + f.size, count + 1
    return tree, total, count


def snapshot(path: Path, memo: StatMemo, jobs: int, ignored=None, on_hashed=None) -> Snapshot | None:
    """The current content of PATH (a file or a folder), or None when it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        f = _state(path.name, st)
        fill_oids(path.parent, [f], memo, jobs)
        return Snapshot("file", f.oid, f.size, [f], {}, [], f.executable)
    if not stat.S_ISDIR(st.st_mode):
        return None
    skipped: list[str] = []
    scan = scan_dir(path, ignored or (lambda rel, is_dir: False), "", skipped)
    files = _all_files(scan, [])
    fill_oids(path, files, memo, jobs, on_hashed)
    trees: dict[str, bytes] = {}
    root, size, _ = _build(scan, trees)
    data = manifest.encode(root)
    oid = hash_bytes(data)
    trees[oid] = data
    return Snapshot("dir", oid, size, files, trees, skipped)

"""Reading the workspace: stat walk, memo lookups, parallel hashing, Merkle trees.

Read-only with respect to the workspace and the cache; only the stat memo learns new oids.
Symlinks inside a tracked folder are never followed: they are skipped and reported.
"""
from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from runicorn.storage import manifest
from runicorn.storage.cache import RACY_NS
from runicorn.storage.fsutil import TMP_PREFIX
from runicorn.storage.hashing import hash_bytes, hash_many
from runicorn.storage.index import StatMemo
from runicorn.storage.manifest import Entry, Tree
from runicorn.storage.safepath import SUSPECT_NAME, problem_with_name


@dataclass(slots=True)
class FileState:
    rel: str  # relative to the tracked root
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    executable: bool
    nlink: int
    oid: str | None = None


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
    taken_ns: int = 0
    fingerprint: str = ""
    hashed: list[FileState] = field(default_factory=list)  # files the memo did not know
    leftovers: list[str] = field(default_factory=list)  # temp files of a killed command (absolute)

    @property
    def file_count(self) -> int:
        return len(self.files)

    def memo_rows(self, files: list[FileState] | None = None) -> list[tuple[int, int, int, str]]:
        """Stat memo rows for FILES (default all) that are safe to trust later (not racy)."""
        limit = self.taken_ns - RACY_NS
        return [(f.ino, f.size, f.mtime_ns, f.ctime_ns, f.oid) for f in (self.files if files is None else files)
                if f.oid and f.mtime_ns < limit]

    @property
    def racy(self) -> bool:
        limit = self.taken_ns - RACY_NS
        return any(f.mtime_ns >= limit for f in self.files)


def _state(rel: str, st: os.stat_result) -> FileState:
    return FileState(rel, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, bool(st.st_mode & stat.S_IXUSR),
                     st.st_nlink)


def scan_dir(top: Path, ignored: Callable[[str, bool], bool] | None, prefix: str = "",
             skipped: list | None = None, leftovers: list | None = None) -> DirScan:
    """Stat every file under TOP without following symlinks (symlinks and specials are skipped).

    This walk is the floor of a no-op `status`, so it avoids per-file calls where it can.
    """
    scan = DirScan()
    skipped = skipped if skipped is not None else []
    leftovers = leftovers if leftovers is not None else []
    files = scan.files
    suspect = SUSPECT_NAME.search
    with os.scandir(top) as it:
        entries = list(it)
    for entry in entries:
        name = entry.name
        rel = prefix + name
        if name.startswith(TMP_PREFIX):
            leftovers.append(entry.path)  # a killed command's temp file: never data
        elif suspect(name) and problem_with_name(name):
            skipped.append(rel)
        elif entry.is_file(follow_symlinks=False):
            if ignored is None or not ignored(rel, False):
                st = entry.stat(follow_symlinks=False)
                files[name] = FileState(rel, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                                        bool(st.st_mode & stat.S_IXUSR), st.st_nlink)
        elif entry.is_dir(follow_symlinks=False):
            if ignored is None or not ignored(rel, True):
                scan.dirs[name] = scan_dir(Path(entry.path), ignored, rel + "/", skipped, leftovers)
        else:
            skipped.append(rel)  # symlinks, sockets, fifos, devices
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
        f.oid = memo.get(f.ino, f.size, f.mtime_ns, f.ctime_ns)
        if f.oid is None:
            pending.append(f)
    if pending:
        prefix = str(base) + os.sep
        oids = hash_many([prefix + f.rel for f in pending], jobs, on_hashed, [f.size for f in pending])
        for f, oid in zip(pending, oids):
            f.oid = oid  # None: the file vanished while we looked; it is left out below
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
        if f.oid is None:
            continue
        tree[name] = Entry("file", f.oid, f.size, f.executable, 1)
        total, count = total + f.size, count + 1
    return tree, total, count


def fingerprint(files: list[FileState], salt: bytes = b"") -> str:
    """Digest of every file's (path, inode, size, mtime): equal fingerprints mean nothing changed."""
    digest = hashlib.sha256(salt)
    update = digest.update  # per file, in slices: no 100k-line string held in memory
    for i in range(0, len(files), 4096):
        update("".join(f"{f.rel}\0{f.ino}\0{f.size}\0{f.mtime_ns}\0{f.ctime_ns}\0{f.executable:d}\n"
                       for f in files[i:i + 4096]).encode())
    return digest.hexdigest()


def snapshot(path: Path, memo: StatMemo, jobs: int, ignored=None, on_hashed=None,
             known: Callable[[str], str | None] | None = None, salt: bytes = b"") -> Snapshot | None:
    """The current content of PATH (a file or a folder), or None when it does not exist.

    KNOWN maps a folder fingerprint to the oid it was last seen with; on a hit nothing is hashed
    or encoded (the files then carry no oids).
    """
    taken = time.time_ns()
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        f = _state(path.name, st)
        hashed = fill_oids(path.parent, [f], memo, jobs)
        if f.oid is None:
            return None
        return Snapshot("file", f.oid, f.size, [f], {}, [], f.executable, taken, hashed=hashed)
    if not stat.S_ISDIR(st.st_mode):
        return None
    skipped: list[str] = []
    leftovers: list[str] = []
    scan = scan_dir(path, ignored, "", skipped, leftovers)
    files = _all_files(scan, [])
    mark = fingerprint(files, salt)
    oid = known(mark) if known else None
    if oid is not None:
        return Snapshot("dir", oid, sum(f.size for f in files), files, {}, skipped, False, taken, mark,
                        leftovers=leftovers)
    hashed = fill_oids(path, files, memo, jobs, on_hashed)
    files = [f for f in files if f.oid is not None]
    trees: dict[str, bytes] = {}
    root, size, _ = _build(scan, trees)
    data = manifest.encode(root)
    oid = hash_bytes(data)
    trees[oid] = data
    return Snapshot("dir", oid, size, files, trees, skipped, False, taken, mark, hashed, leftovers)

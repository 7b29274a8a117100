"""`runicorn add` / `runicorn commit`: hash → cache → link back → flush → pointer → .gitignore.

Crash-safe ordering: objects (file content, then manifests) are written first and flushed to
disk in one batched step; only then are pointers written (atomically) and .gitignore updated.
A command killed at any point leaves every pointer naming objects that exist; rerunning it
finishes the job.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from runicorn.core.events import NULL, Reporter
from runicorn.core.damage import damaged_files
from runicorn.core.repo import Repo
from runicorn.core.workspace import FileState, Snapshot
from runicorn.errors import RunicornError, UnsafePathError
from runicorn.storage import fsutil, gitignore
from runicorn.storage import pointer as ptr


@dataclass
class AddResult:
    path: str
    kind: str
    oid: str
    size: int
    files: int
    changed: bool
    new_objects: int = 0
    new_oids: list[str] = field(default_factory=list, repr=False)
    git_paths: list[str] = field(default_factory=list)  # repo-relative files to commit: pointer, .gitignore
    skipped: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)  # files whose old cached copy was damaged in place

    def to_json(self) -> dict:
        return {"path": self.path, "kind": self.kind, "oid": self.oid, "size": self.size, "files": self.files,
                "changed": self.changed, "new_objects": self.new_objects, "skipped": self.skipped,
                "damaged": self.damaged, "git_paths": self.git_paths}


def _targets(repo: Repo, paths: list[str]) -> list[str]:
    """Repo-relative paths to (re)record; a path inside a tracked folder means that folder."""
    tracked = repo.pointer_paths()
    out: list[str] = []
    for user_path in paths:
        rel = repo.rel(user_path)
        try:
            rel = repo.owner_of(rel)
        except RunicornError:
            pass
        inside = [t for t in tracked if t.startswith(rel + "/")]
        if inside:
            raise UnsafePathError(rel, f"it contains tracked path {inside[0]}; track either the folder or its parts")
        path = repo.abspath(rel)
        repo.check_writable(rel)
        if path.is_symlink():
            raise UnsafePathError(rel, "is a symlink; add the file or folder it points to instead")
        if not path.exists():
            raise RunicornError(f"{rel} does not exist; check the path")
        if rel not in out:
            out.append(rel)
    return out


def add(repo: Repo, paths: list[str], reporter: Reporter = NULL) -> list[AddResult]:
    """Track PATHS (files or folders); re-adding records their new content."""
    with repo.lock(reporter.info):
        return _record(repo, _targets(repo, paths), reporter)


def commit(repo: Repo, paths: list[str] | None, reporter: Reporter = NULL) -> list[AddResult]:
    """Record the current content of already tracked paths (all by default)."""
    with repo.lock(reporter.info):
        targets = [rel for rel, _ in repo.tracked(paths)]
        missing = [rel for rel in targets if not repo.abspath(rel).exists()]
        if missing:
            raise RunicornError(f"{missing[0]} is missing from the workspace; run `runicorn checkout {missing[0]}` first")
        return _record(repo, targets, reporter)


def _record(repo: Repo, targets: list[str], reporter: Reporter) -> list[AddResult]:
    repo.odb.prepare()
    staged: list[tuple[str, Snapshot, AddResult]] = []
    for rel in targets:
        fsutil.sweep_tmp(repo.abspath(rel).parent)  # pointer/.gitignore temps of a killed run
        snap = _snapshot(repo, rel, reporter)
        fsutil.unlink_all(snap.leftovers)  # temps of a killed run inside the folder: we hold the lock
        result = AddResult(rel, snap.kind, snap.oid, snap.size, snap.file_count, changed=False, skipped=snap.skipped)
        _store(repo, rel, snap, result, reporter)
        staged.append((rel, snap, result))
    # every new object durable before any pointer names it
    fsutil.make_durable([repo.odb.path(o) for _, _, r in staged for o in r.new_oids], repo.cache_dir)
    for rel, snap, result in staged:
        result.changed = _write_pointer(repo, rel, snap)
        gitignore.add_entry(repo.abspath(rel))
        parent = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
        result.git_paths = [rel + ptr.SUFFIX, parent + ".gitignore"]
        repo.memo.put_many(snap.memo_rows())
        for name in snap.skipped:
            reporter.warn(f"skipped {rel}/{name}: symlinks and special files are not tracked")
        for name in result.damaged:
            reporter.warn(f"{name} had been changed in place; its previous version was damaged in the cache "
                          "and moved to quarantine (fetch it from a remote if you still need it)")
    repo.autostage([g for _, _, r in staged if r.changed for g in r.git_paths])
    return [r for _, _, r in staged]


def _snapshot(repo: Repo, rel: str, reporter: Reporter) -> Snapshot:
    advance = reporter.task(f"hashing {rel}", None)
    snap = repo.snapshot(rel, on_hashed=lambda: advance(1))
    reporter.end_task()
    if snap is None:
        raise RunicornError(f"{rel} is not a regular file or folder; Runicorn tracks files and folders")
    return snap


def _store(repo: Repo, rel: str, snap: Snapshot, result: AddResult, reporter: Reporter) -> None:
    """Put every file of SNAP into the cache and link the workspace to it."""
    path = repo.abspath(rel)
    base = path if snap.kind == "dir" else path.parent
    kind = repo.linker.kind_for(base)
    prefix = str(base) + os.sep
    _quarantine_damaged(repo, rel, snap, result)
    advance = reporter.task(f"caching {rel}", snap.file_count)
    for f in snap.files:
        if _store_file(repo, prefix + f.rel, f, kind):
            result.new_oids.append(f.oid)
        _restat(prefix + f.rel, f)
        advance(1)
    reporter.end_task()
    for data in snap.trees.values():
        oid, created = repo.odb.put_bytes(data)
        if created:
            result.new_oids.append(oid)
    result.new_objects = len(result.new_oids)


def _quarantine_damaged(repo: Repo, rel: str, snap: Snapshot, result: AddResult) -> None:
    """Objects of the previous version that were written in place leave the cache first."""
    if not repo.pointer_file(rel).is_file():
        return
    try:
        previous = repo.load_pointer(rel)
    except RunicornError:
        return  # a broken pointer is about to be replaced
    for sub, oid in damaged_files(repo, rel, previous, snap).items():
        repo.odb.quarantine(oid)
        repo.memo.forget_oids([oid])
        result.damaged.append(f"{rel}/{sub}" if sub else rel)


def _restat(path: str, f: FileState) -> None:
    """Linking and chmod changed the inode's ctime (and a deduplicated file's inode): refresh the
    stat the memo will record. A file that changed meanwhile gets no memo row."""
    st = os.stat(path)
    if (st.st_size, st.st_mtime_ns) != (f.size, f.mtime_ns):
        f.oid = None
    f.ino, f.ctime_ns = st.st_ino, st.st_ctime_ns


def _store_file(repo: Repo, path: str, f: FileState, kind: str) -> int:
    """Cache one file; returns 1 when a new object was created."""
    if repo.linker.shares_inode(kind, f.executable) and f.nlink == 1:
        if repo.odb.adopt(path, f.oid):
            return 1
        obj = repo.odb.path(f.oid)
        if not os.path.samefile(obj, path):
            repo.guard.check(f.oid)
            repo.linker.link(f.oid, Path(path), False, kind)
        return 0
    if repo.odb.exists(f.oid):
        return 0
    oid, created = repo.odb.copy_in(path)
    if oid != f.oid:
        raise RunicornError(f"{path} changed while it was being added; rerun `runicorn add`")
    repo.guard.record([oid])
    return int(created)


def _write_pointer(repo: Repo, rel: str, snap: Snapshot) -> bool:
    file = repo.pointer_file(rel)
    extra = {}
    if file.is_file():
        try:
            extra = ptr.load(file, rel + ptr.SUFFIX).extra
        except RunicornError:
            extra = {}  # a broken pointer is replaced by a good one
    pointer = ptr.Pointer(path=Path(rel).name, kind=snap.kind, oid=snap.oid, size=snap.size,
                          files=snap.file_count if snap.kind == "dir" else None, extra=extra)
    return ptr.save(file, pointer)

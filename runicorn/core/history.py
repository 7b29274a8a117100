"""Tracked data across git revisions: `diff`, `log`, `ls`, `get`. All read-only: no lock."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from runicorn.core.repo import Repo
from runicorn.errors import ObjectMissingError, PathNotTrackedError, RunicornError
from runicorn.storage import pointer as ptr
from runicorn.storage.fsutil import tmp_name
from runicorn.storage.git import is_pointer_path
from runicorn.storage.manifest import Entry

WORKSPACE = None  # a revision of None means "the workspace"


@dataclass(frozen=True)
class Side:
    """One tracked path at one revision: what its pointer (or the workspace) says."""

    kind: str
    oid: str
    size: int


def pointers_at(repo: Repo, rev: str) -> dict[str, ptr.Pointer]:
    """Every pointer in REV's tree, validated (a hostile one raises, naming the file)."""
    out = {}
    for path, data in repo.git.files_in_tree(rev, is_pointer_path):
        out[path[: -len(ptr.SUFFIX)]] = ptr.parse_at(data, path, f"{path} at {rev}")
    return out


def _sides(repo: Repo, rev: str | None) -> dict[str, Side]:
    if rev is not WORKSPACE:
        return {rel: Side(p.kind, p.oid, p.size) for rel, p in pointers_at(repo, rev).items()}
    sides = {}
    for rel, p in repo.tracked():
        snap = repo.snapshot(rel, expect=p.oid)
        if snap is not None:
            repo.trees.remember(snap.trees)
            sides[rel] = Side(snap.kind, snap.oid, snap.size)
    return sides


def diff(repo: Repo, rev_a: str | None = "HEAD", rev_b: str | None = WORKSPACE) -> list[dict]:
    """Files added / modified / deleted between two revisions (None = workspace)."""
    a, b = _sides(repo, rev_a), _sides(repo, rev_b)
    changes: list[dict] = []
    for rel in sorted(a.keys() | b.keys()):
        x, y = a.get(rel), b.get(rel)
        if x == y:
            continue
        if x and y and x.kind == y.kind == "dir":
            changes.extend(_dir_changes(repo, rel, x, y))
        else:
            change = "added" if x is None else "deleted" if y is None else "modified"
            changes.append(_row(rel, change, x, y))
    return changes


def _row(path: str, change: str, x, y) -> dict:
    return {"path": path, "change": change, "old_oid": x.oid if x else None, "new_oid": y.oid if y else None,
            "old_size": x.size if x else None, "new_size": y.size if y else None}


def _dir_changes(repo: Repo, rel: str, x: Side, y: Side) -> list[dict]:
    try:
        return [_row(f"{rel}/{sub}", change, old, new) for sub, change, old, new in repo.trees.diff(x.oid, y.oid)]
    except ObjectMissingError:
        row = _row(rel, "modified", x, y)
        row["detail"] = "manifest not in the cache; run `runicorn fetch` for file-level changes"
        return [row]


def log(repo: Repo, path: str) -> list[dict]:
    """History of one tracked path, newest first."""
    rel = repo.rel(path)
    entries = []
    for info, data in repo.git.path_history(rel + ptr.SUFFIX):
        row = {"commit": info.sha, "date": info.time, "author": info.author, "message": info.message,
               "change": "deleted", "kind": None, "oid": None, "size": None, "files": None}
        if data is not None:
            p = ptr.parse_at(data, rel + ptr.SUFFIX, f"{rel}{ptr.SUFFIX} at {info.sha[:12]}")
            row.update(kind=p.kind, oid=p.oid, size=p.size, files=p.files)
        entries.append(row)
    if not entries:
        if repo.pointer_file(rel).is_file():
            raise RunicornError(f"{rel}{ptr.SUFFIX} has no git history yet; commit it with `git add {rel}{ptr.SUFFIX} && git commit`")
        raise PathNotTrackedError(rel)
    previous = None
    for row in reversed(entries):  # oldest first
        if row["oid"] is not None:
            row["change"] = "added" if previous is None or previous["oid"] is None else "modified"
        previous = row
    return entries


def _pointer_for(repo: Repo, rel: str, rev: str | None) -> tuple[str, ptr.Pointer]:
    """(tracked path, pointer) owning REL at REV (None = workspace pointers)."""
    if rev is None:
        owner = repo.owner_of(rel)
        return owner, repo.load_pointer(owner)
    parts = rel.split("/")
    for i in range(len(parts), 0, -1):
        owner = "/".join(parts[:i])
        data = repo.git.read_file(rev, owner + ptr.SUFFIX)
        if data is not None:
            return owner, ptr.parse_at(data, owner + ptr.SUFFIX, f"{owner}{ptr.SUFFIX} at {rev}")
    raise RunicornError(f"{rel} is not tracked at {rev}; list tracked data with `runicorn ls --rev {rev}`")


def ls(repo: Repo, path: str | None = None, rev: str | None = None) -> list[dict]:
    """Tracked paths and the files inside tracked folders."""
    if path is None:
        pointers = pointers_at(repo, rev) if rev else dict(repo.tracked())
        rows = []
        for rel, p in sorted(pointers.items()):
            rows.append({"path": rel, "kind": p.kind, "oid": p.oid, "size": p.size, "tracked": rel})
            if p.kind == "dir":
                rows.extend(_files(repo, rel, p.oid, rel))
        return rows
    rel = repo.rel(path)
    owner, p = _pointer_for(repo, rel, rev)
    if owner == rel:
        head = [{"path": rel, "kind": p.kind, "oid": p.oid, "size": p.size, "tracked": owner}]
        return head + (_files(repo, rel, p.oid, owner) if p.kind == "dir" else [])
    entry = repo.trees.lookup(p.oid, rel[len(owner) + 1:])
    if entry is None:
        raise RunicornError(f"{rel} is not inside {owner} at {rev or 'the workspace pointer'}")
    head = [{"path": rel, "kind": entry.kind, "oid": entry.oid, "size": entry.size, "tracked": owner}]
    return head + (_files(repo, rel, entry.oid, owner) if entry.kind == "dir" else [])


def _files(repo: Repo, prefix: str, tree_oid: str, owner: str) -> list[dict]:
    return [{"path": f"{prefix}/{sub}", "kind": "file", "oid": e.oid, "size": e.size, "tracked": owner}
            for sub, e in repo.trees.walk(tree_oid)]


def get(repo: Repo, path: str, rev: str | None, out: Path | None, force: bool = False) -> Path:
    """Write PATH as it was at REV to OUT (private copies); the workspace is not touched."""
    rel = repo.rel(path)
    owner, p = _pointer_for(repo, rel, rev)
    entry = Entry(p.kind, p.oid, p.size) if owner == rel else repo.trees.lookup(p.oid, rel[len(owner) + 1:])
    if entry is None:
        raise RunicornError(f"{rel} is not inside {owner} at {rev}")
    out = Path(os.path.abspath(out or Path(rel).name))
    if (out.exists() or out.is_symlink()) and not force:
        raise RunicornError(f"{out} already exists; choose another -o or pass --force")
    files = [("", entry)] if entry.kind == "file" else list(repo.trees.walk(entry.oid))
    missing = {e.oid for _, e in files if not repo.odb.exists(e.oid)}
    if missing:
        raise ObjectMissingError(missing)
    staging = tmp_name(out)
    try:
        for sub, e in files:
            dest = staging / sub if sub else staging
            dest.parent.mkdir(parents=True, exist_ok=True)
            repo.guard.check(e.oid)
            repo.odb.make_writable_copy(e.oid, dest, e.executable)
        if entry.kind == "dir":
            staging.mkdir(exist_ok=True)
        if out.exists() and force:
            shutil.rmtree(out) if out.is_dir() and not out.is_symlink() else out.unlink()
        os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging) if staging.is_dir() else staging.unlink()
    return out

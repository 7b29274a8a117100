"""`runicorn status`: the workspace against the pointers.

Takes no lock and never touches the workspace or the cache; it only teaches the index (stat memo,
folder fingerprints) what it hashed, so the next run is faster."""
from __future__ import annotations

from dataclasses import dataclass, field

from runicorn.core.damage import damaged_files
from runicorn.core.repo import Repo
from runicorn.core.workspace import Snapshot
from runicorn.errors import ObjectMissingError, RunicornError
from runicorn.storage import pointer as ptr

CLEAN, MODIFIED, DELETED, NOT_IN_CACHE, DAMAGED = "clean", "modified", "deleted", "not in cache", "damaged"


@dataclass
class PathStatus:
    path: str
    kind: str
    state: str
    changes: list[tuple[str, str]] = field(default_factory=list)  # (path inside, added|modified|deleted|damaged)

    def to_json(self) -> dict:
        return {"path": self.path, "kind": self.kind, "state": self.state,
                "changes": [{"path": p, "change": c} for p, c in self.changes]}


def status(repo: Repo, paths: list[str] | None = None) -> list[PathStatus]:
    return [_one(repo, rel, p) for rel, p in repo.tracked(paths)]


def _one(repo: Repo, rel: str, pointer: ptr.Pointer) -> PathStatus:
    path = repo.abspath(rel)
    current = repo.snapshot(rel, expect=pointer.oid) if path.exists() and not path.is_symlink() else None
    if current is None:
        return PathStatus(rel, pointer.kind, DELETED if _in_cache(repo, pointer) else NOT_IN_CACHE)
    repo.memo.put_many(current.memo_rows(current.hashed))
    if current.oid == pointer.oid and current.kind == pointer.kind:
        repo.remember_clean(rel, current)
        return PathStatus(rel, pointer.kind, CLEAN)
    damaged = damaged_files(repo, rel, pointer, current)
    changes = [(p, DAMAGED if p in damaged else c) for p, c in _changes(repo, pointer, current)]
    return PathStatus(rel, pointer.kind, DAMAGED if damaged else MODIFIED, sorted(changes))


def _in_cache(repo: Repo, pointer: ptr.Pointer) -> bool:
    if not repo.odb.exists(pointer.oid):
        return False
    if pointer.kind == "file":
        return True
    try:
        return all(repo.odb.exists(e.oid) for _, e in repo.trees.walk(pointer.oid))
    except (ObjectMissingError, RunicornError):
        return False


def _changes(repo: Repo, pointer: ptr.Pointer, current: Snapshot) -> list[tuple[str, str]]:
    if pointer.kind == "file" or current.kind == "file":
        return [("", MODIFIED)]
    repo.trees.remember(current.trees)
    try:
        return [(sub, change) for sub, change, _, _ in repo.trees.diff(pointer.oid, current.oid)]
    except ObjectMissingError:
        return [("", MODIFIED)]  # the recorded manifest is not in the cache: no file-level detail


def differs(results: list[PathStatus]) -> bool:
    return any(r.state != CLEAN for r in results)

"""Finding files that were written in place through a hardlink into the cache.

A hardlinked workspace file *is* its cached object, so writing into it (root ignores the
read-only bit) changes the object too. Such a file still shares the inode of the object its
pointer names, while its content no longer matches: that is how it is recognised.
"""
from __future__ import annotations

import os

from runicorn.core.repo import Repo
from runicorn.core.workspace import Snapshot
from runicorn.errors import RunicornError
from runicorn.storage import pointer as ptr


def _same_inode(repo: Repo, oid: str, path: str) -> bool:
    try:
        return os.stat(repo.odb.path(oid)).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def damaged_files(repo: Repo, rel: str, pointer: ptr.Pointer, snap: Snapshot) -> dict[str, str]:
    """{path inside REL ('' for a file): oid of the damaged object} — read-only."""
    if snap.oid == pointer.oid:
        return {}
    base = repo.abspath(rel)
    if pointer.kind == "file" or snap.kind == "file":
        if pointer.kind == snap.kind == "file" and _same_inode(repo, pointer.oid, str(base)):
            return {"": pointer.oid}
        return {}
    repo.trees.remember(snap.trees)
    try:
        changes = list(repo.trees.diff(pointer.oid, snap.oid))
    except RunicornError:
        return {}  # the recorded manifest is not in the cache: nothing left to damage
    return {sub: old.oid for sub, change, old, _ in changes
            if change == "modified" and _same_inode(repo, old.oid, os.path.join(base, sub))}

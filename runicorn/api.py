"""The read API (SPEC §4): tracked data at any git revision, and queries over runs (and artifacts).

`rn.api.open(path, rev=…)` / `rn.api.read(path, rev=…)` read a tracked file (or a file inside a
tracked folder) as it was at REV, straight from the cache: the workspace is never touched.
Every function also takes `repo=` (a path or a Repo; default: the repository of the current folder).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

from runicorn.core.history import _pointer_for
from runicorn.core.repo import Repo
from runicorn.core.runs import (delete_run, get_run, list_runs, metric_keys, metric_series, rebuild_index,
                                run_diff, run_logs)
from runicorn.errors import ObjectMissingError, RunicornError

__all__ = ["open", "read", "resolve", "list_runs", "get_run", "run_diff", "run_logs", "metric_keys",
           "metric_series", "rebuild_index", "delete_run"]

_open = open


def _repo(repo) -> Repo:
    if isinstance(repo, Repo):
        return repo
    return Repo.find(Path(repo) if repo is not None else None)


def resolve(path: str | os.PathLike, rev: str | None = None, repo=None) -> dict:
    """{"path", "oid", "size", "tracked"} of PATH at REV (None: the workspace pointers)."""
    r = _repo(repo)
    rel = r.rel(path) if rev is None else str(path).replace(os.sep, "/").strip("/")
    owner, p = _pointer_for(r, rel, rev)
    if owner == rel:
        kind, oid, size = p.kind, p.oid, p.size
    else:
        entry = r.trees.lookup(p.oid, rel[len(owner) + 1:])
        if entry is None:
            raise RunicornError(f"{rel} is not inside {owner} at {rev or 'the workspace'}; "
                                f"list it with `runicorn ls {owner}`")
        kind, oid, size = entry.kind, entry.oid, entry.size
    if kind != "file":
        raise RunicornError(f"{rel} is a folder; open a file inside it (see `runicorn ls {rel}`)")
    return {"path": rel, "oid": oid, "size": size, "tracked": owner}


def open(path: str | os.PathLike, rev: str | None = None, mode: str = "r", repo=None, encoding: str | None = None):
    """A read-only file object for PATH at REV ("r" text or "rb" bytes), served from the cache."""
    if mode not in ("r", "rb", "rt"):
        raise RunicornError(f"rn.api.open is read-only; use mode 'r' or 'rb', not {mode!r}")
    r = _repo(repo)
    info = resolve(path, rev, r)
    try:
        f = _open(r.odb.path(info["oid"]), "rb")
    except FileNotFoundError:
        raise ObjectMissingError([info["oid"]]) from None
    return f if mode == "rb" else io.TextIOWrapper(f, encoding=encoding or "utf-8")


def read(path: str | os.PathLike, rev: str | None = None, mode: str = "r", repo=None, encoding: str | None = None):
    """The whole content of PATH at REV (str for mode "r", bytes for "rb")."""
    with open(path, rev=rev, mode=mode, repo=repo, encoding=encoding) as f:
        return f.read()


try:  # artifacts' read API, when that part is installed
    from runicorn.core.artifacts import (artifact_diff, artifact_info, artifact_stats,  # noqa: F401
                                         lineage, list_artifacts, list_versions)

    __all__ += ["list_artifacts", "list_versions", "artifact_info", "artifact_stats", "artifact_diff", "lineage"]
except ImportError:
    pass

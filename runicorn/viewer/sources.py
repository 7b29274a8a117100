"""Where the viewer's data comes from: the Runs and Artifacts read APIs, and git history.

The runs and artifacts modules are found at call time: while one is absent (or lacks a function)
the pages show an honest empty state instead of failing. Git history is read through the
repository's `GitRepo` object (the same libgit2 handle core uses); the viewer imports no git library.
"""
from __future__ import annotations

import importlib
from datetime import datetime, timezone

from runicorn.core.repo import Repo
from runicorn.storage.git import is_pointer_path

POINTER_SUFFIX = ".rn"


def api(module: str, name: str):
    """`runicorn.core.<module>.<name>`, or None while that module or function does not exist yet."""
    try:
        mod = importlib.import_module(f"runicorn.core.{module}")
    except ImportError:
        return None
    return getattr(mod, name, None)


def runs_api(name: str):
    return api("runs", name)


def artifacts_api(name: str):
    return api("artifacts", name)


def iso(ts) -> str | None:
    if ts is None or ts == "":
        return None
    if isinstance(ts, str):
        return ts
    return datetime.fromtimestamp(float(ts), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- git --------------------------------------------------------------------------------------
def _commit_row(commit) -> dict:
    message = commit.message.strip()
    return {"sha": str(commit.id), "short": str(commit.id)[:8], "author": commit.author.name,
            "email": commit.author.email, "time": commit.commit_time, "date": iso(commit.commit_time),
            "subject": message.splitlines()[0] if message else "", "message": message,
            "parents": [str(p) for p in commit.parent_ids]}


def head_info(repo: Repo) -> dict:
    git = repo.git
    sha = git.head_sha()
    return {"branch": git.branch(), "head": sha, "short": sha[:8] if sha else None}


def commits(repo: Repo, limit: int = 50, offset: int = 0) -> tuple[list[dict], bool]:
    """(commits newest first from HEAD, whether more exist); empty for an unborn HEAD."""
    raw = repo.git.repo
    if raw.head_is_unborn:
        return [], False
    rows = []
    for i, commit in enumerate(raw.walk(raw.head.target)):
        if i < offset:
            continue
        if len(rows) == limit:
            return rows, True
        rows.append(_commit_row(commit))
    return rows, False


def commit(repo: Repo, sha: str) -> dict:
    """One commit with its patch and the tracked paths (pointer files) it changed."""
    obj = repo.git.resolve(sha)
    row = _commit_row(obj)
    raw = repo.git.repo
    if obj.parents:
        diff = raw.diff(obj.parents[0], obj)
    else:
        diff = obj.tree.diff_to_tree(swap=True)
    patch = diff.patch or ""
    row["files"] = [{"path": d.new_file.path if d.status_char() != "D" else d.old_file.path,
                     "status": d.status_char()} for d in diff.deltas]
    row["data_changes"] = [f for f in row["files"] if is_pointer_path(f["path"])]
    for f in row["data_changes"]:
        f["tracked"] = f["path"][: -len(POINTER_SUFFIX)]
    row["diff"] = patch
    return row


def changed_pointers(repo: Repo, sha: str) -> list[str]:
    """Tracked paths whose pointer changed in commit SHA (against its first parent)."""
    raw = repo.git.repo
    obj = raw[raw.revparse_single(sha).id]
    diff = raw.diff(obj.parents[0], obj) if obj.parents else obj.tree.diff_to_tree(swap=True)
    out = []
    for d in diff.deltas:
        path = d.new_file.path if d.status_char() != "D" else d.old_file.path
        if is_pointer_path(path):
            out.append(path[: -len(POINTER_SUFFIX)])
    return out

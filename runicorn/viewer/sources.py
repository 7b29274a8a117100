"""Where the viewer's git data comes from, and small helpers shared by the pages.

Git history is read through the repository's `GitRepo` object (the same libgit2 handle core uses);
the viewer imports no git library. The runs and artifacts read APIs are imported directly by `pages`.
"""
from __future__ import annotations

from datetime import datetime, timezone

from runicorn.core.repo import Repo
from runicorn.storage import artifact_store
from runicorn.storage.git import is_pointer_path

POINTER_SUFFIX = ".rn"


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
    row["manifests"] = [m for m in (manifest_of(f["path"], f["status"]) for f in row["files"]) if m]
    row["diff"] = patch
    return row


def manifest_of(path: str, status: str) -> dict | None:
    """{'name', 'version', 'status'} when PATH is an artifact version's manifest, else None."""
    folder, _, file = path.rpartition("/")
    parent, _, name = folder.rpartition("/")
    match = artifact_store.VERSION_FILE_RE.match(file)
    if parent != artifact_store.DIR or not match or not artifact_store.NAME_RE.match(name):
        return None
    return {"name": name, "version": int(match.group(1)), "status": status}


def changed(repo: Repo, sha: str) -> tuple[list[str], list[dict]]:
    """(tracked paths whose pointer changed, artifact manifests added or changed) in commit SHA,
    against its first parent."""
    raw = repo.git.repo
    obj = raw[raw.revparse_single(sha).id]
    diff = raw.diff(obj.parents[0], obj) if obj.parents else obj.tree.diff_to_tree(swap=True)
    pointers, manifests = [], []
    for d in diff.deltas:
        status = d.status_char()
        path = d.new_file.path if status != "D" else d.old_file.path
        if is_pointer_path(path):
            pointers.append(path[: -len(POINTER_SUFFIX)])
        elif (m := manifest_of(path, status)) is not None:
            manifests.append(m)
    return pointers, manifests

"""`runicorn doctor`: versions, cache, link types on this filesystem, index and git state."""
from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from runicorn.config import LINK_TYPES
from runicorn.core.repo import Repo
from runicorn.errors import RunicornError
from runicorn.storage.cache import probe_link_type
from runicorn.storage.git import discover_root, git_version

PACKAGES = ("runicorn", "typer", "rich", "pyyaml", "filelock", "pygit2", "dulwich", "fsspec", "sshfs", "s3fs")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _link_types(repo: Repo) -> dict[str, bool]:
    works = {}
    for kind in LINK_TYPES:
        try:
            works[kind] = probe_link_type(repo.odb, repo.root, [kind]) == kind
        except (RunicornError, OSError):
            works[kind] = False
    return works


def _repo_report(repo: Repo) -> dict:
    chain = repo.config.get("cache.link")
    links = _link_types(repo)
    return {
        "root": str(repo.root),
        "cache": {"dir": str(repo.cache_dir), "link_chain": chain, "link_types": links,
                  "link_used": next((k for k in chain if links.get(k)), None)},
        "index": {"path": str(repo.index.path), "migrations": repo.index.applied_migrations(),
                  "journal_mode": repo.index.db.execute("PRAGMA journal_mode").fetchone()[0]},
        "git": {"branch": repo.git.branch(), "head": repo.git.head_sha(), "dirty": repo.git.is_dirty(),
                "library": git_version()},
        "tracked_paths": len(repo.pointer_paths()),
        "remotes": {name: opts.get("url", "") for name, opts in sorted(repo.config.remotes().items())},
        "default_remote": repo.config.get("core.remote") or None,
    }


def doctor(start: Path | None = None) -> dict:
    """Read-only report; works outside a repository too (then says so)."""
    report = {
        "versions": {name: _version(name) for name in PACKAGES},
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        discover_root(Path(start or Path.cwd()))
        report["repository"] = _repo_report(Repo.find(start))
    except RunicornError as exc:
        report["repository"] = None
        report["problem"] = exc.message
    return report

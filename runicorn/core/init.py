"""`runicorn init`: make a git work tree a Runicorn repository (idempotent)."""
from __future__ import annotations

from pathlib import Path

from runicorn.config import PROJECT_FILE
from runicorn.core.repo import DIRNAME, Repo
from runicorn.storage.fsutil import atomic_write
from runicorn.storage.git import discover_root

# Machine-local parts of .runicorn/ that git must not see; artifacts/ is committed.
INNER_GITIGNORE = "/cache/\n/index.db\n/index.db-*\n/config.local.yaml\n/runs/\n/tmp/\n/quarantine/\n"
PROJECT_HEADER = (
    "# Runicorn project settings, committed with the repository.\n"
    "# Every key is described in .runicorn.example.yaml and docs/config.md.\n"
)


def init(start: Path | None = None) -> tuple[Repo, bool]:
    """Returns (repo, created); running it again on an initialised repo changes nothing."""
    root = discover_root(Path(start or Path.cwd()))
    inner = root / DIRNAME
    created = not inner.is_dir()
    (inner / "tmp").mkdir(parents=True, exist_ok=True)
    if not (inner / ".gitignore").exists():
        atomic_write(inner / ".gitignore", INNER_GITIGNORE.encode())
    if not (root / PROJECT_FILE).exists():
        atomic_write(root / PROJECT_FILE, PROJECT_HEADER.encode())
    repo = Repo(root)
    repo.odb.prepare()
    repo.index  # creates the SQLite index and applies migrations
    return repo, created

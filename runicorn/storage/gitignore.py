"""`.gitignore` entries for tracked data, written as DVC does: `/name` in the folder's .gitignore."""
from __future__ import annotations

from pathlib import Path

from runicorn.storage.fsutil import atomic_write


def _entry(name: str) -> str:
    # Escape gitignore metacharacters so the entry matches exactly this name.
    escaped = "".join("\\" + c if c in "*?[]!#\\ " else c for c in name)
    return "/" + escaped


def _read(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def add_entry(data_path: Path) -> bool:
    """Ignore DATA_PATH in its folder's .gitignore; False when already there."""
    gitignore = data_path.parent / ".gitignore"
    lines = _read(gitignore)
    entry = _entry(data_path.name)
    if entry in lines:
        return False
    atomic_write(gitignore, ("\n".join(lines + [entry]) + "\n").encode())
    return True


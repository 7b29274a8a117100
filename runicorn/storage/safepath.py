"""Validation of every path that comes from a file Runicorn reads (pointers, manifests).

A path is accepted only if it is relative, uses '/', and has no component that could escape
the repository or reach git's or Runicorn's own folders. Checks run before any write.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from runicorn.errors import UnsafePathError

MAX_PATH_CHARS = 4096
_DRIVE = re.compile(r"^[A-Za-z]:")
_RESERVED = {".git", ".runicorn"}


SUSPECT_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f\\/]|^\.\.?$|^[A-Za-z]:|^\.(?i:git|runicorn)[. ]*$")


def problem_with_name(name: object) -> str | None:
    """Why NAME is not a safe single path component, or None when it is."""
    if not isinstance(name, str) or not name:
        return "empty or not a string"
    if SUSPECT_NAME.search(name) is None:  # one regex pass: the hot path for 100k-file folders
        return None
    if any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in name):  # C0, DEL and C1 controls
        return "contains a control character"
    if "\\" in name:
        return "contains a backslash"
    if "/" in name:
        return "contains '/'"
    if name in (".", ".."):
        return f"is {name!r}"
    if _DRIVE.match(name):
        return "looks like a drive letter"
    # '.GIT', '.git.', '.git ' all mean .git on case-insensitive or Windows filesystems.
    return f"names a reserved folder ({name})"


def problem_with_relpath(path: object) -> str | None:
    """Why PATH is not a safe repo-relative path, or None when it is."""
    if not isinstance(path, str) or not path:
        return "empty or not a string"
    if len(path) > MAX_PATH_CHARS:
        return "is too long"
    if path.startswith("/") or _DRIVE.match(path):
        return "is absolute"
    for part in path.split("/"):
        why = problem_with_name(part)
        if why:
            return why
    return None


def check_relpath(path: object) -> str:
    why = problem_with_relpath(path)
    if why:
        raise UnsafePathError(path, why)
    return path  # type: ignore[return-value]


def check_no_symlink_parents(root: Path, relpath: str) -> None:
    """Refuse to write RELPATH if any existing parent inside ROOT is a symlink or not a directory."""
    current = root
    for part in relpath.split("/")[:-1]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return
        if not os.path.isdir(current) or os.path.islink(current):
            raise UnsafePathError(relpath, f"parent {current.relative_to(root)} is a symlink or a file")
        del st


def repo_relative(root: Path, path: str | os.PathLike, cwd: Path | None = None) -> str:
    """A user-given path (relative to CWD or absolute) as a '/'-separated path inside ROOT.

    Symlinked parents are not resolved: the path must lie inside the repository as written.
    """
    cwd = cwd or Path.cwd()
    absolute = Path(os.path.normpath(os.path.join(cwd, path)))
    try:
        rel = absolute.relative_to(root)
    except ValueError:
        raise UnsafePathError(str(path), "is outside the repository") from None
    text = rel.as_posix()
    if text in ("", "."):
        raise UnsafePathError(str(path), "is the repository root; name a file or folder inside it")
    return check_relpath(text)

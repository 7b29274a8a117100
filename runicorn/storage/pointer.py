"""Pointer files (`<path>.rn`): the small YAML records users commit to git.

Canonical form: a header comment, the known keys in a fixed order, then any unknown keys
(kept as read, sorted). Reading is strict: size-limited, safe_load without aliases
(no YAML bombs, no `!!python` tags), every field validated before anything is written.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runicorn.config import strict_yaml_load
from runicorn.errors import PointerError, UnresolvedConflictError
from runicorn.storage import fsutil
from runicorn.storage.hashing import HASH_NAME, is_oid
from runicorn.storage.safepath import problem_with_name, problem_with_relpath

SUFFIX = ".rn"
FORMAT_VERSION = 1
MAX_POINTER_BYTES = 64 << 10
MAX_SIZE = 1 << 62
HEADER = "# Runicorn pointer. Commit this file; the data lives in the Runicorn cache and remotes.\n"
KNOWN_KEYS = ("runicorn", "path", "kind", "hash", "oid", "size", "files")


@dataclass
class Pointer:
    path: str  # the tracked name, relative to the pointer's folder
    kind: str  # "file" | "dir"
    oid: str
    size: int
    files: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_yaml(self) -> str:
        lines = [HEADER, f"runicorn: {FORMAT_VERSION}\n", f"path: {_scalar(self.path)}\n",
                 f"kind: {self.kind}\n", f"hash: {HASH_NAME}\n", f"oid: {self.oid}\n", f"size: {self.size}\n"]
        if self.kind == "dir":
            lines.append(f"files: {self.files or 0}\n")
        if self.extra:
            lines.append(yaml.safe_dump(self.extra, sort_keys=True, default_flow_style=False, allow_unicode=True))
        return "".join(lines)


def _scalar(text: str) -> str:
    return yaml.safe_dump(text, allow_unicode=True).removesuffix("...\n").strip()


def _fail(where, why):
    raise PointerError(where, why)


def parse(data: bytes, where: str | Path) -> Pointer:
    """Validate and parse pointer bytes; WHERE names the file in errors."""
    if len(data) > MAX_POINTER_BYTES:
        _fail(where, f"larger than {MAX_POINTER_BYTES} bytes")
    try:
        doc = strict_yaml_load(data)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        _fail(where, f"not valid pointer YAML ({str(exc).splitlines()[0]})")
    if not isinstance(doc, dict):
        _fail(where, "not a YAML mapping")
    if doc.get("runicorn") != FORMAT_VERSION or type(doc.get("runicorn")) is not int:
        _fail(where, f"unknown format version {doc.get('runicorn')!r} (this Runicorn reads version {FORMAT_VERSION})")
    if doc.get("hash") != HASH_NAME:
        _fail(where, f"unsupported hash {doc.get('hash')!r}")
    path, kind, oid, size = doc.get("path"), doc.get("kind"), doc.get("oid"), doc.get("size")
    why = problem_with_name(path)
    if why:
        _fail(where, f"path {path!r} {why}")
    if kind not in ("file", "dir"):
        _fail(where, f"kind must be file or dir, not {kind!r}")
    if not is_oid(oid):
        _fail(where, "oid is not a 64-digit sha256 hex digest")
    if type(size) is not int or not 0 <= size <= MAX_SIZE:
        _fail(where, f"size {size!r} is not a plausible byte count")
    files = doc.get("files")
    if kind == "dir" and (type(files) is not int or files < 0):
        _fail(where, "files must be a non-negative integer for a directory")
    extra = {k: v for k, v in doc.items() if k not in KNOWN_KEYS}
    return Pointer(path=path, kind=kind, oid=oid, size=size, files=files if kind == "dir" else None, extra=extra)


def parse_at(data: bytes, rel: str, where: str) -> Pointer:
    """Parse the pointer stored at repo-relative REL ('a/b.rn'): its location is checked too."""
    why = problem_with_relpath(rel)
    if why:
        _fail(where, f"its location {why}")
    ptr = parse(data, where)
    if ptr.path + SUFFIX != rel.rsplit("/", 1)[-1]:
        _fail(where, f"path {ptr.path!r} does not match the pointer's file name")
    return ptr


def has_conflict_markers(data: bytes) -> bool:
    """DATA holds git's conflict markers: a merge left the pointer unresolved (the merge driver's
    two merged pointers, or git's own line merge when the driver is not registered)."""
    lines = data.splitlines()
    return any(line.startswith(b"<<<<<<<") for line in lines) and any(line.startswith(b">>>>>>>") for line in lines)


def load(pointer_file: Path, rel: str) -> Pointer:
    """Read and validate the pointer file at repo-relative REL. UnresolvedConflictError for a pointer
    still in conflict: `git checkout -- REL` refuses an unmerged path, so the advice is to resolve."""
    try:
        with open(pointer_file, "rb") as f:
            data = f.read(MAX_POINTER_BYTES + 1)
    except OSError as exc:
        _fail(rel, f"cannot be read ({exc.strerror})")
    if has_conflict_markers(data):
        raise UnresolvedConflictError(rel)
    return parse_at(data, rel, rel)


def save(pointer_file: Path, ptr: Pointer) -> bool:
    """Write PTR atomically; returns False (and writes nothing) when the file is already identical."""
    text = ptr.to_yaml().encode()
    try:
        if pointer_file.read_bytes() == text:
            return False
    except OSError:
        pass
    fsutil.atomic_write(pointer_file, text)
    return True

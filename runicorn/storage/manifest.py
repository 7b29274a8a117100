"""Directory manifests: Merkle trees stored as objects, one per directory (like git trees).

Encoding (version 1), canonical so equal trees have equal oids:
    {"entries":[{"exec":false,"kind":"file","name":"a.csv","oid":"…","size":12},
                {"files":3,"kind":"dir","name":"sub","oid":"…","size":30}],"runicorn-tree":1}
JSON with sorted keys, no spaces, UTF-8, entries sorted by name. A dir entry's size and files
are the totals of its subtree.
"""
from __future__ import annotations

import json
import re
from typing import Iterator, NamedTuple

from runicorn.errors import ManifestError
from runicorn.storage.hashing import hash_bytes, is_oid
from runicorn.storage.odb import ObjectDB
from runicorn.storage.safepath import problem_with_name

FORMAT_KEY = "runicorn-tree"
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 64 << 20
MAX_SIZE = 1 << 62
MANIFEST_HEAD = b'{"entries":['  # every encoded manifest starts so (keys are sorted)


class Entry(NamedTuple):
    kind: str  # "file" | "dir"
    oid: str
    size: int
    executable: bool = False
    files: int = 1


Tree = dict  # name -> Entry


_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f-\U0010ffff]*')


def _json_str(text: str) -> str:
    # Same bytes as json.dumps(ensure_ascii=False) would give, without its per-call overhead.
    return f'"{text}"' if _PLAIN.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def encode(tree: Tree) -> bytes:
    """Canonical bytes: equal to json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)."""
    rows = []
    for name in sorted(tree):
        e = tree[name]
        if e.kind == "dir":
            rows.append(f'{{"files":{e.files},"kind":"dir","name":{_json_str(name)},"oid":"{e.oid}","size":{e.size}}}')
        else:
            executable = "true" if e.executable else "false"
            rows.append(f'{{"exec":{executable},"kind":"file","name":{_json_str(name)},"oid":"{e.oid}","size":{e.size}}}')
    return f'{{"entries":[{",".join(rows)}],"{FORMAT_KEY}":{FORMAT_VERSION}}}'.encode()


def _reference_encode(tree: Tree) -> bytes:
    """The definition `encode` must match (kept for tests)."""
    rows = []
    for name in sorted(tree):
        e = tree[name]
        if e.kind == "dir":
            rows.append({"files": e.files, "kind": "dir", "name": name, "oid": e.oid, "size": e.size})
        else:
            rows.append({"exec": e.executable, "kind": "file", "name": name, "oid": e.oid, "size": e.size})
    doc = {"entries": rows, FORMAT_KEY: FORMAT_VERSION}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def tree_oid(tree: Tree) -> str:
    return hash_bytes(encode(tree))


def _bad(oid: str, why: str):
    raise ManifestError(oid, why)


def _entry(oid: str, row: object) -> tuple[str, Entry]:
    if not isinstance(row, dict):
        _bad(oid, "an entry is not a mapping")
    name, kind, child, size = row.get("name"), row.get("kind"), row.get("oid"), row.get("size")
    why = problem_with_name(name)
    if why:
        _bad(oid, f"entry name {name!r} {why}")
    if not is_oid(child):
        _bad(oid, f"entry {name!r} has a malformed oid")
    if type(size) is not int or not 0 <= size <= MAX_SIZE:
        _bad(oid, f"entry {name!r} has an invalid size")
    if kind == "file":
        executable = row.get("exec", False)
        if type(executable) is not bool:
            _bad(oid, f"entry {name!r} has a non-boolean exec flag")
        return name, Entry("file", child, size, executable, 1)
    if kind == "dir":
        files = row.get("files")
        if type(files) is not int or files < 0:
            _bad(oid, f"entry {name!r} has an invalid file count")
        return name, Entry("dir", child, size, False, files)
    _bad(oid, f"entry {name!r} has unknown kind {kind!r}")


def decode(oid: str, data: bytes) -> Tree:
    """Parse and validate one manifest; hostile names or values raise ManifestError."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        _bad(oid, "not a Runicorn manifest (not JSON)")
    if not isinstance(doc, dict) or doc.get(FORMAT_KEY) != FORMAT_VERSION:
        _bad(oid, "not a Runicorn manifest of a known version")
    rows = doc.get("entries")
    if not isinstance(rows, list):
        _bad(oid, "entries missing")
    tree: Tree = {}
    for row in rows:
        name, entry = _entry(oid, row)
        if name in tree:
            _bad(oid, f"duplicate entry {name!r}")
        tree[name] = entry
    if encode(tree) != data:
        _bad(oid, "not in canonical form (sorted, compact JSON)")
    return tree


class TreeReader:
    """Loads manifests from an object database, each at most once."""

    def __init__(self, odb: ObjectDB):
        self.odb = odb
        self._cache: dict[str, Tree] = {}

    def load(self, oid: str) -> Tree:
        tree = self._cache.get(oid)
        if tree is None:
            data = self.odb.read_bytes(oid, MAX_MANIFEST_BYTES)
            if hash_bytes(data) != oid:
                _bad(oid, "content does not match its oid")
            tree = self._cache[oid] = decode(oid, data)
        return tree

    def remember(self, encoded: dict[str, bytes]) -> None:
        """Take manifests just built from the workspace (oid -> bytes) without reading the cache."""
        for oid, data in encoded.items():
            if oid not in self._cache:
                self._cache[oid] = decode(oid, data)

    def walk(self, oid: str, prefix: str = "") -> Iterator[tuple[str, Entry]]:
        """Every file under the tree OID as (relative path, entry)."""
        for name, entry in self.load(oid).items():
            path = f"{prefix}{name}"
            if entry.kind == "dir":
                yield from self.walk(entry.oid, path + "/")
            else:
                yield path, entry

    def dir_paths(self, oid: str, prefix: str = "") -> Iterator[str]:
        """Every sub-folder of tree OID as a relative path, parents first (empty folders too)."""
        for name, entry in self.load(oid).items():
            if entry.kind == "dir":
                yield prefix + name
                yield from self.dir_paths(entry.oid, prefix + name + "/")

    def tree_oids(self, oid: str) -> Iterator[str]:
        """OID and every sub-manifest oid below it."""
        yield oid
        for entry in self.load(oid).values():
            if entry.kind == "dir":
                yield from self.tree_oids(entry.oid)

    def lookup(self, oid: str, relpath: str) -> Entry | None:
        """The entry at RELPATH ('a/b.csv') inside tree OID, or None."""
        tree, entry = self.load(oid), None
        for part in relpath.split("/"):
            if tree is None or part not in tree:
                return None
            entry = tree[part]
            tree = self.load(entry.oid) if entry.kind == "dir" else None
        return entry

    def diff(self, old: str | None, new: str | None, prefix: str = "") -> Iterator[tuple[str, str, Entry | None, Entry | None]]:
        """(path, 'added'|'deleted'|'modified', old entry, new entry); equal subtrees are skipped by oid."""
        if old == new:
            return
        a = self.load(old) if old else {}
        b = self.load(new) if new else {}
        for name in sorted(a.keys() | b.keys()):
            yield from self._diff_entry(prefix + name, a.get(name), b.get(name))

    def _diff_entry(self, path, x: Entry | None, y: Entry | None):
        if x == y:
            return
        x_dir = x is not None and x.kind == "dir"
        y_dir = y is not None and y.kind == "dir"
        if x_dir or y_dir:
            yield from self.diff(x.oid if x_dir else None, y.oid if y_dir else None, path + "/")
            if x is not None and not x_dir:
                yield path, "deleted", x, None
            if y is not None and not y_dir:
                yield path, "added", None, y
        elif x is None:
            yield path, "added", None, y
        elif y is None:
            yield path, "deleted", x, None
        elif x.oid != y.oid or x.executable != y.executable:
            yield path, "modified", x, y

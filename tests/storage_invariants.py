"""Independent oracles for the storage promises (SPEC §6), shared by the fault-injection tests.

Deliberately written without Runicorn's own readers: objects are re-hashed with hashlib,
pointers parsed with yaml.safe_load, manifests with json, so a bug in runicorn/storage cannot
hide itself from the checks.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import yaml

TMP_PREFIX = ".rn-tmp-"
HEX = set("0123456789abcdef")
SKIP_DIRS = {".git", ".runicorn"}


def is_oid(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= HEX


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Hasher:
    """sha256 of files, memoised on (dev, inode, size, mtime_ns, ctime_ns): any write or rename changes ctime."""

    def __init__(self):
        self._memo: dict[tuple, str] = {}

    def __call__(self, path: Path | str, st: os.stat_result | None = None) -> str:
        st = st or os.stat(path, follow_symlinks=False)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        digest = self._memo.get(key)
        if digest is None:
            digest = self._memo[key] = sha256_file(path)
        return digest


def check_cache(cache_dir: Path, hasher: Hasher | None = None) -> tuple[set[str], list[str]]:
    """(oids present, temp files). Fails when any file under a final object name has other content."""
    hasher = hasher or Hasher()
    objects = Path(cache_dir) / "objects"
    oids: set[str] = set()
    temps: list[str] = []
    problems: list[str] = []
    if not objects.is_dir():
        return oids, temps
    for fan in os.scandir(objects):
        if not fan.is_dir(follow_symlinks=False):
            (temps if fan.name.startswith(TMP_PREFIX) else problems).append(f"objects/{fan.name}")
            continue
        for entry in os.scandir(fan.path):
            rel = f"objects/{fan.name}/{entry.name}"
            if entry.name.startswith(TMP_PREFIX):
                temps.append(rel)
                continue
            oid = fan.name + entry.name
            if not is_oid(oid) or not entry.is_file(follow_symlinks=False):
                problems.append(f"{rel}: not an object name or not a regular file")
                continue
            actual = hasher(entry.path, entry.stat(follow_symlinks=False))
            if actual != oid:
                problems.append(f"{rel}: content hashes to {actual} (a partial or damaged object under a final name)")
            oids.add(oid)
    assert not problems, "cache invariant broken:\n" + "\n".join(problems)
    return oids, temps


def object_path(cache_dir: Path, oid: str) -> Path:
    return Path(cache_dir) / "objects" / oid[:2] / oid[2:]


def manifest_closure(cache_dir: Path, oid: str) -> tuple[set[str], list[str]]:
    """(every oid a directory manifest names, recursively, incl. itself; missing oids)."""
    seen: set[str] = set()
    missing: list[str] = []
    stack = [oid]
    while stack:
        tree = stack.pop()
        if tree in seen:
            continue
        seen.add(tree)
        path = object_path(cache_dir, tree)
        if not path.is_file():
            missing.append(tree)
            continue
        doc = json.loads(path.read_bytes())
        assert doc.get("runicorn-tree") == 1, f"manifest {tree} has unknown format {doc!r:.200}"
        for row in doc["entries"]:
            assert is_oid(row["oid"]), f"manifest {tree} entry {row!r} has a bad oid"
            if row["kind"] == "dir":
                stack.append(row["oid"])
            else:
                seen.add(row["oid"])
                if not object_path(cache_dir, row["oid"]).is_file():
                    missing.append(row["oid"])
    return seen, missing


def pointer_files(root: Path) -> list[Path]:
    found = []
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        found.extend(Path(top) / f for f in files if f.endswith(".rn"))
    return sorted(found)


def parse_pointer(path: Path) -> dict:
    doc = yaml.safe_load(path.read_bytes())
    assert isinstance(doc, dict), f"{path} is not a YAML mapping"
    assert doc.get("runicorn") == 1 and doc.get("hash") == "sha256", f"{path}: bad header {doc!r}"
    assert doc.get("kind") in ("file", "dir"), f"{path}: bad kind"
    assert is_oid(doc.get("oid")), f"{path}: bad oid"
    assert isinstance(doc.get("size"), int) and doc["size"] >= 0, f"{path}: bad size"
    assert doc.get("path") == path.name[: -len(".rn")], f"{path}: path field {doc.get('path')!r}"
    return doc


def check_pointers(root: Path, cache_dir: Path, present: set[str]) -> dict[str, str]:
    """Every pointer parses and everything it names is in the cache. Returns {relpath: text}."""
    texts: dict[str, str] = {}
    problems = []
    for file in pointer_files(root):
        rel = file.relative_to(root).as_posix()
        doc = parse_pointer(file)
        if doc["oid"] not in present:
            problems.append(f"{rel} names missing object {doc['oid']}")
        elif doc["kind"] == "dir":
            _, missing = manifest_closure(cache_dir, doc["oid"])
            problems.extend(f"{rel}: manifest tree names missing object {m}" for m in missing)
        texts[rel] = file.read_text()
    assert not problems, "pointer invariant broken:\n" + "\n".join(problems)
    return texts


def reachable_from_pointers(cache_dir: Path, pointer_texts: dict[str, str]) -> set[str]:
    oids: set[str] = set()
    for text in pointer_texts.values():
        doc = yaml.safe_load(text)
        oids.add(doc["oid"])
        if doc["kind"] == "dir":
            closure, missing = manifest_closure(cache_dir, doc["oid"])
            assert not missing, missing
            oids |= closure
    return oids


def workspace_state(root: Path, tops: list[str], hasher: Hasher | None = None) -> tuple[dict[str, str], list[str]]:
    """({relpath: sha256} of every regular file under TOPS, [temp files]); symlinks are reported as such."""
    hasher = hasher or Hasher()
    state: dict[str, str] = {}
    temps: list[str] = []
    for top in tops:
        path = Path(root) / top
        if path.is_symlink():
            state[top] = "symlink"
        elif path.is_file():
            state[top] = hasher(path)
        elif path.is_dir():
            for dirpath, _, files in os.walk(path):
                for name in files:
                    full = Path(dirpath) / name
                    rel = full.relative_to(root).as_posix()
                    if name.startswith(TMP_PREFIX):
                        temps.append(rel)
                    elif full.is_symlink():
                        state[rel] = "symlink"
                    else:
                        state[rel] = hasher(full)
    return state, temps


def temp_files_in_workspace(root: Path) -> list[str]:
    found = []
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        found.extend((Path(top) / f).relative_to(root).as_posix() for f in files if f.startswith(TMP_PREFIX))
    return sorted(found)


def assert_old_or_new(current: dict[str, str], before: dict[str, str], intended: dict[str, str]) -> None:
    """Each file is as before or as intended (absent counts as a state)."""
    bad = []
    for rel in sorted(current.keys() | before.keys() | intended.keys()):
        now = current.get(rel)
        if now != before.get(rel) and now != intended.get(rel):
            bad.append(f"{rel}: now {now and now[:12]}, before {before.get(rel, 'absent')[:12]}, "
                       f"intended {intended.get(rel, 'absent')[:12]}")
    assert not bad, "workspace is neither as before nor as intended:\n" + "\n".join(bad[:20])

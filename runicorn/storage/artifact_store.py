"""Artifact files committed to git: one manifest per version, one history file per artifact.

Layout (repo-relative):

    .runicorn/artifacts/.gitattributes          `*/history.yaml merge=union` (branches merge cleanly)
    .runicorn/artifacts/<name>/v<N>.yaml        the manifest of version N (format version 1)
    .runicorn/artifacts/<name>/history.yaml     alias / stage / delete events, one per line

Reading is strict: size-limited, no YAML anchors or aliases (no bombs), every field validated,
every path checked like a pointer's; a bad file is named in one error and nothing is written.
Every content object sits under an `oid` key, so `gc` keeps what any manifest names.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterator

import yaml

from runicorn.errors import ArtifactManifestError, ArtifactNameError
from runicorn.storage import fsutil
from runicorn.storage.hashing import is_oid
from runicorn.storage.safepath import problem_with_relpath

FORMAT_VERSION = 1
DIR = ".runicorn/artifacts"
HISTORY = "history.yaml"
GITATTRIBUTES = "*/history.yaml merge=union\n"
MAX_MANIFEST_BYTES = 256 << 20
MAX_HISTORY_BYTES = 64 << 20
MAX_SIZE = 1 << 62
MAX_TEXT = 4096
HEADER = "# Runicorn artifact version. Commit this file; the content lives in the Runicorn cache and remotes.\n"
HISTORY_HEADER = ("# Runicorn artifact history: alias, stage and delete events, one per line, oldest first.\n"
                  "# Append-only; merged with git's union driver (see .gitattributes).\n")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
VERSION_FILE_RE = re.compile(r"^v([1-9][0-9]{0,8})\.yaml$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
STAGES = ("staging", "production", "archived")
RESERVED_ALIASES = ("latest", "none", *STAGES)
EVENTS = ("alias", "unalias", "stage", "delete", "restore", "purge")


# -- names ---------------------------------------------------------------------------------------
def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or name.endswith(".yaml") or ".." in name:
        raise ArtifactNameError(f"artifact name {name!r} is not valid: use letters, digits, '.', '-' or '_' "
                                "(up to 128, starting with a letter or digit), e.g. resnet50-model")
    return name


def check_type(kind: object) -> str:
    if not isinstance(kind, str) or not TYPE_RE.match(kind):
        raise ArtifactNameError(f"artifact type {kind!r} is not valid: use model, dataset, config, code, custom "
                                "or another word of letters, digits, '-' or '_'")
    return kind


VERSION_LIKE_RE = re.compile(r"^[vV]?[0-9]+$")


def check_alias(alias: object) -> str:
    if isinstance(alias, str) and VERSION_LIKE_RE.match(alias):
        # NAME:3 and NAME:v3 always mean version 3, so such an alias could never be reached
        raise ArtifactNameError(f"alias {alias!r} looks like a version number (NAME:{alias} is read as a "
                                "version, so the alias could never be used); pick a word, e.g. best")
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise ArtifactNameError(f"alias {alias!r} is not valid: use letters, digits, '.', '-' or '_' "
                                "(up to 64, starting with a letter or digit), e.g. best")
    if alias in RESERVED_ALIASES:
        raise ArtifactNameError(f"{alias!r} is reserved (latest is automatic; staging, production and archived "
                                "are stages): use `runicorn artifacts stage` for stages, or another alias name")
    return alias


# -- strict YAML -----------------------------------------------------------------------------------
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def strict_load(data: bytes, where: str) -> Any:
    """Parse YAML with the C parser when present; anchors and aliases (YAML bombs) are refused first."""
    try:
        if b"&" in data or b"*" in data:  # without these bytes there can be no anchor and no alias
            for event in yaml.parse(data, Loader=_Loader):
                if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                    raise ArtifactManifestError(where, "YAML anchors and aliases are not allowed")
        return yaml.load(data, Loader=_Loader)  # noqa: S506 — a safe loader
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ArtifactManifestError(where, f"not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise ArtifactManifestError(where, "nested too deeply") from None


def read_limited(path: Path, limit: int, where: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ArtifactManifestError(where, f"cannot be read ({exc.strerror})") from None
    if len(data) > limit:
        raise ArtifactManifestError(where, f"larger than {limit} bytes")
    return data


# -- manifests -----------------------------------------------------------------------------------
def manifest_rel(name: str, version: int) -> str:
    return f"{DIR}/{name}/v{version}.yaml"


def history_rel(name: str) -> str:
    return f"{DIR}/{name}/{HISTORY}"


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's escapes are YAML's): no value is ever read as a number."""
    return json.dumps(text, ensure_ascii=False)


def encode_manifest(doc: dict) -> bytes:
    """Canonical text: header, scalar fields, then one line per file, reference and input."""
    head = {k: doc[k] for k in ("runicorn", "name", "version", "type", "description", "created_at", "created_by",
                                "digest", "size", "deleted", "metadata", "tags") if k in doc}
    text = HEADER + yaml.safe_dump(head, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
    lines = [text, "files:" + ("\n" if doc["files"] else " []\n")]
    lines += [f"- {{path: {_q(f['path'])}, oid: {_q(f['oid'])}, size: {f['size']}}}\n" for f in doc["files"]]
    lines.append("references:" + ("\n" if doc["references"] else " []\n"))
    for r in doc["references"]:
        lines.append("- " + _flow(r))
    lines.append("inputs:" + ("\n" if doc["inputs"] else " []\n"))
    for i in doc["inputs"]:
        lines.append("- " + _flow(i))
    return "".join(lines).encode()


def _flow(item: dict) -> str:
    parts = [f"{k}: {_q(v) if isinstance(v, str) else json.dumps(v)}" for k, v in item.items()]
    return "{" + ", ".join(parts) + "}\n"


def _fail(where: str, why: str):
    raise ArtifactManifestError(where, why)


def _text(value: object, where: str, field: str, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT * 4 or any(ord(c) < 32 and c not in "\n\t" for c in value):
        _fail(where, f"{field} must be text without control characters")
    return value


def _size(value: object, where: str, field: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_SIZE:
        _fail(where, f"{field} {value!r} is not a plausible byte count")
    return value


def _json_safe(value: object, where: str, field: str, depth: int = 0) -> object:
    if depth > 32:
        _fail(where, f"{field} is nested too deeply")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                _fail(where, f"{field} keys must be text")
            _json_safe(v, where, field, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _json_safe(v, where, field, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        return value
    elif not (value is None or isinstance(value, (str, int, float, bool))):
        _fail(where, f"{field} holds a {type(value).__name__}, which is not JSON data")
    return value


def parse_manifest(data: bytes, where: str, name: str | None = None, version: int | None = None) -> dict:
    """Validate manifest bytes; NAME and VERSION (from the file's location) must match its fields."""
    if len(data) > MAX_MANIFEST_BYTES:
        _fail(where, f"larger than {MAX_MANIFEST_BYTES} bytes")
    if data.startswith(b"<<<<<<< ") or b"\n<<<<<<< " in data:
        _fail(where, "has unresolved git conflict markers (two clones logged the same version number): keep one "
                     f"side with `git checkout --theirs {where}` (or --ours), commit, and log the other again")
    doc = strict_load(data, where)
    if not isinstance(doc, dict):
        _fail(where, "not a YAML mapping")
    if doc.get("runicorn") != FORMAT_VERSION or type(doc.get("runicorn")) is not int:
        _fail(where, f"unknown format version {doc.get('runicorn')!r} (this Runicorn reads version {FORMAT_VERSION})")
    if not isinstance(doc.get("name"), str) or not NAME_RE.match(doc["name"]) or (name and doc["name"] != name):
        _fail(where, f"name {doc.get('name')!r} is not valid or does not match its folder")
    if type(doc.get("version")) is not int or not 0 < doc["version"] < 10**9 or (version and doc["version"] != version):
        _fail(where, f"version {doc.get('version')!r} is not valid or does not match the file name")
    if not isinstance(doc.get("type"), str) or not TYPE_RE.match(doc["type"]):
        _fail(where, f"type {doc.get('type')!r} is not valid")
    if not isinstance(doc.get("digest"), str) or not DIGEST_RE.match(doc["digest"]):
        _fail(where, "digest must be sha256:<64 hex digits>")
    for key in ("description", "created_at"):
        _text(doc.get(key), where, key)
    doc["size"] = _size(doc.get("size", 0), where, "size")
    if not isinstance(doc.get("deleted", False), bool):
        _fail(where, "deleted must be true or false")
    for key, kind in (("created_by", dict), ("metadata", dict), ("tags", list), ("files", list),
                      ("references", list), ("inputs", list)):
        doc.setdefault(key, kind())
        if not isinstance(doc[key], kind):
            _fail(where, f"{key} must be a {'mapping' if kind is dict else 'list'}")
    _json_safe(doc["metadata"], where, "metadata")
    for key, value in doc["created_by"].items():
        _text(value, where, f"created_by.{key}")
    for tag in doc["tags"]:
        _text(tag, where, "a tag", optional=False)
    _check_files(doc["files"], where)
    for r in doc["references"]:
        check_reference_fields(r, where)
    for i in doc["inputs"]:
        _check_input(i, where)
    return doc


def _check_files(files: list, where: str) -> None:
    seen: set[str] = set()
    for f in files:
        if not isinstance(f, dict):
            _fail(where, "every file must be a mapping with path, oid and size")
        why = problem_with_relpath(f.get("path"))
        if why:
            _fail(where, f"file path {f.get('path')!r} {why}")
        if f["path"] in seen:
            _fail(where, f"file path {f['path']!r} appears twice")
        seen.add(f["path"])
        if not is_oid(f.get("oid")):
            _fail(where, f"file {f['path']!r} has no valid oid (a 64-digit sha256)")
        _size(f.get("size"), where, f"size of {f['path']!r}")
    for path in seen:  # a file may not also be a folder of another file
        parent = path.rsplit("/", 1)[0] if "/" in path else None
        while parent:
            if parent in seen:
                _fail(where, f"{parent!r} is both a file and a folder")
            parent = parent.rsplit("/", 1)[0] if "/" in parent else None


def check_reference_fields(r: object, where: str) -> None:
    if not isinstance(r, dict):
        _fail(where, "every reference must be a mapping with uri, checksum and size")
    uri = r.get("uri")
    if not isinstance(uri, str) or not uri or len(uri) > MAX_TEXT or any(ord(c) < 32 for c in uri):
        _fail(where, f"reference uri {uri!r} is not valid")
    _text(r.get("checksum"), where, "reference checksum")
    if r.get("size") is not None:
        _size(r.get("size"), where, "reference size")
    why = problem_with_relpath(r.get("name"))
    if why:
        _fail(where, f"reference name {r.get('name')!r} {why}")


def _check_input(i: object, where: str) -> None:
    if not isinstance(i, dict):
        _fail(where, "every input must be a mapping")
    if "artifact" in i:
        if not isinstance(i["artifact"], str) or not NAME_RE.match(i["artifact"]) or type(i.get("version")) is not int:
            _fail(where, f"input {i!r} needs a valid artifact name and version")
    elif "data" in i:
        if problem_with_relpath(i["data"]) or not is_oid(i.get("oid")):
            _fail(where, f"data input {i.get('data')!r} needs a safe path and an oid")
    else:
        _fail(where, "an input names either an artifact or tracked data")


# -- history ---------------------------------------------------------------------------------------
def encode_event(event: dict) -> bytes:
    return ("- " + _flow(event)).encode()


def parse_history(data: bytes, where: str) -> list[dict]:
    if len(data) > MAX_HISTORY_BYTES:
        _fail(where, f"larger than {MAX_HISTORY_BYTES} bytes")
    doc = strict_load(data, where)
    if doc is None:
        return []
    if not isinstance(doc, list):
        _fail(where, "not a YAML list of events")
    for e in doc:
        if not isinstance(e, dict) or e.get("event") not in EVENTS:
            _fail(where, f"event {e!r} is not one of {', '.join(EVENTS)}")
        if type(e.get("version")) is not int or e["version"] < 1:
            _fail(where, f"event {e!r} has no valid version")
        if not isinstance(e.get("at"), str):
            _fail(where, f"event {e!r} has no time (at)")
        for key in ("alias", "stage", "by", "run", "commit", "from"):
            _text(e.get(key), where, f"event {key}")
        if e.get("previous") is not None and type(e["previous"]) is not int:
            _fail(where, f"event {e!r} has an invalid previous version")
    return doc


def append_event(root: Path, name: str, event: dict) -> str:
    """Append one event line to NAME's history (atomic replace of the file); returns its repo path."""
    rel = history_rel(name)
    path = root / rel
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = HISTORY_HEADER.encode()
    fsutil.atomic_write(path, old + encode_event(event))
    return rel


# -- the folder ------------------------------------------------------------------------------------
def ensure_dir(root: Path, name: str) -> list[str]:
    """Create `.runicorn/artifacts/<name>/` and the union-merge `.gitattributes`; returns new git paths."""
    base = root / DIR
    (base / name).mkdir(parents=True, exist_ok=True)
    attrs = base / ".gitattributes"
    if not attrs.exists():
        fsutil.atomic_write(attrs, GITATTRIBUTES.encode())
        return [f"{DIR}/.gitattributes"]
    return []


def artifact_names(root: Path) -> list[str]:
    base = root / DIR
    if not base.is_dir():
        return []
    return sorted(e.name for e in os.scandir(base) if e.is_dir(follow_symlinks=False) and NAME_RE.match(e.name))


def version_files(root: Path, name: str) -> dict[int, Path]:
    folder = root / DIR / name
    out: dict[int, Path] = {}
    if folder.is_dir():
        for e in os.scandir(folder):
            m = VERSION_FILE_RE.match(e.name)
            if m and e.is_file(follow_symlinks=False):
                out[int(m.group(1))] = Path(e.path)
    return out


def fingerprints(root: Path, names: list[str] | None = None) -> Iterator[tuple[str, str]]:
    """(artifact name, stat fingerprint of its folder's files) for every artifact folder (or NAMES):
    a changed fingerprint means re-read it. Every file is stat'ed, so an edit in place is seen too."""
    base = root / DIR
    if names is not None:
        folders = [(n, str(base / n)) for n in names if (base / n).is_dir()]
    elif base.is_dir():
        with os.scandir(base) as it:
            folders = [(e.name, e.path) for e in it if e.is_dir(follow_symlinks=False)]
    else:
        return
    for name, path in folders:
        parts = []
        with os.scandir(path) as it:
            for e in it:
                if e.name.startswith("."):  # a writer's temporary file: here now, renamed a moment later
                    continue
                try:
                    st = os.stat(e.path, follow_symlinks=False)
                except FileNotFoundError:  # removed (a permanent delete) while we looked
                    continue
                parts.append(f"{e.name}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
        yield name, "|".join(sorted(parts))

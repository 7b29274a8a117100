"""Artifacts: named, versioned bundles of files and references, with manifests committed to git.

`Artifact` is the SDK builder; `log_artifact` stores its files in the repository's
content-addressed cache (identical content is stored once) and writes
`.runicorn/artifacts/<name>/v<N>.yaml`; `use_artifact` resolves `name`, `name:latest`, `name:v3`,
`name:<alias>` or `name:<stage>` to a handle that downloads, verifies and describes the version.
The read API (`list_artifacts`, `list_versions`, `artifact_info`, `artifact_stats`,
`artifact_diff`, `lineage`, `rebuild_index`) returns plain JSON-able dicts for the CLI and viewer.
"""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Iterable

from runicorn.core import artifact_index as aindex
from runicorn.core.artifact_read import (artifact_diff, artifact_info, artifact_stats, list_artifacts,  # noqa: F401
                                         list_versions, load_manifest, registry_at, resolve)
from runicorn.core.artifact_cache import ArtifactCache  # noqa: F401
from runicorn.core.artifact_lineage import lineage  # noqa: F401
from runicorn.core.artifact_transfer import push_artifacts  # noqa: F401
from runicorn.core.artifact_use import ArtifactHandle, use_artifact  # noqa: F401
from runicorn.core.artifact_write import (Version, delete_version, log_artifact, restore_version,  # noqa: F401
                                          set_alias, set_stage, remove_alias)
from runicorn.errors import ArtifactNameError, RunicornError
from runicorn.storage import artifact_store as store
from runicorn.storage.safepath import problem_with_relpath

TYPES = ("model", "dataset", "config", "code", "custom")


class ArtifactSourceError(RunicornError, FileNotFoundError):
    """A file or folder given to add_file / add_dir does not exist (also a FileNotFoundError)."""

    def __init__(self, path, what: str = "file"):
        RunicornError.__init__(self, f"{what} {path} does not exist; check the path (relative paths are "
                                     f"relative to {os.getcwd()})")


class Artifact:
    """A version in the making: files, folders, references, metadata and tags.

    Nothing is hashed or copied until `run.log_artifact(artifact)` (or `log_artifact(repo, …)`).
    """

    def __init__(self, name: str, type: str = "custom", description: str | None = None,
                 metadata: dict | None = None):
        self.name = store.check_name(name)
        self.type = store.check_type(type)
        if description is not None and not isinstance(description, str):
            raise ArtifactNameError("description must be text")
        self.description = description
        self.metadata: dict = {}
        self.tags: list[str] = []
        self.entries: dict[str, Path] = {}  # name inside the artifact -> absolute source file
        self.references: list[dict] = []
        self.version: int | None = None  # set by log_artifact
        if metadata:
            self.add_metadata(metadata)

    def add_file(self, local_path: str | os.PathLike, name: str | None = None) -> str:
        source = Path(local_path).absolute()
        if not source.is_file():
            raise ArtifactSourceError(local_path)
        dest = _entry_name(name if name is not None else source.name)
        self.entries[dest] = source
        return dest

    def add_dir(self, local_path: str | os.PathLike, name: str | None = None,
                exclude_patterns: Iterable[str] | None = None) -> int:
        """Every regular file under LOCAL_PATH (symlinks are not followed), under NAME/ if given."""
        root = Path(local_path).absolute()
        if not root.is_dir():
            raise ArtifactSourceError(local_path, "folder")
        prefix = _entry_name(name) + "/" if name else ""
        patterns = list(exclude_patterns or [])
        added = 0
        for top, dirs, files in os.walk(root):
            rel_top = os.path.relpath(top, root)
            base = "" if rel_top == "." else rel_top.replace(os.sep, "/") + "/"
            dirs[:] = sorted(d for d in dirs if not _excluded(base + d, d, patterns) and d not in (".git", ".runicorn"))
            for f in sorted(files):
                path = os.path.join(top, f)
                if _excluded(base + f, f, patterns) or os.path.islink(path) or not os.path.isfile(path):
                    continue
                if f.startswith(".rn-tmp-") or problem_with_relpath(base + f):
                    continue
                self.entries[prefix + base + f] = Path(path)
                added += 1
        return added

    def add_reference(self, uri: str, checksum: str | bool | None = None, size: int | None = None,
                      name: str | None = None) -> dict:
        """Record external data by URI (not copied). A local file's checksum and size are computed
        when not given (checksum=True asks for it explicitly)."""
        from runicorn.storage.artifact_refs import describe_local

        if not isinstance(uri, str) or not uri:
            raise ArtifactNameError("a reference needs a URI, e.g. s3://bucket/path or file:///data/x")
        ref = {"name": _entry_name(name or uri.rstrip("/").rsplit("/", 1)[-1] or "reference"), "uri": uri,
               "checksum": checksum if isinstance(checksum, str) else None, "size": size}
        if checksum in (True, None) or size is None:
            local = describe_local(uri)
            if local is not None:
                ref["checksum"] = ref["checksum"] or local[0]
                ref["size"] = size if size is not None else local[1]
        if ref["size"] is not None and (type(ref["size"]) is not int or not 0 <= ref["size"] <= store.MAX_SIZE):
            raise ArtifactNameError(f"reference size {size!r} is not a byte count")
        store.check_reference_fields(ref, f"reference {uri}")
        self.references = [r for r in self.references if r["name"] != ref["name"]] + [ref]
        return ref

    def add_metadata(self, metadata: dict) -> None:
        if not isinstance(metadata, dict):
            raise ArtifactNameError("metadata must be a dict of JSON data")
        self.metadata.update(_jsonable(metadata, "metadata"))

    def add_tags(self, *tags: str) -> None:
        for tag in tags:
            if not isinstance(tag, str) or not tag or len(tag) > 128 or not tag.isprintable():
                raise ArtifactNameError(f"tag {tag!r} is not valid: use printable text up to 128 characters")
            if tag not in self.tags:
                self.tags.append(tag)

    # -- after logging: the same reads as the handle use_artifact returns ----------------------------
    def _handle(self) -> ArtifactHandle:
        if self.version is None or getattr(self, "_repo", None) is None:
            raise ArtifactNameError(f"{self.name} has not been logged yet; call run.log_artifact(artifact) first")
        return ArtifactHandle(self._repo, load_manifest(self._repo, self.name, int(self.version)))

    def download(self, target_dir=None, remote: str | None = None, *, root=None):
        return self._handle().download(target_dir, remote, root=root)

    def get_path(self, name: str):
        return self._handle().get_path(name)

    def verify(self, raise_error: bool = False) -> bool:
        return self._handle().verify(raise_error)

    def get_metadata(self):
        return self._handle().get_metadata()

    def get_manifest(self):
        return self._handle().get_manifest()

    def __repr__(self) -> str:
        return f"Artifact({self.name!r}, type={self.type!r}, files={len(self.entries)}, references={len(self.references)})"


def _jsonable(value, where: str, depth: int = 0):
    """VALUE as plain JSON data (numpy / torch scalars become numbers); anything else is refused."""
    if depth > 32:
        raise ArtifactNameError(f"{where} is nested too deeply")
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ArtifactNameError(f"{where} keys must be text, not {type(k).__name__}")
            out[k] = _jsonable(v, f"{where}.{k}", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where, depth + 1) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _jsonable(value.item(), where, depth + 1)
    raise ArtifactNameError(f"{where} holds a {type(value).__name__}, which is not JSON data; "
                            "store numbers, text, lists or dicts")


def _entry_name(name: str) -> str:
    name = str(name).replace(os.sep, "/").strip("/")
    why = problem_with_relpath(name)
    if why:
        raise ArtifactNameError(f"file name {name!r} inside the artifact {why}; use a plain relative name")
    return name


def _excluded(rel: str, base: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(base, p) for p in patterns)


def rebuild_index(repo) -> dict:
    """The artifacts part of `runicorn index rebuild`: manifests, history and used-by edges from runs."""
    return aindex.rebuild(repo, aindex.run_documents(repo))


__all__ = ["Artifact", "ArtifactHandle", "ArtifactCache", "Version", "TYPES", "log_artifact", "use_artifact", "list_artifacts",
           "list_versions", "artifact_info", "artifact_stats", "artifact_diff", "lineage", "rebuild_index",
           "resolve", "load_manifest", "registry_at", "push_artifacts", "set_alias", "remove_alias", "set_stage", "delete_version",
           "restore_version"]

"""`use_artifact`: resolve a reference, record lineage, hand back a version to download and inspect."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runicorn.core import artifact_index as aindex
from runicorn.core.artifact_cache import DownloadCache, default_dir
from runicorn.core.artifact_cache import download as download_version
from runicorn.core.artifact_read import known_refs, list_versions, load_manifest, open_repo, resolve, split_ref
from runicorn.core.events import NULL, Reporter
from runicorn.errors import (ArtifactNameError, ArtifactNotFoundError, ArtifactVerifyError, NotAGitRepoError,
                             NotARunicornRepoError, UsageError)
from runicorn.storage.artifact_refs import measure, verifiable


@dataclass
class ManifestFile:
    path: str
    size: int
    oid: str


@dataclass
class ArtifactManifest:
    total_files: int
    total_size: int
    files: list[ManifestFile]
    references: list[dict]


@dataclass
class ArtifactMetadata:
    name: str
    version: int
    type: str
    description: str | None
    metadata: dict
    tags: list[str]
    created_at: str | None
    created_by: dict
    size_bytes: int
    digest: str
    aliases: list[str] = field(default_factory=list)
    stage: str = "none"


class ArtifactHandle:
    """One resolved version (what `run.use_artifact(...)` returns)."""

    def __init__(self, repo, doc: dict):
        self.repo = repo
        self._doc = doc
        self.name, self.version, self.type = doc["name"], doc["version"], doc["type"]
        self.digest = doc["digest"]
        self.metadata = doc["metadata"]
        self._downloaded: Path | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}:v{self.version}"

    def download(self, target_dir=None, remote: str | None = None, reporter: Reporter = NULL, *, root=None) -> Path:
        """The version's files in a folder: TARGET_DIR (ROOT is the seed's name for it), or a folder in
        the download cache."""
        target_dir = same_folder(target_dir, root)
        path = download_version(self.repo, self._doc, target_dir, remote, reporter)
        if target_dir is None:
            self._downloaded = path
        return path

    def get_path(self, name: str) -> Path:
        """Local path of one file of the version (downloads the version first when needed)."""
        paths = {f["path"] for f in self._doc["files"]}
        if name not in paths:
            raise ArtifactNotFoundError(f"file {name!r} in {self.ref}", sorted(paths),
                                        f"see `runicorn artifacts info {self.ref}`")
        if self._downloaded is None:
            self.download()
        return self._downloaded / name

    def verify(self, raise_error: bool = False) -> bool:
        """Re-hash every cached file and measure every verifiable reference; True when all match."""
        report = verify_version(self.repo, self._doc)
        self.last_verify = report
        if raise_error and not report["ok"]:
            raise ArtifactVerifyError(self.ref, report["problems"])
        return report["ok"]

    def get_metadata(self) -> ArtifactMetadata:
        rows = list_versions(self.repo, self.name) if self.repo is not None else []
        row = next((v for v in rows if v["version"] == self.version), {})
        d = self._doc
        return ArtifactMetadata(d["name"], d["version"], d["type"], d.get("description"), d["metadata"], d["tags"],
                                d.get("created_at"), d.get("created_by") or {}, d["size"], d["digest"],
                                row.get("aliases", []), row.get("stage", "none"))

    def get_manifest(self) -> ArtifactManifest:
        files = [ManifestFile(f["path"], f["size"], f["oid"]) for f in self._doc["files"]]
        return ArtifactManifest(len(files), sum(f.size for f in files), files, [dict(r) for r in self._doc["references"]])

    def __repr__(self) -> str:
        return f"<ArtifactHandle {self.ref} ({self.type})>"


def same_folder(target_dir, root):
    """download(target_dir=...) or the seed's download(root=...): one folder, named either way."""
    if root is not None and target_dir is not None and Path(root) != Path(target_dir):
        raise UsageError(f"download got target_dir={str(target_dir)!r} and root={str(root)!r}; give one of them")
    return target_dir if target_dir is not None else root


def compose_ref(ref: str, version=None, alias: str | None = None) -> str:
    """The seed's keyword forms as one reference: (name, version=3 / "v3" / "latest") or (name, alias="best")."""
    if version is None and alias is None:
        return ref
    if version is not None and alias is not None:
        raise UsageError(f"use_artifact({ref!r}) got both version={version!r} and alias={alias!r}; give one of them")
    if isinstance(ref, str) and ":" in ref:
        raise UsageError(f"use_artifact({ref!r}) already names a version; drop version= / alias=, or pass the bare name")
    spec = alias if alias is not None else (f"v{version}" if type(version) is int else str(version))
    return f"{ref}:{spec}"


def use_artifact(repo, ref: str, run=None, *, version=None, alias: str | None = None,
                 type: str | None = None) -> ArtifactHandle:
    """Resolve REF (name, name:latest, name:vN, name:<alias>, name:<stage>; or a bare name with the
    seed's VERSION= / ALIAS=); TYPE, when given, must be the version's type. With RUN, record that
    the run used it (lineage edge and the run's own record)."""
    return _use(repo, compose_ref(ref, version, alias), run, type)


def _use(repo, ref: str, run, kind: str | None) -> ArtifactHandle:
    try:
        repo = open_repo(repo if repo is not None else getattr(run, "repo", None))
    except (NotARunicornRepoError, NotAGitRepoError):
        if repo is not None:
            raise
        return _from_download_cache(ref, run, kind)
    name, version = resolve(repo, ref)
    doc = load_manifest(repo, name, version)
    _check_type(doc, kind)
    run_id = getattr(run, "id", None) if run is not None else None
    if run_id:
        produced_here = (doc.get("created_by") or {}).get("run") == run_id
        if not produced_here:  # a run's own output is not its input: the graph stays acyclic
            aindex.add_use_edge(repo, name, version, run_id)
        if hasattr(run, "note_artifact_used"):
            run.note_artifact_used(name, version, doc["digest"])
    return ArtifactHandle(repo, doc)


def _from_download_cache(ref: str, run, kind: str | None) -> ArtifactHandle:
    """Outside any repository: a version downloaded on this machine before (the inference-service case)."""
    name, spec = split_ref(ref)
    doc = DownloadCache(default_dir()).find(name, spec)
    _check_type(doc, kind)
    if run is not None and hasattr(run, "note_artifact_used"):
        run.note_artifact_used(doc["name"], doc["version"], doc["digest"])
    return ArtifactHandle(None, doc)


def _check_type(doc: dict, kind: str | None) -> None:
    """Checked before the use is recorded: a wrong type records nothing."""
    if kind is not None and doc["type"] != kind:
        raise ArtifactNameError(f"{doc['name']}:v{doc['version']} is of type {doc['type']!r}, not {kind!r}; "
                                "drop type= or name the artifact you meant")


def verify_version(repo, doc: dict) -> dict:
    """Files: each object re-hashed (repository cache). References: re-measured when the checksum is
    a full sha256 and the data is reachable. Read-only."""
    problems, checked, unverifiable = [], 0, []
    odb = repo.odb if repo is not None else DownloadCache(default_dir()).odb
    for f in doc["files"]:
        checked += 1
        if not odb.exists(f["oid"]):
            problems.append(f"{f['path']}: object {f['oid'][:12]} missing from the cache")
        elif odb.rehash(f["oid"]) != f["oid"]:
            problems.append(f"{f['path']}: cached content does not match {f['oid'][:12]}")
    for r in doc["references"]:
        if not verifiable(r.get("checksum")):
            unverifiable.append(r["name"])
            continue
        checked += 1
        try:
            checksum, size = measure(r["uri"])
        except (OSError, ImportError, ValueError) as exc:
            problems.append(f"reference {r['name']} ({r['uri']}): cannot be read ({type(exc).__name__})")
            continue
        if checksum != r["checksum"]:
            problems.append(f"reference {r['name']} ({r['uri']}): checksum {checksum[:19]}… does not match "
                            f"{r['checksum'][:19]}…")
        elif r.get("size") is not None and size != r["size"]:
            problems.append(f"reference {r['name']} ({r['uri']}): size {size} does not match {r['size']}")
    return {"ref": f"{doc['name']}:v{doc['version']}", "ok": not problems, "checked": checked,
            "problems": problems, "unverifiable": unverifiable}


def verify(repo, ref: str) -> dict:
    repo = open_repo(repo)
    name, version = resolve(repo, ref, include_deleted=True)
    return verify_version(repo, load_manifest(repo, name, version))


__all__ = ["ArtifactHandle", "use_artifact", "verify", "verify_version", "known_refs"]

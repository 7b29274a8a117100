"""Sharing finished runs through a remote: `push --runs`, `pull --runs` / `fetch --runs`.

On the remote a run is `runs/<run_id>.json`, a small record naming objects by oid: its document
(`run.json`), metrics log, logs, plus the objects the document references (the diff, run files).
Everything a record names is stored under `objects/` and re-hashed when it is downloaded, so a
pulled run is byte-for-byte what was pushed. Records are written after their objects, and
finished runs are immutable: a record already on the remote is never rewritten.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from runicorn.core import runs as runs_mod
from runicorn.core.remotes import open_remote
from runicorn.core.repo import Repo
from runicorn.errors import RemoteError, RunicornError
from runicorn.storage import fsutil
from runicorn.storage.hashing import is_oid

RECORD_VERSION = 1
RECORD_FILES = (runs_mod.DOC, runs_mod.METRICS, runs_mod.LOGS)
MAX_RECORD_BYTES = 1 << 20


@dataclass
class RunsTransfer:
    remote: str
    transferred: list[str] = field(default_factory=list)
    already: int = 0
    skipped: list[str] = field(default_factory=list)  # running runs (not shared until finished)
    failed: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"remote": self.remote, "transferred": self.transferred, "already": self.already,
                "skipped": self.skipped, "failed": self.failed}


def referenced_oids(doc: dict) -> set[str]:
    """Objects a run document names: its diff and its run files (gc keeps these)."""
    oids = set()
    diff = ((doc.get("git") or {}).get("diff") or {}).get("oid")
    if diff:
        oids.add(diff)
    for f in doc.get("files") or []:
        if isinstance(f, dict) and f.get("oid"):
            oids.add(f["oid"])
    return {o for o in oids if isinstance(o, str) and is_oid(o)}


def _runs_dir(store) -> str:
    return f"{store.root}/runs"


def _remote_ids(store) -> set[str]:
    try:
        names = store.retry("listing runs", store.fs.ls, _runs_dir(store), False)
    except FileNotFoundError:
        return set()
    ids = set()
    for name in names:
        base = str(name).rstrip("/").rsplit("/", 1)[-1]
        if base.endswith(".json") and runs_mod.RUN_ID.match(base[:-5]):
            ids.add(base[:-5])
    return ids


def _write_remote(store, path: str, data: bytes) -> None:
    if store.loc.scheme == "local":
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fsutil.atomic_write(Path(path), data)
        return
    store.retry("writing a run record", store.fs.pipe_file, path, data)


def push_runs(repo: Repo, remote: str | None = None, jobs: int = 0) -> RunsTransfer:
    """Upload every finished run the remote does not have (objects first, then its record)."""
    store = open_remote(repo, remote, jobs)
    runs = runs_mod.store_of(repo)
    result = RunsTransfer(store.name)
    there = _remote_ids(store)
    for run_id in runs.run_ids():
        if run_id in there:
            result.already += 1
            continue
        try:
            doc = runs_mod.refresh(runs, run_id)
        except RunicornError as exc:
            result.failed[run_id] = exc.message
            continue
        if doc.get("status") not in runs_mod.FINAL:
            result.skipped.append(run_id)
            continue
        folder = runs.run_dir(run_id)
        record = {"runicorn_run_record": RECORD_VERSION, "id": run_id, "files": {}, "objects": []}
        for name in RECORD_FILES:
            if (folder / name).is_file():
                record["files"][name], _ = repo.odb.copy_in(folder / name)
        missing = [o for o in referenced_oids(doc) if not repo.odb.exists(o)]
        record["objects"] = sorted(referenced_oids(doc) - set(missing))
        if missing:
            record["missing"] = sorted(missing)
        for oid in sorted({*record["files"].values(), *record["objects"]}):
            if not store.exists(oid):
                repo.guard.check(oid)
                store.upload(repo.odb, oid)
        data = json.dumps(record, indent=1, sort_keys=True).encode()
        _write_remote(store, f"{_runs_dir(store)}/{run_id}.json", data)
        result.transferred.append(run_id)
    return result


def pull_runs(repo: Repo, remote: str | None = None, jobs: int = 0) -> RunsTransfer:
    """Download every shared run not yet here; each object is re-hashed; then index it."""
    store = open_remote(repo, remote, jobs)
    runs = runs_mod.store_of(repo)
    result = RunsTransfer(store.name)
    local = set(runs.run_ids())
    repo.odb.prepare()
    for run_id in sorted(_remote_ids(store)):
        if run_id in local:
            result.already += 1
            continue
        try:
            _pull_one(repo, store, runs, run_id)
            result.transferred.append(run_id)
        except (RunicornError, OSError, ValueError) as exc:
            result.failed[run_id] = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    return result


def _read_record(store, run_id: str) -> dict:
    raw = store.retry("reading a run record", store.fs.cat_file, f"{_runs_dir(store)}/{run_id}.json")
    if len(raw) > MAX_RECORD_BYTES:
        raise RemoteError(f"run record {run_id} on remote {store.name!r} is too large; it is not a Runicorn record")
    record = json.loads(raw)
    files = record.get("files") if isinstance(record, dict) else None
    if (not isinstance(files, dict) or record.get("id") != run_id or runs_mod.DOC not in files
            or not set(files) <= set(RECORD_FILES)
            or not all(isinstance(o, str) and is_oid(o) for o in [*files.values(), *record.get("objects", [])])):
        raise RemoteError(f"run record {run_id} on remote {store.name!r} is malformed; push it again from its origin")
    return record


def _pull_one(repo: Repo, store, runs: runs_mod.RunStore, run_id: str) -> None:
    record = _read_record(store, run_id)
    new = []
    for oid in sorted({*record["files"].values(), *record.get("objects", [])}):
        if repo.odb.exists(oid):
            continue
        try:
            actual, stored = store.download(repo.odb, oid)
        except FileNotFoundError:
            raise RemoteError(f"object {oid[:12]} of run {run_id} is missing on remote {store.name!r}; "
                              "push the run again from its origin") from None
        if actual != oid:
            raise RemoteError(f"object {oid[:12]} of run {run_id} is corrupt on remote {store.name!r} "
                              "(its content does not match its name); nothing was stored")
        if stored:
            new.append(repo.odb.path(oid))
    fsutil.make_durable(new, repo.cache_dir)
    runs.runs_dir.mkdir(parents=True, exist_ok=True)
    staging = fsutil.tmp_name(runs.runs_dir / run_id)
    staging.mkdir()
    try:
        for name, oid in record["files"].items():
            shutil.copyfile(repo.odb.path(oid), staging / name)
            os.chmod(staging / name, 0o644)
        doc = runs_mod.read_doc_at(staging / runs_mod.DOC, run_id)
        if doc.get("status") not in runs_mod.FINAL:
            raise RemoteError(f"run {run_id} on remote {store.name!r} is not finished; only finished runs are shared")
        os.replace(staging, runs.runs_dir / run_id)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    folder = runs.runs_dir / run_id
    runs_mod.replay_metrics(runs.index, folder, doc)
    runs.index.keep_previews(run_id)

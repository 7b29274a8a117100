"""Runs: where they live, their documents, crash detection, and the read API (CLI and viewer).

Source of truth: `.runicorn/runs/<run_id>/` — `run.json` (the run document, replaced atomically),
`metrics.jsonl` (append-only), `output.log` (tee'd stdout/stderr), `heartbeat`. The SQLite index is
derived from those folders and rebuilt by `rebuild_index`. Outside a Runicorn repository runs go to a
user-level store with the same layout (`user_store()`).
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock, Timeout

from runicorn.core.repo import Repo
from runicorn.errors import RunNotFoundError, RunicornError, UsageError
from runicorn.storage.fsutil import atomic_write
from runicorn.storage.hashing import is_oid
from runicorn.storage.index import BUSY_TIMEOUT_S, Index
from runicorn.storage.odb import ObjectDB
from runicorn.storage.runstore import SORTABLE, RunIndex

FORMAT_VERSION = 1
DOC = "run.json"
METRICS = "metrics.jsonl"
LOGS = "output.log"
HEARTBEAT = "heartbeat"
FINAL = ("finished", "failed", "crashed")
STATUSES = ("running", *FINAL)
HEARTBEAT_EVERY_S = 5.0
STALE_AFTER_S = 120.0  # a run from another host whose heartbeat is older than this has crashed
RUN_ID = re.compile(r"^[0-9]{8}_[0-9]{6}_[a-z0-9]{6}$")
MAX_DOC_BYTES = 64 << 20


@dataclass
class RunStore:
    """Where runs live: a repository's `.runicorn/`, or the user-level store (repo None)."""

    runs_dir: Path
    odb: ObjectDB
    index_path: Path
    repo: Repo | None = None

    @cached_property
    def index(self) -> RunIndex:
        db = self.repo.index if self.repo is not None else Index(self.index_path)
        return RunIndex(db)

    def run_dir(self, run_id: str) -> Path:
        check_run_id(run_id)
        return self.runs_dir / run_id

    def run_ids(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(e.name for e in os.scandir(self.runs_dir) if RUN_ID.match(e.name) and e.is_dir())


def user_store_dir() -> Path:
    """`$RUNICORN_HOME`, else `$XDG_DATA_HOME/runicorn`, else `~/.local/share/runicorn`."""
    home = os.environ.get("RUNICORN_HOME")
    if home:
        return Path(home)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "runicorn"


def user_store() -> RunStore:
    base = user_store_dir()
    return RunStore(base / "runs", ObjectDB(base / "cache"), base / "index.db", None)


def store_of(where: Repo | RunStore | None) -> RunStore:
    """The run store of a repository (None: the user-level store)."""
    if isinstance(where, RunStore):
        return where
    if where is None:
        return user_store()
    return RunStore(where.dir / "runs", where.odb, where.dir / "index.db", where)


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise UsageError(f"{run_id!r} is not a run id (like 20250930_164512_ghi789); see `runicorn runs list`")
    return run_id


# -- documents -----------------------------------------------------------------------------
def read_doc(folder: Path) -> dict:
    return read_doc_at(folder / DOC, folder.name)


def read_doc_at(path: Path, run_id: str) -> dict:
    """The run document at PATH, checked: valid JSON, an object, for RUN_ID."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_DOC_BYTES + 1)
    except FileNotFoundError:
        raise RunNotFoundError(run_id) from None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RunicornError(f"{path} is not a valid run document ({exc}); delete the run folder or restore it") from None
    if not isinstance(doc, dict) or doc.get("id") != run_id or len(raw) > MAX_DOC_BYTES:
        raise RunicornError(f"{path} is not a run document for {run_id}; delete the run folder or restore it")
    return doc


def write_doc(folder: Path, doc: dict) -> None:
    atomic_write(folder / DOC, (json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n").encode())


def pid_start_time(pid: int) -> str | None:
    """The kernel's start time of PID (guards against pid reuse); None when it is not running
    (a zombie, state Z, is not running)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):  # killed but not yet reaped by its parent: dead all the same
            return None
        return fields[19]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"


def is_alive(doc: dict, folder: Path, now: float | None = None) -> bool:
    """Whether a `running` run's process still runs (same host: pid; elsewhere: heartbeat)."""
    owner = doc.get("owner") or {}
    if owner.get("host") == socket.gethostname() and owner.get("pid"):
        started = pid_start_time(int(owner["pid"]))
        return started is not None and (started == "?" or owner.get("pid_start") in (None, started))
    try:
        beat = (folder / HEARTBEAT).stat().st_mtime
    except FileNotFoundError:
        beat = float(doc.get("started_at") or 0)
    return (now or time.time()) - beat < STALE_AFTER_S


def mark_crashed(store: RunStore, folder: Path, doc: dict) -> dict:
    """A run whose process died without finishing becomes `crashed`; its metrics so far stay.

    Decided again under the run's lock, on a fresh read: a run that finished in the meantime
    (its process writes the document under the same lock) is left as it is."""
    try:
        with FileLock(str(folder / ".lock"), timeout=BUSY_TIMEOUT_S):
            doc = read_doc(folder)
            if doc.get("status") != "running" or is_alive(doc, folder):
                return doc
            return _crashed(store, folder, doc)
    except Timeout:  # someone holds the run's lock for long: it is alive enough; look again next time
        return doc


def _crashed(store: RunStore, folder: Path, doc: dict) -> dict:
    ended = last_sign_of_life(folder, doc)
    doc.update(status="crashed", ended_at=ended, duration=max(0.0, ended - float(doc.get("started_at") or ended)))
    doc["summary"] = {**summary_from_metrics(folder), **(doc.get("summary") or {})}
    write_doc(folder, doc)
    replay_metrics(store.index, folder, doc)
    store.index.keep_previews(doc["id"])
    return doc


def last_sign_of_life(folder: Path, doc: dict) -> float:
    """When a dead run was last seen alive: the later of its last heartbeat (every 5 s) and its last
    metrics write (about every second); its start when neither exists."""
    seen = []
    for name in (HEARTBEAT, METRICS):
        try:
            seen.append((folder / name).stat().st_mtime)
        except FileNotFoundError:
            pass
    return max(seen) if seen else float(doc.get("started_at") or time.time())


def replay_metrics(index: RunIndex, folder: Path, doc: dict | None = None) -> int:
    """Index every point of the run's metrics log (and, with DOC, its row); idempotent, so safe after
    a process died between metrics.jsonl and the index. Returns the number of points."""
    batch = [p for rec in iter_metrics(folder) for p in points_of(rec)]
    for i in range(0, max(1, len(batch)), 50_000):
        index.put_points(folder.name, batch[i:i + 50_000], doc if i == 0 else None)
    return len(batch)


def refresh(store: RunStore, run_id: str) -> dict:
    """The run's document, with crash detection applied (and recorded)."""
    folder = store.run_dir(run_id)
    doc = read_doc(folder)
    if doc.get("status") == "running" and not is_alive(doc, folder):
        doc = mark_crashed(store, folder, doc)
    return doc


def iter_metrics(folder: Path) -> Iterator[dict]:
    """Records of `metrics.jsonl`; a torn last line (killed mid-write) is skipped."""
    try:
        f = open(folder / METRICS, "rb")
    except FileNotFoundError:
        return
    with f:
        for line in f:
            try:
                rec = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(rec, dict) and isinstance(rec.get("values"), dict):
                yield rec


def points_of(rec: dict) -> list[tuple[str, int, float, float]]:
    """Index points of one `metrics.jsonl` record."""
    step, when = rec.get("step"), rec.get("time", 0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0 or not isinstance(when, (int, float)):
        return []  # not written by Runicorn (a hand-edited or hostile log): skipped
    return [(k, step, float(v), float(when)) for k, v in rec["values"].items()
            if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)]


def summary_from_metrics(folder: Path) -> dict:
    last: dict = {}
    for rec in iter_metrics(folder):
        last.update(rec["values"])
    return last


# -- read API (plain, JSON-able dicts) ---------------------------------------------------------
NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def json_safe(value):
    """VALUE with non-finite floats as the strings "NaN", "Infinity", "-Infinity" (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else NONFINITE[repr(value)]
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def list_runs(repo, *, project=None, status=None, commit=None, branch=None, tag=None, since=None,
              search=None, sort="-started_at", limit=50, offset=0,
              on_rebuild: Callable[[dict], None] | None = None) -> tuple[list[dict], int]:
    """Runs matching every given filter, sorted, one page (rows, total). `since`: epoch seconds.

    Keeps the index honest on the way: an empty index next to run folders (deleted, or new) is
    filled from them first (ON_REBUILD gets what `rebuild_index` returns), and a listed run whose
    folder was deleted by hand is dropped from the index, not shown."""
    store = store_of(repo)
    if not store.index.has_runs() and store.run_ids():
        result = rebuild_index(store, keep_indexed=True)
        if on_rebuild is not None:
            on_rebuild(result)
    _refresh_running(store)
    where, params = [], []
    for column, value in (("project", project), ("status", status), ("branch", branch)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if status and status not in STATUSES:
        raise UsageError(f"unknown status {status!r}; choose from {', '.join(STATUSES)}")
    if commit:
        where.append("git_commit LIKE ?")
        params.append(commit.lower() + "%")
    if tag:
        where.append("run_id IN (SELECT run_id FROM run_tags WHERE tag = ?)")
        params.append(tag)
    if since is not None:
        where.append("started_at >= ?")
        params.append(float(since))
    if search:
        where.append("(name LIKE ? OR run_id LIKE ? OR project LIKE ? OR notes LIKE ? OR tags LIKE ?)")
        params.extend([f"%{search}%"] * 5)
    if sort.lstrip("-+") not in SORTABLE:
        raise UsageError(f"cannot sort by {sort!r}; choose from {', '.join(sorted(SORTABLE))} (prefix - for descending)")
    while True:
        rows, total = store.index.query(where, params, sort, max(0, int(limit)), max(0, int(offset)))
        gone = [r["run_id"] for r in rows if not (store.runs_dir / r["run_id"]).is_dir()]
        if not gone:
            return json_safe(rows), total
        for run_id in gone:  # deleted by hand: the index forgets it, and the page is read again
            store.index.delete_run(run_id)


def _refresh_running(store: RunStore) -> None:
    for run_id in store.index.ids_with_status("running"):
        try:
            refresh(store, run_id)
        except RunNotFoundError:
            store.index.delete_run(run_id)  # folder deleted by hand: the index forgets it
        except RunicornError:
            continue


def get_run(repo, run_id: str) -> dict:
    """The full run document (crash detection applied), strict-JSON safe. A run whose folder was
    deleted by hand is dropped from the index too."""
    store = store_of(repo)
    try:
        return json_safe(refresh(store, run_id))
    except RunNotFoundError:
        if store.index.get(run_id) is not None:
            store.index.delete_run(run_id)
        raise


def run_diff(repo, run_id: str) -> str:
    store = store_of(repo)
    doc = read_doc(store.run_dir(run_id))
    oid = ((doc.get("git") or {}).get("diff") or {}).get("oid")
    if not oid:
        return ""
    if not isinstance(oid, str) or not is_oid(oid):
        raise RunicornError(f"run {run_id} names its diff {str(oid)[:80]!r}, which is not an oid; "
                            "the run document was edited by hand: delete or restore it")
    try:
        return Path(store.odb.path(oid)).read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise RunicornError(f"the diff of run {run_id} ({oid[:12]}) is not in the cache; "
                            "run `runicorn pull --runs` to fetch it") from None


def run_logs(repo, run_id: str, tail_bytes: int | None = None) -> str:
    folder = store_of(repo).run_dir(run_id)
    read_doc(folder)
    try:
        with open(folder / LOGS, "rb") as f:
            if tail_bytes is not None:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - int(tail_bytes)))
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def metric_keys(repo, run_id: str) -> list[str]:
    store = store_of(repo)
    check_run_id(run_id)
    return store.index.keys(run_id)


def metric_series(repo, run_id: str, key: str, max_points: int = 1000, x_min=None, x_max=None) -> list[dict]:
    """[{"step", "value", "time"}] by step; a non-finite value is None there, with "nonfinite":
    "NaN" / "Infinity" / "-Infinity" (a chart shows a gap; strict JSON has no such numbers)."""
    store = store_of(repo)
    check_run_id(run_id)
    points = store.index.series(run_id, key, max(2, int(max_points)), x_min, x_max)
    for p in points:
        if not math.isfinite(p["value"]):
            p["nonfinite"] = NONFINITE[repr(p["value"])]
            p["value"] = None
    return points


def metric_bounds(repo, run_id: str, key: str) -> tuple[int, int] | None:
    """(first step, last step) of one metric as indexed so far (two index seeks); None before any point."""
    check_run_id(run_id)
    return store_of(repo).index.bounds(run_id, key)


def compare(docs: list[dict]) -> dict:
    """Config and summary of DOCS side by side: {"runs", "names", "config": {key: [v…]},
    "summary": {…}, "different": {"config": [keys], "summary": [keys]}}."""
    table: dict = {"runs": [d["id"] for d in docs], "names": [d.get("name") or d["id"] for d in docs],
                   "different": {}}
    for part in ("config", "summary"):
        flat = [flatten(d.get(part) or {}) for d in docs]
        keys = sorted(set().union(*flat))
        table[part] = {k: [f.get(k) for f in flat] for k in keys}
        table["different"][part] = [k for k in keys if len({json.dumps(v, sort_keys=True, default=str)
                                                             for v in table[part][k]}) > 1]
    return table


def flatten(data, prefix: str = "") -> dict:
    """DATA with nested dicts folded into dotted keys ({"a": {"b": 1}} -> {"a.b": 1}); an empty dict
    stays a value. Anything but a dict (a malformed document's config) flattens to {}."""
    if not isinstance(data, dict):
        return {}
    out: dict = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def delete_run(repo, run_id: str, force: bool = False) -> dict:
    """Remove the run folder and its index rows. A running (live) run needs FORCE."""
    store = store_of(repo)
    doc = refresh(store, run_id)
    if doc.get("status") == "running" and not force:
        raise UsageError(f"run {run_id} is still running; stop it first or pass --force")
    shutil.rmtree(store.run_dir(run_id))
    store.index.delete_run(run_id)
    return doc


def run_object_roots(repo) -> dict[str, str]:
    """oid → "run <id>" for every object a run document names (gc roots); an unreadable document raises."""
    from runicorn.core.run_share import referenced_oids

    store = store_of(repo)
    found: dict[str, str] = {}
    for run_id in store.run_ids():
        for oid in referenced_oids(read_doc(store.runs_dir / run_id)):
            found.setdefault(oid, f"run {run_id}")
    return found


def rebuild_index(repo, keep_indexed: bool = False) -> dict:
    """Re-derive the runs part of the index from the run folders (what remains of them).
    KEEP_INDEXED: add only the runs the index lacks, clearing nothing (safe next to live runs)."""
    store = store_of(repo)
    indexed = store.index.all_ids() if keep_indexed else set()
    if not keep_indexed:
        store.index.clear()
    runs = points = 0
    skipped: list[str] = []
    for run_id in store.run_ids():
        if run_id in indexed:
            continue
        folder = store.runs_dir / run_id
        try:
            doc = read_doc(folder)
        except RunicornError:
            skipped.append(run_id)
            continue
        if doc.get("status") == "running" and not is_alive(doc, folder):
            doc = mark_crashed(store, folder, doc)
        points += replay_metrics(store.index, folder, doc)
        if doc.get("status") in FINAL:
            store.index.keep_previews(run_id)
        runs += 1
    return {"runs": runs, "points": points, "skipped": skipped}

"""The live run: what `rn.init` returns. Buffered metrics, a background flusher, run files, finish.

Promise: nothing here takes a training script down. `log` only appends to an in-memory queue;
the flusher thread validates, appends to `metrics.jsonl` (the source of truth) and then writes the
SQLite index in one short transaction. Any internal error becomes a RunicornWarning.
"""
from __future__ import annotations

import collections
import glob as globmod
import json
import os
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Callable

from filelock import FileLock

from runicorn.core.repo import Repo
from runicorn.core.run_values import Summary, as_step, clean, plain
from runicorn.core.runs import (DOC, FINAL, HEARTBEAT, HEARTBEAT_EVERY_S, METRICS, RunStore, is_alive, read_doc,
                                replay_metrics, summary_from_metrics, write_doc)
from runicorn.errors import NotARunicornRepoError, RunicornError
from runicorn.storage import fsutil
from runicorn.storage.index import Index
from runicorn.storage.runstore import RunIndex

FLUSH_EVERY_S = 1.0
FLUSH_AT = 50_000  # buffered records that wake the flusher early
MAX_KEPT = 100_000  # records kept for a retry while metrics.jsonl cannot be written
ENV_RUN_DIR = "RUNICORN_RUN_DIR"  # set by `runicorn run`: SDK calls in the child join that run
ENV_CAPTURED = "RUNICORN_RUN_CAPTURED"  # the parent already tees the child's output


class RunicornWarning(UserWarning):
    """Something went wrong inside Runicorn; the training script goes on."""


# Where a warning goes when the warnings machinery raises (`-W error`); the SDK sets it to stderr.
fallback_sink: Callable[[str], None] | None = None


def warn(message: str) -> None:
    """A warning that never raises (even under `-W error`): logging must not crash training."""
    try:
        warnings.warn(message, RunicornWarning, stacklevel=3)
    except Exception:  # noqa: BLE001 — warnings turned into errors must not escape either
        if fallback_sink is not None:
            try:
                fallback_sink(message)
            except Exception:  # noqa: BLE001
                pass


class Run:
    def __init__(self, store: RunStore, folder: Path, doc: dict, owner: bool):
        self.store = store
        self.dir = folder
        self.id: str = doc["id"]
        self.owner = owner
        self.config: dict = dict(doc.get("config") or {})
        self._doc = doc
        self._buffer: collections.deque = collections.deque()
        self._next_step = 0
        self._last_step = -1
        self._last: dict = {}  # last value written per metric key (cleaned)
        self._live: dict = {}  # last value logged per key (raw: cleaned when read)
        self.summary = Summary(self._last, self._live, self._clean)
        self._warned: set[str] = set()
        self._torn = False  # the last metrics.jsonl write stopped mid-line
        self._doc_seen: tuple | None = None  # (inode, mtime, size) of run.json when last read
        self._finished = False
        self._pid = os.getpid()  # a forked child (a data-loader worker) must neither log nor finish
        self._on_finish: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = FileLock(str(folder / ".lock"))
        self._index = self._open_index()
        if self._index is not None and owner:
            self._safely(lambda: self._index.put_run(doc), "index")
        self._thread = threading.Thread(target=self._loop, name=f"runicorn-{self.id}", daemon=True)
        self._thread.start()

    # -- contract --------------------------------------------------------------------------
    @property
    def repo(self) -> Repo | None:
        return self.store.repo

    @property
    def git_commit(self) -> str | None:
        return (self._doc.get("git") or {}).get("commit")

    @property
    def project(self) -> str:
        return self._doc.get("project") or ""

    @property
    def name(self) -> str:
        return self._doc.get("name") or self.id

    @property
    def status(self) -> str:
        return self._doc.get("status", "running")

    @property
    def failure(self) -> dict | None:
        """Why the run failed or crashed (type, message; signal for a killed command), else None."""
        return self._doc.get("failure")

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.status} in {self.dir}>"

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish(0)
        elif issubclass(exc_type, SystemExit):
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            self.finish(code)
        else:
            self.fail(exc_type, exc)

    # -- metrics ---------------------------------------------------------------------------
    def log(self, data: Mapping, step: int | None = None) -> None:
        """Buffer DATA for STEP (default: one more than the last step). Never raises."""
        try:
            if self._finished:
                if self._pid != os.getpid():
                    return self._warn_once("forked", "rn.log in a forked child process is ignored; "
                                                     "log from the process that called rn.init")
                return self._warn_once("finished", f"run {self.id} is finished; rn.log ignored")
            if data.__class__ is not dict:
                if not isinstance(data, Mapping):
                    return self._warn_once("notdict", f"rn.log takes a dict of metrics, not {type(data).__name__}; ignored")
            if step is None:
                step = self._next_step
            elif step.__class__ is not int:
                given, step = step, as_step(step)
                if step is None:
                    return self._warn_once(f"step{type(given)}", f"step must be an integer, not {given!r}; "
                                                                 "values dropped")
            if step < self._last_step:
                return self._warn_once(f"back{step}", f"step {step} is before step {self._last_step} already "
                                                      f"logged; values dropped (steps must not go backwards)")
            if step < 0:
                return self._warn_once("negative", f"step {step} is negative; values dropped")
            self._last_step = step
            self._next_step = step + 1
            data = dict(data)
            self._buffer.append((step, time.time(), data))
            self._live.update(data)
            if len(self._buffer) >= FLUSH_AT:
                self._wake.set()
        except Exception as exc:  # noqa: BLE001 — the promise: logging never crashes training
            warn(f"rn.log failed inside Runicorn ({type(exc).__name__}: {exc}); the run goes on")

    def _clean(self, data: Mapping) -> dict:
        return clean(data, self._warn_once)

    def _warn_once(self, tag: str, message: str) -> None:
        if tag not in self._warned:
            self._warned.add(tag)
            warn(message)

    # -- background flushing ------------------------------------------------------------------
    def _open_index(self) -> RunIndex | None:
        try:
            return RunIndex(Index(self.store.index_path))  # a private connection for this run
        except Exception as exc:  # noqa: BLE001
            warn(f"the run index cannot be opened ({exc}); metrics go to {self.dir / METRICS} only "
                 "(run `runicorn index rebuild` later)")
            return None

    def _loop(self) -> None:
        beat = 0.0
        while not self._stop.is_set():
            self._wake.wait(FLUSH_EVERY_S)
            self._wake.clear()
            self._safely(self.flush, "flush")
            if self.owner and time.monotonic() - beat >= HEARTBEAT_EVERY_S:
                beat = time.monotonic()
                self._safely(lambda: os.utime(self.dir / HEARTBEAT), "heartbeat")

    def _safely(self, fn: Callable[[], object], what: str) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 — a background failure is a warning, never a crash
            self._warn_once(f"bg-{what}-{type(exc).__name__}", f"Runicorn {what} failed ({type(exc).__name__}: "
                                                              f"{exc}); the run goes on")

    def flush(self) -> None:
        """Write what is buffered: metrics.jsonl first (truth), then the index (one transaction).

        A record leaves the buffer only once its line is written: a failed write puts the rest back
        for the next flush. A process that joined a `runicorn run` writes only while the run is live."""
        n = len(self._buffer)
        if not n:
            return
        batch = [self._buffer.popleft() for _ in range(n)]
        lines, written, points = [], [], []  # written: (batch position, values) of each line
        for i, (step, when, data) in enumerate(batch):
            values = self._clean(data)
            if not values:
                continue
            lines.append(json.dumps({"step": step, "time": round(when, 6), "values": values}) + "\n")
            written.append((i, values))
            points.extend((k, step, float(v), when) for k, v in values.items())
        if not lines:
            return
        if self.owner:
            self._append(lines, batch, written)
        else:
            with self._lock:  # the owner ends the run under this lock: no line lands after that
                if not self._still_live():
                    return
                self._append(lines, batch, written)
        for _, values in written:
            self._last.update(values)
        if self._index is not None:
            self._index.put_points(self.id, points)

    def _append(self, lines: list[str], batch: list, written: list) -> None:
        """Append LINES (of the records in BATCH at the positions in WRITTEN) to metrics.jsonl. On a
        failure the records not wholly written go back to the front of the buffer, and the error is
        raised (the flusher turns it into a warning)."""
        data = "".join(lines).encode()
        done = 0
        try:
            fd = os.open(self.dir / METRICS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if self._torn:  # the last write stopped mid-line: end it (readers skip that line)
                    os.write(fd, b"\n")
                    self._torn = False
                view = memoryview(data)
                while done < len(data):
                    done += os.write(fd, view[done:])
            finally:
                os.close(fd)
        except OSError:
            whole, end = 0, 0  # lines wholly written, and where they end
            for line in lines:
                size = len(line.encode())
                if end + size > done:
                    break
                whole, end = whole + 1, end + size
            self._torn = self._torn or done > end
            keep = batch[written[whole][0]:] if whole < len(lines) else []
            self._buffer.extendleft(reversed(keep[-MAX_KEPT:]))
            if len(keep) > MAX_KEPT:
                self._warn_once("kept", f"metrics.jsonl cannot be written; {len(keep) - MAX_KEPT} logged steps "
                                        "were dropped to keep memory bounded (fix the disk, the run goes on)")
            raise

    def _still_live(self) -> bool:
        """For a process that joined a `runicorn run`: whether the run still takes metrics. Once its
        document is final, or its owner is gone (the run is crashed, whether or not anyone has looked
        yet), this process stops logging into it: a run that is over never changes."""
        try:
            st = os.stat(self.dir / DOC)
            seen = (st.st_ino, st.st_mtime_ns, st.st_size)
            if seen != self._doc_seen:
                self._doc = read_doc(self.dir)
                self._doc_seen = seen
        except (OSError, RunicornError):
            pass  # unreadable for a moment (replaced, or edited): judge by the last good read
        status = self._doc.get("status")
        if status == "running" and is_alive(self._doc, self.dir):
            return True
        why = f"is {status}" if status != "running" else \
            f"lost its owner (pid {(self._doc.get('owner') or {}).get('pid')} is gone: it has crashed)"
        self._finished = True
        self._stop.set()
        self._buffer.clear()
        self._warn_once("over", f"run {self.id} {why}; this process no longer logs into it")
        return False

    # -- run files, artifacts --------------------------------------------------------------
    def save(self, pattern: str, base_path: str | None = None) -> list[str]:
        """Store the files matching PATTERN in the cache as run files; returns their names."""
        if self._finished:
            self._warn_once("save-finished", f"run {self.id} is finished (finished runs never change); "
                                             f"rn.save({pattern!r}) ignored")
            return []
        try:
            base = Path(base_path or os.getcwd())
            full = pattern if os.path.isabs(pattern) else str(base / pattern)
            saved = []
            for path in sorted(globmod.glob(full, recursive=True)):
                if not os.path.isfile(path):
                    continue
                oid, _ = self.store.odb.copy_in(Path(path))
                rel = os.path.relpath(path, base)
                name = rel if not rel.startswith("..") else os.path.basename(path)
                saved.append({"path": name.replace(os.sep, "/"), "oid": oid, "size": os.path.getsize(path)})
            if not saved:
                self._warn_once(f"save{pattern}", f"rn.save({pattern!r}) matched no file")
                return []
            fsutil.make_durable(sorted({self.store.odb.path(f["oid"]) for f in saved}), self.store.odb.root)
            names = {f["path"] for f in saved}

            def add(doc: dict) -> None:
                doc["files"] = [f for f in doc.get("files") or [] if f["path"] not in names] + saved

            self._update_doc(add)
            return sorted(names)
        except Exception as exc:  # noqa: BLE001
            warn(f"rn.save({pattern!r}) failed ({type(exc).__name__}: {exc}); the run goes on")
            return []

    def note_artifact_used(self, name: str, version: int, digest: str) -> None:
        self._note("used", {"artifact": name, "version": int(version), "digest": digest})

    def note_artifact_logged(self, name: str, version: int, digest: str) -> None:
        self._note("logged", {"artifact": name, "version": int(version), "digest": digest})

    def _note(self, kind: str, entry: dict) -> None:
        if self._finished:
            self._warn_once(f"note-{kind}", f"run {self.id} is finished (finished runs never change); the "
                                            f"artifact {entry['artifact']}:v{entry['version']} is not added to it")
            return
        def add(doc: dict) -> None:
            arts = doc.setdefault("artifacts", {"used": [], "logged": []})
            items = arts.setdefault(kind, [])
            if entry not in items:
                items.append(entry)

        self._update_doc(add)

    def lineage_inputs(self) -> list[dict]:
        used = (self._doc.get("artifacts") or {}).get("used") or []
        data = [{"data": d["path"], "oid": d["oid"]} for d in self._doc.get("data") or []]
        return [dict(u) for u in used] + data

    def _need_repo(self) -> Repo:
        if self.repo is None:
            raise NotARunicornRepoError(Path.cwd())
        return self.repo

    def log_artifact(self, artifact, aliases=None):
        from runicorn.core import artifacts

        return artifacts.log_artifact(self._need_repo(), artifact, aliases=aliases, run=self)

    def use_artifact(self, ref, *, version=None, alias=None, type=None):
        from runicorn.core import artifacts

        return artifacts.use_artifact(self.repo, ref, run=self, version=version, alias=alias,
                                      type=type)  # repo None: served from the download cache

    # -- the document --------------------------------------------------------------------------
    def _update_doc(self, change: Callable[[dict], None]) -> dict:
        """Read-modify-write run.json under the run's lock (a parent and children may share it).
        A process that joined a run leaves it alone once the run is over (finished runs never change)."""
        with self._lock:
            try:
                doc = read_doc(self.dir)
            except RunicornError:
                doc = self._doc
            if not self.owner and doc.get("status") in FINAL:
                self._doc = doc
                self._warn_once("over", f"run {self.id} is {doc['status']}; this process no longer changes it")
                return doc
            change(doc)
            write_doc(self.dir, doc)
        self._doc = doc
        return doc

    # -- the end -------------------------------------------------------------------------------
    def finish(self, exit_code: int = 0, status: str | None = None, failure: dict | None = None) -> None:
        """Flush everything and close the run (finished when EXIT_CODE is 0, failed otherwise).

        In a process that joined a `runicorn run`, only flushes: the parent closes the run."""
        if self._finished:
            return
        self._finished = True
        if self._pid != os.getpid():
            return  # a forked child exiting: the run belongs to its parent
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)
        self._safely(self.flush, "flush")
        now = time.time()
        summary = self.summary.to_dict()
        config = plain(self.config)

        def close(doc: dict) -> None:
            doc["summary"] = {**(doc.get("summary") or {}), **plain(summary)}
            if status == "crashed":  # the process that logged died: its summary is in the metrics log
                doc["summary"] = {**summary_from_metrics(self.dir), **doc["summary"]}
            doc["config"] = {**(doc.get("config") or {}), **config}
            if self.owner:
                code = int(exit_code)
                doc.update(status=status or ("finished" if code == 0 else "failed"), exit_code=code,
                           ended_at=now, duration=round(now - float(doc.get("started_at") or now), 6))
            if failure:
                doc["failure"] = failure

        self._safely(lambda: self._update_doc(close), "finish")
        if self._index is not None:
            if status == "crashed":  # it may have died between metrics.jsonl and the index
                self._safely(lambda: replay_metrics(self._index, self.dir, self._doc), "index")
            self._safely(lambda: self._index.put_run(self._doc), "index")
            if self.owner:  # every point is in: keep the charts' series precomputed
                self._safely(lambda: self._index.keep_previews(self.id), "index")
            self._safely(self._index.index.close, "index")
        for callback in self._on_finish:
            self._safely(callback, "finish")

    def after_fork_in_child(self) -> None:
        """In a forked child the flusher thread is gone: stop logging here, leave the run to the parent."""
        self._finished = True

    def fail(self, exc_type, exc, code: int = 1) -> None:
        code = 130 if exc_type is not None and issubclass(exc_type, KeyboardInterrupt) else code
        self.finish(code, status="failed",
                    failure={"type": getattr(exc_type, "__name__", str(exc_type)), "message": str(exc)[:2000]})

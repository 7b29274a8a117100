"""The Python SDK (SPEC §4): `rn.init`, `rn.log`, `rn.save`, `rn.finish`, artifacts on the current run.

The SDK is an interface: it owns the process-wide parts (the current run, stdout/stderr tee,
the uncaught-exception hook, the exit hook) and delegates the rest to `runicorn.core.run_live`.
"""
from __future__ import annotations

import atexit
import os
import sqlite3
import sys
import threading
import traceback
from pathlib import Path

from runicorn.core import run_live, run_start
from runicorn.core.runs import LOGS
from runicorn.errors import DiskFullError
from runicorn.core.run_live import ENV_CAPTURED, ENV_RUN_DIR, Run, RunicornWarning, warn

__all__ = ["init", "log", "finish", "save", "Run", "RunicornWarning", "use_artifact", "log_artifact", "run"]

run: Run | None = None  # the current run (rn.run)


def _stderr_warning(message: str) -> None:
    sys.stderr.write(f"RunicornWarning: {message}\n")


run_live.fallback_sink = _stderr_warning
_hooks_installed = False
_lock = threading.Lock()


class _Tee:
    """Writes go to the original stream and to the run's log file (the user still sees them)."""

    def __init__(self, stream, log):
        self._stream = stream
        self._log = log

    def write(self, text):
        n = self._stream.write(text)
        try:
            self._log.write(text)
        except (OSError, ValueError):
            pass
        return n

    def flush(self):
        self._stream.flush()
        try:
            self._log.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


def init(project: str | None = None, name: str | None = None, config=None, tags=None, notes: str | None = None,
         capture_output: bool = True) -> Run:
    """Start a run (or join the one `runicorn run` started for this process) and make it current."""
    global run
    with _lock:
        if run is not None and not run._finished:
            warn(f"rn.init called while run {run.id} is active; finishing it first")
            finish()
        joined = os.environ.get(ENV_RUN_DIR)
        try:
            if joined:
                new = run_start.join(Path(joined), project=project, name=name, config=config, tags=tags,
                                     notes=notes)
            else:
                new = run_start.start(project=project, name=name, config=config, tags=tags, notes=notes)
        except (OSError, sqlite3.Error, DiskFullError) as exc:  # the disk, not the user: training goes on
            warn(f"this run is not recorded: {getattr(exc, 'message', None) or exc}; fix the cause and rerun "
                 "to record it")
            run = _NullRun()
            return run
        if capture_output and not os.environ.get(ENV_CAPTURED):
            _tee(new)
        _install_hooks()
        run = new
        return new


class _NullRun:
    """What rn.init returns when the run cannot be recorded at all: every call is a cheap no-op."""

    id = dir = repo = git_commit = None
    project = name = ""
    status = "not recorded"

    def __init__(self):
        self._finished = False
        self.summary: dict = {}
        self.config: dict = {}

    def log(self, data, step=None) -> None:
        pass

    def save(self, pattern, base_path=None) -> list:
        return []

    def finish(self, exit_code: int = 0, status=None, failure=None) -> None:
        self._finished = True

    def fail(self, exc_type, exc, code: int = 1) -> None:
        self._finished = True

    def after_fork_in_child(self) -> None:
        self._finished = True

    def note_artifact_used(self, name, version, digest) -> None:
        pass

    note_artifact_logged = note_artifact_used

    def lineage_inputs(self) -> list:
        return []

    def log_artifact(self, artifact, aliases=None):
        from runicorn.core import artifacts
        from runicorn.core.repo import Repo

        return artifacts.log_artifact(Repo.find(), artifact, aliases=aliases, run=None)

    def use_artifact(self, ref, **forms):
        from runicorn.core import artifacts

        return artifacts.use_artifact(_repo_or_none(), ref, run=None, **forms)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._finished = True


def _tee(new: Run) -> None:
    log = open(new.dir / LOGS, "a", encoding="utf-8", errors="replace", buffering=1)
    old_out, old_err = sys.stdout, sys.stderr
    if old_out is not None:  # None under pythonw and some daemons: print() must stay a no-op there
        sys.stdout = _Tee(old_out, log)
    if old_err is not None:
        sys.stderr = _Tee(old_err, log)

    def restore():
        if isinstance(sys.stdout, _Tee) and sys.stdout._log is log:
            sys.stdout = old_out
        if isinstance(sys.stderr, _Tee) and sys.stderr._log is log:
            sys.stderr = old_err
        log.close()

    new._on_finish.append(restore)


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        previous(exc_type, exc, tb)  # prints the traceback, into the tee'd log too
        current = run
        if current is not None and not current._finished:
            current.fail(exc_type, exc)

    sys.excepthook = hook
    real_exit = sys.exit

    def exit_hook(code=None):
        """sys.exit(N) outside a `with` block: remember N so the run ends failed when N is not 0
        (as W&B does; a bare `raise SystemExit(N)` at top level is not seen)."""
        global _exit_code
        _exit_code = code if isinstance(code, int) else (0 if code is None else 1)
        real_exit(code)

    sys.exit = exit_hook
    atexit.register(_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)


def _after_fork() -> None:
    if run is not None:
        run.after_fork_in_child()


_exit_code = 0  # what the script passed to sys.exit, if it did


def _at_exit() -> None:
    if run is not None and not run._finished:
        run.finish(_exit_code)


def _current(what: str) -> Run | None:
    if run is None or run._finished:
        warn(f"rn.{what} called with no active run; call rn.init() first")
        return None
    return run


def log(data, step: int | None = None) -> None:
    current = run
    if current is None:
        warn("rn.log called with no active run; call rn.init() first")
        return
    current.log(data, step)


def save(pattern: str, base_path: str | None = None) -> list[str]:
    current = _current("save")
    return current.save(pattern, base_path) if current else []


def finish(exit_code: int = 0) -> None:
    current = run
    if current is not None:
        current.finish(exit_code)


def use_artifact(ref, *, version=None, alias=None, type=None):
    """`name`, `name:vN`, `name:<alias>` — or a bare name with the seed's VERSION= / ALIAS= / TYPE=."""
    forms = {"version": version, "alias": alias, "type": type}
    current = run if run is not None and not run._finished else None
    if current is None:
        from runicorn.core import artifacts

        return artifacts.use_artifact(_repo_or_none(), ref, run=None, **forms)
    return current.use_artifact(ref, **forms)


def _repo_or_none():
    """The repository here, or None outside one (artifacts are then served from the download cache)."""
    from runicorn.core.repo import Repo
    from runicorn.errors import NotARunicornRepoError, NotAGitRepoError

    try:
        return Repo.find()
    except (NotARunicornRepoError, NotAGitRepoError):
        return None


def log_artifact(artifact, aliases=None):
    current = run if run is not None and not run._finished else None
    if current is None:
        from runicorn.core import artifacts
        from runicorn.core.repo import Repo

        return artifacts.log_artifact(Repo.find(), artifact, aliases=aliases, run=None)
    return current.log_artifact(artifact, aliases)


def format_exception(exc_type, exc, tb) -> str:
    return "".join(traceback.format_exception(exc_type, exc, tb))

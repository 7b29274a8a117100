"""Starting a run: create its folder with everything captured at start, or join the run that
`runicorn run` started for this process (`RUNICORN_RUN_DIR`)."""
from __future__ import annotations

import os
import secrets
import socket
import string
import time
from pathlib import Path

from runicorn.core import run_capture
from runicorn.core.repo import DIRNAME, Repo
from runicorn.core.run_live import Run, warn
from runicorn.core.run_values import plain
from runicorn.core.runs import (FORMAT_VERSION, HEARTBEAT, LOGS, METRICS, RunStore, pid_start_time, read_doc,
                                store_of, user_store, write_doc)
from runicorn.errors import NotAGitRepoError, NotARunicornRepoError, RunicornError
from runicorn.storage import fsutil
from runicorn.storage.git import discover_root
from runicorn.storage.odb import ObjectDB

_ID_CHARS = string.ascii_lowercase + string.digits


def new_run_id(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime(now or time.time()))
    return f"{stamp}_{''.join(secrets.choice(_ID_CHARS) for _ in range(6))}"


def _open_store() -> tuple[RunStore, Path | None, str | None]:
    """(store, git root or None, message for the user or None)."""
    try:
        repo = Repo.find()
        return store_of(repo), repo.root, None
    except NotARunicornRepoError:
        root = discover_root(Path.cwd())
        store = user_store()
        return store, root, f"not in a Runicorn repository; this run is kept in {store.runs_dir} (run `runicorn init` to keep runs with the repository)"
    except NotAGitRepoError:
        store = user_store()
        return store, None, f"not in a git repository; this run is kept in {store.runs_dir} without git state"


def store_for_folder(folder: Path) -> RunStore:
    base = folder.parent.parent
    if base.name == DIRNAME:
        return store_of(Repo(base.parent))
    return RunStore(base / "runs", ObjectDB(base / "cache"), base / "index.db", None)


def data_state(repo: Repo | None) -> list[dict]:
    if repo is None:
        return []
    try:
        return [{"path": rel, "kind": p.kind, "oid": p.oid, "size": p.size} for rel, p in repo.tracked()]
    except RunicornError as exc:
        warn(f"data state not recorded: {exc.message}")
        return []


def start(project=None, name=None, config=None, tags=None, notes=None, argv=None,
          owner_pid: int | None = None) -> "Run":
    """Create a run folder with everything captured at start; returns the live Run."""
    store, git_root, message = _open_store()
    if message:
        warn(message)
    now = time.time()
    store.runs_dir.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = new_run_id(now)
        folder = store.runs_dir / run_id
        try:
            folder.mkdir()
            break
        except FileExistsError:
            continue
    pid = owner_pid or os.getpid()
    doc = {
        "runicorn_run": FORMAT_VERSION, "id": run_id, "project": project or "", "name": name or run_id,
        "tags": [str(t) for t in (tags or [])], "notes": notes or "", "status": "running",
        "started_at": now, "ended_at": None, "duration": None, "exit_code": None,
        "host": socket.gethostname(), "user": run_capture._user(),
        "owner": {"host": socket.gethostname(), "pid": pid, "pid_start": pid_start_time(pid)},
        "config": plain(config or {}), "summary": {}, "files": [], "artifacts": {"used": [], "logged": []},
        "git": _git_doc(store, git_root), "data": data_state(store.repo),
        "environment": run_capture.environment(argv), "logs": LOGS, "metrics": METRICS,
    }
    write_doc(folder, doc)
    (folder / HEARTBEAT).touch()
    return Run(store, folder, doc, owner=True)


def join(folder: Path, project=None, name=None, config=None, tags=None, notes=None) -> "Run":
    """The Run a parent (`runicorn run`) started; this process logs into it, the parent finishes it."""
    store = store_for_folder(folder)
    run = Run(store, folder, read_doc(folder), owner=False)

    def merge(doc: dict) -> None:
        doc["config"] = {**(doc.get("config") or {}), **plain(config or {})}
        doc["project"] = doc.get("project") or project or ""
        if name and doc.get("name") == doc["id"]:
            doc["name"] = name
        doc["tags"] = list(dict.fromkeys([*(doc.get("tags") or []), *[str(t) for t in tags or []]]))
        doc["notes"] = doc.get("notes") or notes or ""
        # the wrapper may run another interpreter (`runicorn run -- /usr/bin/python3 …`): this one counts
        doc["environment"] = {**(doc.get("environment") or {}), **run_capture.interpreter()}

    run._update_doc(merge)
    return run


def _git_doc(store: RunStore, root: Path | None) -> dict | None:
    if root is None:
        return None
    try:
        info, diff = run_capture.git_state(root)
    except OSError as exc:
        warn(f"git state not recorded: {exc}")
        return None
    if diff:
        oid, created = store.odb.put_bytes(diff)
        if created:  # durable before the run document names it
            fsutil.make_durable([store.odb.path(oid)], store.odb.root)
        info["diff"] = {"oid": oid, "size": len(diff)}
    return info

"""`runicorn run -- CMD…`: run a command as a tracked run.

This process owns the run (creates it, tees the child's output into `output.log`, finishes it
with the child's exit code). SDK calls inside the child join the same run through
`RUNICORN_RUN_DIR`; the child does not tee again (`RUNICORN_RUN_CAPTURED`).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from typing import Callable

from runicorn.core import run_start
from runicorn.core.runs import LOGS
from runicorn.core.run_live import ENV_CAPTURED, ENV_RUN_DIR, Run
from runicorn.errors import UsageError

Writer = Callable[[bytes], None]
CHUNK = 1 << 16


def check_command(cmd: list[str]) -> None:
    if not cmd:
        raise UsageError("no command given; write it after `--`, e.g. `runicorn run -- python train.py`")
    exe = cmd[0]
    if os.sep not in exe and shutil.which(exe) is None:
        raise UsageError(f"command not found: {exe}; check the spelling or give its path")
    if os.sep in exe and not os.access(exe, os.X_OK):
        raise UsageError(f"{exe} is not an executable file; check the path (or run it through its interpreter)")


def run_command(cmd: list[str], out: Writer, err: Writer, name: str | None = None, project: str | None = None,
                tags: list[str] | None = None, on_start: Callable[[Run], None] | None = None) -> tuple[Run, int]:
    """Run CMD as a tracked run; returns (run, exit code). Nothing is created when CMD cannot start."""
    check_command(cmd)
    run = run_start.start(project=project, name=name, tags=tags, argv=cmd)
    env = {**os.environ, ENV_RUN_DIR: str(run.dir), ENV_CAPTURED: "1", "PYTHONUNBUFFERED": "1"}
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        run.finish(127, failure={"type": type(exc).__name__, "message": str(exc)})
        raise UsageError(f"cannot start {cmd[0]}: {exc.strerror or exc}; check the command") from None
    previous = _forward_interrupts(proc)  # from now on Ctrl-C is the child's to handle
    try:
        if on_start:
            on_start(run)
        log = open(run.dir / LOGS, "ab")
        lock = threading.Lock()
        pumps = [threading.Thread(target=_pump, args=(proc.stdout, out, log, lock), daemon=True),
                 threading.Thread(target=_pump, args=(proc.stderr, err, log, lock), daemon=True)]
        for t in pumps:
            t.start()
        code = _wait(proc)
        for t in pumps:
            t.join()
        log.close()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    run.finish(code)
    return run, code


def _forward_interrupts(proc: subprocess.Popen):
    """SIGINT to this process goes to the child, which decides (a training script may save a
    checkpoint). Installed right after the child starts, so no moment is left in which an
    interrupt would stop this process instead. Returns the previous handler (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: proc.send_signal(signal.SIGINT))


def _wait(proc: subprocess.Popen) -> int:
    """The child's exit code (killed by signal N: 128 + N, as shells report it); an interrupt here is
    passed on to the child, which decides."""
    while True:
        try:
            rc = proc.wait()
            return rc if rc >= 0 else 128 + (-rc)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
        except BaseException:
            proc.send_signal(signal.SIGINT)
            try:
                rc = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            return rc if rc >= 0 else 128 + (-rc)


def _pump(stream, write: Writer, log, lock: threading.Lock) -> None:
    fd = stream.fileno()
    while True:
        chunk = os.read(fd, CHUNK)
        if not chunk:
            break
        try:
            write(chunk)
        except (OSError, ValueError):
            pass
        with lock:
            try:
                log.write(chunk)
                log.flush()
            except (OSError, ValueError):
                pass
    stream.close()

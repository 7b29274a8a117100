"""`runicorn run -- CMD…`: run a command as a tracked run.

This process owns the run (creates it, tees the child's output into `output.log`, finishes it
with the child's exit code). SDK calls inside the child join the same run through
`RUNICORN_RUN_DIR`; the child does not tee again (`RUNICORN_RUN_CAPTURED`).
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
from typing import Callable

from runicorn.core import run_start
from runicorn.core.runs import LOGS
from runicorn.core.run_live import ENV_CAPTURED, ENV_RUN_DIR, Run
from runicorn.errors import UsageError

Writer = Callable[[bytes], None]
CHUNK = 1 << 16
PR_SET_PDEATHSIG = 1  # linux/prctl.h


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
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                preexec_fn=_die_with_parent())
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
        rc = _wait(proc)
        for t in pumps:
            t.join()
        log.close()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    code = rc if rc >= 0 else 128 - rc  # killed by signal N: 128 + N, as shells report it
    if rc < 0 and -rc != signal.SIGINT:  # kill -9, the OOM killer, a segfault: it crashed (Ctrl-C: failed)
        name = _signal_name(-rc)
        run.finish(code, status="crashed", failure={"type": name, "signal": -rc,
                                                    "message": f"the command was killed by signal {-rc} ({name})"})
    else:
        run.finish(code)
    return run, code


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: a preexec function that has the kernel send the command SIGKILL when this process dies
    (even by kill -9), so no orphan goes on logging into a run that is over. prctl is looked up
    here, before the fork: the function run in the child only calls it. None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(137)

    return preexec


def _forward_interrupts(proc: subprocess.Popen):
    """SIGINT to this process goes to the child, which decides (a training script may save a
    checkpoint). Installed right after the child starts, so no moment is left in which an
    interrupt would stop this process instead. Returns the previous handler (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: proc.send_signal(signal.SIGINT))


def _wait(proc: subprocess.Popen) -> int:
    """The child's return code (-N: killed by signal N); an interrupt here is passed on to the
    child, which decides."""
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
        except BaseException:
            proc.send_signal(signal.SIGINT)
            try:
                return proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                return proc.wait()


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

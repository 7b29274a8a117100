"""Runs under faults: many concurrent loggers, kill -9 mid-run, a crashed run next to a new writer."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from conftest import ok

LOGGER = textwrap.dedent("""
    import sys, runicorn as rn
    run = rn.init(name=sys.argv[1])
    for step in range(int(sys.argv[2])):
        rn.log({"loss": 1.0 / (step + 1), "acc": step * 0.001, "lr": 0.1}, step=step)
    rn.finish()
    """)


def test_sixteen_concurrent_loggers_lose_and_duplicate_nothing(tmp_repo):
    (tmp_repo.root / "logger.py").write_text(LOGGER)
    procs = [subprocess.Popen([sys.executable, "logger.py", f"p{i}", "1000"], cwd=tmp_repo.root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(16)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0, err
        assert "locked" not in err and "Warning" not in err, err
    db = sqlite3.connect(tmp_repo.root / ".runicorn" / "index.db")
    runs = db.execute("SELECT run_id, status FROM runs").fetchall()
    assert len(runs) == 16 and {s for _, s in runs} == {"finished"}
    rows = db.execute("""SELECT s.run_id, s.key, COUNT(*), COUNT(DISTINCT p.step), MIN(p.step), MAX(p.step)
                         FROM run_points p JOIN run_series s ON s.id = p.series GROUP BY s.id""").fetchall()
    assert len(rows) == 16 * 3
    for run_id, key, count, distinct, lo, hi in rows:
        assert (count, distinct, lo, hi) == (1000, 1000, 0, 999), (run_id, key)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for run_id, _ in runs:  # the metrics log (the source of truth) has every step exactly once
        lines = (tmp_repo.root / ".runicorn" / "runs" / run_id / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in lines] == list(range(1000))


FOREVER = textwrap.dedent("""
    import time, runicorn as rn
    rn.init(name="victim")
    step = 0
    while True:
        rn.log({"loss": 1.0 / (step + 1)}, step=step)
        step += 1
        time.sleep(0.0005)
    """)


def test_kill_9_is_detected_as_crashed_and_keeps_what_was_flushed(tmp_repo):
    (tmp_repo.root / "forever.py").write_text(FOREVER)
    proc = subprocess.Popen([sys.executable, "forever.py"], cwd=tmp_repo.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    runs_dir = tmp_repo.root / ".runicorn" / "runs"
    deadline = time.time() + 60
    metrics = None
    while time.time() < deadline:
        found = list(runs_dir.glob("*/metrics.jsonl")) if runs_dir.is_dir() else []
        if found and found[0].stat().st_size > 2000:
            metrics = found[0]
            break
        time.sleep(0.1)
    assert metrics is not None, "the run never flushed"
    time.sleep(1.2)  # let another flush land mid-way
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    run_id = metrics.parent.name
    listed = json.loads(ok(tmp_repo.rn("runs", "list", "--json")).out)
    assert [r["status"] for r in listed["runs"]] == ["crashed"]
    doc = json.loads(ok(tmp_repo.rn("runs", "show", run_id, "--json")).out)
    assert doc["status"] == "crashed" and doc["ended_at"] is not None
    flushed = [json.loads(line) for line in metrics.read_text().splitlines() if line.endswith("}")]
    assert len(flushed) > 10
    from runicorn.api import metric_series
    from runicorn.core.repo import Repo
    points = metric_series(Repo(tmp_repo.root), run_id, "loss", max_points=10**9)
    assert [p["step"] for p in points] == [r["step"] for r in flushed]  # everything flushed is kept
    assert doc["summary"]["loss"] == flushed[-1]["values"]["loss"]
    with sqlite3.connect(tmp_repo.root / ".runicorn" / "index.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the next writer is not blocked
    (tmp_repo.root / "next.py").write_text(LOGGER)
    started = time.time()
    done = subprocess.run([sys.executable, "next.py", "after", "100"], cwd=tmp_repo.root, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert time.time() - started < 30
    statuses = {r["name"]: r["status"] for r in json.loads(ok(tmp_repo.rn("runs", "list", "--json")).out)["runs"]}
    assert statuses == {"victim": "crashed", "after": "finished"}


def test_torn_metrics_line_and_corrupt_run_document(tmp_repo):
    (tmp_repo.root / "logger.py").write_text(LOGGER)
    done = subprocess.run([sys.executable, "logger.py", "one", "10"], cwd=tmp_repo.root, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (run_dir,) = list((tmp_repo.root / ".runicorn" / "runs").iterdir())
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 10, "time": 1, "val')  # a kill in the middle of a write
    rebuilt = json.loads(ok(tmp_repo.rn("index", "rebuild", "--json")).out)
    assert rebuilt["runs"]["points"] == 30
    (run_dir / "run.json").write_text("{not json")
    shown = tmp_repo.rn("runs", "show", run_dir.name)
    assert shown.code == 1 and "not a valid run document" in shown.err
    rebuilt = json.loads(ok(tmp_repo.rn("index", "rebuild", "--json")).out)
    assert rebuilt["runs"]["skipped"] == [run_dir.name]
    gc = tmp_repo.rn("gc", "--yes")
    assert gc.code != 0 and "gc stopped before deleting anything" in gc.err


def test_hostile_run_files_are_refused_or_skipped(tmp_repo):
    (tmp_repo.root / "logger.py").write_text(LOGGER)
    done = subprocess.run([sys.executable, "logger.py", "one", "5"], cwd=tmp_repo.root, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (run_dir,) = list((tmp_repo.root / ".runicorn" / "runs").iterdir())
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": "x", "time": 1, "values": {"loss": 1}}\n')
        f.write('{"step": -3, "time": 1, "values": {"loss": 1}}\n')
        f.write('{"step": 7, "time": 1, "values": {"loss": "text", "ok": 2}}\n')
        f.write("[" * 100000 + "\n")
    rebuilt = json.loads(ok(tmp_repo.rn("index", "rebuild", "--json")).out)
    assert rebuilt["runs"]["points"] == 15 + 1  # 5 steps x 3 keys, plus the one valid value
    doc = json.loads((run_dir / "run.json").read_text())
    doc["git"]["diff"] = {"oid": "../../../../etc/passwd", "size": 1}
    (run_dir / "run.json").write_text(json.dumps(doc))
    shown = tmp_repo.rn("runs", "show", run_dir.name)
    assert shown.code == 1 and "is not an oid" in shown.err and "root:" not in shown.out
    (run_dir / "run.json").write_text("[" * 100000)
    deep = tmp_repo.rn("runs", "show", run_dir.name)
    assert deep.code == 1 and "not a valid run document" in deep.err
    other = tmp_repo.root / ".runicorn" / "runs" / "20200101_000000_aaaaaa"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"id": "20200101_000000_bbbbbb", "status": "finished"}))
    assert "not a run document for 20200101_000000_aaaaaa" in tmp_repo.rn("runs", "show", other.name).err


def test_ctrl_c_on_runicorn_run_reaches_the_command_and_fails_the_run(tmp_repo):
    (tmp_repo.root / "sleepy.py").write_text("import time\nprint('go', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-m", "runicorn", "run", "--name", "sig", "--", sys.executable,
                             "sleepy.py"], cwd=tmp_repo.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "go"
    proc.send_signal(signal.SIGINT)  # to runicorn only: it passes the interrupt on
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "KeyboardInterrupt" in err
    (row,) = json.loads(ok(tmp_repo.rn("runs", "list", "--json")).out)["runs"]
    assert (row["name"], row["status"], row["exit_code"]) == ("sig", "failed", 130)


def test_heartbeat_decides_for_runs_of_another_host(tmp_repo):
    (tmp_repo.root / "logger.py").write_text(LOGGER)
    done = subprocess.run([sys.executable, "logger.py", "remote-host", "3"], cwd=tmp_repo.root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (run_dir,) = list((tmp_repo.root / ".runicorn" / "runs").iterdir())
    doc = json.loads((run_dir / "run.json").read_text())
    doc.update(status="running", ended_at=None, exit_code=None)
    doc["owner"] = {"host": "a-gpu-node-elsewhere", "pid": 1, "pid_start": "1"}  # seen on a shared filesystem
    (run_dir / "run.json").write_text(json.dumps(doc))
    ok(tmp_repo.rn("index", "rebuild"))
    os.utime(run_dir / "heartbeat")  # alive a moment ago
    assert json.loads(ok(tmp_repo.rn("runs", "show", run_dir.name, "--json")).out)["status"] == "running"
    stale = time.time() - 600
    os.utime(run_dir / "heartbeat", (stale, stale))
    os.utime(run_dir / "metrics.jsonl", (stale - 3, stale - 3))  # its last flush came before its last beat
    shown = json.loads(ok(tmp_repo.rn("runs", "show", run_dir.name, "--json")).out)
    assert shown["status"] == "crashed" and abs(shown["ended_at"] - stale) < 1


def test_a_run_that_cannot_be_recorded_does_not_stop_training(tmp_repo):
    (tmp_repo.root / ".runicorn" / "runs").write_text("not a folder")  # the run store is unusable
    done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import runicorn as rn
        with rn.init(name="x") as run:
            for i in range(3):
                rn.log({"loss": i})
            run.summary["best"] = 1
            rn.save("*.py")
        print("trained anyway")
        """)], cwd=tmp_repo.root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "trained anyway" in done.stdout and "this run is not recorded" in done.stderr


def _wait_for(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _state(pid: int) -> str | None:
    """The /proc state letter of PID (R, S, Z …), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().decode().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def _flushed(runs_dir, size: int = 200):
    found = list(runs_dir.glob("*/metrics.jsonl")) if runs_dir.is_dir() else []
    return found[0] if found and found[0].stat().st_size > size else None


SELF_KILL = textwrap.dedent("""
    import os, signal, sys, time, runicorn as rn
    rn.init()
    for step in range(20):
        rn.log({"loss": 1.0 / (step + 1), "acc": step / 20})
    time.sleep(2.5)                               # the flusher writes everything
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    """)


def test_a_command_killed_by_a_signal_under_runicorn_run_is_crashed_with_its_summary(tmp_repo):
    (tmp_repo.root / "oom.py").write_text(SELF_KILL)
    done = tmp_repo.rn_proc("run", "--name", "oom", "--", sys.executable, "oom.py", "SIGKILL")
    assert done.returncode == 137  # as a shell reports it
    assert "crashed (exit code 137, the command was killed by signal 9 (SIGKILL))" in done.stderr
    (row,) = json.loads(ok(tmp_repo.rn("runs", "list", "--json")).out)["runs"]
    doc = json.loads(ok(tmp_repo.rn("runs", "show", row["run_id"], "--json")).out)
    assert (doc["status"], doc["exit_code"]) == ("crashed", 137)
    assert doc["failure"] == {"type": "SIGKILL", "signal": 9, "message": "the command was killed by signal 9 (SIGKILL)"}
    assert doc["summary"] == {"loss": 1 / 20, "acc": 19 / 20}  # from the metrics log: the child never finished
    assert doc["metric_keys"] == ["acc", "loss"] and doc["ended_at"] >= doc["started_at"]
    from runicorn.api import metric_series
    from runicorn.core.repo import Repo
    assert len(metric_series(Repo(tmp_repo.root), row["run_id"], "loss")) == 20
    ok(tmp_repo.rn("runs", "delete", "--yes", row["run_id"]))
    done = tmp_repo.rn_proc("run", "--json", "--", sys.executable, "oom.py", "SIGTERM")
    assert done.returncode == 143 and json.loads(done.stdout)["status"] == "crashed"


FOREVER_PID = textwrap.dedent("""
    import os, sys, time, runicorn as rn
    rn.init()
    open(sys.argv[1], "w").write(str(os.getpid()))
    step = 0
    while True:
        rn.log({"loss": 1.0 / (step + 1)})
        step += 1
        time.sleep(0.001)
    """)


def _kill_the_wrapper(tmp_repo, tmp_path, *cmd: str):
    """Start `runicorn run -- CMD` logging forever, kill -9 the wrapper once metrics flow; returns
    (pid of the logging process, metrics.jsonl)."""
    (tmp_repo.root / "forever.py").write_text(FOREVER_PID)
    pid_file = tmp_path / "child.pid"
    wrapper = subprocess.Popen([sys.executable, "-m", "runicorn", "run", "--", *cmd, "forever.py", str(pid_file)],
                               cwd=tmp_repo.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = _wait_for(lambda: _flushed(tmp_repo.root / ".runicorn" / "runs", 2000), what="a flush")
    child = int(pid_file.read_text())
    os.kill(wrapper.pid, signal.SIGKILL)
    wrapper.wait(timeout=30)
    return child, metrics


def test_the_command_dies_with_a_killed_runicorn_run(tmp_repo, tmp_path):
    child, metrics = _kill_the_wrapper(tmp_repo, tmp_path, sys.executable)
    try:
        _wait_for(lambda: _state(child) in (None, "Z"), timeout=10, what="the orphan to die")  # PR_SET_PDEATHSIG
    finally:
        if _state(child) not in (None, "Z"):
            os.kill(child, signal.SIGKILL)
    (row,) = json.loads(ok(tmp_repo.rn("runs", "list", "--json")).out)["runs"]
    assert row["status"] == "crashed"
    size = metrics.stat().st_size
    time.sleep(1.5)
    assert metrics.stat().st_size == size


def test_an_orphan_the_kernel_cannot_reach_stops_logging_into_the_crashed_run(tmp_repo, tmp_path):
    """`sh -c 'python …; true'`: sh dies with the wrapper, but its child python lives on (the death
    signal is not inherited). Its flusher sees the owner gone and writes nothing more."""
    child, metrics = _kill_the_wrapper(tmp_repo, tmp_path, "sh", "-c", f'"$0" "$@"; true', sys.executable)
    try:
        assert _state(child) not in (None, "Z")  # alive, still calling rn.log
        size = _wait_for(lambda: _stable_size(metrics), timeout=10, what="the orphan to stop writing")
        (row,) = json.loads(ok(tmp_repo.rn("runs", "list", "--json")).out)["runs"]
        assert row["status"] == "crashed"
        time.sleep(1.5)
        assert metrics.stat().st_size == size and _state(child) not in (None, "Z")
    finally:
        os.kill(child, signal.SIGKILL)


def _stable_size(path, quiet_s: float = 1.5) -> int | None:
    """PATH's size once it has not changed for QUIET_S (the flusher writes about every second)."""
    before = path.stat().st_size
    time.sleep(quiet_s)
    return before if path.stat().st_size == before else None


def test_a_killed_unreaped_process_counts_as_dead(tmp_repo):
    """kill -9 and no wait(): the process stays a zombie (state Z) until its parent reaps it."""
    (tmp_repo.root / "forever.py").write_text(FOREVER)
    proc = subprocess.Popen([sys.executable, "forever.py"], cwd=tmp_repo.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _flushed(tmp_repo.root / ".runicorn" / "runs"), what="a flush")
        assert [r["status"] for r in json.loads(ok(tmp_repo.rn("runs", "list", "--json")).out)["runs"]] == ["running"]
        os.kill(proc.pid, signal.SIGKILL)
        _wait_for(lambda: _state(proc.pid) == "Z", timeout=10, what="a zombie")
        assert [r["status"] for r in json.loads(ok(tmp_repo.rn("runs", "list", "--json")).out)["runs"]] == ["crashed"]
        assert _state(proc.pid) == "Z"  # nobody reaped it: it was judged dead as a zombie
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_a_crashed_run_ends_at_its_last_metrics_write_when_that_is_later_than_the_heartbeat(tmp_repo):
    (tmp_repo.root / "forever.py").write_text(FOREVER)
    proc = subprocess.Popen([sys.executable, "forever.py"], cwd=tmp_repo.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    metrics = _wait_for(lambda: _flushed(tmp_repo.root / ".runicorn" / "runs"), what="a flush")
    time.sleep(1.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    folder = metrics.parent
    started = json.loads((folder / "run.json").read_text())["started_at"]
    os.utime(folder / "heartbeat", (started, started))  # the last beat came long before the last flush
    doc = json.loads(ok(tmp_repo.rn("runs", "show", folder.name, "--json")).out)
    assert doc["status"] == "crashed"
    assert doc["ended_at"] == metrics.stat().st_mtime and doc["ended_at"] > started
    assert doc["duration"] == doc["ended_at"] - started

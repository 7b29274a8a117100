#!/usr/bin/env python3
"""Viewer benchmarks: server time of the heavy pages, bytes sent, start-up time.

Usage:
    python benchmarks/viewer_bench.py [--work DIR] [--runs 10000] [--points 1000000]
                                      [--lineage 200] [--reps 15] [--out results.json]

Builds one repository in WORK (default: a temporary folder) with
  * RUNS run folders (documents copied from one real SDK run, ids and names varied; the index is
    rebuilt with `runicorn.core.runs.rebuild_index`, the Runs read API's own rebuild),
  * one run logged through the SDK with POINTS metric points (4 keys x POINTS/4 steps),
  * a lineage chain of about LINEAGE nodes (runs that use the previous artifact and log the next),
then times, in process (FastAPI's TestClient: routing, data, template, no network), the median of
REPS requests of:
  * GET /runs (first page of 50, default sort) and /runs?q=…&sort=name (filtered),
  * GET /runs/<big run> (every metric downsampled server-side) and the bytes sent: the first
    request (cold: every series scanned by `metric_series`) and the median of the next ones (warm:
    the viewer caches the downsampled series of runs that have ended),
  * GET /lineage?ref=<middle artifact>&depth=200 (node count reported),
  * a run still running (POINTS points logged, then about 200 steps a second until the end): its
    first view (every series downsampled from scratch), then, with new points arriving, the page's
    live poll (GET /api/runs/<id>?points=500) and a reload of the page,
and the start-up time of `runicorn viewer` as a real process (spawn → first 200 on /api/dashboard).
Targets (issue 6): runs list <= 100 ms, run detail <= 300 ms and <= 200 KB, lineage <= 200 ms,
a running run's poll and reload <= 300 ms, start-up <= 2 s.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TARGETS = {"runs_list_ms": 100, "run_detail_cold_ms": 300, "run_detail_ms": 300, "run_detail_kb": 200,
           "lineage_ms": 200, "running_poll_ms": 300, "running_detail_ms": 300, "startup_s": 2}
LIVE_STOP = "stop-live-run"


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


def python(cwd: Path, code: str) -> str:
    return sh(cwd, sys.executable, "-c", code)


def make_repo(root: Path) -> None:
    root.mkdir(parents=True)
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, "git", "config", "user.name", "Bench")
    sh(root, "git", "config", "user.email", "bench@example.com")
    sh(root, sys.executable, "-m", "runicorn", "init", "-q")
    (root / "README").write_text("bench\n")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "init")


def make_runs(root: Path, count: int) -> float:
    """COUNT run folders cloned from one real run, then the runs index rebuilt; returns seconds."""
    started = time.perf_counter()
    template_id = python(root, "import runicorn as rn\nr = rn.init(project='p0', name='template', "
                               "config={'lr': 0.1}, tags=['t'])\nrn.log({'loss': 1.0}, step=0)\nprint(r.id)\nrn.finish()").strip()
    runs_dir = root / ".runicorn" / "runs"
    doc = json.loads((runs_dir / template_id / "run.json").read_text())
    base = doc["started_at"] - count * 60
    for i in range(count - 1):
        run_id = time.strftime("%Y%m%d_%H%M%S", time.gmtime(base + i * 60)) + f"_{i:06x}"
        folder = runs_dir / run_id
        folder.mkdir()
        clone = dict(doc, id=run_id, name=f"run-{i}", project=f"p{i % 10}", started_at=base + i * 60,
                     ended_at=base + i * 60 + 30, duration=30.0, status=("finished", "failed", "crashed")[i % 3],
                     config={"lr": 0.001 * (i % 100), "seed": i}, summary={"loss": 1.0 / (i + 1)})
        (folder / "run.json").write_text(json.dumps(clone))
        shutil.copy2(runs_dir / template_id / "metrics.jsonl", folder / "metrics.jsonl")
    python(root, "from runicorn.core.repo import Repo\nfrom runicorn.core import runs\nprint(runs.rebuild_index(Repo.find()))")
    return time.perf_counter() - started


def _values(steps: int) -> str:
    """Python source of a function of the step: the four metrics the big runs log."""
    return (f"def values(s):\n    return {{'loss': math.exp(-s/{steps / 5}), 'acc': 1-math.exp(-s/{steps / 4}), "
            f"'lr': 0.1*(1+math.cos(s/{steps}*math.pi))/2, 'grad': math.sin(s/100)}}\n")


def make_big_run(root: Path, points: int) -> tuple[str, float]:
    started = time.perf_counter()
    steps = points // 4
    run_id = python(root, f"import math, runicorn as rn\n{_values(steps)}"
                          f"r = rn.init(project='big', name='one-million')\n"
                          f"for s in range({steps}):\n    rn.log(values(s), step=s)\n"
                          "print(r.id)\nrn.finish()").strip()
    return run_id, time.perf_counter() - started


def start_live_run(root: Path, points: int) -> tuple[subprocess.Popen, str, float]:
    """A run that logs POINTS points, then one step every 5 ms until the file LIVE_STOP appears."""
    started = time.perf_counter()
    steps = points // 4
    code = (f"import math, os, time, runicorn as rn\n{_values(steps)}r = rn.init(project='big', name='still-running')\n"
            f"for s in range({steps}):\n    rn.log(values(s), step=s)\n"
            "print(r.id, flush=True)\n"
            f"s = {steps}\nwhile not os.path.exists({LIVE_STOP!r}):\n"
            "    rn.log(values(s), step=s)\n    s += 1\n    time.sleep(0.005)\nrn.finish()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    if not run_id:
        raise RuntimeError("the live run did not start")
    return proc, run_id, time.perf_counter() - started


def stop_live_run(root: Path, proc: subprocess.Popen) -> None:
    (root / LIVE_STOP).write_text("")
    proc.wait(timeout=120)


def make_lineage(root: Path, nodes: int) -> tuple[str, float]:
    """A chain data → run → artifact → run → … of about NODES nodes; returns the middle artifact ref."""
    started = time.perf_counter()
    hops = max(1, nodes // 2)
    python(root, f"""
import os, runicorn as rn
os.makedirs('work', exist_ok=True)
prev = None
for i in range({hops}):
    with rn.init(project='lineage', name=f'step-{{i}}'):
        if prev:
            rn.use_artifact(prev)
        open('work/f.txt', 'w').write(str(i))
        a = rn.Artifact(f'stage-{{i}}', type='dataset'); a.add_file('work/f.txt')
        rn.log_artifact(a)
        prev = f'stage-{{i}}:latest'
""")
    return f"stage-{hops // 2}:v1", time.perf_counter() - started


def timed(client, url: str, reps: int) -> tuple[float, int]:
    """(median ms, bytes) of REPS GETs of URL (one warm-up first)."""
    first = client.get(url)
    assert first.status_code == 200, (url, first.status_code, first.text[:300])
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        r = client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200
    return statistics.median(times), len(first.content)


def polled(client, url: str, reps: int, pause: float) -> float:
    """Median ms of REPS GETs of URL, PAUSE seconds apart (a live run logs in between)."""
    times = []
    for _ in range(reps):
        time.sleep(pause)
        t = time.perf_counter()
        r = client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return statistics.median(times)


def time_running_run(client, run_id: str, reps: int, logged: int) -> dict:
    """A running run: first view (from scratch), then live polls and reloads while it grows past
    LOGGED steps."""
    res: dict = {}
    deadline = time.monotonic() + 300
    while _last_step(client, run_id) < logged - 1:  # the flusher is still indexing the first points
        assert time.monotonic() < deadline, "the live run's points did not reach the index"
        time.sleep(0.2)
    t = time.perf_counter()
    page = client.get(f"/runs/{run_id}")
    res["running_first_view_ms"] = (time.perf_counter() - t) * 1000
    assert page.status_code == 200 and 'data-status="running"' in page.text, "the live run is not running"
    poll = f"/api/runs/{run_id}?points=500"  # what viewer.js asks every 3 s
    client.get(poll)
    res["running_poll_ms"] = polled(client, poll, reps, 0.5)
    res["running_detail_ms"] = polled(client, f"/runs/{run_id}", reps, 0.5)
    res["running_steps_added"] = _last_step(client, run_id) + 1 - logged
    return res


def _last_step(client, run_id: str) -> int:
    r = client.get(f"/api/runs/{run_id}/metrics/loss?points=10")
    return r.json()["step"][-1] if r.status_code == 200 and r.json()["step"] else -1


def startup(root: Path) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "runicorn", "viewer", "--port", str(port), "-q"], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/dashboard", timeout=5) as r:
                    if r.status == 200:
                        return time.perf_counter() - t
            except OSError:
                if time.perf_counter() - t > 30:
                    raise
                time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--lineage", type=int, default=200)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="viewer-bench-"))
    root = work / "repo"
    if root.exists():
        shutil.rmtree(root)
    os.environ.setdefault("RUNICORN_GC_GRACE_PERIOD", "1h")
    make_repo(root)
    setup = {"runs_s": round(make_runs(root, args.runs), 1)}
    big, setup["big_run_s"] = make_big_run(root, args.points)
    ref, setup["lineage_s"] = make_lineage(root, args.lineage)

    from fastapi.testclient import TestClient

    from runicorn.viewer.app import create_app

    client = TestClient(create_app(root), base_url="http://127.0.0.1")
    res: dict = {"setup_seconds": {k: round(v, 1) for k, v in setup.items()}}
    res["runs_list_ms"], res["runs_list_bytes"] = timed(client, "/runs", args.reps)
    res["runs_filtered_ms"], _ = timed(client, "/runs?q=run-99&sort=name&status=failed", args.reps)
    res["runs_page_100_ms"], _ = timed(client, "/runs?page=100", args.reps)
    small = client.get("/api/runs?project=p0&per_page=1").json()["runs"][0]["id"]
    client.get(f"/runs/{small}")  # templates compiled, connections open: what is left is this run's data
    t = time.perf_counter()
    assert client.get(f"/runs/{big}").status_code == 200
    res["run_detail_cold_ms"] = (time.perf_counter() - t) * 1000
    res["run_detail_ms"], size = timed(client, f"/runs/{big}", args.reps)
    res["run_detail_kb"] = round(size / 1024, 1)
    res["run_detail_json_kb"] = round(len(client.get(f"/api/runs/{big}").content) / 1024, 1)
    t = time.perf_counter()
    assert client.get(f"/api/runs/{big}/metrics/loss?x_min=2000&x_max=80000").status_code == 200
    res["metric_zoom_cold_ms"] = (time.perf_counter() - t) * 1000  # a range not seen before: one scan
    res["metric_zoom_ms"], _ = timed(client, f"/api/runs/{big}/metrics/loss?x_min=1000&x_max=90000", args.reps)
    res["lineage_ms"], _ = timed(client, f"/lineage?ref={ref}&depth=200", args.reps)
    res["lineage_nodes"] = len(client.get(f"/api/lineage?ref={ref}&depth=200").json()["graph"]["nodes"])
    live, running, started = start_live_run(root, args.points)
    res["setup_seconds"]["live_run_s"] = round(started, 1)
    try:
        res.update(time_running_run(client, running, args.reps, args.points // 4))
    finally:
        stop_live_run(root, live)
    res["startup_s"] = statistics.median(startup(root) for _ in range(3))
    res["total_runs"] = client.get("/api/runs?per_page=1").json()["total"]
    res = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in res.items()}
    res["within_targets"] = {k: res[k] <= v for k, v in TARGETS.items()}
    print(json.dumps(res, indent=2))
    if args.out:
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0 if all(res["within_targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

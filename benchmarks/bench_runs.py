"""Runs benchmarks (issue 4): rn.log throughput (end to end, and the call alone), init+finish overhead,
`runs list` over 10,000 runs (and the first one after the index was deleted), index size per million
metric points. Run with the Python that has Runicorn installed:

    .venv/bin/python benchmarks/bench_runs.py [--work /tmp/rn-bench-runs] [--runs 10000] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path


def sh(cwd: Path, *args: str) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def make_repo(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    sh(path, "git", "init", "-q", "-b", "main")
    sh(path, sys.executable, "-m", "runicorn", "init", "-q")
    sh(path, "git", "add", "-A")
    sh(path, "git", "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "init")
    return path


LOG_SCRIPT = """
import json, sys, time, runicorn as rn
n = int(sys.argv[1])
run = rn.init(capture_output=False)
keys = [f"k{i}" for i in range(10)]
t0 = time.perf_counter()
for step in range(n):
    rn.log({"loss": 1.0 / (step + 1), "acc": 0.5, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7,
            "k8": 8, "k9": step})
t1 = time.perf_counter()
rn.finish()
t2 = time.perf_counter()
print(json.dumps({"calls": n, "log_s": t1 - t0, "finish_s": t2 - t1, "run_id": run.id}))
"""


def bench_log(repo: Path, n: int) -> dict:
    (repo / "log_bench.py").write_text(LOG_SCRIPT)
    out = subprocess.run([sys.executable, "log_bench.py", str(n)], cwd=repo, check=True, capture_output=True,
                         text=True).stdout
    r = json.loads(out)
    r["calls_per_s"] = r["calls"] / r["log_s"]
    return r


CALL_SCRIPT = """
import json, sys, time
import runicorn.core.run_live as live
live.FLUSH_EVERY_S = 1e6  # the call alone: no flush competes for the GIL during the loop
import runicorn as rn
n = int(sys.argv[1])
run = rn.init(capture_output=False)
best = float("inf")
for _ in range(5):
    t = time.perf_counter()
    for step in range(n):
        rn.log({"loss": 1.0 / (step + 1), "acc": 0.5, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7,
                "k8": 8, "k9": step})
    best = min(best, time.perf_counter() - t)
    run._buffer.clear()  # what was measured is the call, not the flush
rn.finish()
print(json.dumps({"calls": n, "best_of_5_s": best, "calls_per_s": n / best}))
"""


def bench_log_call(repo: Path, n: int) -> dict:
    (repo / "call_bench.py").write_text(CALL_SCRIPT)
    return json.loads(subprocess.run([sys.executable, "call_bench.py", str(n)], cwd=repo, check=True,
                                     capture_output=True, text=True).stdout)


def bench_init_finish(repo: Path, reps: int = 7) -> dict:
    def timed(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=repo, check=True, capture_output=True)
        return time.perf_counter() - t

    bare = statistics.median(timed("import runicorn") for _ in range(reps))
    full = statistics.median(timed("import runicorn as rn; rn.init(); rn.finish()") for _ in range(reps))
    return {"python_import_s": bare, "init_finish_script_s": full, "overhead_s": full - bare}


def bench_index_size(repo: Path, log_result: dict) -> dict:
    db = repo / ".runicorn" / "index.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    points = con.execute("SELECT COUNT(*) FROM run_points").fetchone()[0]
    pages = con.execute("SELECT SUM(pgsize) FROM dbstat WHERE name IN ('run_points', 'run_series')").fetchone()[0] \
        if _has_dbstat(con) else None
    con.close()
    jsonl = repo / ".runicorn" / "runs" / log_result["run_id"] / "metrics.jsonl"
    size = os.path.getsize(db)
    return {"points": points, "index_db_bytes": size, "points_tables_bytes": pages,
            "index_bytes_per_million_points": (pages or size) / points * 1e6,
            "metrics_jsonl_bytes_per_million_points": jsonl.stat().st_size / points * 1e6}


def _has_dbstat(con) -> bool:
    try:
        con.execute("SELECT 1 FROM dbstat LIMIT 1")
        return True
    except sqlite3.OperationalError:
        return False


def bench_list(repo: Path, count: int) -> dict:
    """COUNT synthetic finished runs (documents written directly), indexed by `index rebuild`."""
    runs = repo / ".runicorn" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    base = time.time() - count
    for i in range(count):
        run_id = time.strftime("%Y%m%d_%H%M%S", time.gmtime(base + i)) + f"_{i:06d}"
        folder = runs / run_id
        folder.mkdir()
        doc = {"runicorn_run": 1, "id": run_id, "project": f"p{i % 10}", "name": f"run{i}", "tags": [f"t{i % 7}"],
               "notes": "", "status": "finished", "started_at": base + i, "ended_at": base + i + 1, "duration": 1.0,
               "exit_code": 0, "host": "h", "user": "u", "config": {"lr": i / count, "bs": 32},
               "summary": {"loss": 1 / (i + 1)}, "git": {"commit": "ab" * 20, "branch": "main", "dirty": False}}
        (folder / "run.json").write_text(json.dumps(doc))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "runicorn", "index", "rebuild", "-q"], cwd=repo, check=True)
    rebuild = time.perf_counter() - t
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from runicorn.core.repo import Repo
    from runicorn.core.runs import list_runs

    r = Repo(repo)
    list_runs(r)  # warm
    samples = {}
    for label, kwargs in (("newest 50", {}), ("project filter", {"project": "p3"}), ("tag filter", {"tag": "t2"}),
                          ("search", {"search": "run99"}), ("sort by name", {"sort": "name"})):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            rows, total = list_runs(r, **kwargs)
            times.append(time.perf_counter() - t)
        samples[label] = {"median_ms": statistics.median(times) * 1000, "total": total}
    cli = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "runicorn", "runs", "list", "--json"], cwd=repo, check=True,
                       capture_output=True)
        cli.append(time.perf_counter() - t)
    r.index.close()
    for suffix in ("", "-wal", "-shm"):  # the index is lost: the next `runs list` fills it from the folders
        Path(str(repo / ".runicorn" / "index.db") + suffix).unlink(missing_ok=True)
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "runicorn", "runs", "list", "--json"], cwd=repo, check=True,
                          capture_output=True, text=True)
    refill = time.perf_counter() - t
    assert json.loads(done.stdout)["total"] == count, done.stderr
    return {"runs": count, "index_rebuild_s": rebuild, "list_runs": samples,
            "cli_runs_list_json_s": statistics.median(cli), "cli_runs_list_after_index_deleted_s": refill}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", default="/tmp/rn-bench-runs")
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--log-calls", type=int, default=100_000)
    ap.add_argument("--out")
    args = ap.parse_args()
    work = Path(args.work)
    results = {}
    repo = make_repo(work / "log")
    results["log"] = bench_log(repo, args.log_calls)
    results["index_size"] = bench_index_size(repo, results["log"])
    results["log_call"] = bench_log_call(repo, args.log_calls)
    results["init_finish"] = bench_init_finish(make_repo(work / "init"))
    results["list"] = bench_list(make_repo(work / "list"), args.runs)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()

"""Runs: the SDK in real processes, what a run records, the runs CLI, the index and its rebuild."""
from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import git, ok


def script(repo, code: str, *args: str, env: dict | None = None, name: str = "train.py",
           cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Write CODE to a script in the repo and run it with this Python (a real training process)."""
    where = cwd or repo.root
    path = where / name
    path.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(path), *args], cwd=where, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def runs_json(repo, *args: str) -> dict:
    result = ok(repo.rn("runs", "list", "--json", *args))
    return json.loads(result.out)


def only_run(repo) -> dict:
    data = runs_json(repo)
    assert data["total"] == 1, data
    return json.loads(ok(repo.rn("runs", "show", data["runs"][0]["run_id"], "--json")).out)


TRAIN = """
import runicorn as rn
run = rn.init(project="vision", name="resnet", config={"lr": 0.001, "opt": {"name": "adam"}}, tags=["base"],
              notes="first try")
for step in range(50):
    rn.log({"loss": 1.0 / (step + 1), "acc": step / 50})
run.summary["best_acc"] = 0.98
print("epoch done")
rn.save("outputs/*.json")
rn.finish()
"""


def test_sdk_run_records_metrics_config_summary_logs_and_files(tmp_repo):
    tmp_repo.gen({"outputs": {"scores.json": '{"f1": 0.5}'}})
    done = script(tmp_repo, TRAIN)
    assert done.returncode == 0, done.stderr
    assert "epoch done" in done.stdout  # tee'd: the user still sees the output
    doc = only_run(tmp_repo)
    assert doc["status"] == "finished" and doc["exit_code"] == 0
    assert doc["project"] == "vision" and doc["name"] == "resnet" and doc["tags"] == ["base"]
    assert doc["notes"] == "first try"
    assert doc["config"] == {"lr": 0.001, "opt": {"name": "adam"}}
    assert doc["summary"]["best_acc"] == 0.98
    assert doc["summary"]["loss"] == pytest.approx(1 / 50)  # default: the last logged value
    assert doc["metric_keys"] == ["acc", "loss"]
    assert doc["duration"] >= 0 and doc["ended_at"] >= doc["started_at"]
    folder = tmp_repo.root / ".runicorn" / "runs" / doc["id"]
    assert "epoch done" in (folder / "output.log").read_text()
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 50 and json.loads(lines[3])["step"] == 3
    saved = doc["files"][0]
    assert saved["path"] == "outputs/scores.json"
    cached = tmp_repo.root / ".runicorn" / "cache" / "objects" / saved["oid"][:2] / saved["oid"][2:]
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == saved["oid"]
    series = tmp_repo.rn("runs", "show", doc["id"])
    assert "best_acc" in series.out and "resnet" in series.out


def test_run_id_format_and_git_state(tmp_repo):
    tmp_repo.gen({"tracked.py": "a = 1\n"})
    head = tmp_repo.commit("code")
    git(tmp_repo.root, "remote", "add", "origin", "https://user:secret@example.com/team/repo.git")
    (tmp_repo.root / "tracked.py").write_text("a = 2\n")
    tmp_repo.gen({"new_module.py": "print('untracked')\n", "big.txt": "x" * (2 << 20),
                  "ignored.log": "secret", ".gitignore": "*.log\n"})
    done = script(tmp_repo, "import runicorn as rn\nrn.init()\nrn.finish()\n")
    assert done.returncode == 0, done.stderr
    doc = only_run(tmp_repo)
    import re
    assert re.fullmatch(r"\d{8}_\d{6}_[a-z0-9]{6}", doc["id"])
    g = doc["git"]
    assert g["commit"] == head and g["branch"] == "main" and g["dirty"] is True
    assert g["remote_url"] == "https://example.com/team/repo.git"  # credentials never recorded
    diff = doc["diff_text"]
    assert "-a = 1" in diff and "+a = 2" in diff  # tracked change
    assert "+print('untracked')" in diff  # untracked file, content included
    assert "secret" not in diff and "ignored.log" not in diff  # .gitignore respected
    big = [u for u in g["untracked"] if u["path"] == "big.txt"][0]
    assert big["stored"] is False and "cap" in big["reason"]
    assert "xxxxxxxx" not in diff
    # the diff is an object in the cache and applies with git to reproduce the work tree
    oid = g["diff"]["oid"]
    assert hashlib.sha256(diff.encode()).hexdigest() == oid
    clone = tmp_repo.root.parent / "clone"
    git(tmp_repo.root.parent, "clone", "-q", str(tmp_repo.root), str(clone))
    patch = tmp_repo.root.parent / "run.patch"
    patch.write_text(diff)
    git(clone, "apply", str(patch))
    assert (clone / "tracked.py").read_text() == "a = 2\n"
    assert (clone / "new_module.py").read_text() == "print('untracked')\n"


def test_data_state_and_environment(tmp_repo):
    tmp_repo.gen({"data": {"a.csv": "1,2\n"}, "model.bin": b"\x00" * 100})
    ok(tmp_repo.rn("add", "data", "model.bin"))
    pointer_oid = __import__("yaml").safe_load((tmp_repo.root / "model.bin.rn").read_text())["oid"]
    env = {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "team/repo", "GITHUB_RUN_ID": "42", "RUNNER_NAME": "runner-7"}
    done = script(tmp_repo, """
        import runicorn as rn
        run = rn.init()
        print(run.lineage_inputs())
        rn.finish()
        """, "--epochs", "3", env=env)
    assert done.returncode == 0, done.stderr
    doc = only_run(tmp_repo)
    data = {d["path"]: d for d in doc["data"]}
    assert set(data) == {"data", "model.bin"} and data["model.bin"]["oid"] == pointer_oid
    assert f"'data': 'model.bin', 'oid': '{pointer_oid}'" in done.stdout
    e = doc["environment"]
    assert e["python"] == sys.version.split()[0] and e["python_executable"]
    assert e["argv"][1:] == ["--epochs", "3"] and e["cwd"] == str(tmp_repo.root)
    assert "PyYAML" in e["packages"] and e["cpu_count"] >= 1 and e["memory_bytes"] > 0
    assert e["hostname"] and e["platform"]
    assert e["ci"] == {"provider": "github-actions", "job_url": "https://github.com/team/repo/actions/runs/42",
                       "runner": "runner-7"}


def test_sys_exit_with_a_code_outside_a_with_block_marks_the_run_failed(tmp_repo):
    done = script(tmp_repo, """
        import sys
        import runicorn as rn
        rn.init(name="gave-up")
        rn.log({"loss": 2.0})
        sys.exit(3)
        """)
    assert done.returncode == 3
    doc = only_run(tmp_repo)
    assert doc["status"] == "failed" and doc["exit_code"] == 3 and doc["summary"]["loss"] == 2.0


def test_uncaught_exception_marks_failed_with_traceback(tmp_repo):
    done = script(tmp_repo, """
        import runicorn as rn
        rn.init(name="crashy")
        rn.log({"loss": 1.0})
        raise ValueError("diverged")
        """)
    assert done.returncode == 1 and "ValueError: diverged" in done.stderr
    doc = only_run(tmp_repo)
    assert doc["status"] == "failed" and doc["exit_code"] == 1
    assert doc["failure"] == {"type": "ValueError", "message": "diverged"}
    assert doc["summary"]["loss"] == 1.0
    logs = ok(tmp_repo.rn("runs", "show", doc["id"], "--logs", "10000")).out
    assert "Traceback" in logs and "ValueError: diverged" in logs


def test_context_manager_finishes_and_fails(tmp_repo):
    done = script(tmp_repo, """
        import runicorn as rn
        with rn.init(name="ok") as run:
            run.log({"x": 1})
        try:
            with rn.init(name="bad") as run:
                raise KeyError("k")
        except KeyError:
            pass
        """)
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in runs_json(tmp_repo)["runs"]}
    assert rows["ok"]["status"] == "finished" and rows["bad"]["status"] == "failed"


def test_outside_a_repository_uses_the_user_store(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "t.py").write_text("import runicorn as rn\nr = rn.init(name='loose')\nrn.log({'a': 1})\nrn.finish()\n")
    done = subprocess.run([sys.executable, "t.py"], cwd=folder, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "not in a git repository" in done.stderr and "runicorn" in done.stderr
    store = Path(os.environ["HOME"]) / ".local" / "share" / "runicorn" / "runs"
    (run_dir,) = list(store.iterdir())
    doc = json.loads((run_dir / "run.json").read_text())
    assert doc["status"] == "finished" and doc["git"] is None and doc["name"] == "loose"
    listed = subprocess.run([sys.executable, "-m", "runicorn", "runs", "list", "--json"], cwd=folder,
                            capture_output=True, text=True, timeout=60)
    assert json.loads(listed.stdout)["total"] == 1


def test_runicorn_run_wraps_a_command_and_the_child_joins(tmp_repo):
    tmp_repo.gen({"child.py": textwrap.dedent("""
        import sys, runicorn as rn
        run = rn.init(config={"lr": 0.5}, project="ignored-when-set")
        for i in range(5):
            rn.log({"loss": 5 - i})
        print("child out"); print("child err", file=sys.stderr)
        sys.exit(int(sys.argv[1]))
        """)})
    done = tmp_repo.rn_proc("run", "--name", "wrapped", "--project", "p1", "--tag", "t1", "--tag", "t2", "--",
                            sys.executable, "child.py", "0")
    assert done.returncode == 0, done.stderr
    assert "child out" in done.stdout and "child err" in done.stderr
    failed = tmp_repo.rn_proc("run", "--json", "--", sys.executable, "child.py", "3")
    assert failed.returncode == 3
    report = json.loads(failed.stdout)  # --json: the command's stdout moves to stderr
    assert report["status"] == "failed" and report["exit_code"] == 3 and "child out" in failed.stderr
    rows = {r["name"]: r for r in runs_json(tmp_repo)["runs"]}
    assert len(rows) == 2  # the child joined: one run per command, not two
    good = json.loads(ok(tmp_repo.rn("runs", "show", rows["wrapped"]["run_id"], "--json")).out)
    assert good["status"] == "finished" and good["project"] == "p1" and good["tags"] == ["t1", "t2"]
    assert good["config"] == {"lr": 0.5} and good["summary"]["loss"] == 1
    assert good["environment"]["argv"] == [sys.executable, "child.py", "0"]
    logs = (tmp_repo.root / ".runicorn" / "runs" / good["id"] / "output.log").read_text()
    assert "child out" in logs and "child err" in logs and logs.count("child out") == 1
    bad = [r for n, r in rows.items() if n != "wrapped"][0]
    assert bad["status"] == "failed" and bad["exit_code"] == 3


def test_runicorn_run_bad_command_changes_nothing(tmp_repo):
    result = tmp_repo.rn("run", "--", "no-such-command-xyz")
    assert result.code == 2 and "command not found: no-such-command-xyz" in result.err
    result = tmp_repo.rn("run")
    assert result.code == 2
    assert not (tmp_repo.root / ".runicorn" / "runs").exists() or not list((tmp_repo.root / ".runicorn" / "runs").iterdir())


def _make_runs(tmp_repo):
    done = script(tmp_repo, """
        import runicorn as rn
        for i, (project, tags) in enumerate([("a", ["x"]), ("a", ["y"]), ("b", ["x", "y"])]):
            with rn.init(project=project, name=f"run{i}", tags=tags, config={"lr": i, "bs": 32}) as run:
                rn.log({"loss": 10 - i})
        """)
    assert done.returncode == 0, done.stderr


def test_runs_list_filters_sort_and_json(tmp_repo):
    _make_runs(tmp_repo)
    assert runs_json(tmp_repo)["total"] == 3
    assert {r["name"] for r in runs_json(tmp_repo, "--project", "a")["runs"]} == {"run0", "run1"}
    assert {r["name"] for r in runs_json(tmp_repo, "--tag", "y")["runs"]} == {"run1", "run2"}
    assert runs_json(tmp_repo, "--status", "failed")["total"] == 0
    head = tmp_repo.git("rev-parse", "HEAD").strip()
    assert runs_json(tmp_repo, "--commit", head[:7])["total"] == 3
    assert runs_json(tmp_repo, "--branch", "nope")["total"] == 0
    assert runs_json(tmp_repo, "--since", "1h")["total"] == 3
    assert runs_json(tmp_repo, "--since", "2999-01-01")["total"] == 0
    assert [r["name"] for r in runs_json(tmp_repo, "--sort", "name")["runs"]] == ["run0", "run1", "run2"]
    page = runs_json(tmp_repo, "--sort", "-name", "--limit", "1", "--offset", "1")
    assert page["total"] == 3 and [r["name"] for r in page["runs"]] == ["run1"]
    assert runs_json(tmp_repo, "--search", "run2")["total"] == 1
    human = ok(tmp_repo.rn("runs", "list")).out
    assert "run0" in human and "finished" in human
    bad = tmp_repo.rn("runs", "list", "--status", "sleeping")
    assert bad.code == 2 and "unknown status" in bad.err
    bad = tmp_repo.rn("runs", "list", "--sort", "lr")
    assert bad.code == 2 and "cannot sort by" in bad.err


def test_runs_compare_highlights_differences(tmp_repo):
    _make_runs(tmp_repo)
    ids = [r["run_id"] for r in runs_json(tmp_repo, "--sort", "name")["runs"]]
    table = json.loads(ok(tmp_repo.rn("runs", "compare", *ids[:2], "--json")).out)
    assert table["config"]["lr"] == [0, 1] and table["config"]["bs"] == [32, 32]
    assert table["different"]["config"] == ["lr"] and table["different"]["summary"] == ["loss"]
    human = ok(tmp_repo.rn("runs", "compare", *ids)).out
    assert "lr" in human and "bs" not in human and "hidden" in human
    # piped (no colour): a plain `*` column marks what differs
    every = ok(tmp_repo.rn("runs", "compare", "--all", *ids)).out.splitlines()
    cells = {}  # key -> the row's words, marker first when there is one
    for line in every:
        words = line.replace("\u2502", " ").split()  # rich's column rule
        if words and words[0] == "*":
            cells[words[1]] = words
        elif words:
            cells[words[0]] = words
    assert cells["lr"][:2] == ["*", "lr"] and cells["loss"][:2] == ["*", "loss"]
    assert cells["bs"] == ["bs", "32", "32", "32"]
    assert "(* marks keys whose values differ)" in every
    assert tmp_repo.rn("runs", "compare", ids[0]).code == 2


def test_runs_show_and_delete_errors(tmp_repo):
    _make_runs(tmp_repo)
    missing = tmp_repo.rn("runs", "show", "20200101_000000_abcdef")
    assert missing.code == 1 and "no run '20200101_000000_abcdef'" in missing.err
    malformed = tmp_repo.rn("runs", "show", "../../etc")
    assert malformed.code == 2 and "is not a run id" in malformed.err
    run_id = runs_json(tmp_repo, "--search", "run0")["runs"][0]["run_id"]
    refused = tmp_repo.rn("runs", "delete", run_id)
    assert refused.code == 2 and "--yes" in refused.err
    assert (tmp_repo.root / ".runicorn" / "runs" / run_id).is_dir()
    ok(tmp_repo.rn("runs", "delete", run_id, "--yes"))
    assert not (tmp_repo.root / ".runicorn" / "runs" / run_id).exists()
    assert runs_json(tmp_repo)["total"] == 2


def test_index_rebuild_restores_what_remains(tmp_repo):
    _make_runs(tmp_repo)
    runs_dir = tmp_repo.root / ".runicorn" / "runs"
    index = tmp_repo.root / ".runicorn" / "index.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    listed = ok(tmp_repo.rn("runs", "list", "--json"))  # a fresh, empty index next to 3 run folders
    assert json.loads(listed.out)["total"] == 3  # filled from the folders, not "0 runs"
    assert "the run index was empty; indexed 3 runs" in listed.err and "runicorn index rebuild" in listed.err
    assert "index was empty" not in ok(tmp_repo.rn("runs", "list")).err  # once
    rebuilt = json.loads(ok(tmp_repo.rn("index", "rebuild", "--json")).out)
    assert rebuilt["runs"]["runs"] == 3 and rebuilt["runs"]["points"] == 3
    assert runs_json(tmp_repo)["total"] == 3
    victim = runs_json(tmp_repo, "--search", "run1")["runs"][0]["run_id"]
    import shutil
    shutil.rmtree(runs_dir / victim)  # deleted by hand, no rebuild: the list does not show it
    listed = runs_json(tmp_repo)
    assert {r["name"] for r in listed["runs"]} == {"run0", "run2"} and listed["total"] == 2
    assert "run1" not in ok(tmp_repo.rn("runs", "list")).out
    shown = tmp_repo.rn("runs", "show", victim)
    assert shown.code == 1 and f"no run {victim!r}" in shown.err
    with sqlite3.connect(index) as db:
        assert db.execute("SELECT COUNT(*) FROM runs WHERE run_id = ?", (victim,)).fetchone()[0] == 0
    ok(tmp_repo.rn("index", "rebuild"))
    assert {r["name"] for r in runs_json(tmp_repo)["runs"]} == {"run0", "run2"}
    with sqlite3.connect(index) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM run_series WHERE run_id = ?", (victim,)).fetchone()[0] == 0


def test_list_runs_fills_an_empty_index_once_and_tells_the_caller(tmp_repo):
    """The read API (the viewer uses it too) fills an empty index itself; the CLI prints the callback's news."""
    _make_runs(tmp_repo)
    index = tmp_repo.root / ".runicorn" / "index.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    from runicorn.core.repo import Repo
    from runicorn.core.runs import list_runs
    seen = []
    rows, total = list_runs(Repo(tmp_repo.root), on_rebuild=seen.append)
    assert total == 3 and seen == [{"runs": 3, "points": 3, "skipped": []}]
    rows, total = list_runs(Repo(tmp_repo.root), on_rebuild=seen.append)
    assert total == 3 and len(seen) == 1


def test_metric_series_downsampled_keeps_extremes(tmp_repo):
    done = script(tmp_repo, """
        import math, runicorn as rn
        rn.init()
        for i in range(20000):
            rn.log({"wave": math.sin(i / 100.0) + (50.0 if i == 12345 else 0.0) - (50.0 if i == 777 else 0.0)})
        rn.finish()
        """)
    assert done.returncode == 0, done.stderr
    from runicorn.api import metric_series
    from runicorn.core.repo import Repo
    repo = Repo(tmp_repo.root)
    run_id = runs_json(tmp_repo)["runs"][0]["run_id"]
    points = metric_series(repo, run_id, "wave", max_points=500)
    assert 2 <= len(points) <= 500
    values = [p["value"] for p in points]
    assert max(values) > 49 and min(values) < -49  # spikes survive downsampling
    assert [p["step"] for p in points] == sorted(p["step"] for p in points)
    window = metric_series(repo, run_id, "wave", max_points=5000, x_min=100, x_max=199)
    assert [p["step"] for p in window] == list(range(100, 200))
    assert set(window[0]) == {"step", "value", "time"}
    # the finished run keeps its 500-point series precomputed (one row read per chart), equal to a
    # fresh downsample, and `index rebuild` recomputes it
    store = repo.index.db
    kept = store.execute("SELECT COUNT(*) FROM run_series_preview p JOIN run_series s ON s.id = p.series "
                         "WHERE s.run_id = ? AND s.key = 'wave' AND p.max_points = 500", (run_id,)).fetchone()[0]
    assert kept == 1
    from runicorn.storage.runstore import RunIndex
    fresh = [{"step": r[0], "value": r[1], "time": r[2]}
             for r in RunIndex(repo.index)._downsample(store.execute(
                 "SELECT id FROM run_series WHERE run_id = ? AND key = 'wave'", (run_id,)).fetchone()[0], 500)]
    assert points == fresh
    ok(tmp_repo.rn("index", "rebuild"))
    rebuilt = metric_series(Repo(tmp_repo.root), run_id, "wave", max_points=500)
    assert [(p["step"], p["value"]) for p in rebuilt] == [(p["step"], p["value"]) for p in points]


BAD_VALUES = """
import warnings, runicorn as rn
run = rn.init()
rn.log({"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")}, step=0)
rn.log({"text": "hello", "none": None, "list": [1, 2], "ok": 1.5}, step=1)
rn.log({"outer": {"inner": 2, "deep": {"x": 3}}}, step=2)
rn.log({"with space": 1, "ünï/cödé": 2, "a.b-c": 3, "": 4, "ctl\\x01": 5, ("tuple",): 6}, step=3)
rn.log({"loss": 9}, step=10)
rn.log({"loss": 8}, step=5)          # backwards: rejected
rn.log("not a dict")
rn.log({"loss": 7}, step="x")
rn.log({"flag": True})                # auto step = 11
print("still alive")
rn.finish()
rn.log({"late": 1})                   # after finish: ignored with a warning
print("still alive after finish")
"""


def test_bad_values_never_crash_and_are_stored_or_rejected_clearly(tmp_repo):
    done = script(tmp_repo, BAD_VALUES, env={"PYTHONWARNINGS": "error"})  # even warnings-as-errors
    assert done.returncode == 0, done.stderr
    assert "still alive" in done.stdout and "still alive after finish" in done.stdout
    err = done.stderr
    assert "metric 'text' is a str, not a number" in err and "metric 'none' is a NoneType" in err
    assert "step 5 is before step 10" in err
    assert "rn.log takes a dict" in err and "step must be an integer" in err
    assert "control characters" in err and "is not a string" in err
    assert "is finished" in err
    doc = only_run(tmp_repo)
    assert doc["status"] == "finished"
    keys = set(doc["metric_keys"])
    assert {"nan", "inf", "ninf", "ok", "outer/inner", "outer/deep/x", "with space", "ünï/cödé", "a.b-c",
            "loss", "flag"} == keys
    from runicorn.api import metric_series
    from runicorn.core.repo import Repo
    repo = Repo(tmp_repo.root)
    # stored, and served as strict JSON: a gap in the chart plus what was there
    assert metric_series(repo, doc["id"], "nan") == [{"step": 0, "value": None, "nonfinite": "NaN",
                                                      "time": metric_series(repo, doc["id"], "nan")[0]["time"]}]
    assert metric_series(repo, doc["id"], "inf")[0]["nonfinite"] == "Infinity"
    assert metric_series(repo, doc["id"], "ninf")[0]["nonfinite"] == "-Infinity"
    assert doc["summary"]["nan"] == "NaN" and doc["summary"]["ninf"] == "-Infinity"
    json.loads(ok(tmp_repo.rn("runs", "show", doc["id"], "--json")).out, parse_constant=lambda c: 1 / 0)
    folder = tmp_repo.root / ".runicorn" / "runs" / doc["id"]
    first = json.loads((folder / "metrics.jsonl").read_text().splitlines()[0])
    assert math.isnan(first["values"]["nan"]) and first["values"]["inf"] == math.inf  # the log keeps them
    assert [(p["step"], p["value"]) for p in metric_series(repo, doc["id"], "loss")] == [(10, 9)]
    assert [(p["step"], p["value"]) for p in metric_series(repo, doc["id"], "flag")] == [(11, 1)]


def test_api_read_tracked_data_at_a_revision(tmp_repo):
    tmp_repo.gen({"data": {"a.txt": "old"}})
    ok(tmp_repo.rn("add", "data"))
    first = tmp_repo.commit("v1")
    (tmp_repo.root / "data" / "a.txt").unlink()
    tmp_repo.gen({"data": {"a.txt": "new"}})
    ok(tmp_repo.rn("add", "data"))
    tmp_repo.commit("v2")
    import runicorn as rn
    assert rn.api.read("data/a.txt", rev=first, repo=tmp_repo.root) == "old"
    assert rn.api.read("data/a.txt", rev="HEAD", repo=tmp_repo.root, mode="rb") == b"new"
    with rn.api.open("data/a.txt", rev=first, repo=tmp_repo.root) as f:
        assert f.read() == "old"
    from runicorn.errors import RunicornError
    with pytest.raises(RunicornError, match="read-only"):
        rn.api.open("data/a.txt", mode="w", repo=tmp_repo.root)
    with pytest.raises(RunicornError, match="is a folder"):
        rn.api.read("data", rev=first, repo=tmp_repo.root)


def test_submodule_commits_recorded(tmp_repo, tmp_path):
    sub = tmp_path / "sublib"
    sub.mkdir()
    git(sub, "init", "-q", "-b", "main")
    (sub / "lib.py").write_text("x = 1\n")
    git(sub, "add", "lib.py")
    git(sub, "commit", "-q", "-m", "lib")
    sub_head = git(sub, "rev-parse", "HEAD").strip()
    git(tmp_repo.root, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "vendor/sublib")
    tmp_repo.commit("add submodule")
    done = script(tmp_repo, "import runicorn as rn\nrn.init()\nrn.finish()\n")
    assert done.returncode == 0, done.stderr
    subs = only_run(tmp_repo)["git"]["submodules"]
    assert subs == [{"path": "vendor/sublib", "commit": sub_head, "state": "clean"}]


def test_gc_keeps_run_objects(tmp_repo):
    tmp_repo.gen({"outputs": {"scores.json": '{"f1": 0.5}'}, "dirty.txt": "uncommitted\n"})
    done = script(tmp_repo, TRAIN)
    assert done.returncode == 0, done.stderr
    doc = only_run(tmp_repo)
    keep = {doc["git"]["diff"]["oid"], doc["files"][0]["oid"]}
    ok(tmp_repo.rn("gc", "--yes"))
    cache = tmp_repo.root / ".runicorn" / "cache" / "objects"
    assert all((cache / o[:2] / o[2:]).is_file() for o in keep)
    ok(tmp_repo.rn("runs", "delete", doc["id"], "--yes"))
    ok(tmp_repo.rn("gc", "--yes"))
    assert not any((cache / o[:2] / o[2:]).exists() for o in keep)


def test_forked_child_neither_logs_nor_finishes_the_run(tmp_repo):
    done = script(tmp_repo, """
        import os, sys, time, runicorn as rn
        run = rn.init(name="parent")
        rn.log({"loss": 1.0})
        pid = os.fork()
        if pid == 0:                      # a data-loader worker, say
            rn.log({"loss": 99.0})
            sys.exit(0)                   # runs atexit in the child
        os.waitpid(pid, 0)
        time.sleep(0.2)
        doc = rn.api.get_run(run.repo, run.id)
        print("status after child exit:", doc["status"])
        rn.log({"loss": 2.0})
        rn.finish()
        """)
    assert done.returncode == 0, done.stderr
    assert "status after child exit: running" in done.stdout
    doc = only_run(tmp_repo)
    assert doc["status"] == "finished" and doc["summary"]["loss"] == 2.0
    assert "forked child process is ignored" in done.stderr


def test_git_repository_without_runicorn_uses_the_user_store_with_git_state(tmp_path):
    root = tmp_path / "plain-git"
    root.mkdir()
    git(root, "init", "-q", "-b", "trunk")
    (root / "t.py").write_text("import runicorn as rn\nrn.init()\nrn.finish()\n")
    done = subprocess.run([sys.executable, "t.py"], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "not in a Runicorn repository" in done.stderr and "runicorn init" in done.stderr
    (run_dir,) = list((Path(os.environ["HOME"]) / ".local" / "share" / "runicorn" / "runs").iterdir())
    doc = json.loads((run_dir / "run.json").read_text())
    assert doc["git"]["branch"] == "trunk" and doc["git"]["commit"] is None
    assert "+rn.init()" in (run_dir.parent.parent / "cache" / "objects" / doc["git"]["diff"]["oid"][:2]
                            / doc["git"]["diff"]["oid"][2:]).read_text()

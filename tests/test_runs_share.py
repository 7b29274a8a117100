"""Sharing runs through a remote (`push --runs`, `pull --runs`) over every back end."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

from conftest import TmpRepo, git, ok
from test_remotes import backend, remote  # noqa: F401 — the remote contract fixtures (local, ssh, s3)

TRAIN = textwrap.dedent("""
    import runicorn as rn
    run = rn.init(project="shared", name="ci-run", config={"lr": 0.1})
    for i in range(30):
        rn.log({"loss": 1.0 / (i + 1)})
    print("trained")
    rn.save("model.txt")
    rn.finish()
    """)


def _train(repo: TmpRepo) -> dict:
    repo.gen({"train.py": TRAIN, "model.txt": "weights", "notes.md": "uncommitted\n"})
    done = subprocess.run([sys.executable, "train.py"], cwd=repo.root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = json.loads(ok(repo.rn("runs", "list", "--json")).out)["runs"]
    return json.loads(ok(repo.rn("runs", "show", rows[0]["run_id"], "--json")).out)


def _clone(origin: TmpRepo, remote_under_test) -> TmpRepo:
    root = origin.root.parent / "teammate"
    git(origin.root.parent, "clone", "-q", str(origin.root), str(root))
    mate = TmpRepo(root)
    remote_under_test.configure(mate, add=False)
    return mate


def test_push_and_pull_runs(tmp_repo, remote):
    remote.configure(tmp_repo)
    tmp_repo.commit("remote")
    doc = _train(tmp_repo)
    pushed = json.loads(ok(tmp_repo.rn("push", "--runs", "--json")).out)
    assert pushed["runs"]["transferred"] == [doc["id"]]
    again = json.loads(ok(tmp_repo.rn("push", "--runs", "--json")).out)
    assert again["runs"]["transferred"] == [] and again["runs"]["already"] == 1
    mate = _clone(tmp_repo, remote)
    assert json.loads(ok(mate.rn("runs", "list", "--json")).out)["total"] == 0
    fetched = json.loads(ok(mate.rn("fetch", "--runs", "--json")).out)  # fetch: runs too, no checkout
    assert fetched["runs"]["transferred"] == [doc["id"]]
    ok(mate.rn("runs", "delete", doc["id"], "--yes"))
    pulled = json.loads(ok(mate.rn("pull", "--runs", "--json")).out)
    assert pulled["runs"]["transferred"] == [doc["id"]]
    theirs = json.loads(ok(mate.rn("runs", "show", doc["id"], "--json")).out)
    for key in ("status", "config", "summary", "git", "environment", "files", "metric_keys", "diff_text"):
        assert theirs[key] == doc[key], key
    assert "+uncommitted" in theirs["diff_text"]
    saved = theirs["files"][0]["oid"]
    cached = mate.root / ".runicorn" / "cache" / "objects" / saved[:2] / saved[2:]
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == saved
    assert "trained" in (mate.root / ".runicorn" / "runs" / doc["id"] / "output.log").read_text()
    from runicorn.api import metric_series
    from runicorn.core.repo import Repo
    assert len(metric_series(Repo(mate.root), doc["id"], "loss")) == 30
    assert json.loads(ok(mate.rn("pull", "--runs", "--json")).out)["runs"]["already"] == 1


def test_pull_refuses_a_corrupt_run_object(tmp_repo, tmp_path):
    store = tmp_path / "store"
    ok(tmp_repo.rn("remote", "add", "store", str(store), "--default"))
    tmp_repo.commit("remote")
    doc = _train(tmp_repo)
    ok(tmp_repo.rn("push", "--runs"))
    record = json.loads((store / "runs" / f"{doc['id']}.json").read_text())
    metrics = record["files"]["metrics.jsonl"]
    target = store / "objects" / metrics[:2] / metrics[2:]
    target.chmod(0o644)
    target.write_bytes(b'{"step": 0, "time": 0, "values": {"loss": 1e9}}\n')  # tampered on the remote
    mate_root = tmp_path / "mate"
    git(tmp_path, "clone", "-q", str(tmp_repo.root), str(mate_root))
    mate = TmpRepo(mate_root)
    result = mate.rn("pull", "--runs")
    assert result.code == 1 and "corrupt" in result.out + result.err
    assert not (mate_root / ".runicorn" / "runs" / doc["id"]).exists()
    assert json.loads(ok(mate.rn("runs", "list", "--json")).out)["total"] == 0


def test_running_runs_are_not_pushed(tmp_repo, tmp_path):
    ok(tmp_repo.rn("remote", "add", "store", str(tmp_path / "store"), "--default"))
    (tmp_repo.root / "slow.py").write_text("import time, runicorn as rn\nrn.init()\nprint('up', flush=True)\n"
                                           "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "slow.py"], cwd=tmp_repo.root, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "up"
        pushed = json.loads(ok(tmp_repo.rn("push", "--runs", "--json")).out)
        assert pushed["runs"]["transferred"] == [] and len(pushed["runs"]["skipped"]) == 1
        assert not (tmp_path / "store" / "runs").exists() or not list((tmp_path / "store" / "runs").iterdir())
    finally:
        proc.kill()
        proc.wait()


def test_pull_refuses_malformed_records_and_ignores_strange_names(tmp_repo, tmp_path):
    store = tmp_path / "store"
    ok(tmp_repo.rn("remote", "add", "store", str(store), "--default"))
    (store / "runs").mkdir(parents=True)
    oid = "ab" * 32
    (store / "runs" / "20250101_000000_aaaaaa.json").write_text(json.dumps(
        {"runicorn_run_record": 1, "id": "20250101_000000_bbbbbb", "files": {"run.json": oid}}))
    (store / "runs" / "20250101_000000_cccccc.json").write_text(json.dumps(
        {"runicorn_run_record": 1, "id": "20250101_000000_cccccc", "files": {"run.json": "../../etc/passwd"}}))
    (store / "runs" / "20250101_000000_dddddd.json").write_text(json.dumps(
        {"runicorn_run_record": 1, "id": "20250101_000000_dddddd", "files": {"../run.json": oid}}))
    (store / "runs" / "..%2Fevil.json").write_text("{}")
    (store / "runs" / "notes.txt").write_text("hello")
    result = tmp_repo.rn("pull", "--runs", "--json")
    assert result.code == 1 and "3 run(s) not transferred" in result.err
    report = json.loads(result.out)["runs"]
    assert sorted(report["failed"]) == ["20250101_000000_aaaaaa", "20250101_000000_cccccc", "20250101_000000_dddddd"]
    assert all("malformed" in why for why in report["failed"].values())
    runs_dir = tmp_repo.root / ".runicorn" / "runs"
    assert not runs_dir.exists() or not list(runs_dir.iterdir())

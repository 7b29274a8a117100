"""Lineage: the seed's pipeline through real runs, every output format, depth, runs as roots, no cycles."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import ok
from runicorn.core import artifacts as A
from runicorn.core.artifact_lineage import render
from runicorn.core.repo import Repo

PIPELINE = """
import runicorn as rn

# Step 1: prepare the data set
run_data = rn.init(project="ml_pipeline", name="data_prep")
dataset = rn.Artifact("processed-data", type="dataset")
dataset.add_dir("processed_data/")
dataset.add_metadata({"num_samples": 10000})
run_data.log_artifact(dataset)  # → processed-data:v1
rn.finish()

# Step 2: train
run_train = rn.init(project="ml_pipeline", name="training")
dataset = run_train.use_artifact("processed-data:v1")
data_path = dataset.download()
model = rn.Artifact("trained-model", type="model")
model.add_file("model.pth")
model.add_metadata({"trained_with": "processed-data:v1"})
run_train.log_artifact(model)  # → trained-model:v1
rn.finish()

# Step 3: evaluate
run_eval = rn.init(project="ml_pipeline", name="evaluation")
model = run_eval.use_artifact("trained-model:v1")
rn.finish()
print("IDS", run_data.id, run_train.id, run_eval.id)
"""


def pipeline(repo) -> tuple[str, str, str]:
    repo.gen({"processed_data": {"a.csv": "1\n", "b.csv": "2\n"}, "model.pth": "w"})
    path = repo.root / "pipeline.py"
    path.write_text(textwrap.dedent(PIPELINE))
    done = subprocess.run([sys.executable, str(path)], cwd=repo.root, capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)
    assert done.returncode == 0, done.stderr
    return tuple(done.stdout.split("IDS ")[1].split())


def test_the_seed_pipeline_processed_data_to_run_train_to_model_to_run_eval(tmp_repo):
    data_id, train_id, eval_id = pipeline(tmp_repo)
    graph = json.loads(ok(tmp_repo.rn("artifacts", "lineage", "trained-model:v1", "--json")).out)
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert edges == {(f"run:{data_id}", "artifact:processed-data:v1"),
                     ("artifact:processed-data:v1", f"run:{train_id}"),
                     (f"run:{train_id}", "artifact:trained-model:v1"),
                     ("artifact:trained-model:v1", f"run:{eval_id}")}
    labels = {n["id"]: n["label"] for n in graph["nodes"]}
    assert labels[f"run:{train_id}"] == "training" and labels["artifact:processed-data:v1"] == "processed-data:v1"
    # the whole chain, from the start
    full = A.lineage(Repo(tmp_repo.root), "processed-data:v1", up=False, depth=10)
    chain = {(e["source"], e["target"]) for e in full["edges"]}
    assert (f"run:{data_id}", "artifact:processed-data:v1") not in chain  # --down only
    assert edges - {(f"run:{data_id}", "artifact:processed-data:v1")} == chain
    text = ok(tmp_repo.rn("artifacts", "lineage", "processed-data:v1", "--down")).out
    assert "processed-data:v1 → training (run " in text and "→ trained-model:v1" in text
    assert "trained-model:v1 → evaluation (run " in text
    # the manifest names its inputs; the consuming run records what it used
    manifest = A.artifact_info(Repo(tmp_repo.root), "trained-model:v1")
    assert [i["artifact"] for i in manifest["inputs"] if "artifact" in i] == ["processed-data"]
    assert manifest["used_by"] == [eval_id]


def test_formats_depth_and_runs_as_roots(tmp_repo):
    _, train_id, eval_id = pipeline(tmp_repo)
    dot = ok(tmp_repo.rn("artifacts", "lineage", "trained-model", "--format", "dot")).out
    assert dot.startswith("digraph lineage {") and '"artifact:processed-data:v1" -> "run:' in dot
    mermaid = ok(tmp_repo.rn("artifacts", "lineage", "trained-model", "--format", "mermaid")).out
    assert mermaid.startswith("graph LR") and mermaid.count("-->") == 4
    up = json.loads(ok(tmp_repo.rn("artifacts", "lineage", "trained-model:v1", "--up", "--depth", "1", "--json")).out)
    assert {(e["source"], e["target"]) for e in up["edges"]} == {(f"run:{train_id}", "artifact:trained-model:v1")}
    around_run = A.lineage(Repo(tmp_repo.root), f"run:{train_id}", depth=1)
    assert {(e["source"], e["target"]) for e in around_run["edges"]} == {
        ("artifact:processed-data:v1", f"run:{train_id}"), (f"run:{train_id}", "artifact:trained-model:v1")}
    bad = tmp_repo.rn("artifacts", "lineage", "trained-model", "--format", "png")
    assert bad.code == 2 and "text, json, dot, mermaid" in bad.err
    for depth in ("0", "-3"):
        bad = tmp_repo.rn("artifacts", "lineage", "trained-model", "--depth", depth)
        assert bad.code == 2 and f"lineage depth must be 1 or more (the hops to follow each way), not {depth}" in bad.err
    unknown = tmp_repo.rn("artifacts", "lineage", "run:20000101_000000_nobody")
    assert unknown.code == 1 and "run '20000101_000000_nobody' does not exist (known: " in unknown.err
    assert train_id in unknown.err and eval_id in unknown.err and "runicorn runs list" in unknown.err
    ok(tmp_repo.rn("artifacts", "lineage", f"run:{eval_id}"))


def test_lineage_survives_an_index_rebuild_and_a_deleted_index(tmp_repo):
    _, train_id, eval_id = pipeline(tmp_repo)
    ok(tmp_repo.rn("index", "rebuild"))
    graph = A.lineage(Repo(tmp_repo.root), "trained-model:v1")
    assert ("artifact:trained-model:v1", f"run:{eval_id}") in {(e["source"], e["target"]) for e in graph["edges"]}
    whole = {(e["source"], e["target"]) for e in A.lineage(Repo(tmp_repo.root), "processed-data:v1", depth=10)["edges"]}
    for path in (tmp_repo.root / ".runicorn").glob("index.db*"):
        path.unlink()  # a fresh index: the first read re-reads the manifests and the run records' uses
    graph = json.loads(ok(tmp_repo.rn("artifacts", "lineage", "processed-data:v1", "--depth", "10", "--json")).out)
    assert {(e["source"], e["target"]) for e in graph["edges"]} == whole
    assert A.artifact_info(Repo(tmp_repo.root), "trained-model:v1")["used_by"] == [eval_id]


def test_a_run_using_its_own_output_makes_no_cycle(tmp_repo):
    tmp_repo.gen({"w.pth": "w"})
    script = tmp_repo.root / "loop.py"
    script.write_text(textwrap.dedent("""
        import runicorn as rn
        run = rn.init(name="loop")
        art = rn.Artifact("self-made", type="model")
        art.add_file("w.pth")
        run.log_artifact(art)
        run.use_artifact("self-made:v1")
        again = rn.Artifact("self-made", type="model", metadata={"round": 2})
        again.add_file("w.pth")
        run.log_artifact(again)
        rn.finish()
        """))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_repo.root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    graph = A.lineage(Repo(tmp_repo.root), "self-made:v1", depth=20)
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert not any((t, s) in edges for s, t in edges)


def test_long_chains_are_walked_to_the_requested_depth(tmp_repo):
    """30 real runs in a row, each using the previous version and logging the next."""
    script = tmp_repo.root / "chain.py"
    script.write_text(textwrap.dedent("""
        import runicorn as rn
        previous = None
        for i in range(30):
            with rn.init(project="chain", name=f"step{i}", capture_output=False) as run:
                if previous:
                    run.use_artifact(previous)
                with open("f", "w") as f:
                    f.write(str(i))
                art = rn.Artifact("chain", type="dataset")
                art.add_file("f")
                previous = f"chain:v{run.log_artifact(art)}"
        """))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_repo.root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    repo = Repo(tmp_repo.root)
    graph = A.lineage(repo, "chain:v30", down=False, depth=6)
    assert len([n for n in graph["nodes"] if n["kind"] == "artifact"]) == 4  # v30 + 3 upstream (2 hops each)
    deep = A.lineage(repo, "chain:v30", down=False, depth=200)
    assert len(deep["edges"]) == 59  # 30 run → version, 29 version → next run
    assert render(deep, "text").count("→") == 59
    labels = [n["label"] for n in deep["nodes"] if n["kind"] == "run"]
    assert sorted(labels) == sorted(f"step{i}" for i in range(30))


def test_tracked_data_a_run_saw_is_an_input_of_what_it_logged(tmp_repo):
    tmp_repo.gen({"data": {"train.csv": "x,y\n1,2\n"}, "model.pth": "w"})
    ok(tmp_repo.rn("add", "data"))
    tmp_repo.commit("track data")
    oid = __import__("yaml").safe_load((tmp_repo.root / "data.rn").read_text())["oid"]
    script = tmp_repo.root / "train.py"
    script.write_text(textwrap.dedent("""
        import runicorn as rn
        run = rn.init(name="fit")
        model = rn.Artifact("fitted", type="model")
        model.add_file("model.pth")
        run.log_artifact(model)
        rn.finish()
        """))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_repo.root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info = A.artifact_info(Repo(tmp_repo.root), "fitted")
    assert {"data": "data", "oid": oid} in info["inputs"]
    graph = json.loads(ok(tmp_repo.rn("artifacts", "lineage", "fitted", "--up", "--json")).out)
    data_nodes = [n for n in graph["nodes"] if n["kind"] == "data"]
    assert [n["id"] for n in data_nodes] == [f"data:data@{oid[:12]}"] and data_nodes[0]["path"] == "data"

"""End to end: two clones, a bare git origin and a local-directory data remote, as a team and CI see it.

Clone A (a person): init, track a dataset, log it as an artifact, install the hooks, train with
`runicorn run -- python train.py` (the script uses the SDK: it uses `dataset:latest` and logs
`model`), push git (the pre-push hook pushes the data), data and runs.
Clone B (CI: fresh clone, `CI=true`, no terminal, every command a real process) runs the CI
template's script `templates/ci/runicorn-ci.sh`: pull + verify every byte + status, sees A's
runs, artifacts and lineage, trains again on the same data (model v2), pushes data, runs and
artifacts, exports the viewer as a static site, commits and pushes git.
Clone A: `git pull` and the hooks bring the new artifact's files; the viewer's JSON API shows both
runs and the lineage dataset:v1 → run A → model:v1, dataset:v1 → run B → model:v2.
Branches: A and B change different files of the dataset on two branches; the merge driver
merges them, and the hooks bring the merged data to both clones.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CI_SCRIPT = ROOT / "templates" / "ci" / "runicorn-ci.sh"

TRAIN = '''\
"""A tiny training script: reads the dataset artifact, logs metrics, logs the model artifact."""
import sys
from pathlib import Path

import runicorn as rn

run = rn.init(project="e2e", config={"lr": 0.1, "who": sys.argv[1]})
dataset = run.use_artifact("dataset:latest")
folder = Path(dataset.download())
rows = sum(len(p.read_text().splitlines()) for p in sorted(folder.rglob("*.csv")))
for step in range(3):
    rn.log({"loss": 1.0 / (step + 1), "rows": rows}, step=step)
out = Path("outputs")
out.mkdir(exist_ok=True)
(out / "model.pth").write_text(f"model by {sys.argv[1]} from {rows} rows\\n")
model = rn.Artifact("model", type="model", metadata={"rows": rows, "who": sys.argv[1]})
model.add_file(str(out / "model.pth"))
version = run.log_artifact(model)
print(f"logged model:v{int(version)}")
rn.finish()
'''

LOG_DATASET = '''\
import runicorn as rn
from runicorn.core.artifacts import log_artifact
from runicorn.core.repo import Repo

dataset = rn.Artifact("dataset", type="dataset", description="the training data")
dataset.add_dir("data")
print(int(log_artifact(Repo.find(), dataset)))
'''


class Clone:
    """A work tree driven only through real processes: git, runicorn, bash."""

    def __init__(self, root: Path, env: dict):
        self.root, self.env = root, env

    def run(self, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run(list(args), cwd=self.root, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              env={**self.env, **(env or {})}, timeout=300)
        if check and done.returncode != 0:
            pytest.fail(f"{' '.join(args)} exited {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}")
        return done

    def rn(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "runicorn", *args, check=check)

    def rn_json(self, *args: str):
        return json.loads(self.rn(*args, "--json").stdout)

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("git", *args, check=check)

    def ci(self, *steps: str, **env: str) -> subprocess.CompletedProcess:
        return self.run("bash", str(CI_SCRIPT), *steps, env=env)

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        if path.exists():
            path.chmod(0o644)
            path.unlink()  # never write through a cache link
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def files(self, rel: str) -> dict[str, str]:
        base = self.root / rel
        return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}


@pytest.fixture
def world(tmp_path, monkeypatch):
    origin, store = tmp_path / "origin.git", tmp_path / "data-remote"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "FORCE_COLOR")}
    env["RUNICORN"] = f"{sys.executable} -m runicorn"
    env["RUNICORN_PYTHON"] = sys.executable
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` in train commands
    for name in ("a", "b"):
        subprocess.run(["git", "clone", "-q", str(origin), str(tmp_path / name)], check=True, capture_output=True)
    a = Clone(tmp_path / "a", env)
    b = Clone(tmp_path / "b", {**env, "CI": "true"})
    return {"origin": origin, "store": store, "a": a, "b": b}


def lineage_edges(graph: dict) -> set[tuple[str, str]]:
    return {(e["source"], e["target"]) for e in graph["edges"]}


def test_two_clones_a_person_and_ci(world):
    a, b, store = world["a"], world["b"], world["store"]

    # ---- clone A: init, dataset, hooks, a tracked training run, push everything ----------------
    a.rn("init")
    a.rn("remote", "add", "storage", str(store), "--default")
    a.rn("install-hooks")
    a.write("data/train/part-1.csv", "x,y\n1,2\n3,4\n")
    a.write("data/train/part-2.csv", "x,y\n5,6\n")
    a.write("data/labels.csv", "id,label\n1,cat\n")
    a.rn("add", "data")
    a.write("log_dataset.py", LOG_DATASET)
    a.write("train.py", TRAIN)
    a.write(".gitignore", "/outputs/\n__pycache__/\n")
    assert a.run(sys.executable, "log_dataset.py").stdout.strip() == "1"
    a.git("add", "-A")
    a.git("commit", "-q", "-m", "dataset v1, training script")
    run_a = json.loads(a.rn("run", "--json", "--name", "train-a", "--", "python", "train.py", "A").stdout)
    assert run_a["status"] == "finished", run_a
    a.git("add", "-A")
    a.git("commit", "-q", "-m", "model v1")
    pushed = a.git("push", "origin", "main")  # pre-push hook: data and artifact files of the pushed commits
    assert "runicorn: pushed" in pushed.stderr
    a.rn("push", "--runs")

    # ---- clone B: CI, no terminal, the template's script -----------------------------------------
    b.git("pull", "-q", "origin", "main")
    b.ci("setup", "pull")  # pull, verify every byte, status --exit-code
    assert b.files("data") == a.files("data")
    b.rn("pull", "--runs")
    runs = b.rn_json("runs", "list")
    assert run_a["run_id"] in [r["run_id"] for r in runs["runs"]]
    names = {x["name"] for x in b.rn_json("artifacts", "list")}
    assert {"dataset", "model"} <= names
    graph = b.rn_json("artifacts", "lineage", "model:v1")
    assert {("artifact:dataset:v1", f"run:{run_a['run_id']}"),
            (f"run:{run_a['run_id']}", "artifact:model:v1")} <= lineage_edges(graph)
    b.ci("train", "push", "export", "check", "git-push",
         RUNICORN_CI_TRAIN="python train.py B", RUNICORN_CI_RUN_NAME="train-b",
         RUNICORN_CI_SITE="site", RUNICORN_CI_GIT_MESSAGE="CI: model v2")
    run_b = (b.root / ".runicorn" / "tmp" / "ci-run-id").read_text().strip()
    assert (b.root / "site" / "index.html").is_file()  # the viewer as a static site (a CI artifact)
    v2 = b.rn_json("artifacts", "info", "model:v2")
    assert v2["metadata"]["who"] == "B" and v2["created_by"]["run"] == run_b

    # ---- clone A: git pull, the hooks bring the data; the viewer shows both runs and the lineage -
    pulled = a.git("pull", "--no-rebase", "origin", "main")
    assert "runicorn: fetched the files of model:v2 (1 object(s) downloaded)" in pulled.stderr
    v2_files = a.rn_json("artifacts", "info", "model:v2")["files"]
    cache = a.root / ".runicorn" / "cache" / "objects"
    assert all((cache / f["oid"][:2] / f["oid"][2:]).is_file() for f in v2_files)  # fetched by post-merge
    a.rn("pull", "--runs")

    from fastapi.testclient import TestClient
    from runicorn.viewer.app import create_app

    client = TestClient(create_app(a.root), base_url="http://127.0.0.1")
    listed = client.get("/api/runs").json()
    ids = {r["run_id"] for r in listed["runs"]}
    assert {run_a["run_id"], run_b} <= ids
    graph = client.get("/api/lineage", params={"ref": "dataset:v1", "depth": 3}).json()["graph"]
    assert {("artifact:dataset:v1", f"run:{run_a['run_id']}"), (f"run:{run_a['run_id']}", "artifact:model:v1"),
            ("artifact:dataset:v1", f"run:{run_b}"), (f"run:{run_b}", "artifact:model:v2")} <= lineage_edges(graph)

    # ---- branches: different files of the dataset, merged by the driver --------------------------
    b.run("bash", "-c", "true")  # B is CI: it has no hooks, the merge driver comes with install-hooks
    b.rn("install-hooks")
    a.git("checkout", "-q", "-b", "labels")
    a.write("data/labels.csv", "id,label\n1,cat\n2,dog\n")
    a.rn("add", "data")
    a.git("commit", "-q", "-am", "more labels")
    a.git("push", "-q", "origin", "labels")  # the hook pushes the new objects
    b.git("checkout", "-q", "-b", "more-train")
    b.write("data/train/part-3.csv", "x,y\n7,8\n")
    b.rn("add", "data")
    b.git("add", "-A")
    b.git("commit", "-q", "-m", "more training data")
    b.git("fetch", "-q", "origin")
    merged = b.git("merge", "origin/labels", "-m", "merge labels")  # the driver fetches A's manifest
    assert "runicorn: merged data.rn" in merged.stderr
    want = {"labels.csv": "id,label\n1,cat\n2,dog\n", "train/part-1.csv": "x,y\n1,2\n3,4\n",
            "train/part-2.csv": "x,y\n5,6\n", "train/part-3.csv": "x,y\n7,8\n"}
    assert b.files("data") == want  # post-merge fetched A's labels and checked them out
    assert [s["state"] for s in b.rn_json("status")] == ["clean"]
    b.git("push", "-q", "origin", "HEAD:main")
    a.git("checkout", "-q", "main")
    a.git("pull", "-q", "--no-rebase", "origin", "main")
    assert a.files("data") == want
    assert [s["state"] for s in a.rn_json("status")] == ["clean"]
    a.rn("verify")

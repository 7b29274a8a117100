"""The CI templates: valid YAML for their CI systems (schemas in tests/test_ci_templates_schemas/),
the steps docs/ci.md promises, and the shared script failing the job where it must."""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

from conftest import ok

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "templates" / "ci"
SCRIPT = CI / "runicorn-ci.sh"
SCHEMAS = Path(__file__).resolve().parent / "test_ci_templates_schemas"
STEPS = ["setup", "pull", "train", "log-model", "push", "export", "check"]


def load(name: str) -> dict:
    # GitHub's `on:` is YAML 1.1's boolean True for PyYAML: read it back as the key "on"
    doc = yaml.safe_load((CI / name).read_text())
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def errors(doc: dict, schema: str) -> list[str]:
    schema_doc = json.loads((SCHEMAS / schema).read_text())
    validator = jsonschema.validators.validator_for(schema_doc)(schema_doc)
    return sorted(f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc))


def script_steps(lines: list[str]) -> list[str]:
    return [line.split("runicorn-ci.sh", 1)[1].split()[0] for line in lines if "runicorn-ci.sh" in line]


# -- GitHub Actions -------------------------------------------------------------------------------

def test_github_workflow_is_valid():
    doc = load("github-actions.yml")
    assert errors(doc, "github-workflows.json") == []
    broken = copy.deepcopy(doc)
    del broken["jobs"]["train"]["runs-on"]
    assert errors(broken, "github-workflows.json"), "the schema check must be able to fail"


def test_github_workflow_runs_the_steps_with_the_cache_keyed_by_pointers():
    doc = load("github-actions.yml")
    env, steps = doc["env"], doc["jobs"]["train"]["steps"]
    assert env["CI"] == "true" and env["RUNICORN_CACHE_DIR"]
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "${{ env.RUNICORN_CACHE_DIR }}"
    assert "hashFiles('**/*.rn')" in cache["with"]["key"]
    runs = [s["run"] for s in steps if "run" in s]
    order = script_steps([line for r in runs for line in r.splitlines()])
    assert order == STEPS + ["git-push"]
    assert steps.index(cache) < next(i for i, s in enumerate(steps) if "pull" in s.get("run", ""))
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "${{ env.RUNICORN_CI_SITE }}" and upload["if"] == "always()"
    assert all(k.startswith("RUNICORN_REMOTE_") and "secrets." in v for k, v in env.items() if "KEY" in k)


# -- GitLab CI -----------------------------------------------------------------------------------

def test_gitlab_pipeline_is_valid():
    doc = load("gitlab-ci.yml")
    assert errors(doc, "gitlab-ci.json") == []
    broken = copy.deepcopy(doc)
    broken["train"]["when"] = "sometimes"  # not one of GitLab's `when` values
    assert errors(broken, "gitlab-ci.json"), "the schema check must be able to fail"


def test_gitlab_pipeline_runs_the_steps_with_the_cache_keyed_by_pointers():
    doc = load("gitlab-ci.yml")
    variables, train = doc["variables"], doc["train"]
    assert variables["CI"] == "true"
    assert variables["RUNICORN_CACHE_DIR"] == "$CI_PROJECT_DIR/.runicorn-cache"
    # two entries (GitLab's limit): top-level pointers, and pointers in sub-folders, whether GitLab
    # matches them as globs or as git pathspecs (where `**/*.rn` misses a top-level data.rn)
    for job in (train, doc["verify-remote"]):
        assert job["cache"]["key"]["files"] == ["*.rn", "**/*.rn"] and job["cache"]["paths"] == [".runicorn-cache/"]
    assert len(train["cache"]["key"]["files"]) <= 2
    # export runs in after_script: also when a step of `script` failed
    assert script_steps(train["after_script"]) == ["export"]
    order = script_steps(doc["default"]["before_script"] + train["script"] + train["after_script"])
    assert order == [s for s in STEPS if s != "export"] + ["export"]
    assert train["artifacts"]["paths"] == [variables["RUNICORN_CI_SITE"] + "/"]
    assert train["artifacts"]["when"] == "always"


def test_gitlab_cache_key_patterns_match_top_level_and_nested_pointers(tmp_repo):
    """GitLab has matched cache:key:files as git pathspecs (older releases) and as globs (newer):
    the template's two patterns find data.rn and sub/x.rn either way; `**/*.rn` alone would not."""
    import glob

    r = tmp_repo
    r.gen({"data.rn": "x", "sub": {"deep": {"x.rn": "y"}}})
    r.commit("pointers")
    patterns = load("gitlab-ci.yml")["train"]["cache"]["key"]["files"]
    want = {"data.rn", "sub/deep/x.rn"}
    as_pathspec = set(r.git("ls-files", "--", *patterns).split())
    as_glob = {m for pat in patterns for m in glob.glob(pat, root_dir=r.root, recursive=True)}
    assert as_pathspec == want and as_glob == want
    assert "data.rn" not in r.git("ls-files", "--", "**/*.rn").split()


# -- the shared script ---------------------------------------------------------------------------

def test_script_is_valid_bash_and_executable():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    assert os.access(SCRIPT, os.X_OK)


def ci(repo, *steps: str, **env: str) -> subprocess.CompletedProcess:
    full = {**{k: v for k, v in os.environ.items() if k != "CI"}, "RUNICORN": f"{sys.executable} -m runicorn",
            "RUNICORN_PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(SCRIPT), *steps], cwd=repo.root, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=full, timeout=300)


def test_script_refuses_unknown_steps_and_a_missing_training_command(tmp_repo):
    bad = ci(tmp_repo, "deploy")
    assert bad.returncode == 2 and "unknown step 'deploy'" in bad.stderr
    no_train = ci(tmp_repo, "train")
    assert no_train.returncode == 2 and "set RUNICORN_CI_TRAIN" in no_train.stderr


def test_script_fails_the_job_on_a_failed_run_a_changed_workspace_and_a_corrupt_object(tmp_repo, tmp_path):
    r = tmp_repo
    r.gen({"data": {"a.csv": "a\n"}})
    ok(r.rn("add", "data"))
    ok(r.rn("remote", "add", "storage", str(tmp_path / "store"), "--default"))
    r.commit("data")
    assert ci(r, "setup", "push", "check").returncode == 0
    (r.root / "fail.py").write_text("raise SystemExit(3)\n")
    failed = ci(r, "train", RUNICORN_CI_TRAIN=f"{sys.executable} fail.py")
    assert failed.returncode == 1 and "the training run failed" in failed.stderr
    run_id = (r.root / ".runicorn" / "tmp" / "ci-run-id").read_text().strip()
    assert json.loads(r.rn_proc("runs", "show", run_id, "--json").stdout)["status"] == "failed"
    (r.root / "data" / "a.csv").unlink()
    (r.root / "data" / "a.csv").write_text("changed\n")
    changed = ci(r, "check")
    assert changed.returncode == 1 and "data: modified" in changed.stdout
    ok(r.rn("checkout", "--force"))
    manifest = yaml.safe_load((r.root / "data.rn").read_text())["oid"]  # an object no workspace file links
    obj = r.root / ".runicorn" / "cache" / "objects" / manifest[:2] / manifest[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"rot")
    corrupt = ci(r, "check")
    assert corrupt.returncode == 5 and "does not match its oid" in corrupt.stderr


def test_script_log_model_and_export(tmp_repo):
    """log-model records the train step's run as the model's producer: lineage data → run → model."""
    r = tmp_repo
    r.gen({"data": {"a.csv": "1\n"}, "train.py": "from pathlib import Path\nPath('outputs').mkdir()\n"
                                                "Path('outputs/model.pth').write_text('weights')\n",
           ".gitignore": "/outputs/\n/site/\n"})
    ok(r.rn("add", "data"))
    r.commit("data")
    done = ci(r, "train", "log-model", "export", RUNICORN_CI_TRAIN=f"{sys.executable} train.py",
              RUNICORN_CI_MODEL="outputs/model.pth", RUNICORN_CI_MODEL_NAME="clf", RUNICORN_CI_SITE="site")
    assert done.returncode == 0, done.stderr
    run_id = (r.root / ".runicorn" / "tmp" / "ci-run-id").read_text().strip()
    assert f"logged clf:v1, created by run {run_id}" in done.stderr
    manifest = yaml.safe_load((r.root / ".runicorn" / "artifacts" / "clf" / "v1.yaml").read_text())
    assert manifest["created_by"]["run"] == run_id
    data_oid = yaml.safe_load((r.root / "data.rn").read_text())["oid"]
    assert manifest["inputs"] == [{"data": "data", "oid": data_oid}]
    graph = json.loads(r.rn_proc("artifacts", "lineage", "clf:v1", "--json").stdout)
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert {(f"run:{run_id}", "artifact:clf:v1"), (f"data:data@{data_oid[:12]}", f"run:{run_id}")} <= edges
    assert (r.root / "site" / "index.html").is_file()
    # without a train step there is no run to name: the model is still logged, without lineage
    (r.root / ".runicorn" / "tmp" / "ci-run-id").unlink()
    r.gen({"outputs": {"model.pth": "weights 2"}})
    alone = ci(r, "log-model", RUNICORN_CI_MODEL="outputs/model.pth", RUNICORN_CI_MODEL_NAME="clf")
    assert alone.returncode == 0 and "logged clf:v2" in alone.stderr and "without lineage" in alone.stderr
    assert "run" not in yaml.safe_load((r.root / ".runicorn" / "artifacts" / "clf" / "v2.yaml").read_text())["created_by"]


def test_script_all_runs_the_templates_flow(tmp_repo, tmp_path):
    """`runicorn-ci.sh all` as the templates run it: pull, train, log the model, push, export, check."""
    r = tmp_repo
    store = tmp_path / "store"
    r.gen({"data": {"a.csv": "1\n2\n"}, "train.py": (
        "from pathlib import Path\n"
        "rows = len(Path('data/a.csv').read_text().splitlines())\n"
        "Path('outputs').mkdir(exist_ok=True)\n"
        "Path('outputs/model.pth').write_text(f'model of {rows} rows')\n"), ".gitignore": "/outputs/\n/site/\n"})
    ok(r.rn("add", "data"))
    ok(r.rn("remote", "add", "storage", str(store), "--default"))
    ok(r.rn("push"))
    r.commit("project")
    shutil.rmtree(r.root / ".runicorn" / "cache")  # a cold CI cache: pull must bring the data
    (r.root / "data" / "a.csv").chmod(0o644)
    shutil.rmtree(r.root / "data")
    done = ci(r, "all", RUNICORN_CACHE_DIR=str(r.root / ".runicorn-cache"), RUNICORN_CI_TRAIN=f"{sys.executable} train.py",
              RUNICORN_CI_MODEL="outputs/model.pth", RUNICORN_CI_SITE="site")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (r.root / "data" / "a.csv").read_text() == "1\n2\n"
    assert "logged model:v1" in done.stderr and (r.root / "site" / "index.html").is_file()
    manifest = yaml.safe_load((r.root / ".runicorn" / "artifacts" / "model" / "v1.yaml").read_text())
    remote_objects = {p.parent.name + p.name for p in (store / "objects").glob("*/*")}
    assert {f["oid"] for f in manifest["files"]} <= remote_objects  # the model's file reached the remote
    run_id = (r.root / ".runicorn" / "tmp" / "ci-run-id").read_text().strip()
    assert (store / "runs").is_dir() and any(run_id in str(p) for p in (store / "runs").rglob("*"))
    assert list((r.root / ".runicorn-cache" / "objects").glob("*/*"))  # the cache the CI saves
    assert ".runicorn-cache" not in r.git("status", "--porcelain")  # kept out of git's view by setup

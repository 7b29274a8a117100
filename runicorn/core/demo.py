"""`runicorn demo`: a real, self-contained walk through the data-versioning workflow.

It builds a git repository in a folder, tracks a dataset and a model, commits, changes both,
commits again, restores the first revision with `git checkout` + `runicorn checkout`, checks
every byte, and returns to the latest revision. Then a training script records a run with metrics
and logs the model as an artifact, and the last line says how to open the viewer on the result.
Each step is reported as a line of text.
"""
from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

from runicorn.core import add as add_mod
from runicorn.core import checkout as checkout_mod
from runicorn.core import history, status as status_mod
from runicorn.core.artifact_demo import registry_story
from runicorn.core.events import NULL, Reporter
from runicorn.core.init import init
from runicorn.core.unprotect import unprotect
from runicorn.errors import RunicornError
from runicorn.storage.git import run_git


def _write_dataset(root: Path, rng: random.Random, rows: int) -> None:
    data = root / "data"
    for split, n in (("train", rows), ("val", rows // 5), ("test", rows // 5)):
        lines = ["x1,x2,x3,label"] + [
            f"{rng.random():.5f},{rng.random():.5f},{rng.random():.5f},{rng.randint(0, 9)}" for _ in range(n)]
        (data / f"{split}.csv").write_text("\n".join(lines) + "\n")


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


def _commit(root: Path, message: str) -> str:
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", message)
    return run_git(root, "rev-parse", "--short", "HEAD").strip()


def demo(target: Path, reporter: Reporter = NULL) -> dict:
    """Run the demo in TARGET (must not exist or be empty); returns what was checked."""
    target = Path(target).absolute()
    if target.exists() and any(target.iterdir()):
        raise RunicornError(f"{target} is not empty; choose another folder with `runicorn demo DIR`")
    say = reporter.info
    target.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    run_git(target, "init", "-q", "-b", "main")
    run_git(target, "config", "user.name", "Runicorn Demo")
    run_git(target, "config", "user.email", "demo@runicorn.invalid")
    repo, _ = init(target)
    say(f"1. created a git repository with Runicorn in {target}")

    (target / "data").mkdir()
    (target / "models").mkdir()
    _write_dataset(target, rng, 20000)
    (target / "models" / "model.pth").write_bytes(rng.randbytes(4 << 20))
    results = add_mod.add(repo, [str(target / "data"), str(target / "models" / "model.pth")])
    for r in results:
        say(f"2. tracked {r.path} ({r.kind}, {r.files} file(s), {r.size:,} bytes) as {r.oid[:12]} -> {r.path}.rn")
    v1 = {"data": _fingerprint(target / "data"), "model": _fingerprint(target / "models" / "model.pth")}
    sha1 = _commit(target, "Dataset and model v1")
    say(f"3. committed the pointers to git as {sha1} (the data itself stays out of git: see .gitignore)")

    unprotect(repo, [str(target / "data" / "train.csv")])
    with open(target / "data" / "train.csv", "a") as f:
        f.write("".join(f"{rng.random():.5f},{rng.random():.5f},{rng.random():.5f},1\n" for _ in range(5000)))
    os.unlink(target / "models" / "model.pth")
    (target / "models" / "model.pth").write_bytes(rng.randbytes(4 << 20))
    changed = [s for s in status_mod.status(repo) if s.state != status_mod.CLEAN]
    say("4. changed the data (unprotect + edit train.csv) and retrained the model; status: "
        + ", ".join(f"{s.path} {s.state}" for s in changed))
    add_mod.add(repo, [str(target / "data"), str(target / "models" / "model.pth")])
    sha2 = _commit(target, "More training data, model v2")
    changes = history.diff(repo, sha1, sha2)
    say(f"5. recorded v2 as {sha2}; runicorn diff {sha1} {sha2}: "
        + ", ".join(f"{c['path']} {c['change']}" for c in changes))

    run_git(target, "checkout", "-q", sha1)
    checkout_mod.checkout(repo)
    restored = {"data": _fingerprint(target / "data"), "model": _fingerprint(target / "models" / "model.pth")}
    if restored != v1:
        raise RunicornError("demo check failed: the restored v1 differs from the original bytes")
    say(f"6. git checkout {sha1} && runicorn checkout: v1 restored from the cache, every byte identical")

    run_git(target, "checkout", "-q", "main")
    checkout_mod.checkout(repo)
    clean = all(s.state == status_mod.CLEAN for s in status_mod.status(repo))
    history_rows = history.log(repo, str(target / "data"))
    say(f"7. back on main with v2 (status clean: {clean}); runicorn log data shows {len(history_rows)} versions")
    run_line = _train(target)
    sha3 = _commit(target, "Training script, its run and the model artifact")
    say(f"8. ran train.py: {run_line}; committed the artifact manifest as {sha3}")
    say("9. evaluated the model in a second run, then moved it through the registry:")
    registry = registry_story(repo, say)
    sha4 = _commit(target, "Evaluation run; demo-model in production")
    say(f"   committed the registry history as {sha4}")
    say(f"10. see it all in the browser: cd {target} && runicorn viewer, then open http://127.0.0.1:23300/ "
        f"(or write a static copy: runicorn viewer export {target / 'site'})")
    return {"folder": str(target), "commits": [sha1, sha2, sha3, sha4], "restored_identical": True, "clean": clean,
            "changes": changes, "production": registry["version"]}


TRAIN_SCRIPT = """\
import math
import runicorn as rn

with rn.init(project="demo", name="train", config={"lr": 0.01, "epochs": 20}) as run:
    for step in range(200):
        rn.log({"loss": math.exp(-step / 60) + 0.02, "accuracy": 0.98 - 0.9 * math.exp(-step / 50)}, step=step)
    model = rn.Artifact("demo-model", type="model", description="the model trained on data/")
    model.add_file("models/model.pth")
    model.add_metadata({"accuracy": 0.98})
    version = rn.log_artifact(model)
    print(f"run {run.id} logged 200 steps and demo-model v{int(version)}")
"""


def _train(target: Path) -> str:
    """Run a real training script (the SDK in its own process): a run with metrics and an artifact."""
    (target / "train.py").write_text(TRAIN_SCRIPT)
    done = subprocess.run([sys.executable, "train.py"], cwd=target, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RunicornError(f"demo training script failed ({tail[0]}); rerun with `python train.py` in {target}")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else "run recorded"

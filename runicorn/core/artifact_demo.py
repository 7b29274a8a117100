"""The artifacts chapter of `runicorn demo`: a consuming run, an alias, a stage promotion, lineage.

`registry_story(repo, say)` expects the demo's `demo-model` artifact (logged by its training run)
and tells the rest of the story through SAY, one line per step; the lead's `core/demo.py` calls it
after the training step. Everything is real: a second script runs as its own process and uses the
model through the SDK, so the lineage edge comes from an actual run.
"""
from __future__ import annotations

import subprocess
import sys
from typing import Callable

from runicorn.core import artifacts as arts
from runicorn.core.artifact_lineage import render
from runicorn.errors import RunicornError

EVAL_SCRIPT = """\
import runicorn as rn

with rn.init(project="demo", name="evaluate") as run:
    model = run.use_artifact("demo-model:latest")
    folder = model.download()
    size = sum(f.size for f in model.get_manifest().files)
    rn.log({"eval_accuracy": model.get_metadata().metadata.get("accuracy", 0.0)})
    print(f"run {run.id} evaluated {model.ref} ({size} bytes from {folder})")
"""


def registry_story(repo, say: Callable[[str], None], name: str = "demo-model") -> dict:
    """Evaluate NAME in a real run, alias it `best`, promote it to production, show its lineage."""
    (repo.root / "evaluate.py").write_text(EVAL_SCRIPT)
    done = subprocess.run([sys.executable, "evaluate.py"], cwd=repo.root, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RunicornError(f"demo evaluation script failed ({tail[0]}); rerun with `python evaluate.py` in {repo.root}")
    say(f"   {done.stdout.strip().splitlines()[-1]}")
    alias = arts.set_alias(repo, f"{name}:latest", "best")
    say(f"   runicorn artifacts alias {name}:v{alias['version']} best")
    arts.set_stage(repo, f"{name}:best", "staging")
    moved = arts.set_stage(repo, f"{name}:best", "production")
    say(f"   runicorn artifacts stage {name}:v{moved['version']} production  (via staging; the history keeps both moves)")
    graph = arts.lineage(repo, f"{name}:production")
    for line in render(graph, "text").splitlines():
        say(f"   {line}")
    return {"version": moved["version"], "edges": len(graph["edges"])}

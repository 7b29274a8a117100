#!/usr/bin/env bash
# Runicorn's CI steps, shared by the GitHub Actions and GitLab CI templates (see docs/ci.md).
#
#   runicorn-ci.sh STEP...      steps: setup pull train log-model push export check git-push all
#
# Settings (environment variables; only RUNICORN_CI_TRAIN is needed for `train`):
#   RUNICORN            how to run Runicorn              (default: runicorn)
#   RUNICORN_PYTHON     a Python that imports runicorn   (default: python3; used by log-model)
#   RUNICORN_CI_PULL    paths to pull, space-separated   (default: every tracked path)
#   RUNICORN_CI_TRAIN   the training command, e.g. "python train.py --epochs 3" (split at spaces, no
#                       quoting: put anything more complex in a script)
#   RUNICORN_CI_RUN_NAME   name of the tracked run       (default: ci-<job id>)
#   RUNICORN_CI_MODEL   a model file to log as an artifact after training, created by the train
#                       step's run (optional: a training script can call run.log_artifact itself)
#   RUNICORN_CI_MODEL_NAME  artifact name                (default: model)
#   RUNICORN_CI_SITE    folder for the exported viewer   (default: runicorn-site)
#   RUNICORN_CI_GIT_MESSAGE commit message of git-push   (default: "CI: results of <run>")
# Remotes and credentials come from the project's .runicorn.yaml plus RUNICORN_REMOTE_<NAME>_<OPTION>
# variables (CI secrets); the cache from RUNICORN_CACHE_DIR (the folder the CI cache restores).
set -euo pipefail

export CI="${CI:-true}"  # no prompts, bars or colours, even when run by hand
read -r -a RN <<< "${RUNICORN:-runicorn}"
PY="${RUNICORN_PYTHON:-python3}"
SITE="${RUNICORN_CI_SITE:-runicorn-site}"
STATE=".runicorn/tmp/ci-run-id"  # the run id of `train`, for later steps

say() { printf 'runicorn-ci: %s\n' "$*" >&2; }
rn() { say "runicorn $*"; "${RN[@]}" "$@"; }

step_setup() {
    "${RN[@]}" --version
    if [ -n "${RUNICORN_CACHE_DIR:-}" ]; then
        mkdir -p "$RUNICORN_CACHE_DIR"
        # a cache folder inside the work tree must not make the tree (and every run) look dirty
        case "$(cd "$RUNICORN_CACHE_DIR" && pwd -P)/" in
            "$(pwd -P)"/*) rel="${RUNICORN_CACHE_DIR#"$(pwd -P)"/}"
                           grep -qxF "/$rel/" .git/info/exclude 2>/dev/null || echo "/$rel/" >> .git/info/exclude ;;
        esac
    fi
    rn doctor --json > /dev/null
}

step_pull() {
    local -a paths=()
    if [ -n "${RUNICORN_CI_PULL:-}" ]; then read -r -a paths <<< "$RUNICORN_CI_PULL"; fi
    rn pull "${paths[@]+"${paths[@]}"}"
    rn verify "${paths[@]+"${paths[@]}"}"                 # every byte re-hashed: exit 5 on a bad object
    rn status --exit-code "${paths[@]+"${paths[@]}"}"     # exit 1 when the workspace differs
}

step_train() {
    [ -n "${RUNICORN_CI_TRAIN:-}" ] || { say "set RUNICORN_CI_TRAIN to the training command"; exit 2; }
    local -a cmd
    set -f; read -r -a cmd <<< "$RUNICORN_CI_TRAIN"; set +f
    local out code=0
    say "runicorn run -- ${cmd[*]}"
    out="$("${RN[@]}" run --json --name "${RUNICORN_CI_RUN_NAME:-ci-${CI_JOB_ID:-${GITHUB_RUN_ID:-local}}}" -- "${cmd[@]}")" \
        || code=$?
    printf '%s\n' "$out"
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["run_id"])' <<< "$out" > "$STATE" 2>/dev/null || true
    if [ "$code" -ne 0 ]; then
        say "the training run failed (exit code $code; see \`runicorn runs show $(cat "$STATE" 2>/dev/null)\`)"
        exit 1
    fi
}

step_log_model() {
    [ -n "${RUNICORN_CI_MODEL:-}" ] || { say "RUNICORN_CI_MODEL not set: no model to log"; return 0; }
    local run=""
    [ -f "$STATE" ] && run="$(cat "$STATE")"
    [ -n "$run" ] || say "no run id from the train step: the model is logged without lineage"
    "$PY" - "$RUNICORN_CI_MODEL" "${RUNICORN_CI_MODEL_NAME:-model}" "$run" <<'EOF'
import sys

import runicorn as rn
from runicorn.core.artifacts import log_artifact
from runicorn.core.repo import Repo
from runicorn.core.runs import get_run


class TrainRun:
    """The train step's (finished) run as the producer of the version: the manifest records it in
    created_by.run, and the run's inputs (artifacts it used, tracked data) as the version's inputs."""

    def __init__(self, doc: dict):
        self.id, self.git_commit, self.doc = doc["id"], (doc.get("git") or {}).get("commit"), doc

    def lineage_inputs(self) -> list:
        used = (self.doc.get("artifacts") or {}).get("used") or []
        return [dict(u) for u in used] + [{"data": d["path"], "oid": d["oid"]} for d in self.doc.get("data") or []]


model, name, run_id = sys.argv[1:4]
repo = Repo.find()
run = TrainRun(get_run(repo, run_id)) if run_id else None
artifact = rn.Artifact(name, type="model", description="logged by runicorn-ci.sh")
artifact.add_file(model)
version = int(log_artifact(repo, artifact, run=run))
print(f"runicorn-ci: logged {name}:v{version}" + (f", created by run {run_id}" if run else ""), file=sys.stderr)
EOF
}

new_artifact_versions() {
    # NAME:vN of the manifests this job added: untracked, or added since the upstream branch
    local base
    base="$(git rev-parse -q --verify '@{upstream}' 2>/dev/null || git rev-parse -q --verify HEAD 2>/dev/null || true)"
    { git ls-files --others --exclude-standard -- .runicorn/artifacts
      if [ -n "$base" ]; then git diff --name-only --diff-filter=A "$base" -- .runicorn/artifacts; fi
    } | sed -nE 's#^\.runicorn/artifacts/([^/]+)/v([0-9]+)\.yaml$#\1:v\2#p' | sort -u
}

step_push() {
    rn push --runs                  # data and finished runs
    local -a refs
    mapfile -t refs < <(new_artifact_versions)
    if [ "${#refs[@]}" -gt 0 ]; then
        rn artifacts push "${refs[@]}"   # the files of the artifact versions this job logged
    fi
}

step_export() {
    rm -rf "$SITE"
    rn viewer export "$SITE"
}

step_check() {
    rn status --exit-code
    rn verify
}

step_git_push() {
    # commit what the job recorded (pointers, artifact manifests) and push it; the pre-push hook,
    # if installed, pushes the data again (a no-op by now)
    git add -A -- '*.rn' '*.gitignore' '.runicorn/artifacts' 2>/dev/null || git add -A -- '*.rn' '*.gitignore'
    if git diff --cached --quiet; then say "nothing to commit"; return 0; fi
    local run=""
    [ -f "$STATE" ] && run="$(cat "$STATE")"
    git commit -q -m "${RUNICORN_CI_GIT_MESSAGE:-CI: results of ${run:-the pipeline}}"
    git push -q origin "HEAD:${RUNICORN_CI_BRANCH:-$(git rev-parse --abbrev-ref HEAD)}"
}

[ "$#" -gt 0 ] || set -- all
for step in "$@"; do
    case "$step" in
        setup) step_setup ;;
        pull) step_pull ;;
        train) step_train ;;
        log-model) step_log_model ;;
        push) step_push ;;
        export) step_export ;;
        check) step_check ;;
        git-push) step_git_push ;;
        all) step_setup; step_pull; step_train; step_log_model; step_push; step_export; step_check ;;
        *) say "unknown step '$step' (setup pull train log-model push export check git-push all)"; exit 2 ;;
    esac
done

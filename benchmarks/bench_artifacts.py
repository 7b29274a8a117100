"""Artifacts benchmarks (issue 5). Run with the Python that has Runicorn installed:

    /tmp/venv/bin/python benchmarks/bench_artifacts.py [--work /tmp/rn-bench-art] [--files 10000]
        [--artifacts 1000] [--versions 10]

1. `log_artifact` of a folder of FILES small files, then again after changing 1% of them: wall time
   and bytes the second version added to the cache (target: only the changed files' bytes).
2. `artifacts list` and `lineage` over ARTIFACTS × VERSIONS versions (a chain of runs using one
   version and logging the next): median wall time of the read API on a warm index, and of the
   `runicorn artifacts list --json` process.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repo(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    sh(path, "git", "init", "-q", "-b", "main")
    sh(path, sys.executable, "-m", "runicorn", "init", "-q")
    return path


def cache_bytes(root: Path) -> int:
    total = 0
    for top, _, files in os.walk(root / ".runicorn" / "cache" / "objects"):
        total += sum(os.lstat(os.path.join(top, f)).st_size for f in files)
    return total


def bench_log(work: Path, files: int) -> dict:
    from runicorn.core import artifacts as A
    from runicorn.core.repo import Repo

    root = make_repo(work / "log")
    data = work / "log-data"
    shutil.rmtree(data, ignore_errors=True)
    for i in range(files):
        folder = data / f"d{i // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.bin").write_bytes(os.urandom(1024))
    repo = Repo(root)
    out = {}
    for label in ("v1", "v2"):
        if label == "v2":
            changed = 0
            for i in range(0, files, 100):  # 1% of the files change
                (data / f"d{i // 500:03d}" / f"f{i:05d}.bin").write_bytes(os.urandom(2048))
                changed += 2048
            out["changed_bytes"] = changed
        before = cache_bytes(root)
        t0 = time.perf_counter()
        art = A.Artifact("big-dataset", type="dataset")
        art.add_dir(data)
        version = A.log_artifact(repo, art)
        out[f"{label}_seconds"] = round(time.perf_counter() - t0, 3)
        out[f"{label}_bytes_added"] = cache_bytes(root) - before
        out[f"{label}_version"] = int(version)
    out["manifest_bytes"] = (root / ".runicorn/artifacts/big-dataset/v2.yaml").stat().st_size
    return out


def bench_read(work: Path, artifacts: int, versions: int) -> dict:
    from runicorn.core import artifact_index
    from runicorn.core import artifacts as A
    from runicorn.core.artifact_write import content_digest
    from runicorn.core.repo import Repo
    from runicorn.storage import artifact_store as store
    from runicorn.storage import fsutil

    root = make_repo(work / "read")
    t0 = time.perf_counter()
    previous = None
    for a in range(artifacts):  # manifests written directly: the read path is what is measured
        name = f"artifact-{a:04d}"
        (root / store.DIR / name).mkdir(parents=True)
        for v in range(1, versions + 1):
            files = [{"path": "model.pth", "oid": f"{a:04x}{v:04x}".ljust(64, "0"), "size": 1000 + v}]
            run = f"run_{a:04d}_{v:02d}"
            inputs = [{"artifact": previous[0], "version": previous[1], "digest": previous[2]}] if previous else []
            doc = {"runicorn": 1, "name": name, "version": v, "type": "model" if a % 2 else "dataset",
                   "description": None, "created_at": "2025-09-30T16:45:12.000000Z", "created_by": {"run": run},
                   "digest": content_digest(files, []), "size": files[0]["size"], "deleted": False, "metadata": {},
                   "tags": [], "files": files, "references": [], "inputs": inputs}
            fsutil.atomic_write(root / store.manifest_rel(name, v), store.encode_manifest(doc), durable=False)
            previous = (name, v, doc["digest"])
    repo = Repo(root)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    artifact_index.sync(repo)
    first_sync = time.perf_counter() - t0

    def timed(fn, n=15):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return round(statistics.median(times) * 1000, 1)

    mid = f"artifact-{artifacts // 2:04d}:v{versions // 2}"
    cli = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "runicorn", "artifacts", "list", "--json"], cwd=root, check=True,
                       capture_output=True)
        cli.append(time.perf_counter() - t)
    return {"artifacts": artifacts, "versions": artifacts * versions, "write_manifests_s": round(build, 2),
            "first_index_sync_s": round(first_sync, 2),
            "list_artifacts_ms": timed(lambda: A.list_artifacts(repo)),
            "lineage_depth5_ms": timed(lambda: A.lineage(repo, mid, depth=5)),
            "lineage_depth50_ms": timed(lambda: A.lineage(repo, mid, depth=50)),
            "list_versions_ms": timed(lambda: A.list_versions(repo, mid.split(":")[0])),
            "stats_ms": timed(lambda: A.artifact_stats(repo)),
            "cli_list_json_process_ms": round(statistics.median(cli) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("/tmp/rn-bench-art"))
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--artifacts", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    result = {"log": bench_log(args.work, args.files), "read": bench_read(args.work, args.artifacts, args.versions)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

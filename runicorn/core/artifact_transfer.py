"""`runicorn artifacts push`: upload the objects that artifact manifests name to a remote.

`runicorn push` moves the objects of tracked paths; artifact versions have their own objects, and
this sends them (what the remote lacks, checked with the same per-object queries or listing as
`push`, each object re-hashed on the way when the memo does not vouch for it). A fresh clone then
gets them back with `runicorn artifacts download`, which fetches missing objects itself.
"""
from __future__ import annotations

from runicorn.core.artifact_read import load_manifest, open_repo, resolve
from runicorn.core.events import NULL, Reporter
from runicorn.core.remotes import open_remote
from runicorn.core.transfer import TransferResult, pool_map, present_on_remote
from runicorn.storage import artifact_store as store
from runicorn.storage.index import RemoteIndex


def artifact_objects(repo, refs: list[str] | None = None) -> dict[str, str]:
    """oid -> 'name:vN/path' for every file of the given versions (default: every manifest here)."""
    versions = [resolve(repo, r, include_deleted=True) for r in refs] if refs else [
        (name, v) for name in store.artifact_names(repo.root) for v in sorted(store.version_files(repo.root, name))]
    wanted: dict[str, str] = {}
    for name, version in versions:
        for f in load_manifest(repo, name, version)["files"]:
            wanted.setdefault(f["oid"], f"{name}:v{version}/{f['path']}")
    return wanted


def push_artifacts(repo, refs: list[str] | None = None, remote: str | None = None, jobs: int = 0,
                   reporter: Reporter = NULL) -> TransferResult:
    repo = open_repo(repo)
    wanted = artifact_objects(repo, refs)
    store_ = open_remote(repo, remote, jobs)
    index = RemoteIndex(repo.index, store_.name)
    result = TransferResult(store_.name)
    local = {o: w for o, w in wanted.items() if repo.odb.exists(o)}
    result.missing = {o: [w] for o, w in wanted.items() if o not in local}
    candidates = set(local) - index.known()
    there = present_on_remote(store_, candidates)
    index.add(there)
    result.already = len(local) - len(candidates) + len(there)
    todo = sorted(candidates - there)
    advance = reporter.task(f"pushing artifacts to {store_.name}", len(todo), "objects")

    def one(oid: str) -> int:
        repo.guard.check(oid)
        size = store_.upload(repo.odb, oid)
        advance(1)
        return size

    sizes = pool_map(store_.jobs, one, todo)
    reporter.end_task()
    index.add(todo)
    result.transferred, result.bytes = len(todo), sum(sizes)
    return result

"""What a remote holds: `status --remote`, `verify --remote`, `gc --remote`."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from runicorn.config import parse_duration
from runicorn.core import gc as local_gc
from runicorn.core.events import NULL, Reporter
from runicorn.core.remotes import open_remote
from runicorn.core.repo import Repo
from runicorn.core.transfer import TransferResult, download_missing, objects_of, pool_map, present_on_remote
from runicorn.core.verify import VerifyReport
from runicorn.errors import UsageError
from runicorn.storage.index import RemoteIndex


@dataclass
class RemoteStatus:
    path: str
    not_pushed: int
    not_fetched: int
    unknown: int  # objects below a manifest that is neither local nor on the remote

    def to_json(self) -> dict:
        return {"path": self.path, "not_pushed": self.not_pushed, "not_fetched": self.not_fetched,
                "unknown": self.unknown}


def remote_status(repo: Repo, paths: list[str] | None, remote: str | None) -> tuple[str, list[RemoteStatus]]:
    """Read-only: per tracked path, objects the remote lacks and objects only the remote has."""
    store = open_remote(repo, remote)
    rows = []
    per_target = [(t, *objects_of(repo, [t])) for t in repo.targets(paths)]
    everything = set().union(*[local | absent for _, local, absent in per_target]) if per_target else set()
    there = present_on_remote(store, everything)
    for (rel, _, part), local, absent in per_target:
        shown = f"{rel}/{part}" if part else rel
        rows.append(RemoteStatus(shown, len(local - there), len(absent & there), len(absent - there)))
    return store.name, rows


def verify_remote(repo: Repo, paths: list[str] | None, remote: str | None, sample: float | None,
                  reporter: Reporter = NULL) -> VerifyReport:
    """Re-hash on the remote the objects the tracked paths need (a SAMPLE % of them)."""
    if sample is not None and not 0 < sample <= 100:
        raise UsageError(f"--sample must be a percentage above 0 and at most 100, not {sample:g}")
    store = open_remote(repo, remote)
    targets = repo.targets(paths)
    with repo.lock(reporter.info):  # folder manifests the cache lacks come from the remote first
        _fetch_root_manifests(repo, store, {p.oid: (p.kind, rel) for rel, p, _ in targets})
    wanted, _ = objects_of(repo, targets)
    there = present_on_remote(store, wanted)
    report = VerifyReport(missing=sorted(wanted - there), remote=store.name)
    chosen = sorted(there)
    if sample is not None and chosen:
        chosen = random.sample(chosen, max(1, round(len(chosen) * sample / 100)))
    advance = reporter.task(f"verifying on {store.name}", len(chosen), "objects")

    def one(oid: str) -> str:
        actual = store.hash_remote(oid)
        advance(1)
        return actual

    report.corrupt = [o for o, a in zip(chosen, pool_map(store.jobs, one, chosen)) if a != o]
    reporter.end_task()
    report.checked = len(chosen)
    index = RemoteIndex(repo.index, store.name)
    index.forget(report.missing)  # push must not trust them
    index.mark_corrupt(report.corrupt)  # the next push overwrites them
    return report


@dataclass
class RemoteGcPlan:
    remote: str
    listed: int = 0
    delete: list[str] = field(default_factory=list)
    kept_young: int = 0
    dry_run: bool = True

    def to_json(self) -> dict:
        return {"remote": self.remote, "listed": self.listed, "deleted": len(self.delete),
                "kept_young": self.kept_young, "dry_run": self.dry_run, "objects": sorted(self.delete)}


def gc_remote(repo: Repo, remote: str | None, workspace_only: bool = False, branches: bool = False,
              tags: bool = False, all_commits: bool = False, dry_run: bool = False,
              reporter: Reporter = NULL) -> RemoteGcPlan:
    """Delete remote objects nothing in scope (by default all branches and tags) reaches."""
    store = open_remote(repo, remote)
    with repo.lock(reporter.info):
        # a shared remote also serves teammates' branches: remote-tracking branches are roots too
        roots = local_gc.collect_roots(repo, workspace_only, branches, tags, all_commits, remote_branches=True)
        _fetch_root_manifests(repo, store, roots)
        keep = local_gc.reachable(repo, roots)
        listed = store.list_oids()
        plan = RemoteGcPlan(store.name, len(listed), dry_run=dry_run)
        cutoff = time.time() - parse_duration(repo.config.get("gc.grace_period"))
        unreachable = listed - keep
        young = {oid for oid in unreachable if _young(store.modified(oid), cutoff)}
        protected = _kept_by_young_manifests(repo, store, young)  # a push in progress: keep what it lists
        plan.delete = sorted(unreachable - young - protected)
        plan.kept_young = len(unreachable) - len(plan.delete)
        if not dry_run:
            pool_map(store.jobs, store.delete, plan.delete)
            for path in store.stale_temps(parse_duration(repo.config.get("gc.grace_period"))):
                store.fs.rm_file(path)
            RemoteIndex(repo.index, store.name).forget(plan.delete)
    return plan


def _young(modified: float | None, cutoff: float) -> bool:
    return modified is None or modified > cutoff  # unknown age counts as young: never deleted


def _kept_by_young_manifests(repo: Repo, store, young: set[str]) -> set[str]:
    """Everything listed by a young manifest on the remote (it may belong to a push in progress)."""
    roots = {oid: ("dir", f"recent manifest {oid[:12]} on {store.name}") for oid in young if store.is_manifest(oid)}
    if not roots:
        return set()
    _fetch_root_manifests(repo, store, roots)
    return local_gc.reachable(repo, roots)


def _fetch_root_manifests(repo: Repo, store, roots: dict) -> None:
    """Folder manifests gc must read but the cache lacks come from the remote (verified)."""
    level = [(oid, where) for oid, (kind, where) in roots.items() if kind == "dir"]
    seen: set[str] = set()
    while level:
        result, new = TransferResult(store.name), []
        download_missing(repo, store, level, result, new, lambda n=1: None)
        repo.guard.record(new)
        following = []
        for oid, where in level:
            if repo.odb.exists(oid) and oid not in seen:
                seen.add(oid)
                following += [(e.oid, where) for e in repo.trees.load(oid).values() if e.kind == "dir"]
        level = following

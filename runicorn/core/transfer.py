"""`runicorn push / fetch / pull`: move only the objects the other side lacks.

Push: enumerate the objects of the pointers in scope, skipping every subtree whose manifest the
remote is known to hold (a remote never holds a manifest whose objects are missing, because
files go first and manifests follow deepest-first). What is left is checked against the remote
(per-object queries or one listing, by size), then uploaded in parallel; each object appears
under its final name only when complete. A per-remote index of known objects makes a no-op
push nearly free; it is a hint, never a reason to delete.

Fetch: manifests level by level, then files, every object re-hashed before it enters the cache.
"""
from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

from runicorn.core.checkout import checkout
from runicorn.core.events import NULL, Reporter
from runicorn.core.history import pointers_at
from runicorn.core.remotes import open_remote
from runicorn.core.repo import Repo
from runicorn.errors import ObjectMissingError, RemoteObjectCorruptError
from runicorn.storage import fsutil
from runicorn.storage import pointer as ptr
from runicorn.storage.index import RemoteIndex
from runicorn.storage.remote import ObjectStore

POOL_SLICE = 1024  # tasks in flight at most, per pool
TRUST_SAMPLE = 32  # skipped objects spot-checked on the remote before the index is believed
PER_OBJECT_QUERIES_MAX = 256  # above this, compare with the remote's size before choosing to list
LISTING_FACTOR = 16  # list the remote when it holds at most this many objects per object we ask about


@dataclass
class TransferResult:
    remote: str
    transferred: int = 0
    bytes: int = 0
    already: int = 0
    missing: dict[str, list[str]] = field(default_factory=dict)  # oid -> tracked paths it belongs to
    not_restored: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"remote": self.remote, "transferred": self.transferred, "bytes": self.bytes,
                "already": self.already, "missing": sorted(self.missing), "not_restored": self.not_restored,
                "corrupt": self.corrupt}


Target = tuple[str, ptr.Pointer, str]  # tracked path, pointer, part inside it


def scope_targets(repo: Repo, paths: list[str] | None, rev: str | None = None, all_branches: bool = False,
                  all_tags: bool = False, all_commits: bool = False) -> list[Target]:
    """The workspace pointers (or PATHS), plus every pointer of the revisions in scope."""
    targets = list(repo.targets(paths))
    if rev or all_branches or all_tags or all_commits:
        commits = repo.git.scope_commits(all_branches, all_tags, all_commits) if not rev else [repo.git.resolve(rev)]
        seen = {(rel, p.oid) for rel, p, _ in targets}
        for commit in commits:
            for rel, p in pointers_at(repo, str(commit.id)).items():
                if (rel, p.oid) not in seen and (not paths or any(rel == t for t, _, _ in targets)):
                    seen.add((rel, p.oid))
                    targets.append((rel, p, ""))
    return targets


def pool_map(jobs: int, fn: Callable, items: list) -> list:
    """[fn(item) …] in JOBS threads, submitted in slices so memory does not grow with the count."""
    if len(items) <= 1 or jobs <= 1:
        return [fn(i) for i in items]
    out: list = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for start in range(0, len(items), POOL_SLICE):
            out.extend(pool.map(fn, items[start:start + POOL_SLICE]))
    return out


# ---------------------------------------------------------------------------------------- push
@dataclass
class PushPlan:
    files: set[str] = field(default_factory=set)
    manifests: dict[str, int] = field(default_factory=dict)  # oid -> depth
    absent_locally: dict[str, str] = field(default_factory=dict)  # oid -> a path that needs it
    skipped_known: set[str] = field(default_factory=set)  # subtrees skipped on the index's word


def _plan_push(repo: Repo, targets: list[Target], known: set[str]) -> PushPlan:
    plan = PushPlan()
    for rel, p, part in targets:
        if p.kind == "file":
            _want_file(repo, plan, p.oid, rel)
            continue
        oid, depth, where = p.oid, 0, rel
        if part:
            entry = repo.trees.lookup(p.oid, part) if repo.odb.exists(p.oid) else None
            if entry is None:
                plan.absent_locally[p.oid] = rel
                continue
            if entry.kind == "file":
                _want_file(repo, plan, entry.oid, f"{rel}/{part}")
                continue
            oid, depth, where = entry.oid, part.count("/") + 1, f"{rel}/{part}"
        _want_tree(repo, plan, oid, depth, where, known)
    return plan


def _want_file(repo: Repo, plan: PushPlan, oid: str, where: str) -> bool:
    if not repo.odb.exists(oid):
        plan.absent_locally[oid] = where
        return False
    plan.files.add(oid)
    return True


def _want_tree(repo: Repo, plan: PushPlan, oid: str, depth: int, where: str, known: set[str]) -> bool:
    """Add the objects of tree OID; False when part of it is not in the cache (then the manifest,
    and every manifest above it, stays local: the remote must never hold an incomplete tree)."""
    if oid in known:
        plan.skipped_known.add(oid)
        return True
    if oid in plan.manifests:
        return True
    if not repo.odb.exists(oid):
        plan.absent_locally[oid] = where
        return False
    complete = True
    for name, entry in repo.trees.load(oid).items():
        if entry.kind == "dir":
            complete &= _want_tree(repo, plan, entry.oid, depth + 1, f"{where}/{name}", known)
        else:
            complete &= _want_file(repo, plan, entry.oid, f"{where}/{name}")
    if complete:
        plan.manifests[oid] = depth
    return complete


def present_on_remote(store: ObjectStore, oids: set[str]) -> set[str]:
    """Which of OIDS the remote has: per-object queries, or one listing when that is cheaper.

    As DVC does: the remote's size is estimated from one of its 256 fan-out folders; listing
    wins unless the remote holds far more objects than we ask about."""
    if not oids:
        return set()
    if len(oids) > PER_OBJECT_QUERIES_MAX and store.estimate_count() <= len(oids) * LISTING_FACTOR:
        return store.list_oids() & oids
    found = pool_map(store.jobs, store.exists, sorted(oids))
    return {oid for oid, there in zip(sorted(oids), found) if there}


def push(repo: Repo, paths: list[str] | None = None, remote: str | None = None, jobs: int = 0,
         reporter: Reporter = NULL, full: bool = False, targets: list[Target] | None = None,
         **scope) -> TransferResult:
    """Upload what the remote lacks. FULL ignores the known-object index and checks every object
    on the remote (repairs a remote that lost objects behind our back). TARGETS, instead of PATHS
    and the scope, pushes exactly those pointers (the pre-push hook reads them from commits)."""
    store = open_remote(repo, remote, jobs)
    index = RemoteIndex(repo.index, store.name)
    explicit = targets is not None
    if not explicit:
        targets = scope_targets(repo, paths, **scope)
    if full or index.corrupt():  # objects found corrupt may sit under subtrees the index vouches for
        index.forget()
    plan, known = _plan_checked(repo, store, index, targets)
    if not paths and not explicit:  # a whole push also sends the files of the artifact versions held here
        plan.files |= _local_artifact_files(repo)
    result = TransferResult(store.name)
    wanted = (plan.files - known) | set(plan.manifests)
    there = present_on_remote(store, wanted) - index.corrupt()  # corrupt ones are overwritten
    index.add(there)
    result.already = len(there) + len(plan.files & known)
    todo_files = sorted(plan.files - known - there)
    levels = sorted({d for o, d in plan.manifests.items() if o not in there}, reverse=True)
    total = len(wanted) - len(there)
    advance = reporter.task(f"pushing to {store.name}", total, "objects")
    _upload(repo, store, index, todo_files, result, advance)
    for depth in levels:  # deepest manifests first: a tree lands only after everything under it
        batch = sorted(o for o, d in plan.manifests.items() if d == depth and o not in there)
        _upload(repo, store, index, batch, result, advance)
    reporter.end_task()
    result.missing = {oid: [where] for oid, where in plan.absent_locally.items()}
    return result


def _local_artifact_files(repo: Repo) -> set[str]:
    """Files of the artifact manifests in the workspace whose objects are in the cache. Versions
    logged elsewhere and never downloaded here are left out: whoever logged them pushed them."""
    from runicorn.core.artifact_transfer import artifact_objects  # artifacts build on transfer

    return {oid for oid in artifact_objects(repo) if repo.odb.exists(oid)}


def _plan_checked(repo: Repo, store: ObjectStore, index: RemoteIndex, targets: list[Target]) -> tuple[PushPlan, set[str]]:
    """Plan with the known-object index, after spot-checking that what it let us skip is there.

    Up to TRUST_SAMPLE skipped objects are queried: if the remote lost objects behind our back
    (wiped, restored from an old backup), the index is dropped and the plan made again."""
    known = index.known()
    plan = _plan_push(repo, targets, known)
    skipped = sorted(plan.skipped_known | (plan.files & known))
    sample = random.sample(skipped, TRUST_SAMPLE) if len(skipped) > TRUST_SAMPLE else skipped
    if sample and not all(pool_map(store.jobs, store.exists, sample)):
        index.forget()
        return _plan_push(repo, targets, set()), set()
    return plan, known


def _upload(repo: Repo, store: ObjectStore, index: RemoteIndex, oids: list[str], result: TransferResult,
            advance: Callable[[int], None]) -> None:
    def one(oid: str) -> int:
        repo.guard.check(oid)  # an object changed in place is re-hashed, never pushed corrupt
        size = store.upload(repo.odb, oid)
        advance(1)
        return size

    done: list[str] = []
    try:
        for oid, size in zip(oids, pool_map(store.jobs, one, oids)):
            done.append(oid)
            result.transferred += 1
            result.bytes += size
    finally:
        index.add(done)
        index.mark_corrupt(done, corrupt=False)


# --------------------------------------------------------------------------------------- fetch
def fetch(repo: Repo, paths: list[str] | None = None, remote: str | None = None, jobs: int = 0,
          reporter: Reporter = NULL, raise_corrupt: bool = True, **scope) -> TransferResult:
    store = open_remote(repo, remote, jobs)
    index = RemoteIndex(repo.index, store.name)
    result = TransferResult(store.name)
    repo.odb.prepare()
    new: list[str] = []
    advance = reporter.task(f"fetching from {store.name}", None, "objects")
    with repo.lock(reporter.info):
        for rel, p, part in scope_targets(repo, paths, **scope):
            if p.kind == "file":
                download_missing(repo, store, [(p.oid, rel)], result, new, advance)
            else:
                _fetch_tree(repo, store, rel, p.oid, part, result, new, advance)
        fsutil.make_durable([repo.odb.path(o) for o in new], repo.cache_dir)
        repo.guard.record(new)
        index.add(new)
    reporter.end_task()
    index.mark_corrupt(result.corrupt)
    if result.corrupt and raise_corrupt:
        raise RemoteObjectCorruptError(result.corrupt, store.name)
    return result


def download_missing(repo: Repo, store: ObjectStore, wanted: list[tuple[str, str]], result: TransferResult,
         new: list[str], advance) -> None:
    """Download (oid, path) pairs not yet in the cache; record missing and corrupt ones."""
    todo = [(oid, where) for oid, where in dict(wanted).items() if not repo.odb.exists(oid)]
    result.already += len(wanted) - len(todo)

    def one(item: tuple[str, str]):
        oid, where = item
        try:
            actual, stored = store.download(repo.odb, oid)
        except FileNotFoundError:
            return oid, where, "missing", 0
        advance(1)
        return oid, where, ("ok" if actual == oid else "corrupt"), int(stored)

    for oid, where, state, stored in pool_map(store.jobs, one, todo):
        if state == "ok":
            result.bytes += os.path.getsize(repo.odb.path(oid))
        if state == "missing":
            result.missing.setdefault(oid, []).append(where)
        elif state == "corrupt":
            result.corrupt.append(oid)
        else:
            result.transferred += 1
            if stored:
                new.append(oid)


def _fetch_tree(repo: Repo, store: ObjectStore, rel: str, root: str, part: str, result: TransferResult,
                new: list[str], advance) -> None:
    """Fetch the manifests on the way to PART, then everything under it, level by level."""
    level: list[tuple[str, str]] = [(root, rel)]
    steps = part.split("/") if part else []
    while level:  # one batch of manifests, then one batch of all their files, per level
        download_missing(repo, store, level, result, new, advance)
        following: list[tuple[str, str]] = []
        files: list[tuple[str, str]] = []
        for oid, where in level:
            if not repo.odb.exists(oid):
                continue
            entries = repo.trees.load(oid)
            depth = where.count("/") - rel.count("/")
            if depth < len(steps):
                name = steps[depth]
                entries = {name: entries[name]} if name in entries else {}
            files += [(e.oid, f"{where}/{n}") for n, e in entries.items() if e.kind == "file"]
            following += [(e.oid, f"{where}/{n}") for n, e in entries.items() if e.kind == "dir"]
        download_missing(repo, store, files, result, new, advance)
        level = following


def pull(repo: Repo, paths: list[str] | None = None, remote: str | None = None, jobs: int = 0,
         force: bool = False, reporter: Reporter = NULL, **scope) -> TransferResult:
    """fetch + checkout; what the remote lacks is named, the rest is restored."""
    result = fetch(repo, paths, remote, jobs, reporter, raise_corrupt=False, **scope)
    for rel, _, part in repo.targets(paths):  # one at a time: a path whose manifest is absent
        shown = f"{rel}/{part}" if part else rel   # must not keep the others from being restored
        try:
            restored = checkout(repo, [str(repo.abspath(shown))], force, reporter, skip_missing=True)
        except ObjectMissingError:
            result.not_restored.append(shown)
        else:
            result.not_restored += [p for r in restored for p in r.missing]
    result.not_restored.sort()
    if result.corrupt:  # everything else is restored; the corrupt objects were refused
        raise RemoteObjectCorruptError(result.corrupt, result.remote)
    return result


def objects_of(repo: Repo, targets: Iterable[Target]) -> tuple[set[str], set[str]]:
    """(objects the targets need, those whose listing is unknown because a manifest is absent)."""
    plan = _plan_push(repo, list(targets), set())
    return plan.files | set(plan.manifests), set(plan.absent_locally)

"""`runicorn verify`: re-hash objects and report every corrupt or missing one.

Corrupt objects are moved to quarantine (under the lock) so they are never linked or pushed.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

from runicorn.core.events import NULL, Reporter
from runicorn.core.repo import Repo
from runicorn.errors import UsageError
from runicorn.storage.hashing import hash_many


@dataclass
class VerifyReport:
    checked: int = 0
    corrupt: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    remote: str | None = None  # set when the objects checked are on a remote

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing)

    def to_json(self) -> dict:
        return {"checked": self.checked, "corrupt": sorted(self.corrupt), "missing": sorted(self.missing), "ok": self.ok}


def _tracked_oids(repo: Repo, paths: list[str] | None, report: VerifyReport) -> set[str]:
    oids: set[str] = set()
    for _, pointer in repo.tracked(paths):
        oids.add(pointer.oid)
        if pointer.kind != "dir" or not repo.odb.exists(pointer.oid):
            continue
        for tree in repo.trees.tree_oids(pointer.oid):
            oids.add(tree)
            oids.update(e.oid for e in repo.trees.load(tree).values())
    return oids


def verify(repo: Repo, paths: list[str] | None = None, cache: bool = False, sample: float | None = None,
           reporter: Reporter = NULL) -> VerifyReport:
    report = VerifyReport()
    if sample is not None and not 0 < sample <= 100:
        raise UsageError(f"--sample must be a percentage above 0 and at most 100, not {sample:g}")
    wanted = set(repo.odb.iter_oids()) if cache else _tracked_oids(repo, paths, report)
    present = sorted(o for o in wanted if repo.odb.exists(o))
    report.missing = sorted(wanted - set(present))
    if sample is not None:
        present = random.sample(present, max(1, round(len(present) * sample / 100))) if present else []
    advance = reporter.task("verifying", len(present), "objects")
    files = [repo.odb.path(o) for o in present]
    actual = hash_many(files, repo.jobs, lambda: advance(1), [os.path.getsize(f) for f in files])
    reporter.end_task()
    report.checked = len(present)
    report.corrupt = [o for o, a in zip(present, actual) if o != a]
    if report.corrupt:
        with repo.lock(reporter.info):
            for oid in report.corrupt:
                if repo.odb.exists(oid) and repo.odb.rehash(oid) != oid:
                    repo.odb.quarantine(oid)
            repo.memo.forget_oids(report.corrupt)
    return report

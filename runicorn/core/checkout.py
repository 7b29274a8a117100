"""`runicorn checkout`: make the workspace match the pointers — diff first, then apply.

For each tracked path the change set (files to link, files to remove) is computed against
what is on disk; uncommitted content that would be lost stops the command (unless forced)
before anything is touched. Each file is replaced atomically (link to a temp name, rename),
so a killed checkout leaves every file either old or new, and rerunning it completes.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from runicorn.core.events import NULL, Reporter
from runicorn.core.repo import Repo
from runicorn.errors import CheckoutError, ObjectMissingError, RunicornError, WorkspaceChangedError
from runicorn.storage import fsutil, gitignore
from runicorn.storage import pointer as ptr
from runicorn.storage.index import memo_row
from runicorn.storage.manifest import Entry
from runicorn.storage.safepath import check_no_symlink_parents


@dataclass
class Plan:
    rel: str
    pointer: ptr.Pointer
    part: str = ""  # only this path inside a tracked folder ('' = all of it)
    link: list[tuple[str, Entry]] = field(default_factory=list)  # (path inside, entry)
    remove: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)  # sub-folders the target has (empty ones too)
    lost: list[str] = field(default_factory=list)  # uncommitted content the plan would discard
    leftovers: list[str] = field(default_factory=list)  # temp files of a killed command
    replace_kind: bool = False  # a file where a folder should be, or the reverse



@dataclass
class CheckoutResult:
    path: str
    linked: int
    removed: int
    missing: list[str] = field(default_factory=list)  # files not restored: their objects are not in the cache

    def to_json(self) -> dict:
        return {"path": self.path, "linked": self.linked, "removed": self.removed, "missing": self.missing}


def checkout(repo: Repo, paths: list[str] | None = None, force: bool = False,
             reporter: Reporter = NULL, skip_missing: bool = False) -> list[CheckoutResult]:
    """Make PATHS (default: all tracked) match their pointers. A path inside a tracked folder
    restores just that part. With SKIP_MISSING, files whose objects are absent are left out and
    listed in the result instead of failing the whole command."""
    with repo.lock(reporter.info):
        plans = [_plan(repo, rel, p, part) for rel, p, part in repo.targets(paths)]
        lost = [x for plan in plans for x in plan.lost]
        if lost and not force:
            raise WorkspaceChangedError(lost)
        missing = _missing_objects(repo, plans, skip_missing)
        results = []
        for plan in plans:
            fsutil.sweep_tmp(repo.abspath(plan.rel).parent)
            fsutil.unlink_all(plan.leftovers)
            result = _apply(repo, plan, reporter)
            result.missing = missing.get(plan.rel, [])
            results.append(result)
            gitignore.add_entry(repo.abspath(plan.rel))
        return results


def _plan(repo: Repo, rel: str, pointer: ptr.Pointer, part: str = "") -> Plan:
    """What to change for tracked path REL (only PART of it, when given): computed, not applied."""
    plan = Plan(rel, pointer, part)
    path = repo.abspath(rel)
    check_no_symlink_parents(repo.root, rel)
    current = repo.snapshot(rel, expect=pointer.oid) if (path.exists() or path.is_symlink()) else None
    if current is not None:
        plan.leftovers = current.leftovers
    if not part and (path.is_symlink() or (current is None and path.exists())):
        plan.replace_kind = True
        plan.lost.append(rel)
        current = None
    if current is not None and current.oid == pointer.oid and current.kind == pointer.kind:
        return plan
    if pointer.kind == "file":
        _plan_file(repo, plan, current)
    else:
        _plan_dir(repo, plan, current)
    return plan


def _unsaved(repo: Repo, oid: str | None) -> bool:
    return oid is not None and not repo.odb.exists(oid)


def _plan_file(repo: Repo, plan: Plan, current) -> None:
    p = plan.pointer
    if current is not None and current.kind == "dir":
        plan.replace_kind = True
        plan.lost.extend(f"{plan.rel}/{f.rel}" for f in current.files if _unsaved(repo, f.oid))
    elif current is not None and _unsaved(repo, current.oid):
        plan.lost.append(plan.rel)
    plan.link.append(("", Entry("file", p.oid, p.size)))


def _plan_dir(repo: Repo, plan: Plan, current) -> None:
    if current is not None and current.kind == "file" and not plan.part:
        plan.replace_kind = True
        if _unsaved(repo, current.oid):
            plan.lost.append(plan.rel)
        current = None
    trees = repo.trees
    if current is not None:
        trees.remember(current.trees)
    now = current.oid if current is not None and current.kind == "dir" else None
    target, prefix = plan.pointer.oid, ""
    if plan.part:  # only the manifests on the way to PART and below it are needed
        now, target, prefix = _narrow(repo, plan, now)
        if target is None:
            return
    plan.folders += [prefix + d for d in trees.dir_paths(target)]
    for sub in plan.folders if current is not None else ():  # refuse before anything is written
        check_no_symlink_parents(repo.root, f"{plan.rel}/{sub}/x")
    for sub, change, old, new in trees.diff(now, target, prefix):
        if change in ("added", "modified"):
            plan.link.append((sub, new))
        if change == "modified" and _unsaved(repo, old.oid) and old.oid != new.oid:
            plan.lost.append(f"{plan.rel}/{sub}")
        if change == "deleted":
            plan.remove.append(sub)
            if _unsaved(repo, old.oid):
                plan.lost.append(f"{plan.rel}/{sub}")


def _narrow(repo: Repo, plan: Plan, now: str | None) -> tuple[str | None, str | None, str]:
    """(workspace subtree, target subtree, prefix) for plan.part; a file part is planned here."""
    part, trees = plan.part, repo.trees
    entry = trees.lookup(plan.pointer.oid, part)
    if entry is None:
        raise RunicornError(f"{plan.rel}/{part} is not in {plan.rel}{ptr.SUFFIX}; list it with `runicorn ls {plan.rel}`")
    steps = part.split("/")
    plan.folders = ["/".join(steps[:i]) for i in range(1, len(steps))]
    cur = trees.lookup(now, part) if now else None
    if entry.kind == "file":
        if cur != entry:
            plan.link.append((part, entry))
            if cur is not None and cur.kind == "file" and _unsaved(repo, cur.oid):
                plan.lost.append(f"{plan.rel}/{part}")
        return None, None, ""
    plan.folders.append(part)
    return (cur.oid if cur is not None and cur.kind == "dir" else None), entry.oid, part + "/"


def _missing_objects(repo: Repo, plans: list[Plan], skip: bool) -> dict[str, list[str]]:
    """Paths (per tracked path) whose objects are not in the cache; raises unless SKIP."""
    missing: dict[str, list[str]] = {}
    oids = set()
    for plan in plans:
        absent = [(sub, e) for sub, e in plan.link if not repo.odb.exists(e.oid)]
        if absent:
            oids.update(e.oid for _, e in absent)
            missing[plan.rel] = [f"{plan.rel}/{sub}" if sub else plan.rel for sub, _ in absent]
            gone = {sub for sub, _ in absent}
            plan.link = [(sub, e) for sub, e in plan.link if sub not in gone]
    if oids and not skip:
        raise ObjectMissingError(oids)
    return missing


def _apply(repo: Repo, plan: Plan, reporter: Reporter) -> CheckoutResult:
    path = repo.abspath(plan.rel)
    if plan.replace_kind and (path.exists() or path.is_symlink()):
        _remove_tree(path)
    if plan.pointer.kind == "dir":
        path.mkdir(parents=True, exist_ok=True)
        _remove_files(path, plan.remove)
        for sub in plan.folders:
            (path / sub).mkdir(exist_ok=True)
    kind = repo.linker.kind_for(path if plan.pointer.kind == "dir" else path.parent)
    failures: dict[str, str] = {}
    memo_rows: list = []
    advance = reporter.task(f"checking out {plan.rel}", len(plan.link))
    for sub, entry in plan.link:
        dest = path / sub if sub else path
        try:
            _link_one(repo, dest, entry, kind, memo_rows)
        except (RunicornError, OSError) as exc:
            failures[f"{plan.rel}/{sub}" if sub else plan.rel] = getattr(exc, "message", None) or str(exc)
        advance(1)
    reporter.end_task()
    repo.memo.put_many(memo_rows)
    if failures:
        raise CheckoutError(failures)
    return CheckoutResult(plan.rel, len(plan.link), len(plan.remove))


def _link_one(repo: Repo, dest: Path, entry: Entry, kind: str, memo_rows: list) -> None:
    repo.guard.check(entry.oid, record=False)  # the row is recorded below, after linking
    if not dest.parent.is_dir():
        check_no_symlink_parents(repo.root, str(dest.relative_to(repo.root)))
        dest.parent.mkdir(parents=True, exist_ok=True)
    elif dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    if not (repo.linker.shares_inode(kind, entry.executable) and repo.linker.link_new(entry.oid, dest)):
        repo.linker.link(entry.oid, dest, entry.executable, kind)
    # a new link changes the inode's ctime: record it, so status does not re-hash what we just linked
    memo_rows.append(memo_row(os.stat(dest), entry.oid))


def _remove_files(root: Path, subs: list[str]) -> None:
    for sub in subs:
        target = root / sub
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            try:
                target.unlink()
            except FileNotFoundError:
                pass
    for sub in sorted({str(Path(s).parent) for s in subs if "/" in s}, key=len, reverse=True):
        try:
            (root / sub).rmdir()
        except OSError:
            pass


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()

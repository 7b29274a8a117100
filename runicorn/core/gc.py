"""`runicorn gc`: delete only objects that are provably unreachable.

Roots: workspace pointers, pointers staged in the git index, artifact manifests, the pointers
and artifact manifests of HEAD and — by default — every branch and tag (`--workspace` narrows
to workspace + index + HEAD; `--all-commits` widens to all history). Objects younger than
`gc.grace_period` are always kept. Any unreadable pointer, manifest or ref stops gc before
it deletes anything. Deletion runs under the repository lock, manifests before the objects
they list (the reverse of the write order).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import yaml

from runicorn.config import parse_duration, strict_yaml_load
from runicorn.core.events import NULL, Reporter
from runicorn.core.repo import Repo
from runicorn.errors import CorruptObjectError, GcRefusedError, RunicornError
from runicorn.storage import pointer as ptr
from runicorn.storage.git import is_pointer_path
from runicorn.storage.hashing import is_oid
from runicorn.storage.manifest import MANIFEST_HEAD

ARTIFACTS_PREFIX = ".runicorn/artifacts/"


@dataclass
class GcPlan:
    reachable: int = 0
    delete: list[str] = field(default_factory=list)
    kept_young: int = 0
    freed_bytes: int = 0
    quarantined: list[str] = field(default_factory=list)
    dry_run: bool = True

    def to_json(self) -> dict:
        return {"reachable": self.reachable, "deleted": len(self.delete), "kept_young": self.kept_young,
                "freed_bytes": self.freed_bytes, "quarantined": self.quarantined, "dry_run": self.dry_run,
                "objects": sorted(self.delete)}


def _is_root_file(path: str) -> bool:
    return is_pointer_path(path) or (path.startswith(ARTIFACTS_PREFIX) and path.endswith((".yaml", ".yml")))


def _oids_in_yaml(data: bytes, where: str) -> set[str]:
    """Every 64-hex value under an `oid` key in an artifact manifest."""
    try:
        doc = strict_yaml_load(data)
    except yaml.YAMLError as exc:
        raise GcRefusedError(f"{where} is not valid YAML ({str(exc).splitlines()[0]})") from None
    found: set[str] = set()
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "oid" and is_oid(value):
                    found.add(value)
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


Roots = dict  # oid -> (kind "file" | "dir", where it was named)


def _add_pointer(roots: Roots, path: str, data: bytes, where: str) -> None:
    try:
        p = ptr.parse_at(data, path, where)
    except RunicornError as exc:
        raise GcRefusedError(exc.message) from None
    if roots.get(p.oid, ("file",))[0] != "dir":
        roots[p.oid] = (p.kind, where)


def _add_root_file(roots: Roots, path: str, data: bytes, where: str) -> None:
    if is_pointer_path(path):
        _add_pointer(roots, path, data, where)
    else:
        for oid in _oids_in_yaml(data, where):
            roots.setdefault(oid, ("file", where))


def _add_run_objects(roots: Roots, repo: Repo) -> None:
    """Objects that run documents name (diffs, run files) are kept while their run exists."""
    from runicorn.core.runs import run_object_roots

    try:
        found = run_object_roots(repo)
    except RunicornError as exc:
        raise GcRefusedError(exc.message) from None
    for oid, where in found.items():
        roots.setdefault(oid, ("file", where))


def collect_roots(repo: Repo, workspace_only: bool, branches: bool, tags: bool, all_commits: bool,
                  remote_branches: bool = False) -> Roots:
    roots: Roots = {}
    for rel in repo.pointer_paths():
        name = rel + ptr.SUFFIX
        _add_pointer(roots, name, repo.pointer_file(rel).read_bytes(), name)
    artifacts = repo.root / ARTIFACTS_PREFIX
    if artifacts.is_dir():
        for file in artifacts.rglob("*.y*ml"):
            rel = file.relative_to(repo.root).as_posix()
            _add_root_file(roots, rel, file.read_bytes(), rel)
    _add_run_objects(roots, repo)
    for path, data in repo.git.index_files(_is_root_file):
        _add_root_file(roots, path, data, f"{path} (git index)")
    use_branches = branches or not workspace_only
    use_tags = tags or not workspace_only
    commits = repo.git.scope_commits(use_branches, use_tags, all_commits, remote_branches and use_branches)
    for sha, path, data in repo.git.files_in_commits(commits, _is_root_file):
        _add_root_file(roots, path, data, f"{path} at {sha[:12]}")
    return roots


def reachable(repo: Repo, roots: Roots) -> set[str]:
    """Every root plus everything its manifests list, read and validated through TreeReader.

    A directory manifest that is missing or unreadable stops gc: what it lists is unknown.
    """
    seen: set[str] = set(roots)
    for oid, (kind, where) in roots.items():
        if kind != "dir":
            continue
        try:
            for tree in repo.trees.tree_oids(oid):
                seen.add(tree)
                seen.update(e.oid for e in repo.trees.load(tree).values())
        except RunicornError as exc:
            raise GcRefusedError(f"the folder manifest named by {where} cannot be read ({exc.message}); "
                                 "fetch it with `runicorn fetch`") from None
    return seen


def _looks_like_manifest(repo: Repo, oid: str) -> bool:
    with open(repo.odb.path(oid), "rb") as f:
        head = f.read(64)
    return head.startswith(MANIFEST_HEAD)


def gc(repo: Repo, workspace_only: bool = False, branches: bool = False, tags: bool = False,
       all_commits: bool = False, dry_run: bool = False, reporter: Reporter = NULL) -> GcPlan:
    with repo.lock(reporter.info):
        keep = reachable(repo, collect_roots(repo, workspace_only, branches, tags, all_commits))
        plan = _plan(repo, keep, dry_run)
        plan.quarantined = _damaged(repo, keep, move=not dry_run)
        if not dry_run:
            _delete(repo, plan)
            repo.memo.forget_oids(plan.delete)
            repo.odb.clean_tmp(parse_duration(repo.config.get("gc.grace_period")))
        return plan


def _plan(repo: Repo, keep: set[str], dry_run: bool) -> GcPlan:
    grace = parse_duration(repo.config.get("gc.grace_period"))
    cutoff = time.time() - grace
    plan = GcPlan(reachable=len(keep), dry_run=dry_run)
    for oid in repo.odb.iter_oids():
        if oid in keep:
            continue
        st = os.stat(repo.odb.path(oid))
        # ctime changes when an object is linked or renamed in, so a just-added object is young.
        if max(st.st_ctime, st.st_mtime) > cutoff:
            plan.kept_young += 1
            continue
        plan.delete.append(oid)
        plan.freed_bytes += st.st_size
    return plan


def _delete(repo: Repo, plan: GcPlan) -> None:
    manifests = [o for o in plan.delete if _looks_like_manifest(repo, o)]
    others = set(plan.delete) - set(manifests)
    for oid in manifests + sorted(others):
        repo.odb.remove(oid)


def _damaged(repo: Repo, keep: set[str], move: bool) -> list[str]:
    """Kept objects whose stat changed since they were recorded and whose content no longer
    matches their name (an in-place write); moved to quarantine unless MOVE is false (dry run)."""
    damaged = []
    for oid in sorted(keep):
        if not repo.odb.exists(oid) or not repo.guard.suspect(oid):
            continue
        if not move:
            if repo.odb.rehash(oid) != oid:
                damaged.append(oid)
            continue
        try:
            repo.guard.check(oid)
        except CorruptObjectError:
            damaged.append(oid)
    return damaged

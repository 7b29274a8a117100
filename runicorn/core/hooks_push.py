"""What the pre-push hook does: push the data the pushed commits introduce, or refuse the push.

Like git-lfs, only what the commits being pushed introduce is looked at (pointers and artifact
manifests that differ from every parent), and commits the git remote already has are skipped.
Objects missing from this cache are fine when the Runicorn remote already has them; otherwise
the push is refused with UnpushedDataError, so a pushed commit never names data the remote lacks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from runicorn.core import transfer
from runicorn.core.events import NULL, Reporter
from runicorn.core.hooks import ARTIFACT_MANIFEST, NULL_SHA
from runicorn.core.remotes import open_remote
from runicorn.core.repo import Repo
from runicorn.errors import UnpushedDataError
from runicorn.storage import pointer as ptr
from runicorn.storage.git import is_pointer_path


@dataclass
class PrePushReport:
    commits: int = 0
    pointers: int = 0
    artifacts: int = 0
    remote: str | None = None
    transferred: int = 0
    already: int = 0

    def to_json(self) -> dict:
        return {"commits": self.commits, "pointers": self.pointers, "artifacts": self.artifacts, "remote": self.remote,
                "transferred": self.transferred, "already": self.already}


def pre_commit_push(env: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """(git remote, ref lines as git would give them) of a push run by the pre-commit framework,
    from its PRE_COMMIT_* variables (it has consumed git's stdin); None when ENV has none.

    pre-commit sets PRE_COMMIT_FROM_REF / _TO_REF only when the push does not reach a root commit;
    on a first push it sets just the remote and the branches, so the tip is the local branch (or
    HEAD) and `pushed_pointers` leaves out what the remote's tracking branches already have."""
    remote, to_ref = env.get("PRE_COMMIT_REMOTE_NAME"), env.get("PRE_COMMIT_TO_REF")
    if not remote and not to_ref:
        return None
    local = env.get("PRE_COMMIT_LOCAL_BRANCH") or "HEAD"
    remote_ref = env.get("PRE_COMMIT_REMOTE_BRANCH") or "HEAD"
    tip, hidden = (to_ref, env.get("PRE_COMMIT_FROM_REF") or NULL_SHA) if to_ref else (local, NULL_SHA)
    return remote or "origin", [f"{local} {tip} {remote_ref} {hidden}"]


def _pushed_or_manifest(path: str) -> bool:
    return is_pointer_path(path) or ARTIFACT_MANIFEST.match(path) is not None


def pushed_pointers(repo: Repo, git_remote: str, ref_lines: list[str]) -> tuple[int, list, list[str]]:
    """(number of commits, [(rel, pointer, '')], artifact refs 'name:vN') for what `git push` sends:
    REF_LINES are the `<local ref> <local sha> <remote ref> <remote sha>` lines git gives pre-push
    on stdin; commits already on GIT_REMOTE (its remote-tracking branches or the remote sha) are
    left out."""
    commits: dict = {}
    for line in ref_lines:
        parts = line.split()
        if len(parts) != 4 or set(parts[1]) == {"0"}:
            continue  # malformed, or a branch deletion
        for c in repo.git.commits_between(parts[1], [parts[3]], f"refs/remotes/{git_remote}/"):
            commits[c.id] = c
    targets, artifacts = {}, set()
    for sha, path, data in repo.git.introduced_files(list(commits.values()), _pushed_or_manifest):
        found = ARTIFACT_MANIFEST.match(path)
        if found:
            artifacts.add(f"{found.group(1)}:v{found.group(2)}")
            continue
        rel = path[: -len(ptr.SUFFIX)]
        p = ptr.parse_at(data, path, f"{path} at {sha[:10]}")
        targets[(rel, p.oid)] = (rel, p, "")
    return len(commits), sorted(targets.values(), key=lambda t: (t[0], t[1].oid)), sorted(artifacts)


def pre_push(repo: Repo, git_remote: str, ref_lines: list[str], reporter: Reporter = NULL) -> PrePushReport:
    """Push the objects of every pointer in the commits being pushed to the default Runicorn
    remote. UnpushedDataError (the git push is refused) when some are not in the cache."""
    count, targets, artifacts = pushed_pointers(repo, git_remote, ref_lines)
    report = PrePushReport(commits=count, pointers=len(targets), artifacts=len(artifacts))
    if not targets and not artifacts:
        return report
    if not repo.config.remotes():
        reporter.warn("no Runicorn remote is configured, so the data of the pushed commits stays on this "
                      "machine; add one with `runicorn remote add NAME URL --default`")
        return report
    missing: dict[str, str] = {}
    results = [transfer.push(repo, reporter=reporter, targets=targets)] if targets else []
    for result in results + _push_artifacts(repo, artifacts, reporter):
        report.remote = result.remote
        report.transferred += result.transferred
        report.already += result.already
        missing.update({oid: ws[0] for oid, ws in result.missing.items()})
    if missing:  # not in this cache: fine if the remote has them already (pushed from another clone)
        store = open_remote(repo, None, 0)
        absent = set(missing) - transfer.present_on_remote(store, set(missing))
        if absent:
            raise UnpushedDataError(sorted({missing[o] for o in absent}), report.remote)
        report.transferred += _complete_manifests(repo, store, targets)
    return report


def _complete_manifests(repo: Repo, store, targets: list) -> int:
    """Upload the local manifests `push` held back because an object under them was not in this
    cache (now known to be on the remote), deepest first: a tree lands after everything under it."""

    depth: dict[str, int] = {}

    def walk(oid: str, level: int) -> None:
        if oid in depth or not repo.odb.exists(oid):
            return
        depth[oid] = level
        for entry in repo.trees.load(oid).values():
            if entry.kind == "dir":
                walk(entry.oid, level + 1)

    for _, p, _ in targets:
        if p.kind == "dir":
            walk(p.oid, 0)
    todo = set(depth) - transfer.present_on_remote(store, set(depth))
    for oid in sorted(todo, key=lambda o: -depth[o]):
        store.upload(repo.odb, oid)
    return len(todo)


def _push_artifacts(repo: Repo, refs: list[str], reporter: Reporter) -> list:
    """The objects of the artifact versions whose manifests the pushed commits add (those still
    in the workspace: a manifest is never rewritten, only added or soft-deleted)."""
    here = [ref for ref in refs if (repo.root / ".runicorn" / "artifacts" / ref.split(":v")[0]
                                    / f"v{ref.split(':v')[1]}.yaml").is_file()]
    if not here:
        return []
    from runicorn.core.artifact_transfer import push_artifacts

    return [push_artifacts(repo, here, reporter=reporter)]


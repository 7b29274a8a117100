"""`runicorn install-hooks` / `uninstall-hooks` and what the installed git hooks do.

The hooks are small shell scripts that call `runicorn git-hook NAME …`; the work happens here:
- post-checkout / post-merge: check out (quietly) only the pointers that changed between the old
  and the new commit; data that is not in the cache is fetched from the default remote.
- pre-push: push the objects of every pointer in the commits being pushed (the commits the git
  remote does not have yet), so a pushed commit never names data the Runicorn remote lacks
  (`hooks_push.py`).

A hook that already exists is never overwritten: it is moved aside to `NAME.pre-runicorn` and
our script runs it first (with the same arguments and standard input). If it fails, pre-push
stops there; post-checkout / post-merge still bring the data and then exit with its status.
`uninstall-hooks` puts it back. `core.hooksPath` is respected.
"""
from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from runicorn.core.checkout import checkout
from runicorn.core.events import NULL, Reporter
from runicorn.core.repo import Repo
from runicorn.errors import (HookConflictError, ObjectMissingError, RevisionError, RunicornError,
                             WorkspaceChangedError)
from runicorn.storage import fsutil
from runicorn.storage import pointer as ptr
from runicorn.storage.git import is_pointer_path

HOOKS = ("post-checkout", "post-merge", "pre-push")
MARK = "# runicorn-hook v1"
CHAINED = ".pre-runicorn"  # suffix of a user's hook moved aside; ours runs it first
ATTRIBUTES = ".gitattributes"
ATTR_LINE = "*.rn merge=runicorn"
DRIVER_NAME = "Runicorn pointer merge (three-way merge of directory manifests)"
NULL_SHA = "0" * 40
ARTIFACT_MANIFEST = re.compile(r"^\.runicorn/artifacts/([^/]+)/v([1-9][0-9]*)\.yaml$")

_SCRIPT = """#!/bin/sh
{mark}: installed by `runicorn install-hooks`; remove it with `runicorn uninstall-hooks`.
# A hook that was here before was moved to {name}{chained} and runs first.
hook_dir=$(dirname "$0")
chained_status=0
{stdin_save}if [ -x "$hook_dir/{name}{chained}" ]; then
    "$hook_dir/{name}{chained}" "$@"{stdin_feed} || {on_chained_failure}
fi
install_python={python}
if [ -x "$install_python" ]; then
    set -- "$install_python" -m runicorn git-hook {name} "$@"
elif command -v runicorn >/dev/null 2>&1; then
    set -- runicorn git-hook {name} "$@"
else
    echo "runicorn: command not found, {missing}; install Runicorn or run \\`runicorn uninstall-hooks\\`" >&2
    exit {missing_code}
fi
{run}"""

# post-checkout / post-merge cannot stop git (it has switched or merged already): a failing hook of
# the user's must not also leave the workspace on the old data, so ours runs anyway and the hook
# exits with the user's status (a failing post-checkout still makes `git checkout` exit 1, as it
# would without Runicorn). pre-push stops at the first failure: the push is refused either way.
_POST_RUN = """status=0
"$@" || status=$?
if [ "$chained_status" -ne 0 ]; then
    echo "runicorn: your {name} hook ({name}{chained}) failed with exit code $chained_status; Runicorn's checkout ran anyway" >&2
    exit "$chained_status"
fi
exit "$status"
"""


def script(name: str, python: str) -> str:
    """The shell script installed as hook NAME, calling Runicorn through PYTHON (or `runicorn` on PATH)."""
    pre_push = name == "pre-push"
    return _SCRIPT.format(
        mark=MARK, name=name, chained=CHAINED, python=shlex.quote(python),
        # pre-push reads the pushed refs on stdin: keep them for the chained hook and for us
        stdin_save='refs_file=$(mktemp)\ntrap \'rm -f "$refs_file"\' EXIT\ncat > "$refs_file"\n' if pre_push else "",
        stdin_feed=' < "$refs_file"' if pre_push else "",
        on_chained_failure="exit $?" if pre_push else "chained_status=$?",
        missing="data was not pushed (push refused)" if pre_push else "data was not checked out",
        missing_code=1 if pre_push else '"$chained_status"',
        run='"$@" < "$refs_file"\n' if pre_push else _POST_RUN.format(name=name, chained=CHAINED))


def is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return MARK.encode() in f.read(4096)
    except OSError:
        return False


@dataclass
class HooksReport:
    hooks_dir: str
    installed: list[str] = field(default_factory=list)
    chained: list[str] = field(default_factory=list)  # user hooks moved aside (install) or restored (uninstall)
    left_alone: list[str] = field(default_factory=list)  # hooks that are not ours (uninstall)
    merge_driver: bool = False
    attributes: bool = False  # .gitattributes changed
    attributes_removed: bool = False  # uninstall: .gitattributes held only our line, so it is gone

    def to_json(self) -> dict:
        return {"hooks_dir": self.hooks_dir, "installed": self.installed, "chained": self.chained,
                "left_alone": self.left_alone, "merge_driver": self.merge_driver, "attributes": self.attributes,
                "attributes_removed": self.attributes_removed}


def driver_command(python: str) -> str:
    return f"{shlex.quote(python)} -m runicorn merge-driver %O %A %B %P"


def install(repo: Repo, python: str | None = None) -> HooksReport:
    """Install the three hooks (chaining existing ones), register the merge driver in `.git/config`
    and add `*.rn merge=runicorn` to `.gitattributes`. Idempotent."""
    python = python or sys.executable
    hooks_dir = repo.git.hooks_dir()
    report = HooksReport(str(hooks_dir))
    for name in HOOKS:  # check everything before changing anything
        hook, moved = hooks_dir / name, hooks_dir / (name + CHAINED)
        if (hook.exists() or hook.is_symlink()) and not is_ours(hook) and (moved.exists() or moved.is_symlink()):
            raise HookConflictError(str(hook), str(moved))
    hooks_dir.mkdir(parents=True, exist_ok=True)
    for name in HOOKS:
        hook, moved = hooks_dir / name, hooks_dir / (name + CHAINED)
        if (hook.exists() or hook.is_symlink()) and not is_ours(hook):
            os.replace(hook, moved)
            report.chained.append(name)
        fsutil.atomic_write(hook, script(name, python).encode(), mode=0o755)
        os.chmod(hook, 0o755)
        report.installed.append(name)
    repo.git.config_set("merge.runicorn.name", DRIVER_NAME)
    repo.git.config_set("merge.runicorn.driver", driver_command(python))
    report.merge_driver = True
    report.attributes = _edit_attributes(repo, add=True)
    return report


def uninstall(repo: Repo) -> HooksReport:
    """Remove our hooks (restoring chained ones), the merge driver and our `.gitattributes` line."""
    hooks_dir = repo.git.hooks_dir()
    report = HooksReport(str(hooks_dir))
    for name in HOOKS:
        hook, moved = hooks_dir / name, hooks_dir / (name + CHAINED)
        if hook.exists() and not is_ours(hook):
            report.left_alone.append(name)
            continue
        if hook.exists():
            hook.unlink()
            report.installed.append(name)
        if moved.exists() or moved.is_symlink():
            os.replace(moved, hook)
            report.chained.append(name)
    report.merge_driver = repo.git.config_get("merge.runicorn.driver") is not None
    repo.git.config_unset("merge.runicorn.driver")
    repo.git.config_unset("merge.runicorn.name")
    report.attributes = _edit_attributes(repo, add=False)
    report.attributes_removed = report.attributes and not (repo.root / ATTRIBUTES).exists()
    return report


def _edit_attributes(repo: Repo, add: bool) -> bool:
    """Add or remove our line; a file left with nothing but blank lines (the one install-hooks
    created, or one that held only our line) is deleted, not left empty."""
    path = repo.root / ATTRIBUTES
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    present = ATTR_LINE in (line.strip() for line in lines)
    if add == present:
        return False
    lines = lines + [ATTR_LINE] if add else [line for line in lines if line.strip() != ATTR_LINE]
    if any(line.strip() for line in lines):
        fsutil.atomic_write(path, ("\n".join(lines) + "\n").encode())
    else:
        path.unlink()
    repo.autostage([ATTRIBUTES])
    return True


# ------------------------------------------------------------------------------ what hooks do
@dataclass
class SyncReport:
    changed: list[str] = field(default_factory=list)  # tracked paths whose pointer changed
    checked_out: list[str] = field(default_factory=list)
    fetched: int = 0
    not_restored: list[str] = field(default_factory=list)
    kept_local: list[str] = field(default_factory=list)  # not checked out: uncommitted workspace changes
    artifacts: list[str] = field(default_factory=list)  # artifact versions that arrived, files fetched

    def to_json(self) -> dict:
        return {"changed": self.changed, "checked_out": self.checked_out, "fetched": self.fetched,
                "not_restored": self.not_restored, "kept_local": self.kept_local, "artifacts": self.artifacts}


def post_checkout(repo: Repo, old: str, new: str, branch_flag: str, reporter: Reporter = NULL) -> SyncReport:
    """After `git checkout/switch OLD → NEW`: bring the data of the changed pointers. A file
    checkout (flag 0, e.g. `git checkout REV -- data.rn`) is left to `runicorn checkout`."""
    if branch_flag == "0":
        return SyncReport()
    old = None if old == NULL_SHA else old
    report = sync(repo, _changed(repo, old, new), reporter)
    prefetch_artifacts(repo, old, new, report, reporter)
    return report


def post_merge(repo: Repo, squash: str = "0", reporter: Reporter = NULL) -> SyncReport:
    """After `git merge` / `git pull`: bring the data of the pointers the merge changed
    (ORIG_HEAD → HEAD; a squash merge leaves HEAD alone, so every pointer is looked at)."""
    if squash == "1" or repo.git.head_sha() is None:
        return sync(repo, repo.pointer_paths(), reporter)
    try:
        old = str(repo.git.resolve("ORIG_HEAD").id)
    except RevisionError:
        old = None
    report = sync(repo, _changed(repo, old, "HEAD"), reporter)
    prefetch_artifacts(repo, old, "HEAD", report, reporter)
    return report


def _changed(repo: Repo, old: str | None, new: str) -> list[str]:
    rels = [p[: -len(ptr.SUFFIX)] for p in repo.git.changed_files(old, new, is_pointer_path)]
    return [rel for rel in rels if repo.pointer_file(rel).is_file()]  # deleted pointers: data is left


def sync(repo: Repo, rels: list[str], reporter: Reporter = NULL) -> SyncReport:
    """Check out RELS from the cache; what the cache lacks is pulled from the default remote.
    Never fails for one path: a path with local changes is kept and named."""
    report = SyncReport(changed=list(rels))
    incomplete: list[str] = []
    for rel in rels:
        try:
            results = checkout(repo, [str(repo.abspath(rel))], False, reporter, skip_missing=True)
        except ObjectMissingError:
            incomplete.append(rel)
            continue
        except WorkspaceChangedError:
            report.kept_local.append(rel)
            reporter.warn(f"{rel} has uncommitted changes and was not checked out; "
                          f"`runicorn add {rel}` keeps them, `runicorn checkout --force {rel}` discards them")
            continue
        except RunicornError as exc:  # a bad pointer, an unwritable file: the other paths still come
            report.not_restored.append(rel)
            reporter.warn(f"{rel} was not checked out: {exc.message}")
            continue
        if any(r.missing for r in results):
            incomplete.append(rel)
        if any(r.linked or r.removed for r in results):
            report.checked_out.append(rel)
    if incomplete:
        _pull(repo, incomplete, report, reporter)
    return report


def prefetch_artifacts(repo: Repo, old: str | None, new: str, report: SyncReport, reporter: Reporter) -> None:
    """Fetch into the cache the files of the artifact versions whose manifests arrived between
    OLD and NEW, so `use_artifact` / `artifacts download` work offline afterwards."""
    refs = []
    for path in repo.git.changed_files(old, new, lambda p: ARTIFACT_MANIFEST.match(p) is not None):
        if (repo.root / path).is_file():
            found = ARTIFACT_MANIFEST.match(path)
            refs.append((found.group(1), int(found.group(2))))
    if not refs or not repo.config.remotes():
        return
    from runicorn.core.artifact_read import load_manifest
    from runicorn.core.remotes import open_remote
    from runicorn.core.transfer import TransferResult, download_missing

    try:
        wanted = {f["oid"]: f"{name}:v{v}/{f['path']}" for name, v in refs for f in load_manifest(repo, name, v)["files"]}
        todo = [(oid, where) for oid, where in wanted.items() if not repo.odb.exists(oid)]
        if not todo:
            return
        store = open_remote(repo, None, 0)
        result, new_oids = TransferResult(store.name), []
        with repo.lock(reporter.info):
            repo.odb.prepare()
            download_missing(repo, store, todo, result, new_oids, lambda n=1: None)
            fsutil.make_durable([repo.odb.path(o) for o in new_oids], repo.cache_dir)
            repo.guard.record(new_oids)
    except RunicornError as exc:
        reporter.warn(f"could not fetch the files of new artifact versions ({exc.message}); "
                      "`runicorn artifacts download` fetches them later")
        return
    report.fetched += result.transferred
    report.artifacts += [f"{name}:v{v}" for name, v in refs]
    if result.missing or result.corrupt:
        reporter.warn(f"{len(result.missing) + len(result.corrupt)} file(s) of new artifact versions are missing "
                      f"or corrupt on remote {store.name}")


def _pull(repo: Repo, rels: list[str], report: SyncReport, reporter: Reporter) -> None:
    if not repo.config.remotes():
        report.not_restored += rels
        reporter.warn(f"{', '.join(rels)}: data not in the cache and no remote is configured; "
                      "add one (`runicorn remote add`) and run `runicorn pull`")
        return
    from runicorn.core.transfer import pull

    try:
        result = pull(repo, [str(repo.abspath(rel)) for rel in rels], reporter=reporter)
    except RunicornError as exc:
        report.not_restored += rels
        reporter.warn(f"could not fetch the data of {', '.join(rels)} ({exc.message}); run `runicorn pull` later")
        return
    report.fetched += result.transferred
    report.checked_out += [rel for rel in rels if rel not in report.checked_out]
    report.not_restored += result.not_restored
    if result.missing or result.not_restored:
        reporter.warn(f"{len(result.missing)} object(s) are not on remote {result.remote}; "
                      "run `runicorn status --remote` to see which")

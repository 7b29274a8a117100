"""The command line for install-hooks, uninstall-hooks and the git merge driver for pointers; registered on runicorn.cli.app."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from runicorn.cli import Json, Quiet, Verbose, _say, app
from runicorn.console import CliReporter, err, print_json
from runicorn.core import hooks
from runicorn.core.repo import Repo
from runicorn.errors import MergeConflictError, UsageError


@app.command("install-hooks")
def install_hooks(json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Install git hooks (post-checkout, post-merge, pre-push) and the merge driver for .rn pointers."""
    report = hooks.install(Repo.find())
    if json:
        print_json(report.to_json())
        return
    _say(quiet, f"installed {', '.join(report.installed)} in {report.hooks_dir}")
    for name in report.chained:
        _say(quiet, f"kept your existing {name} hook: it now runs first, as {name}{hooks.CHAINED}")
    _say(quiet, "registered the merge driver for .rn pointers (merge.runicorn in .git/config)")
    if report.attributes:
        _say(quiet, f"added `{hooks.ATTR_LINE}` to .gitattributes; commit it: git add .gitattributes")


@app.command("uninstall-hooks")
def uninstall_hooks(json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Remove Runicorn's git hooks (restoring the hooks they chained) and the merge driver."""
    report = hooks.uninstall(Repo.find())
    if json:
        print_json(report.to_json())
        return
    _say(quiet, f"removed {', '.join(report.installed) or 'no hooks'} from {report.hooks_dir}")
    for name in report.chained:
        _say(quiet, f"restored your {name} hook")
    for name in report.left_alone:
        _say(quiet, f"left {name} alone: it is not Runicorn's")
    if report.attributes_removed:
        _say(quiet, f"deleted .gitattributes: `{hooks.ATTR_LINE}` was all it held; commit that change")
    elif report.attributes:
        _say(quiet, f"removed `{hooks.ATTR_LINE}` from .gitattributes; commit that change")


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


@app.command("git-hook", hidden=True)
def git_hook(name: Annotated[str, typer.Argument(help="post-checkout, post-merge or pre-push.")],
             args: Annotated[Optional[List[str]], typer.Argument(help="What git passes to the hook.")] = None,
             json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """What the installed hooks run (also the entry of the pre-commit framework's hooks)."""
    args = list(args or [])
    repo, reporter = Repo.find(), CliReporter(quiet or not verbose, verbose, json)
    if name == "post-checkout":  # git: OLD NEW FLAG; pre-commit: PRE_COMMIT_FROM_REF / _TO_REF / _CHECKOUT_TYPE
        old, new, flag = args[:3] if len(args) >= 3 else (
            _env("PRE_COMMIT_FROM_REF", hooks.NULL_SHA), _env("PRE_COMMIT_TO_REF", "HEAD"),
            _env("PRE_COMMIT_CHECKOUT_TYPE", "1"))
        report = hooks.post_checkout(repo, old, new, flag, reporter)
    elif name == "post-merge":
        squash = args[0] if args else ("1" if _env("PRE_COMMIT_IS_SQUASH_MERGE") == "1" else "0")
        report = hooks.post_merge(repo, squash, reporter)
    elif name == "pre-push":  # git: REMOTE URL, refs on stdin; pre-commit: PRE_COMMIT_* variables, stdin used up
        from runicorn.core.hooks_push import pre_commit_push, pre_push

        remote, lines = (None if args else pre_commit_push(os.environ)) or (
            args[0] if args else "origin", sys.stdin.read().splitlines())
        report = pre_push(repo, remote, lines, reporter)
        if json:
            print_json(report.to_json())
        elif report.transferred and not quiet:
            err.print(f"runicorn: pushed {report.transferred} object(s) to {report.remote} "
                      f"for {report.commits} commit(s)", markup=False, highlight=False)
        return
    else:
        raise UsageError(f"unknown hook {name!r}; Runicorn installs post-checkout, post-merge and pre-push")
    if json:
        print_json(report.to_json())
    elif (report.checked_out or report.artifacts) and not quiet:
        what = [f"checked out {', '.join(report.checked_out)}"] if report.checked_out else []
        what += [f"fetched the files of {', '.join(report.artifacts)}"] if report.artifacts else []
        fetched = f" ({report.fetched} object(s) downloaded)" if report.fetched else ""
        err.print(f"runicorn: {'; '.join(what)}{fetched}", markup=False, highlight=False)


@app.command("merge-driver", hidden=True)
def merge_driver(base: Annotated[Path, typer.Argument(help="git's %O: the common ancestor's version.")],
                 ours: Annotated[Path, typer.Argument(help="git's %A: our version; the result is written here.")],
                 theirs: Annotated[Path, typer.Argument(help="git's %B: their version.")],
                 path: Annotated[Optional[str], typer.Argument(help="git's %P: the pointer's path.")] = None,
                 json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """The git merge driver for .rn pointers: three-way merge of directory manifests."""
    from runicorn.core.merge import merge_pointer_files

    name = path or ours.name
    result = merge_pointer_files(Repo.find(), base, ours, theirs, name, CliReporter(quiet, verbose, json))
    if json:
        print_json(result.to_json())
    elif result.clean and not quiet:
        err.print(f"runicorn: merged {name}", markup=False, highlight=False)
    for c in result.conflicts:
        err.print(f"conflict: {name[:-3] if name.endswith('.rn') else name}{'/' + c.path if c.path else ''}: "
                  f"{c.describe()}", markup=False, highlight=False)
    if not result.clean:
        raise MergeConflictError(name, [c.path or name for c in result.conflicts])

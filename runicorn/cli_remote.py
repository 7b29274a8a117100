"""The remote half of the command line: push, fetch, pull, remote …, and the --remote renderings."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from runicorn.cli import Json, Paths, Quiet, Rev, Verbose, _say, _size, app
from runicorn.console import CliReporter, interactive, out, print_json
from runicorn.core import remotes
from runicorn.core.repo import Repo
from runicorn.errors import RunicornError, UsageError
from runicorn.storage.git import discover_root

remote_app = typer.Typer(help="Configure remotes: local paths, ssh:// and s3:// (see docs/remotes.md).",
                         no_args_is_help=True)
app.add_typer(remote_app, name="remote")

Remote = Annotated[Optional[str], typer.Option("--remote", "-r", help="Remote name (default: core.remote).")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", help="Parallel transfers (default: suited to the back end).")]
AllBranches = Annotated[bool, typer.Option("--all-branches", help="Also the data of every branch.")]
AllTags = Annotated[bool, typer.Option("--all-tags", help="Also the data of every tag.")]
AllCommits = Annotated[bool, typer.Option("--all-commits", help="Also the data of every commit.")]
Scope = Annotated[str, typer.Option("--scope", help="project (.runicorn.yaml), local (config.local.yaml) or user.")]


def _scope(rev, all_branches, all_tags, all_commits) -> dict:
    return dict(rev=rev, all_branches=all_branches, all_tags=all_tags, all_commits=all_commits)


def _summary(verb: str, result) -> str:
    return (f"{verb} {result.transferred:,} objects, {_size(result.bytes) if result.bytes else '0 B'}, "
            f"{result.already:,} already there ({result.remote})")


def _render_transfer(result, verb: str, json: bool, quiet: bool) -> None:
    if json:
        print_json(result.to_json())
    else:
        _say(quiet, _summary(verb, result))
        for oid, where in sorted(result.missing.items()):
            out.print(f"missing: {where[0]} ({oid[:12]})", markup=False)
        for path in result.not_restored:
            out.print(f"not restored: {path}", markup=False)
    if result.missing or result.not_restored:
        what = "not in the cache" if verb == "pushed" else "not on the remote"
        raise RunicornError(f"{len(result.missing)} object(s) {what}; the rest was transferred "
                            f"(see the 'missing' lines; run `runicorn status --remote`)")


@app.command()
def push(paths: Paths = None, remote: Remote = None, jobs: Jobs = 0, rev: Rev = None,
         all_branches: AllBranches = False, all_tags: AllTags = False, all_commits: AllCommits = False,
         full: Annotated[bool, typer.Option("--full", help="Ignore what is known to be on the remote; "
                                             "check every object (repairs a remote that lost data).")] = False,
         json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Upload the objects of tracked data that the remote lacks."""
    from runicorn.core.transfer import push as do_push

    result = do_push(Repo.find(), paths, remote, jobs, CliReporter(quiet, verbose, json), full,
                     **_scope(rev, all_branches, all_tags, all_commits))
    _render_transfer(result, "pushed", json, quiet)


@app.command()
def fetch(paths: Paths = None, remote: Remote = None, jobs: Jobs = 0, rev: Rev = None,
          all_branches: AllBranches = False, all_tags: AllTags = False, all_commits: AllCommits = False,
          json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Download missing objects into the cache (verified); the workspace is not touched."""
    from runicorn.core.transfer import fetch as do_fetch

    result = do_fetch(Repo.find(), paths, remote, jobs, CliReporter(quiet, verbose, json),
                      **_scope(rev, all_branches, all_tags, all_commits))
    _render_transfer(result, "fetched", json, quiet)


@app.command()
def pull(paths: Paths = None, remote: Remote = None, jobs: Jobs = 0, rev: Rev = None,
         all_branches: AllBranches = False, all_tags: AllTags = False, all_commits: AllCommits = False,
         force: Annotated[bool, typer.Option("--force", "-f", help="Discard uncommitted workspace changes.")] = False,
         json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """fetch, then checkout: bring tracked data into the workspace."""
    from runicorn.core.transfer import pull as do_pull

    result = do_pull(Repo.find(), paths, remote, jobs, force, CliReporter(quiet, verbose, json),
                     **_scope(rev, all_branches, all_tags, all_commits))
    _render_transfer(result, "fetched", json, quiet)


def render_remote_status(paths: Optional[List[str]], remote: Optional[str], exit_code: bool, json: bool,
                         quiet: bool) -> None:
    from runicorn.core.remote_check import remote_status

    name, rows = remote_status(Repo.find(), paths, remote)
    if json:
        print_json({"remote": name, "paths": [r.to_json() for r in rows]})
    else:
        behind = [r for r in rows if r.not_pushed or r.not_fetched or r.unknown]
        for r in behind:
            out.print(f"{r.path}: {r.not_pushed:,} not pushed, {r.not_fetched:,} not fetched"
                      + (f", {r.unknown:,} unknown" if r.unknown else ""), markup=False)
        if not behind:
            _say(quiet, f"Everything tracked is on remote {name!r} and in the cache.")
    if exit_code and any(r.not_pushed or r.not_fetched or r.unknown for r in rows):
        raise typer.Exit(1)


def remote_gc(repo, remote: str, args: dict, dry_run: bool, yes: bool, reporter, json: bool, quiet: bool) -> None:
    from runicorn.core.remote_check import gc_remote

    if not dry_run and not yes:
        plan = gc_remote(repo, remote, **args, dry_run=True, reporter=reporter)
        if plan.delete and not reporter.confirm(f"Delete {len(plan.delete):,} objects from remote {remote!r}?"):
            raise UsageError("gc --remote needs confirmation: rerun with --yes (or look first with --dry-run)"
                             if not interactive() else "gc cancelled; nothing was deleted")
    plan = gc_remote(repo, remote, **args, dry_run=dry_run, reporter=reporter)
    if json:
        print_json(plan.to_json())
        return
    verb = "would delete" if dry_run else "deleted"
    _say(quiet, f"{verb} {len(plan.delete):,} of {plan.listed:,} objects on {plan.remote!r}; "
                f"kept {plan.kept_young:,} younger than gc.grace_period")


def _root() -> Path:
    return discover_root(Path.cwd())


@remote_app.command("add")
def remote_add(name: str, url: str,
               default: Annotated[bool, typer.Option("--default", "-d", help="Make it the default remote.")] = False,
               scope: Scope = "project", quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Add remote NAME at URL (a path, file://, ssh://, s3://)."""
    remotes.add(_root(), name, url, default, scope)
    _say(quiet, f"added remote {name} -> {url}" + (" (default)" if default else ""))


@remote_app.command("list")
def remote_list(json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Configured remotes (credentials masked)."""
    rows = remotes.listing(_root())
    if json:
        print_json(rows)
        return
    for r in rows:
        extra = " ".join(f"{k}={v}" for k, v in r["options"].items() if k != "url")
        out.print(f"{'*' if r['default'] else ' '} {r['name']:<12} {r['url']} {extra}".rstrip(), markup=False)


@remote_app.command("remove")
def remote_remove(name: str, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Forget remote NAME (its data is not touched)."""
    remotes.remove(_root(), name)
    _say(quiet, f"removed remote {name}")


@remote_app.command("modify")
def remote_modify(name: str, option: str, value: str, scope: Scope = "project",
                  quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Set OPTION of remote NAME (endpoint_url, region, profile, user, port, keyfile, jobs, …)."""
    where = remotes.modify(_root(), name, option, value, scope)
    _say(quiet, f"remote {name}: {option} set in {where}")


@remote_app.command("default")
def remote_default(name: str, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Make NAME the default remote."""
    remotes.set_default(_root(), name)
    _say(quiet, f"default remote: {name}")

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


RunsFlag = Annotated[bool, typer.Option("--runs", help="Also share finished runs (run records and their objects, "
                                                        "through the remote's runs/ folder).")]


def _runs_transfer(direction: str, wanted: bool, remote: Optional[str], jobs: int):
    """push/pull --runs: the run records (see docs/runs.md), after the data."""
    if not wanted:
        return None
    from runicorn.core import run_share

    return (run_share.push_runs if direction == "push" else run_share.pull_runs)(Repo.find(), remote, jobs)


def _render_runs(runs, verb: str, quiet: bool) -> None:
    _say(quiet, f"runs: {verb} {len(runs.transferred):,}, {runs.already:,} already there"
                + (f", {len(runs.skipped):,} still running (not shared)" if runs.skipped else ""))
    for run_id, why in sorted(runs.failed.items()):
        out.print(f"run not transferred: {run_id}: {why}", markup=False)


def _render_transfer(result, verb: str, json: bool, quiet: bool, runs=None) -> None:
    if json:
        print_json({**result.to_json(), **({"runs": runs.to_json()} if runs is not None else {})})
    else:
        _say(quiet, _summary(verb, result))
        if runs is not None:
            _render_runs(runs, verb, quiet)
        for oid, where in sorted(result.missing.items()):
            out.print(f"missing: {where[0]} ({oid[:12]})", markup=False)
        for path in result.not_restored:
            out.print(f"not restored: {path}", markup=False)
    if result.missing or result.not_restored:
        what = "not in the cache" if verb == "pushed" else "not on the remote"
        raise RunicornError(f"{len(result.missing)} object(s) {what}; the rest was transferred "
                            f"(see the 'missing' lines; run `runicorn status --remote`)")
    if runs is not None and runs.failed:
        raise RunicornError(f"{len(runs.failed)} run(s) not transferred (see the 'run not transferred' lines); "
                            "fix the cause and rerun")


@app.command()
def push(paths: Paths = None, remote: Remote = None, jobs: Jobs = 0, rev: Rev = None,
         all_branches: AllBranches = False, all_tags: AllTags = False, all_commits: AllCommits = False,
         full: Annotated[bool, typer.Option("--full", help="Ignore what is known to be on the remote; "
                                             "check every object (repairs a remote that lost data).")] = False,
         runs: RunsFlag = False, json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Upload the objects of tracked data that the remote lacks."""
    from runicorn.core.transfer import push as do_push

    result = do_push(Repo.find(), paths, remote, jobs, CliReporter(quiet, verbose, json), full,
                     **_scope(rev, all_branches, all_tags, all_commits))
    _render_transfer(result, "pushed", json, quiet, _runs_transfer("push", runs, remote, jobs))


@app.command()
def fetch(paths: Paths = None, remote: Remote = None, jobs: Jobs = 0, rev: Rev = None,
          all_branches: AllBranches = False, all_tags: AllTags = False, all_commits: AllCommits = False,
          runs: RunsFlag = False, json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Download missing objects into the cache (verified); the workspace is not touched."""
    from runicorn.core.transfer import fetch as do_fetch

    result = do_fetch(Repo.find(), paths, remote, jobs, CliReporter(quiet, verbose, json),
                      **_scope(rev, all_branches, all_tags, all_commits))
    _render_transfer(result, "fetched", json, quiet, _runs_transfer("pull", runs, remote, jobs))


@app.command()
def pull(paths: Paths = None, remote: Remote = None, jobs: Jobs = 0, rev: Rev = None,
         all_branches: AllBranches = False, all_tags: AllTags = False, all_commits: AllCommits = False,
         force: Annotated[bool, typer.Option("--force", "-f", help="Discard uncommitted workspace changes.")] = False,
         runs: RunsFlag = False, json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """fetch, then checkout: bring tracked data into the workspace."""
    from runicorn.core.transfer import pull as do_pull

    result = do_pull(Repo.find(), paths, remote, jobs, force, CliReporter(quiet, verbose, json),
                     **_scope(rev, all_branches, all_tags, all_commits))
    _render_transfer(result, "fetched", json, quiet, _runs_transfer("pull", runs, remote, jobs))


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

"""The `runicorn` command line: parse, call one core function, render. Nothing else lives here."""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import List, Optional

import signal

import typer
from typing_extensions import Annotated

from runicorn import __version__
from runicorn.console import CliReporter, error, interactive, out, plain_usage_errors, print_json
from runicorn.core import add as add_mod
from runicorn.core import checkout as checkout_mod
from runicorn.core import doctor as doctor_mod
from runicorn.core import gc as gc_mod
from runicorn.core import history, settings
from runicorn.core import status as status_mod
from runicorn.core import verify as verify_mod
from runicorn.core.demo import demo as run_demo
from runicorn.core.init import init as init_repo
from runicorn.core.repo import Repo
from runicorn.core.unprotect import unprotect as unprotect_paths
from runicorn.errors import EXIT_INTERRUPTED, RunicornError, UsageError, VerifyError
from runicorn.storage.git import discover_root

app = typer.Typer(name="runicorn", add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Git-integrated versioning for machine-learning data, models, runs and artifacts.")
config_app = typer.Typer(help="Read and write settings (see docs/config.md).", no_args_is_help=True)
app.add_typer(config_app, name="config")

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and requested data.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Print more detail.")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (see docs/cli.md).")]
Paths = Annotated[Optional[List[str]], typer.Argument(help="Tracked paths (default: all).", show_default=False)]
Rev = Annotated[Optional[str], typer.Option("--rev", help="A git revision (commit, branch, tag).")]


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        out.print(text, markup=False)


def _version(value: bool) -> None:
    if value:
        out.print(f"runicorn {__version__}", markup=False)
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Runicorn: DVC-style data versioning with git, plus runs, artifacts and a viewer."""


@app.command()
def init(quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Make the current git repository a Runicorn repository."""
    repo, created = init_repo()
    if created:
        _say(quiet, f"Initialised Runicorn in {repo.dir}. Commit .runicorn.yaml and .runicorn/.gitignore.")
    else:
        _say(quiet, f"{repo.root} is already a Runicorn repository; nothing changed.")


@app.command()
def add(paths: Annotated[List[str], typer.Argument(help="Files or folders to track.")],
        json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Track files and folders: hash into the cache, link back, write PATH.rn pointers."""
    reporter = CliReporter(quiet, verbose, json)
    results = add_mod.add(Repo.find(), paths, reporter)
    _render_recorded(results, json, quiet, "added")


def _render_recorded(results, json: bool, quiet: bool, verb: str) -> None:
    if json:
        print_json([r.to_json() for r in results])
        return
    for r in results:
        what = f"{r.files:,} files, " if r.kind == "dir" else ""
        state = verb if r.changed else "unchanged"
        _say(quiet, f"{state} {r.path} ({what}{_size(r.size)}, {r.new_objects} new objects) -> {r.path}.rn")
    changed = [r for r in results if r.changed]
    if changed:
        root = discover_root(Path.cwd())
        files = dict.fromkeys(shlex.quote(os.path.relpath(root / p)) for r in changed for p in r.git_paths)
        message = shlex.quote(f"Track {', '.join(r.path for r in changed)}")
        _say(quiet, f"To record this in git: git add {' '.join(files)} && git commit -m {message}")


@app.command()
def commit(paths: Paths = None, json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Record the current content of tracked paths (after unprotect + edit)."""
    results = add_mod.commit(Repo.find(), paths, CliReporter(quiet, verbose, json))
    _render_recorded(results, json, quiet, "committed")


@app.command()
def status(paths: Paths = None,
           exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 1 when anything differs.")] = False,
           remote: Annotated[Optional[str], typer.Option("--remote", help="Compare with a remote instead "
                                                          "(`--remote` alone: the default remote).")] = None,
           json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Compare the workspace with the pointers (modified, deleted, not in cache), or with a remote."""
    if remote is not None:
        from runicorn.cli_remote import render_remote_status

        return render_remote_status(paths, remote or None, exit_code, json, quiet)
    results = status_mod.status(Repo.find(), paths)
    if json:
        print_json([r.to_json() for r in results])
    elif not status_mod.differs(results):
        _say(quiet, "Data and pointers are up to date." if results else "Nothing is tracked yet; try `runicorn add PATH`.")
    else:
        for r in results:
            if r.state != status_mod.CLEAN:
                out.print(f"{r.path}: {r.state}", markup=False)
                for sub, change in r.changes[: None if verbose else 20]:
                    out.print(f"    {change}: {r.path}/{sub}" if sub else f"    {change}", markup=False)
                if not verbose and len(r.changes) > 20:
                    out.print(f"    … {len(r.changes) - 20} more (use -v)", markup=False)
        if any(r.state == status_mod.DAMAGED for r in results):
            out.print("damaged: a linked file was written in place and its cached copy changed too; "
                      "run `runicorn add` to record it, and `runicorn unprotect` before editing next time", markup=False)
    if exit_code and status_mod.differs(results):
        raise typer.Exit(1)


@app.command()
def checkout(paths: Paths = None,
             force: Annotated[bool, typer.Option("--force", "-f", help="Discard uncommitted workspace changes.")] = False,
             json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Make the workspace match the pointers, linking from the cache."""
    results = checkout_mod.checkout(Repo.find(), paths, force, CliReporter(quiet, verbose, json))
    if json:
        print_json([r.to_json() for r in results])
        return
    changed = [r for r in results if r.linked or r.removed]
    for r in changed:
        _say(quiet, f"checked out {r.path} ({r.linked:,} linked, {r.removed:,} removed)")
    if not changed:
        _say(quiet, "Workspace already matches the pointers.")


@app.command()
def unprotect(paths: Annotated[List[str], typer.Argument(help="Tracked files or folders to make writable.")],
              quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Replace linked files with private writable copies, before editing them in place."""
    done = unprotect_paths(Repo.find(), paths, CliReporter(quiet, verbose))
    _say(quiet, f"{len(done)} file(s) are now private writable copies; run `runicorn add` after editing.")


@app.command()
def diff(rev_a: Annotated[Optional[str], typer.Argument(help="Old revision (default HEAD).")] = None,
         rev_b: Annotated[Optional[str], typer.Argument(help="New revision (default: the workspace).")] = None,
         exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 1 when anything differs.")] = False,
         json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Data changes between git revisions, or against the workspace."""
    changes = history.diff(Repo.find(), rev_a or "HEAD", rev_b)
    if json:
        print_json(changes)
    elif not changes:
        _say(quiet, "No data changes.")
    for c in [] if json else changes:
        out.print(f"{c['change']:>9}  {c['path']}  ({_size(c['old_size'])} -> {_size(c['new_size'])})", markup=False)
    if exit_code and changes:
        raise typer.Exit(1)


@app.command()
def log(path: Annotated[str, typer.Argument(help="A tracked path.")],
        json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """History of a tracked path across git commits."""
    rows = history.log(Repo.find(), path)
    if json:
        print_json(rows)
        return
    from datetime import datetime, timezone

    for r in rows:
        when = datetime.fromtimestamp(r["date"], timezone.utc).strftime("%Y-%m-%d %H:%M")
        oid = (r["oid"] or "-")[:12]
        out.print(f"{r['commit'][:10]}  {when}  {r['change']:<8}  {oid:<12}  {_size(r['size']):>10}  "
                  f"{r['author']}: {r['message']}", markup=False)


@app.command("ls")
def ls_(path: Annotated[Optional[str], typer.Argument(help="A tracked path or a path inside one.")] = None,
        rev: Rev = None, json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """List tracked data, including the files inside tracked folders."""
    rows = history.ls(Repo.find(), path, rev)
    if json:
        print_json(rows)
        return
    for r in rows:
        out.print(f"{r['kind']:<4}  {r['oid'][:12]}  {_size(r['size']):>10}  {r['path']}", markup=False)


@app.command()
def get(path: Annotated[str, typer.Argument(help="A tracked path (or a path inside one).")],
        rev: Rev = None,
        output: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write it.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
        quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Materialise a tracked path as it was at a revision, without touching the workspace."""
    written = history.get(Repo.find(), path, rev, output, force)
    _say(quiet, f"wrote {written}")


@app.command()
def gc(workspace: Annotated[bool, typer.Option("--workspace", help="Keep only what the workspace, index and HEAD use.")] = False,
       all_branches: Annotated[bool, typer.Option("--all-branches", help="Keep what any branch uses.")] = False,
       all_tags: Annotated[bool, typer.Option("--all-tags", help="Keep what any tag uses.")] = False,
       all_commits: Annotated[bool, typer.Option("--all-commits", help="Keep what any commit uses.")] = False,
       dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; delete nothing.")] = False,
       yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
       remote: Annotated[Optional[str], typer.Option("--remote", "-r", help="Collect on this remote instead.")] = None,
       json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Delete cache objects that nothing in scope uses (safely; see docs/cli.md)."""
    repo, reporter = Repo.find(), CliReporter(quiet, verbose, json)
    args = dict(workspace_only=workspace, branches=all_branches, tags=all_tags, all_commits=all_commits)
    if remote is not None:
        from runicorn.cli_remote import remote_gc

        return remote_gc(repo, remote or None, args, dry_run, yes, reporter, json, quiet)
    if not dry_run and not yes:
        plan = gc_mod.gc(repo, **args, dry_run=True, reporter=reporter)
        if plan.delete and not reporter.confirm(f"Delete {len(plan.delete):,} objects ({_size(plan.freed_bytes)})?"):
            raise UsageError("gc needs confirmation: rerun with --yes (or look first with --dry-run)"
                             if not interactive() else "gc cancelled; nothing was deleted")
    plan = gc_mod.gc(repo, **args, dry_run=dry_run, reporter=reporter)
    if json:
        print_json(plan.to_json())
        return
    verb = "would delete" if dry_run else "deleted"
    _say(quiet, f"{verb} {len(plan.delete):,} objects ({_size(plan.freed_bytes)}); kept {plan.reachable:,} reachable "
                f"and {plan.kept_young:,} younger than gc.grace_period")
    if plan.quarantined:
        reporter.warn(f"{len(plan.quarantined)} damaged object(s) moved to quarantine; run `runicorn verify`")


@app.command()
def verify(paths: Paths = None,
           cache: Annotated[bool, typer.Option("--cache", help="Check every object in the cache.")] = False,
           sample: Annotated[Optional[float], typer.Option("--sample", help="Check a random PCT of the objects.")] = None,
           remote: Annotated[Optional[str], typer.Option("--remote", "-r", help="Re-hash the objects on this remote.")] = None,
           json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Re-hash objects; report (and quarantine) corrupt ones, report missing ones. Exit 5 on problems."""
    reporter = CliReporter(quiet, verbose, json)
    if remote is not None:
        from runicorn.core.remote_check import verify_remote

        report = verify_remote(Repo.find(), paths, remote or None, sample, reporter)
    else:
        report = verify_mod.verify(Repo.find(), paths, cache, sample, reporter)
    if json:
        print_json(report.to_json())
    else:
        for oid in report.corrupt:
            where = f"on remote {remote or 'default'}" if remote is not None else "(moved to quarantine)"
            out.print(f"corrupt: {oid} {where}", markup=False)
        for oid in report.missing:
            out.print(f"missing: {oid}", markup=False)
        _say(quiet, f"checked {report.checked:,} objects: {len(report.corrupt)} corrupt, {len(report.missing)} missing")
    if not report.ok:
        raise VerifyError(len(report.corrupt), len(report.missing), report.remote)


@app.command()
def doctor(json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Versions, cache, link types on this filesystem, index and git state."""
    report = doctor_mod.doctor()
    if json:
        print_json(report)
        return
    for name, version in report["versions"].items():
        out.print(f"{name:<10} {version}", markup=False)
    out.print(f"python     {report['python']} ({report['executable']})\nplatform   {report['platform']}", markup=False)
    r = report["repository"]
    if r is None:
        out.print(f"repository none: {report['problem']}", markup=False)
        return
    links = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in r["cache"]["link_types"].items())
    out.print(f"repository {r['root']}\ncache      {r['cache']['dir']}\nlinks      {links} "
              f"(using {r['cache']['link_used']})\nindex      {r['index']['path']} ({r['index']['journal_mode']}, "
              f"{len(r['index']['migrations'])} migrations)\ngit        branch {r['git']['branch']}, head "
              f"{(r['git']['head'] or 'none')[:12]}, {'dirty' if r['git']['dirty'] else 'clean'}", markup=False)
    for name, url in r["remotes"].items():
        out.print(f"remote     {name} {url}" + (" (default)" if name == r["default_remote"] else ""), markup=False)


@app.command()
def demo(folder: Annotated[Path, typer.Argument(help="Folder to build the demo repository in.")] = Path("runicorn-demo"),
         quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Build a demo repository: track, change, commit and restore a dataset and a model."""
    reporter = CliReporter(quiet, verbose)
    reporter.info = lambda message: _say(quiet, message)  # the story goes to stdout
    result = run_demo(folder, reporter)
    _say(quiet, f"Demo finished. Explore it: cd {result['folder']} && runicorn status && git log --oneline")


def _root_or_none() -> Path | None:
    try:
        return discover_root(Path.cwd())
    except RunicornError:
        return None


Scope = Annotated[str, typer.Option("--scope", help="project (.runicorn.yaml), local (config.local.yaml) or user.")]


@config_app.command("get")
def config_get(key: str, json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Print the effective value of KEY."""
    value = settings.get_value(_root_or_none(), key)
    if json:
        return print_json({"key": key, "value": value})
    out.print(",".join(value) if isinstance(value, list) else str(value), markup=False)


@config_app.command("set")
def config_set(key: str, value: str, scope: Scope = "project", quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Set KEY to VALUE in one settings file."""
    _check_scope(scope)
    parsed = settings.set_value(_root_or_none(), key, value, scope)
    _say(quiet, f"{key} = {parsed} ({scope})")


@config_app.command("unset")
def config_unset(key: str, scope: Scope = "project", quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Remove KEY from one settings file."""
    _check_scope(scope)
    removed = settings.unset_value(_root_or_none(), key, scope)
    _say(quiet, f"{key} removed ({scope})" if removed else f"{key} was not set in {scope}")


@config_app.command("list")
def config_list(json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Every effective setting and where it comes from."""
    rows = settings.list_values(_root_or_none())
    if json:
        print_json(rows)
        return
    for r in rows:
        value = ",".join(r["value"]) if isinstance(r["value"], list) else r["value"]
        out.print(f"{r['key']} = {value}  ({r['origin']})", markup=False)


def _check_scope(scope: str) -> None:
    if scope not in settings.SCOPES:
        raise UsageError(f"--scope must be one of {', '.join(settings.SCOPES)}, not {scope!r}")


import runicorn.cli_remote  # noqa: E402,F401 — registers push/pull/fetch/remote on app
import runicorn.cli_runs  # noqa: E402,F401 — run, runs …, index
import runicorn.cli_artifacts  # noqa: E402,F401 — artifacts …
import runicorn.cli_viewer  # noqa: E402,F401 — viewer …
import runicorn.cli_git  # noqa: E402,F401 — install-hooks, uninstall-hooks, merge driver


class Interrupted(RunicornError):
    exit_code = EXIT_INTERRUPTED

    def __init__(self):
        super().__init__("interrupted; rerun the command to finish the job")


def _on_sigint(signum, frame) -> None:
    raise Interrupted()


def _status_remote_default(args: list[str]) -> list[str]:
    """`status --remote` may stand alone: then it means the default remote (SPEC: --remote [NAME])."""
    if not args or args[0] != "status" or "--remote" not in args:
        return args
    i = args.index("--remote")
    following = args[i + 1] if i + 1 < len(args) else None
    try:
        from runicorn.config import Config

        names = set(Config(discover_root(Path.cwd())).remotes())
    except RunicornError:
        names = set()
    if following is None or following.startswith("-") or following not in names:
        args = args[:i] + ["--remote="] + args[i + 1:]
    return args


def _quiet_library_loggers() -> None:
    """Network back ends log every retry (asyncio's "socket.send() raised exception." …); our own
    messages already say what failed, so their chatter stays out of the one-line contract."""
    import logging

    for name in ("asyncio", "asyncssh", "botocore", "aiobotocore", "s3fs", "fsspec", "urllib3"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> None:
    """The CLI's single error boundary: RunicornError → one red line and its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in args or bool(os.environ.get("RUNICORN_TRACEBACK"))
    args = [a for a in args if a != "--traceback"]
    signal.signal(signal.SIGINT, _on_sigint)
    _quiet_library_loggers()
    plain_usage_errors()
    try:
        app(args=_status_remote_default(args), prog_name="runicorn")  # standalone: usage errors exit 2 inside
    except RunicornError as exc:
        error(exc.message)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 — the one boundary for the unexpected
        if show_traceback:
            raise
        error(f"unexpected error: {type(exc).__name__}: {exc}; rerun with --traceback and report it")
        sys.exit(1)

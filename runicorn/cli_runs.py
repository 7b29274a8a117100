"""The command line for run, runs list/show/compare/delete, index rebuild; registered on runicorn.cli.app."""
from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table
from typing_extensions import Annotated

from runicorn.cli import Json, Quiet, Verbose, _say, _size, app  # noqa: F401
from runicorn.config import parse_duration
from runicorn.console import err, interactive, out, print_json
from runicorn.core import runs as runs_mod
from runicorn.core.repo import Repo
from runicorn.errors import NotAGitRepoError, NotARunicornRepoError, UsageError

runs_app = typer.Typer(help="Browse runs: list, show, compare, delete (see docs/runs.md).", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
index_app = typer.Typer(help="The SQLite index: derived state, rebuilt from its sources.", no_args_is_help=True)
app.add_typer(index_app, name="index")

Name = Annotated[Optional[str], typer.Option("--name", "-n", help="Run name (default: the run id).")]
Project = Annotated[Optional[str], typer.Option("--project", "-p", help="Project the run belongs to.")]
Tags = Annotated[Optional[List[str]], typer.Option("--tag", "-t", help="Tag (repeat for more).")]
UserStore = Annotated[bool, typer.Option("--user-store", help="Use the user-level store (runs made outside "
                                                             "a Runicorn repository).")]


def _store(user_store: bool = False):
    """The repository's runs, or the user-level store (asked for, or when not in a repository)."""
    if user_store:
        return runs_mod.user_store()
    try:
        return runs_mod.store_of(Repo.find())
    except (NotARunicornRepoError, NotAGitRepoError):
        store = runs_mod.user_store()
        if store.runs_dir.is_dir():
            return store
        raise


def _when(epoch) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(float(epoch), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _dur(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def _since(value: Optional[str]) -> Optional[float]:
    """--since 2d / 36h / 2025-09-30 / 2025-09-30T12:00 → epoch seconds."""
    if not value:
        return None
    try:
        return time.time() - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--since {value!r} is neither a duration (30m, 2h, 7d) nor a date (2025-09-30)") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


# -- runicorn run ------------------------------------------------------------------------------
@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(cmd: Annotated[List[str], typer.Argument(help="The command, after `--`.", show_default=False)],
        name: Name = None, project: Project = None, tag: Tags = None,
        json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Run a command as a tracked run (its SDK calls join the run); exits with the command's exit code."""
    from runicorn.core.run_exec import run_command

    def started(r) -> None:
        if not quiet and not json:
            err.print(escape(f"runicorn: run {r.id} started ({r.dir})"))

    def write_out(data: bytes) -> None:
        (sys.stderr if json else sys.stdout).buffer.write(data)
        (sys.stderr if json else sys.stdout).flush()

    def write_err(data: bytes) -> None:
        sys.stderr.buffer.write(data)
        sys.stderr.flush()

    r, code = run_command(list(cmd), write_out, write_err, name=name, project=project, tags=tag, on_start=started)
    status = r.status if r.status != "running" else ("finished" if code == 0 else "failed")
    if json:
        print_json({"run_id": r.id, "status": status, "exit_code": code, "dir": str(r.dir)})
    elif not quiet:
        why = f", {r.failure['message']}" if status == "crashed" and r.failure else ""
        err.print(escape(f"runicorn: run {r.id} {status} (exit code {code}{why}); see `runicorn runs show {r.id}`"))
    raise typer.Exit(code)


# -- runicorn runs ... ---------------------------------------------------------------------------
@runs_app.command("list")
def runs_list(project: Project = None,
              status: Annotated[Optional[str], typer.Option("--status", help="running, finished, failed or crashed.")] = None,
              commit: Annotated[Optional[str], typer.Option("--commit", help="Git commit (a prefix is enough).")] = None,
              branch: Annotated[Optional[str], typer.Option("--branch", help="Git branch.")] = None,
              tag: Annotated[Optional[str], typer.Option("--tag", "-t", help="Runs with this tag.")] = None,
              since: Annotated[Optional[str], typer.Option("--since", help="Started within a duration (7d) or after a date.")] = None,
              search: Annotated[Optional[str], typer.Option("--search", "-s", help="Text in name, id, project, notes or tags.")] = None,
              sort: Annotated[str, typer.Option("--sort", help="started_at, ended_at, duration, name, project, status (prefix - for descending).")] = "-started_at",
              limit: Annotated[int, typer.Option("--limit", help="At most this many rows.")] = 50,
              offset: Annotated[int, typer.Option("--offset", help="Skip this many rows first.")] = 0,
              user_store: UserStore = False,
              json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """List runs, newest first (filters combine)."""
    def rebuilt(result: dict) -> None:
        if not quiet:
            err.print(escape(f"runicorn: the run index was empty; indexed {result['runs']:,} runs from their "
                             "folders (as `runicorn index rebuild` does)"))

    rows, total = runs_mod.list_runs(_store(user_store), project=project, status=status, commit=commit, branch=branch,
                                     tag=tag, since=_since(since), search=search, sort=sort, limit=limit, offset=offset,
                                     on_rebuild=rebuilt)
    if json:
        print_json({"total": total, "runs": rows})
        return
    if not rows:
        _say(quiet, "No runs match." if total == 0 else f"No runs on this page ({total} in all).")
        return
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("run", no_wrap=True, min_width=22)  # ids must stay whole: users copy them
    table.add_column("name", overflow="fold", min_width=8)
    table.add_column("project", overflow="fold", min_width=7)
    for column, width in (("status", 8), ("started (UTC)", 16), ("duration", 8), ("commit", 9)):
        table.add_column(column, no_wrap=True, min_width=width)
    wide = out.width >= 120  # the summary column only when there is room for it
    if wide:
        table.add_column("summary", overflow="ellipsis", no_wrap=True, max_width=out.width - 110)
    for r in rows:
        summary = ", ".join(f"{k}={_short(v)}" for k, v in list(r["summary"].items())[:3])
        cells = (r["run_id"], r["name"], r["project"], r["status"], _when(r["started_at"])[:16], _dur(r["duration"]),
                 (r["git_commit"] or "-")[:8] + ("*" if r["dirty"] else ""), *((summary,) if wide else ()))
        table.add_row(*map(escape, cells))
    out.print(table)
    if total > len(rows) and not quiet:
        out.print(f"{len(rows)} of {total} runs (use --limit / --offset for more)", markup=False)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 30 else text[:27] + "..."


@runs_app.command("show")
def runs_show(run_id: Annotated[str, typer.Argument(help="The run id (see `runicorn runs list`).")],
              diff: Annotated[bool, typer.Option("--diff/--no-diff", help="Include the git diff.")] = True,
              logs: Annotated[int, typer.Option("--logs", help="Also print the last N bytes of the logs.")] = 0,
              user_store: UserStore = False,
              json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Everything a run recorded: git (with the diff), data, environment, config, summary, files."""
    store = _store(user_store)
    doc = runs_mod.get_run(store, run_id)
    text = runs_mod.run_diff(store, run_id) if diff else ""
    if json:
        print_json({**doc, "diff_text": text, "metric_keys": runs_mod.metric_keys(store, run_id),
                    **({"logs_tail": runs_mod.run_logs(store, run_id, logs)} if logs else {})})
        return
    render_run(doc, text, runs_mod.metric_keys(store, run_id), verbose)
    if logs:
        out.print("\n[bold]logs (tail)[/bold]")
        out.print(runs_mod.run_logs(store, run_id, logs), markup=False, end="")


@runs_app.command("compare")
def runs_compare(run_ids: Annotated[List[str], typer.Argument(help="Two or more run ids.")],
                 all_keys: Annotated[bool, typer.Option("--all", help="Also show keys that are the same everywhere.")] = False,
                 user_store: UserStore = False,
                 json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Config and summary of runs side by side; differences highlighted."""
    if len(run_ids) < 2:
        raise UsageError("compare needs at least two run ids; see `runicorn runs list`")
    store = _store(user_store)
    docs = [runs_mod.get_run(store, r) for r in run_ids]
    table = runs_mod.compare(docs)
    if json:
        print_json(table)
        return
    render_compare(table, all_keys)


@runs_app.command("delete")
def runs_delete(run_ids: Annotated[List[str], typer.Argument(help="Run ids to delete.")],
                yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
                force: Annotated[bool, typer.Option("--force", "-f", help="Delete even a run that is still running.")] = False,
                user_store: UserStore = False,
                json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Delete runs (their folders and index rows; shared copies on remotes stay)."""
    store = _store(user_store)
    for run_id in run_ids:
        runs_mod.get_run(store, run_id)  # every id must exist before anything is deleted
    if not yes:
        if not interactive():
            raise UsageError("runs delete needs confirmation: rerun with --yes")
        if not typer.confirm(f"Delete {len(run_ids)} run(s)?"):
            raise UsageError("nothing was deleted")
    deleted = [runs_mod.delete_run(store, r, force=force)["id"] for r in run_ids]
    if json:
        print_json({"deleted": deleted})
    else:
        _say(quiet, f"deleted {len(deleted)} run(s): {', '.join(deleted)}")


def render_run(doc: dict, diff: str, keys: list[str], verbose: bool) -> None:
    git = doc.get("git") or {}
    env = doc.get("environment") or {}
    lines = [
        ("run", doc["id"]), ("name", doc.get("name")), ("project", doc.get("project") or "-"),
        ("status", doc.get("status") + (f" (exit code {doc['exit_code']})" if doc.get("exit_code") is not None else "")),
        ("started", _when(doc.get("started_at")) + " UTC"), ("duration", _dur(doc.get("duration"))),
        ("tags", ", ".join(doc.get("tags") or []) or "-"), ("notes", doc.get("notes") or "-"),
        ("commit", (git.get("commit") or "-") + (" (dirty)" if git.get("dirty") else "")),
        ("branch", git.get("branch") or "-"), ("remote", git.get("remote_url") or "-"),
        ("host", f"{env.get('hostname', '-')} ({env.get('user') or '-'})"),
        ("python", f"{env.get('python', '-')} {env.get('python_executable', '')}"),
        ("platform", env.get("platform", "-")), ("command", " ".join(env.get("argv") or [])),
    ]
    if doc.get("failure"):
        lines.append(("failure", f"{doc['failure'].get('type')}: {doc['failure'].get('message')}"))
    for sub in git.get("submodules") or []:
        lines.append(("submodule", f"{sub['path']} {sub['commit']} ({sub['state']})"))
    if env.get("gpu"):
        lines.append(("gpu", "; ".join(g.get("name", "?") for g in env["gpu"])))
    if env.get("ci"):
        lines.append(("ci", f"{env['ci'].get('provider')} {env['ci'].get('job_url') or ''}"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        out.print(f"{key:<{width}}  {value}", markup=False)
    _section("config", doc.get("config") or {})
    _section("summary", doc.get("summary") or {})
    if keys:
        out.print(f"\nmetrics: {', '.join(keys)}", markup=False)
    for title, items in (("data", doc.get("data")), ("files", doc.get("files"))):
        if items:
            out.print(f"\n{title}:", markup=False)
            for item in items:
                out.print(f"  {item['path']}  {item['oid'][:12]}  {_size(item.get('size'))}", markup=False)
    arts = doc.get("artifacts") or {}
    for kind in ("used", "logged"):
        for a in arts.get(kind) or []:
            out.print(f"artifact {kind}: {a['artifact']}:v{a['version']}", markup=False)
    skipped = [u for u in git.get("untracked") or [] if not u.get("stored")]
    if skipped:
        out.print("\nuntracked files not stored: " + ", ".join(f"{u['path']} ({u['reason']})" for u in skipped),
                  markup=False)
    if verbose:
        _section("packages", env.get("packages") or {})
    if diff:
        out.print("\ndiff:", markup=False)
        out.print(diff, markup=False, end="" if diff.endswith("\n") else "\n")


def _section(title: str, data: dict) -> None:
    if not data:
        return
    out.print(f"\n{title}:", markup=False)
    for key, value in data.items():
        out.print(f"  {key}: {_short(value) if not isinstance(value, (dict, list)) else value}", markup=False)


def render_compare(table: dict, all_keys: bool) -> None:
    """Differences are marked twice: colour for the eye, and a `*` first column that survives a pipe."""
    grid = Table(show_edge=False, pad_edge=False)
    grid.add_column("", no_wrap=True)
    grid.add_column("key")
    for run_id, name in zip(table["runs"], table["names"]):
        grid.add_column(f"{name}\n{run_id}" if name != run_id else run_id)
    for part in ("config", "summary"):
        rows = [(k, vals) for k, vals in table[part].items() if all_keys or k in table["different"][part]]
        if not rows:
            continue
        grid.add_row("", f"[bold]{part}[/bold]", *[""] * len(table["runs"]))
        for key, values in rows:
            differs = key in table["different"][part]
            cells = ["-" if v is None else escape(_short(v)) for v in values]
            grid.add_row("*" if differs else "", escape(key),
                         *[f"[bold yellow]{c}[/bold yellow]" if differs else c for c in cells])
    out.print(grid)
    if table["different"]["config"] or table["different"]["summary"]:
        out.print("(* marks keys whose values differ)", markup=False)
    if not all_keys:
        same = sum(1 for p in ("config", "summary") for k in table[p] if k not in table["different"][p])
        if same:
            out.print(f"({same} keys with equal values hidden; --all shows them)", markup=False)


# -- runicorn index rebuild ----------------------------------------------------------------------
@index_app.command("rebuild")
def index_rebuild(json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Rebuild the SQLite index (runs, artifacts) from the run folders and the repository."""
    repo = Repo.find()
    result = {"runs": runs_mod.rebuild_index(repo)}
    try:
        from runicorn.core import artifacts
    except ImportError:
        artifacts = None
    if artifacts is not None and hasattr(artifacts, "rebuild_index"):
        result["artifacts"] = artifacts.rebuild_index(repo)
    if json:
        print_json(result)
        return
    r = result["runs"]
    _say(quiet, f"index rebuilt: {r['runs']:,} runs, {r['points']:,} metric points"
                + (f"; skipped unreadable run folders: {', '.join(r['skipped'])}" if r["skipped"] else ""))
    if "artifacts" in result:
        _say(quiet, f"artifacts: {result['artifacts']}")

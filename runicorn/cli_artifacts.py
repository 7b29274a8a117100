"""The command line for artifacts list/versions/info/stats/delete/alias/stage/diff/download/lineage/cache; registered on runicorn.cli.app."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table
from typing_extensions import Annotated

from runicorn.cli import Json, Quiet, Verbose, _say, _size, app
from runicorn.console import CliReporter, interactive, out, print_json
from runicorn.core import artifacts as arts
from runicorn.core.repo import Repo
from runicorn.errors import ArtifactVerifyError, RunicornError, UsageError

artifacts_app = typer.Typer(help="Artifacts, the model registry (aliases, stages) and lineage (see docs/artifacts.md).",
                            invoke_without_command=True, no_args_is_help=False)
app.add_typer(artifacts_app, name="artifacts")
cache_app = typer.Typer(help="The user-level download cache (artifacts.cache_dir).", no_args_is_help=True)
artifacts_app.add_typer(cache_app, name="cache")

Ref = Annotated[str, typer.Argument(help="NAME or NAME:VERSION (vN, latest, an alias or a stage).")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ACTIONS = ("list", "versions", "info", "stats", "delete")


def _when(iso: str | None) -> str:
    return (iso or "-").replace("T", " ")[:19]


def _print_table(table: Table) -> None:
    """One row per line at the table's natural width, never wrapped or cut (also when piped)."""
    from rich.console import Console
    from rich.measure import Measurement

    width = Measurement.get(out, out.options.update(max_width=100_000), table).maximum
    wide = Console(file=out.file, width=max(width, 20), highlight=False, no_color=out.no_color,
                   force_terminal=out.is_terminal, color_system=out.color_system and "standard")
    wide.print(table)


def _table(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for c in columns:
        table.add_column(c, no_wrap=True)
    return table


@artifacts_app.callback()
def _artifacts(ctx: typer.Context,
               action: Annotated[Optional[str], typer.Option("--action", help="The seed's spelling: list, versions, "
                                                               "info, stats or delete.")] = None,
               name: Annotated[Optional[str], typer.Option("--name", help="Artifact name (with --action).")] = None,
               version: Annotated[Optional[str], typer.Option("--version", help="Version (with --action): 3, v3, an alias or a stage.")] = None,
               permanent: Annotated[bool, typer.Option("--permanent", help="With --action delete: remove for good.")] = False,
               yes: Yes = False, json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Artifacts: list, versions, info, stats, delete, restore, alias, stage, diff, download, lineage, verify, cache."""
    if ctx.invoked_subcommand is not None:
        if action:
            raise UsageError("use either --action or a subcommand, not both")
        return
    if action is None:
        out.print(ctx.get_help(), markup=False)
        raise typer.Exit(0)
    if action not in ACTIONS:
        raise UsageError(f"--action must be one of {', '.join(ACTIONS)}, not {action!r}")
    if action in ("versions", "info", "delete") and not name:
        raise UsageError(f"--action {action} needs --name NAME")
    ref = f"{name}:{'v' + version if version and version.isdigit() else version or ''}" if name else ""
    common = dict(json=json, quiet=quiet, verbose=verbose)
    if action == "list":
        list_(type_=None, search=None, **common)
    elif action == "versions":
        versions(name, **common)
    elif action == "info":
        info(ref.rstrip(":"), at=None, **common)
    elif action == "stats":
        stats(**common)
    else:
        if not version:
            raise UsageError("--action delete needs --version N")
        delete(ref, permanent=permanent, yes=yes, **common)


@artifacts_app.command("list")
def list_(type_: Annotated[Optional[str], typer.Option("--type", help="Only this type (model, dataset, …).")] = None,
          search: Annotated[Optional[str], typer.Option("--search", help="Only names or descriptions containing this.")] = None,
          json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Every artifact: type, versions, latest size, latest version, aliases and stages its versions hold."""
    rows = arts.list_artifacts(Repo.find(), type=type_, search=search)
    if json:
        return print_json(rows)
    if not rows:
        return _say(quiet, "No artifacts yet; log one with run.log_artifact(rn.Artifact(...)).")
    _say(quiet, f"Found {len(rows)} artifact(s):")
    table = _table("Name", "Type", "Versions", "Size", "Latest", "Aliases", "Stage")
    for r in rows:
        table.add_row(r["name"], r["type"], str(r["versions"]), _size(r["size"]),
                      f"v{r['latest']}" if r["latest"] else "-", ", ".join(r["aliases"]), ", ".join(r["stages"]) or "none")
    _print_table(table)


@artifacts_app.command()
def versions(name: Annotated[str, typer.Argument(help="Artifact name.")],
             json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Every version of an artifact, with aliases and stage."""
    rows = arts.list_versions(Repo.find(), name)
    if json:
        return print_json(rows)
    _say(quiet, f"Versions for {name}:")
    table = _table("Version", "Created", "Size", "Files", "Run", "Aliases", "Stage")
    for r in rows:
        version = f"v{r['version']}" + (" (deleted)" if r["deleted"] else "")
        table.add_row(version, _when(r["created_at"]), _size(r["size"]), str(r["files"]), r["run"] or "-",
                      ", ".join(r["aliases"]), r["stage"])
    _print_table(table)


@artifacts_app.command()
def info(ref: Ref,
         at: Annotated[Optional[str], typer.Option("--at", help="Show the aliases and stages as they were at this "
                                                    "date or time (UTC), e.g. 2025-05-03.")] = None,
         json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """One version in detail: metadata, files, references, aliases, stage and their history."""
    if at is not None:
        return _info_at(ref, at, json)
    d = arts.artifact_info(Repo.find(), ref)
    if json:
        return print_json(d)
    by = d["created_by"]
    lines = [f"Artifact: {d['ref']}", "=" * 60, f"Type:         {d['type']}", f"Status:       {d['status']}",
             f"Created:      {_when(d['created_at'])}",
             f"Created by:   {by.get('run') or by.get('user', '-')}" + (f" (commit {by['commit'][:12]})" if by.get("commit") else ""),
             f"Size:         {_size(d['size'])}", f"Files:        {len(d['files'])}",
             f"Aliases:      {', '.join(d['aliases']) or '-'}", f"Stage:        {d['stage']}"]
    if d["description"]:
        lines.insert(3, f"Description:  {d['description']}")
    if d["tags"]:
        lines.append(f"Tags:         {', '.join(d['tags'])}")
    lines += ["", "Metadata:"] + [f"  {k}: {v}" for k, v in d["metadata"].items()] if d["metadata"] else []
    lines += ["", f"Files ({len(d['files'])}):"] + [f"  {f['path']} ({_size(f['size'])})" for f in d["files"][:None if verbose else 50]]
    if len(d["files"]) > 50 and not verbose:
        lines.append(f"  … {len(d['files']) - 50} more (use -v)")
    if d["references"]:
        lines += ["", "References:"] + [f"  {r['name']}: {r['uri']} ({_size(r.get('size'))}, {r.get('checksum') or 'no checksum'})"
                                       for r in d["references"]]
    if d["inputs"]:
        lines += ["", "Inputs:"] + [f"  {i['artifact']}:v{i['version']}" if "artifact" in i else f"  {i['data']} ({i['oid'][:12]})"
                                   for i in d["inputs"]]
    if d["used_by"]:
        lines += ["", "Used by runs:"] + [f"  {r}" for r in d["used_by"]]
    if d["history"]:
        lines += ["", "Alias / stage history:"]
        for e in d["history"]:
            what = e["alias"] or e["stage"] or ""
            lines.append(f"  {_when(e['at'])}  {e['event']:<8} {what:<12} v{e['version']}  by {e['by'] or '-'}"
                         + (f"  run {e['run']}" if e["run"] else "") + (f"  commit {e['commit'][:12]}" if e["commit"] else ""))
    out.print("\n".join(lines), markup=False)


def _info_at(ref: str, at: str, json: bool) -> None:
    from datetime import datetime

    try:
        datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {at!r} is not a date or time; use e.g. 2025-05-03 or 2025-05-03T14:00:00Z") from None
    state = arts.registry_at(Repo.find(), ref.split(":")[0], at)
    if json:
        return print_json(state)
    lines = [f"{state['name']} as of {state['at'].replace('T', ' ')[:19]} UTC:"]
    for stage_name, version in sorted(state["stages"].items()):
        shown = ", ".join(f"v{v}" for v in version) if isinstance(version, list) else f"v{version}"
        lines.append(f"  stage {stage_name}: {shown}")
    lines += [f"  alias {a}: v{v}" for a, v in state["aliases"].items()]
    if len(lines) == 1:
        lines.append("  no aliases or stages yet")
    out.print("\n".join(lines), markup=False)


@artifacts_app.command()
def stats(json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Totals, deduplication savings and a split by type."""
    s = arts.artifact_stats(Repo.find())
    if json:
        return print_json(s)
    lines = ["Artifact Storage Statistics", "=" * 60, f"Total Artifacts:  {s['total_artifacts']}",
             f"Total Versions:   {s['total_versions']}", f"Total Size:       {_size(s['total_size'])}",
             f"Dedup Enabled:    {s['dedup_enabled']}", "", "Deduplication Stats:",
             f"  Pool Size:      {_size(s['pool_size'])}", f"  Space Saved:    {_size(s['space_saved'])}",
             f"  Dedup Ratio:    {s['dedup_ratio'] * 100:.1f}%", "", "By Type:"]
    lines += [f"  {k.capitalize():<10} {v['artifacts']} artifacts, {v['versions']} versions, {_size(v['size'])}"
              for k, v in s["by_type"].items()]
    out.print("\n".join(lines), markup=False)


@artifacts_app.command()
def delete(ref: Annotated[str, typer.Argument(help="NAME:VERSION to delete.")],
           permanent: Annotated[bool, typer.Option("--permanent", help="Remove the manifest for good (the version "
                                                     "number stays taken; `runicorn gc` frees the space).")] = False,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before a --permanent delete (needed "
                                                 "without a terminal).")] = False,
           json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Soft-delete a version (recoverable with `restore`, so never asked), or --permanent (asked)."""
    reporter = CliReporter(quiet, verbose, json)
    if permanent and not yes:
        if not interactive():
            raise UsageError("a permanent delete needs confirmation: rerun with --yes")
        if not reporter.confirm(f"Permanently delete {ref}?"):
            raise UsageError("delete cancelled; nothing was changed")
    done = arts.delete_version(Repo.find(), ref, permanent, reporter=reporter)
    if json:
        return print_json(done)
    what = f"{done['name']}:v{done['version']}"
    _say(quiet, f"✅ Permanently deleted {what}; run `runicorn gc` to free its space" if permanent
         else f"✅ Soft deleted {what} (undo with `runicorn artifacts restore {what}`)")


@artifacts_app.command()
def restore(ref: Annotated[str, typer.Argument(help="NAME:VERSION to restore.")],
            json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Undo a soft delete."""
    done = arts.restore_version(Repo.find(), ref, reporter=CliReporter(quiet, verbose, json))
    if json:
        return print_json(done)
    _say(quiet, f"restored {done['name']}:v{done['version']}")


@artifacts_app.command()
def alias(ref: Ref, name: Annotated[str, typer.Argument(help="The alias, e.g. best.")],
          remove: Annotated[bool, typer.Option("--remove", help="Remove the alias instead.")] = False,
          json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Point an alias at a version (moving it from the version that had it)."""
    reporter = CliReporter(quiet, verbose, json)
    repo = Repo.find()
    done = (arts.remove_alias(repo, ref.split(":")[0], name, reporter=reporter) if remove
            else arts.set_alias(repo, ref, name, reporter=reporter))
    if json:
        return print_json(done)
    if remove:
        return _say(quiet, f"removed alias {name} from {done['name']}:v{done['previous']}")
    moved = f" (moved from v{done['previous']})" if done["previous"] else ""
    _say(quiet, f"{done['name']}:{name} -> v{done['version']}{moved}")


@artifacts_app.command()
def stage(ref: Ref, stage_name: Annotated[str, typer.Argument(metavar="STAGE", help="none, staging, production or archived.")],
          force: Annotated[bool, typer.Option("--force", help="Skip the transition rules.")] = False,
          json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Move a version to a registry stage (none → staging → production → archived)."""
    done = arts.set_stage(Repo.find(), ref, stage_name, force, reporter=CliReporter(quiet, verbose, json))
    if json:
        return print_json(done)
    if not done["moves"]:
        return _say(quiet, f"{done['name']}:v{done['version']} is already in {stage_name}")
    for m in done["moves"]:
        _say(quiet, f"{done['name']}:v{m['version']}: {m['from']} -> {m['to']}")


@artifacts_app.command()
def diff(a: Annotated[str, typer.Argument(help="NAME:VERSION (old).")],
         b: Annotated[str, typer.Argument(help="NAME:VERSION or just a version of A's artifact (new).")],
         json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Files added / removed / changed and metadata changes between two versions."""
    d = arts.artifact_diff(Repo.find(), a, b)
    if json:
        return print_json(d)
    lines = [f"{d['a']} -> {d['b']}" + ("  (same content)" if d["same_content"] else "")]
    lines += [f"  added    {f['path']} ({_size(f['size'])})" for f in d["files"]["added"]]
    lines += [f"  removed  {f['path']} ({_size(f['size'])})" for f in d["files"]["removed"]]
    lines += [f"  changed  {f['path']} ({_size(f['old_size'])} -> {_size(f['new_size'])})" for f in d["files"]["changed"]]
    lines.append(f"  {d['files']['unchanged']} file(s) unchanged")
    m = d["metadata"]
    lines += [f"  metadata + {k}: {v}" for k, v in m["added"].items()]
    lines += [f"  metadata - {k}: {v}" for k, v in m["removed"].items()]
    lines += [f"  metadata ~ {k}: {v[0]} -> {v[1]}" for k, v in m["changed"].items()]
    lines += [f"  reference + {k}" for k in d["references"]["added"]] + [f"  reference - {k}" for k in d["references"]["removed"]]
    lines += [f"  reference ~ {k}" for k in d["references"]["changed"]]
    lines += [f"  tag + {t}" for t in d["tags"]["added"]] + [f"  tag - {t}" for t in d["tags"]["removed"]]
    out.print("\n".join(lines), markup=False)


@artifacts_app.command()
def download(ref: Ref,
             output: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder to put the files in "
                                                             "(default: a folder in the download cache).")] = None,
             remote: Annotated[Optional[str], typer.Option("--remote", "-r", help="Remote to fetch missing objects "
                                                            "from (default: core.remote).")] = None,
             json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Materialise a version's files (linked from the cache; missing objects fetched from the remote)."""
    handle = arts.use_artifact(Repo.find(), ref)
    path = handle.download(output, remote, CliReporter(quiet, verbose, json))
    if json:
        return print_json({"ref": handle.ref, "path": str(path), "files": len(handle.get_manifest().files)})
    _say(quiet, f"downloaded {handle.ref} to {path}")


@artifacts_app.command()
def push(refs: Annotated[Optional[List[str]], typer.Argument(help="Versions to push (default: every manifest here).")] = None,
         remote: Annotated[Optional[str], typer.Option("--remote", "-r", help="Remote name (default: core.remote).")] = None,
         jobs: Annotated[int, typer.Option("--jobs", "-j", help="Parallel uploads.")] = 0,
         json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Upload the objects of artifact versions that the remote lacks."""
    result = arts.push_artifacts(Repo.find(), refs or None, remote, jobs, CliReporter(quiet, verbose, json))
    if json:
        print_json(result.to_json())
    else:
        _say(quiet, f"pushed {result.transferred:,} objects, {_size(result.bytes)}, {result.already:,} already there "
                    f"({result.remote})")
        for oid, where in sorted(result.missing.items()):
            out.print(f"missing: {where[0]} ({oid[:12]})", markup=False)
    if result.missing:
        raise RunicornError(f"{len(result.missing)} artifact object(s) are not in the cache; the rest was pushed "
                            "(run `runicorn artifacts verify` on the versions named above)")


@artifacts_app.command()
def lineage(ref: Annotated[str, typer.Argument(help="NAME[:VERSION], or run:RUN_ID.")],
            up: Annotated[bool, typer.Option("--up", help="Only upstream (inputs).")] = False,
            down: Annotated[bool, typer.Option("--down", help="Only downstream (uses).")] = False,
            depth: Annotated[int, typer.Option("--depth", help="Hops to follow each way.")] = 5,
            fmt: Annotated[str, typer.Option("--format", help="text, json, dot or mermaid.")] = "text",
            json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """The lineage graph around a version or run: inputs → run → outputs."""
    from runicorn.core.artifact_lineage import render

    both = not up and not down
    graph = arts.lineage(Repo.find(), ref, up=up or both, down=down or both, depth=depth)
    if json:
        return print_json(graph)
    out.print(render(graph, fmt), markup=False)


@artifacts_app.command()
def verify(ref: Ref, json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Re-hash a version's cached files and re-measure its references; exit 5 on a mismatch."""
    from runicorn.core.artifact_use import verify as verify_ref

    report = verify_ref(Repo.find(), ref)
    if json:
        print_json(report)
    else:
        for p in report["problems"]:
            out.print(f"problem: {p}", markup=False)
        for n in report["unverifiable"]:
            out.print(f"not verifiable: reference {n} (no sha256 checksum)", markup=False)
        _say(quiet, f"checked {report['checked']} item(s) of {report['ref']}: {len(report['problems'])} problem(s)")
    if not report["ok"]:
        raise ArtifactVerifyError(report["ref"], report["problems"])


@cache_app.command("list")
def cache_list(json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Downloaded versions in the user-level cache, least recently used first."""
    from runicorn.core.artifact_cache import cache_list as entries
    from runicorn.config import Config

    rows = entries(Config(_root()))
    if json:
        return print_json(rows)
    if not rows:
        return _say(quiet, "The download cache is empty.")
    from datetime import datetime

    table = _table("Artifact", "Size", "Files", "Last used", "Linked", "Path")
    for r in rows:
        table.add_row(f"{r['name']}:v{r['version']}", _size(r["size"]), str(r["files"]),
                      datetime.fromtimestamp(r["last_used"]).strftime("%Y-%m-%d %H:%M"), "yes" if r["linked"] else "no",
                      r["path"])
    _print_table(table)


@cache_app.command("cleanup")
def cache_cleanup(max_size: Annotated[Optional[str], typer.Option("--max-size", help="Keep at most this much, e.g. 10GB.")] = None,
                  max_age: Annotated[Optional[str], typer.Option("--max-age", help="Evict what was unused this long, e.g. 30d.")] = None,
                  dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go; remove nothing.")] = False,
                  json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Evict least recently used downloads (never what a workspace still links)."""
    from runicorn.core.artifact_cache import cache_cleanup as cleanup
    from runicorn.config import Config

    done = cleanup(max_size, max_age, dry_run, Config(_root()))
    if json:
        return print_json(done)
    verb = "would evict" if dry_run else "evicted"
    _say(quiet, f"{verb} {len(done['evicted'])} download(s), {_size(done['freed_bytes'])}; "
                f"kept {len(done['kept_linked'])} still linked by a workspace; {_size(done['size'])} remain")


def _root():
    from runicorn.cli import _root_or_none

    return _root_or_none()

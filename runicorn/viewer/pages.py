"""The data of every viewer page: one function per page, returning one JSON-able dict.

The HTML page and its `/api/…` twin are two renderings of the same dict. Read-only: nothing here
writes to the repository, the index or the workspace, and nothing takes the repository lock.
"""
from __future__ import annotations

import math

from runicorn.core import artifacts, history, runs
from runicorn.core.repo import Repo
from runicorn.errors import PageNotFoundError, PathNotTrackedError, RunicornError, UnsafePathError
from runicorn.viewer import sources
from runicorn.viewer.layout import layout
from runicorn.viewer.series import series as chart_series
from runicorn.viewer.sources import iso

RUN_STATUSES = ("running", "finished", "failed", "crashed")
SORTS = ("-started_at", "started_at", "-ended_at", "name", "-name", "status", "project", "-duration", "duration")
CHART_POINTS = 500
LOG_TAIL = 64 * 1024
FILE_VIEW_LIMIT = 256 * 1024
FINAL_STATUSES = ("finished", "failed", "crashed")
DIFF_SHOWN = 1 << 20  # a page shows the first MiB of a diff; the whole one is a plain-text download


# -- dashboard --------------------------------------------------------------------------------
def dashboard(repo: Repo) -> dict:
    tracked = repo.tracked()
    data = {"root": str(repo.root), **sources.head_info(repo), "dirty": repo.git.is_dirty(),
            "tracked": [{"path": rel, "kind": p.kind, "size": p.size, "oid": p.oid} for rel, p in tracked],
            "runs": runs_page(repo, per_page=8), "artifacts": _recent_versions(repo, 8),
            "remotes": _remotes(repo)}
    recent, _ = sources.commits(repo, limit=5)
    data["commits"] = recent
    data["counts"] = {"tracked": len(tracked), "runs": data["runs"].get("total"),
                      "artifacts": len(data["artifacts"]["artifacts"])}
    return data


def _remotes(repo: Repo) -> list[dict]:
    from runicorn.core import remotes

    try:
        return remotes.listing(repo.root)
    except RunicornError as exc:
        return [{"name": "?", "url": str(exc), "default": False}]


def _recent_versions(repo: Repo, limit: int) -> dict:
    arts = artifacts.list_artifacts(repo)
    recent = sorted(arts, key=lambda a: str(a.get("updated_at") or ""), reverse=True)[:limit]
    types = {a["name"]: a.get("type") for a in arts}
    versions = [{**v, "type": types.get(a["name"])} for a in recent for v in artifacts.list_versions(repo, a["name"])
                if not v.get("deleted")]
    versions.sort(key=lambda v: str(v.get("created_at") or ""), reverse=True)
    return {"available": True, "artifacts": arts, "versions": versions[:limit]}


# -- runs -------------------------------------------------------------------------------------
def runs_page(repo: Repo, project=None, status=None, branch=None, commit=None, tag=None, search=None,
              sort="-started_at", page=1, per_page=50) -> dict:
    filters = {"project": project, "status": status, "branch": branch, "commit": commit, "tag": tag,
               "search": search}
    filters = {k: v for k, v in filters.items() if v}
    base = {"filters": filters, "sort": sort, "page": page, "per_page": per_page, "statuses": RUN_STATUSES,
            "sorts": SORTS}
    rows, total = runs.list_runs(repo, sort=sort, limit=per_page, offset=(page - 1) * per_page, **filters)
    for row in rows:
        row.setdefault("id", row.get("run_id"))
    pages = max(1, math.ceil(total / per_page))
    return {**base, "available": True, "runs": rows, "total": total, "pages": pages}


def run_detail(repo: Repo, run_id: str, points: int = CHART_POINTS) -> dict:
    run = runs.get_run(repo, run_id)
    keys = runs.metric_keys(repo, run_id)
    charts = [{"key": k, "points": chart_series(repo, run_id, k, points, final=_final(run))} for k in keys]
    diff = runs.run_diff(repo, run_id)
    logs = runs.run_logs(repo, run_id, tail_bytes=LOG_TAIL)
    return {"run": run, "metrics": charts, **_capped_diff(diff), "logs": logs, "files": run_files(repo, run)}


def _capped_diff(diff: str) -> dict:
    return {"diff": diff[:DIFF_SHOWN], "diff_size": len(diff), "diff_truncated": len(diff) > DIFF_SHOWN}


def run_diff_text(repo: Repo, run_id: str) -> str:
    """The whole diff a run recorded at its start (plain text)."""
    runs.get_run(repo, run_id)
    return runs.run_diff(repo, run_id)


def _final(run: dict) -> bool:
    return run.get("status") in FINAL_STATUSES


def metric(repo: Repo, run_id: str, key: str, points: int = CHART_POINTS, x_min=None, x_max=None) -> dict:
    if key not in runs.metric_keys(repo, run_id):
        raise PageNotFoundError("metric", key)
    run = runs.get_run(repo, run_id)
    return {"run": run_id, "key": key, **chart_series(repo, run_id, key, points, x_min, x_max, final=_final(run))}


def run_files(repo: Repo, run: dict) -> list[dict]:
    """Files the run saved (`rn.save`): path, size, oid, as the run document lists them."""
    return [f for f in (run.get("files") or []) if isinstance(f, dict) and f.get("path")]


def run_file(repo: Repo, run_id: str, rel: str) -> dict:
    """The text of one saved file of a run (first 256 KiB). Only a path the run document lists is
    served, read from the object store by its oid: a URL never becomes a file-system path."""
    run = runs.get_run(repo, run_id)
    entry = next((f for f in run_files(repo, run) if f["path"] == rel), None)
    if entry is None or not entry.get("oid"):
        raise PageNotFoundError("file", rel)
    try:
        with open(repo.odb.path(entry["oid"]), "rb") as fh:
            data = fh.read(FILE_VIEW_LIMIT + 1)
    except FileNotFoundError:
        raise PageNotFoundError("file", rel) from None
    return {"run": run_id, "path": rel, "size": entry.get("size"), "truncated": len(data) > FILE_VIEW_LIMIT,
            "text": data[:FILE_VIEW_LIMIT].decode("utf-8", errors="replace")}


def compare(repo: Repo, run_ids: list[str], points: int = CHART_POINTS) -> dict:
    if not run_ids:
        return {"runs": [], "metrics": [], "config": [], "summary": []}
    docs = [runs.get_run(repo, r) for r in run_ids]
    keys: list[str] = []
    for r in run_ids:
        for k in runs.metric_keys(repo, r):
            if k not in keys:
                keys.append(k)
    names = {r["id"]: r.get("name") or r["id"] for r in docs}
    final = {r["id"]: _final(r) for r in docs}
    have = {r: set(runs.metric_keys(repo, r)) for r in run_ids}
    metrics = []
    for k in keys:
        series = [{"run": r, "label": names.get(r, r), **chart_series(repo, r, k, points, final=final.get(r, False))}
                  for r in run_ids if k in have[r]]
        metrics.append({"key": k, "series": series})
    return {"runs": docs, "metrics": metrics, "config": _table(docs, "config"), "summary": _table(docs, "summary")}


def _table(docs: list[dict], field: str) -> list[dict]:
    """Rows {key, values, differs} of FIELD across the run documents DOCS, flattened with dotted keys."""
    flat = [runs.flatten(d.get(field) or {}) for d in docs]
    keys = sorted({k for f in flat for k in f})
    return [{"key": k, "values": [f.get(k) for f in flat], "differs": len({repr(f.get(k)) for f in flat}) > 1}
            for k in keys]


# -- artifacts --------------------------------------------------------------------------------
def artifacts_page(repo: Repo, type=None, search=None) -> dict:
    everything = artifacts.list_artifacts(repo)
    types = sorted({a.get("type") for a in everything if a.get("type")})
    rows = artifacts.list_artifacts(repo, type=type, search=search) if (type or search) else everything
    stats = artifacts.artifact_stats(repo)
    return {"available": True, "artifacts": rows, "stats": stats, "types": types, "type": type, "search": search}


def artifact_detail(repo: Repo, name: str, version: str | None = None, tab: str = "info") -> dict:
    info = artifacts.artifact_info(repo, name, version)
    versions = artifacts.list_versions(repo, name)
    data = {"name": name, "info": info, "versions": versions, "tab": tab, "version": version}
    if tab == "lineage":
        ref = f"{name}:v{_version_number(info)}" if _version_number(info) is not None else name
        data["lineage"] = lineage_graph(repo, ref, depth=3)
    return data


def _version_number(info: dict):
    v = info.get("version")
    if isinstance(v, str) and v.startswith("v") and v[1:].isdigit():
        return int(v[1:])
    return v if isinstance(v, int) else None


def artifact_diff(repo: Repo, name: str, a: str, b: str) -> dict:
    return {"name": name, "a": a, "b": b, "diff": artifacts.artifact_diff(repo, f"{name}:{a}", f"{name}:{b}")}


def lineage_graph(repo: Repo, ref: str, depth: int = 3, up: bool = True, down: bool = True) -> dict:
    graph = artifacts.lineage(repo, ref, up=up, down=down, depth=depth)
    focus = graph.get("root") or _focus_id(ref, graph)
    return {"available": True, "ref": ref, "depth": depth, "up": up, "down": down, "graph": graph,
            "svg": layout(graph, focus)}


def _focus_id(ref: str, graph: dict) -> str | None:
    ids = [n["id"] for n in graph.get("nodes", [])]
    if ref in ids:
        return ref
    prefix = "artifact:" + ref.split(":")[0] + ":"
    for candidate in (f"artifact:{ref}", f"artifact:{ref.replace(':', ':v', 1)}"):
        if candidate in ids:
            return candidate
    same = [i for i in ids if i.startswith(prefix)]
    return same[-1] if same else None


def node_href(node_id: str) -> str | None:
    """Where a click on a lineage node goes: the artifact version, the run, or the data history."""
    kind, _, rest = node_id.partition(":")
    if kind == "artifact":
        name, _, version = rest.rpartition(":")
        return f"/artifacts/{name}?version={version}" if name else f"/artifacts/{rest}"
    if kind == "run":
        return f"/runs/{rest}"
    if kind == "data":
        return f"/data/{rest.rsplit('@', 1)[0]}"
    return None


# -- git: commits and tracked data ------------------------------------------------------------
def commits_page(repo: Repo, page: int = 1, per_page: int = 30) -> dict:
    rows, more = sources.commits(repo, limit=per_page, offset=(page - 1) * per_page)
    by_commit = _versions_by_commit(repo)
    for row in rows:
        row["runs"] = _runs_at(repo, row["sha"], 20)
        row["artifact_versions"] = by_commit.get(row["sha"], [])
        row["data_changes"], row["manifests"] = sources.changed(repo, row["sha"])
    return {**sources.head_info(repo), "commits": rows, "page": page, "more": more}


def _runs_at(repo: Repo, sha: str, limit: int) -> list[dict]:
    rows = runs.list_runs(repo, commit=sha, limit=limit)[0]
    for row in rows:
        row.setdefault("id", row.get("run_id"))
    return rows


def _versions_by_commit(repo: Repo) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for art in artifacts.list_artifacts(repo):
        for v in artifacts.list_versions(repo, art["name"]):
            sha = v.get("git_commit") or v.get("commit")
            if isinstance(sha, dict):
                sha = sha.get("commit")
            if sha:
                out.setdefault(sha, []).append({"name": art["name"], **v})
    return out


def commit_detail(repo: Repo, sha: str) -> dict:
    row = sources.commit(repo, sha)
    row.update(_capped_diff(row["diff"]))
    row["runs"] = _runs_at(repo, row["sha"], 200)
    row["artifact_versions"] = _versions_by_commit(repo).get(row["sha"], [])
    return row


def remote_page(repo: Repo, name: str) -> dict:
    """What the remote NAME lacks and holds, per tracked path (contacts the remote; read-only)."""
    from runicorn.core import remote_check, remotes

    if name not in {r["name"] for r in remotes.listing(repo.root)}:
        raise PageNotFoundError("remote", name)
    shown, rows = remote_check.remote_status(repo, None, name)
    paths = [r.to_json() for r in rows]
    return {"remote": shown, "paths": paths, "not_pushed": sum(p["not_pushed"] for p in paths),
            "not_fetched": sum(p["not_fetched"] for p in paths)}


def data_page(repo: Repo) -> dict:
    rows = [{"path": rel, "kind": p.kind, "size": p.size, "oid": p.oid, "files": p.files}
            for rel, p in repo.tracked()]
    return {"tracked": rows}


def data_history(repo: Repo, path: str) -> dict:
    tracked_now = repo.pointer_file(path).is_file()
    try:
        rows = history.log(repo, str(repo.root / path))  # log() takes a user path: make it absolute
    except (PathNotTrackedError, UnsafePathError) as exc:
        raise PageNotFoundError("tracked path", path) from exc
    except RunicornError as exc:
        # log() raises a plain RunicornError ("no git history yet") for a pointer not committed yet;
        # anything else (a hostile pointer in history, a git error) is shown as the error it is.
        if not tracked_now or type(exc) is not RunicornError:
            raise
        rows = []
    for r in rows:
        r["when"] = iso(r.get("date"))
    current = repo.pointer_file(path)
    pointer = repo.load_pointer(path) if current.is_file() else None
    now = {"kind": pointer.kind, "oid": pointer.oid, "size": pointer.size, "files": pointer.files} if pointer else None
    return {"path": path, "current": now, "history": rows}

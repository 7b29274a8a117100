"""`runicorn viewer export DIR`: the viewer's pages as a static site that works from the file system.

Pages are rendered with the same templates and data functions as the server; links are rewritten
to relative file paths (`runs/ID/index.html`). The site is written into a temporary sibling folder
and renamed into place at the end, so DIR is either the complete export or untouched.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from runicorn.core.repo import Repo
from runicorn.errors import RunicornError
from runicorn.storage.fsutil import tmp_name
from runicorn.viewer import pages
from runicorn.viewer.render import STATIC_DIR, export_file, relative_url, render

MAX_RUNS = 2000
MAX_COMMITS = 200


def plan(repo: Repo) -> list[tuple[str, str, callable]]:
    """(viewer path, template, data thunk) of every exported page."""
    items: list[tuple[str, str, callable]] = [
        ("/", "dashboard.html", lambda: pages.dashboard(repo)),
        ("/runs", "runs.html", lambda: pages.runs_page(repo, per_page=MAX_RUNS)),
        ("/artifacts", "artifacts.html", lambda: pages.artifacts_page(repo)),
        ("/lineage", "lineage.html", lambda: {"ref": "", "choices": pages.artifacts_page(repo)["artifacts"]}),
        ("/commits", "commits.html", lambda: pages.commits_page(repo, per_page=MAX_COMMITS)),
        ("/data", "data.html", lambda: pages.data_page(repo)),
        ("/compare", "compare.html", lambda: pages.compare(repo, [])),
    ]
    for run in pages.runs_page(repo, per_page=MAX_RUNS)["runs"]:
        items.append((f"/runs/{run['id']}", "run.html", lambda r=run["id"]: pages.run_detail(repo, r)))
    for art in pages.artifacts_page(repo)["artifacts"]:
        name = art["name"]
        items.append((f"/artifacts/{name}", "artifact.html", lambda n=name: pages.artifact_detail(repo, n)))
        for tab in ("files", "versions", "lineage"):
            items.append((f"/artifacts/{name}?tab={tab}", "artifact.html",
                          lambda n=name, t=tab: pages.artifact_detail(repo, n, tab=t)))
        items.append((f"/lineage?ref={name}", "lineage.html", lambda n=name: pages.lineage_graph(repo, n)))
    commits, _ = pages.sources.commits(repo, limit=MAX_COMMITS)
    for c in commits:
        items.append((f"/commits/{c['sha']}", "commit.html", lambda s=c["sha"]: pages.commit_detail(repo, s)))
    for rel, _ in repo.tracked():
        items.append((f"/data/{rel}", "data_path.html", lambda p=rel: pages.data_history(repo, p)))
    return items


def export_site(repo: Repo, target: Path, force: bool = False) -> dict:
    """Write the static site to TARGET (must be absent or empty unless FORCE); returns counts."""
    target = Path(target).absolute()
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not force)):
        raise RunicornError(f"{target} exists and is not empty; choose an empty folder or pass --force to replace it")
    items = plan(repo)
    exported = {path for path, _, _ in items}
    work = tmp_name(target)
    work.mkdir(parents=True)
    try:
        shutil.copytree(STATIC_DIR, work / "static", ignore=shutil.ignore_patterns("swagger-ui"))  # no API offline
        for path, template, thunk in items:
            html = render(template, thunk(), url=relative_url(path, exported), exported=True, current=path.split("?")[0])
            out = work / export_file(path)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(html, encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {"dir": str(target), "pages": len(items), "index": str(target / "index.html")}

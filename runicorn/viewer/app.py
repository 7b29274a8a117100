"""The viewer's FastAPI app: every page at `/…` (HTML) and its JSON twin at `/api/…`.

Each route parses and checks its parameters, calls one function of `pages`, and renders the dict
as a template or returns it as JSON. One exception handler turns errors into friendly pages.
"""
from __future__ import annotations

import inspect
import threading
import time
from pathlib import Path
from typing import Optional

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from runicorn import __version__ as VERSION  # noqa: N812
from runicorn.core.repo import Repo
from runicorn.errors import (NotAGitRepoError, NotARunicornRepoError, PageNotFoundError, PathNotTrackedError,
                             RevisionError, RunicornError, UsageError)
from runicorn.viewer import pages
from runicorn.viewer import security as sec
from runicorn.viewer.render import STATIC_DIR, render


class RepoSource:
    """One `Repo` per worker thread (SQLite connections and libgit2 handles stay in their thread)."""

    def __init__(self, start: Path):
        self.start = Path(start)
        self.local = threading.local()

    def __call__(self) -> Repo:
        repo = getattr(self.local, "repo", None)
        if repo is None:
            repo = self.local.repo = Repo.find(self.start)
        return repo


def _status(exc: RunicornError) -> int:
    # In the viewer a usage error is always an id in the URL that names nothing.
    if isinstance(exc, (PageNotFoundError, RevisionError, PathNotTrackedError, UsageError)) \
            or "NotFound" in type(exc).__name__:
        return 404
    if isinstance(exc, (NotARunicornRepoError, NotAGitRepoError)):
        return 503
    return 500


def _error_response(request: Request, status: int, title: str, message: str, kind: str) -> object:
    if request.url.path.startswith("/api/") or request.url.path == "/api":
        return JSONResponse({"error": message, "kind": kind, "status": status}, status_code=status)
    data = {"status": status, "title": title, "message": message, "kind": kind}
    return HTMLResponse(render("error.html", data, current=request.url.path), status_code=status)


TITLES = {404: "Not found", 503: "No Runicorn repository here", 500: "Something went wrong", 400: "Bad request"}
_ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "required": ["error", "kind", "status"],
    "properties": {"error": {"type": "string", "description": "what went wrong and what to do"},
                   "kind": {"type": "string", "description": "the error class"}, "status": {"type": "integer"}}}}}}


def _responses(what: str, params: bool = True) -> dict:
    """The OpenAPI answers of a JSON route: WHAT on success (a JSON object), and the error object
    of the one exception handler (400 for a bad parameter, never FastAPI's 422)."""
    found = {200: {"description": what, "content": {"application/json": {"schema": {"type": "object"}}}}}
    if params:
        found[400] = {"description": "a parameter has an invalid value", **_ERROR}
        found[404] = {"description": "nothing has this name, id, version or path", **_ERROR}
    found["default"] = {"description": "not a Runicorn repository (503), or a bug (500)", **_ERROR}
    return found


def create_app(start: Path | None = None, host: str = "127.0.0.1") -> FastAPI:
    """The viewer for the repository containing START (default: the current folder)."""
    app = FastAPI(title="Runicorn viewer", version=VERSION, docs_url=None, redoc_url=None,
                  description="Read-only JSON twins of the viewer's pages.")
    app.state.repo = RepoSource(start or Path.cwd())
    app.state.started = time.time()
    app.add_middleware(sec.LocalOnly, bound=host)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.exception_handler(RunicornError)
    async def runicorn_error(request: Request, exc: RunicornError):
        status = _status(exc)
        return _error_response(request, status, TITLES[status], exc.message, type(exc).__name__)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        status = exc.status_code
        message = "there is no page at this address; use the menu to find what you are looking for" \
            if status == 404 else str(exc.detail)
        return _error_response(request, status, TITLES.get(status, "Error"), message, "HTTPException")

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors())
        return _error_response(request, 400, TITLES[400], f"invalid value for {fields or 'a parameter'}; "
                               "fix the address and reload", "RequestValidationError")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        # A bug: say so plainly (the server log has the traceback), never a stack trace in the page.
        return _error_response(request, 500, TITLES[500], f"unexpected error: {type(exc).__name__}: {exc}; "
                               "reload, and report it with the server's log if it persists", type(exc).__name__)

    app.include_router(_routes(app))
    return app


def _routes(app: FastAPI) -> APIRouter:
    router = APIRouter()
    repo = app.state.repo

    def page(path: str, template: str, name: str):
        """Register FN's dict at PATH (HTML via TEMPLATE) and at /api PATH (JSON)."""
        api_path = "/api" + (path if path != "/" else "/dashboard")

        def register(fn):
            def html(request: Request, **kwargs):
                data = fn(**kwargs)
                return HTMLResponse(render(template, data, current=request.url.path))

            def api(**kwargs):
                return JSONResponse(jsonable_encoder(fn(**kwargs)))

            for endpoint, route, extra in ((html, path, {"include_in_schema": False, "response_class": HTMLResponse}),
                                           (api, api_path, {"summary": name, "responses": _responses(
                                               f"the data the {path} page shows, as one JSON object",
                                               params=bool(inspect.signature(fn).parameters))})):
                endpoint.__signature__ = _signature(fn, endpoint is html)
                kind = "html" if endpoint is html else "api"
                router.add_api_route(route, endpoint, methods=["GET"], name=f"{fn.__name__}_{kind}", **extra)
            return fn

        return register

    @page("/", "dashboard.html", "Dashboard: repository, counts, recent runs and artifacts, remotes")
    def dashboard():
        return pages.dashboard(repo())

    @page("/runs", "runs.html", "Runs: filter, sort, search, paginate")
    def runs(project: Optional[str] = None, status: Optional[str] = None, branch: Optional[str] = None,
             commit: Optional[str] = None, tag: Optional[str] = None, q: Optional[str] = None,
             sort: str = "-started_at", page: int = Query(1, ge=1, le=1_000_000),
             per_page: int = Query(50, ge=1, le=500)):
        if sort not in pages.SORTS:
            raise PageNotFoundError("sort order", sort)
        if status and status not in pages.RUN_STATUSES:
            raise PageNotFoundError("status", status)
        return pages.runs_page(repo(), project=project, status=status, branch=branch, commit=commit, tag=tag,
                               search=q, sort=sort, page=page, per_page=per_page)

    @page("/runs/{run_id}", "run.html", "Run detail: git, environment, config, summary, metrics, logs, files")
    def run(run_id: str, points: int = Query(pages.CHART_POINTS, ge=10, le=5000)):
        return pages.run_detail(repo(), sec.check_run_id(run_id), points)

    @router.get("/api/runs/{run_id}/metrics/{key:path}", summary="One metric, downsampled server-side",
                responses=_responses("{run, key, step: [...], value: [...]}: the points, by step (null: not finite)"))
    def metric(run_id: str, key: str, points: int = Query(pages.CHART_POINTS, ge=10, le=5000),
               x_min: Optional[float] = None, x_max: Optional[float] = None):
        data = pages.metric(repo(), sec.check_run_id(run_id), sec.check_metric_key(key), points, x_min, x_max)
        return JSONResponse(jsonable_encoder(data))

    @router.get("/runs/{run_id}/diff.patch", summary="The whole diff a run recorded at its start",
                response_class=PlainTextResponse)
    def run_diff(run_id: str):
        return PlainTextResponse(pages.run_diff_text(repo(), sec.check_run_id(run_id)))

    @page("/remotes/{name}", "remote.html", "What a remote lacks (not pushed) and holds (not fetched); contacts it")
    def remote(name: str):
        return pages.remote_page(repo(), sec.check_name(name))

    @page("/runs/{run_id}/files/{path:path}", "run_file.html", "One file of a run (text, first 256 KiB)")
    def run_file(run_id: str, path: str):
        return pages.run_file(repo(), sec.check_run_id(run_id), sec.check_relpath(path))

    @page("/compare", "compare.html", "Compare runs: overlaid metrics, config and summary differences")
    def compare(runs: list[str] = Query([])):
        ids = [i for item in runs for i in item.split(",") if i]
        return pages.compare(repo(), [sec.check_run_id(i) for i in ids[:12]])

    @page("/artifacts", "artifacts.html", "Artifacts: list, type filter, search, stats")
    def artifacts(type: Optional[str] = None, q: Optional[str] = None):
        return pages.artifacts_page(repo(), type=type or None, search=q or None)

    @page("/artifacts/{name}", "artifact.html", "Artifact detail: info, files, version history, lineage")
    def artifact(name: str, version: Optional[str] = None, tab: str = "info"):
        if tab not in ("info", "files", "versions", "lineage"):
            raise PageNotFoundError("tab", tab)
        if version is not None:
            sec.check_ref(f"x:{version}")
        return pages.artifact_detail(repo(), sec.check_name(name), version, tab)

    @page("/artifacts/{name}/diff", "artifact_diff.html", "Difference between two versions of an artifact")
    def artifact_diff(name: str, a: str, b: str):
        sec.check_ref(f"x:{a}"), sec.check_ref(f"x:{b}")
        return pages.artifact_diff(repo(), sec.check_name(name), a, b)

    @page("/lineage", "lineage.html", "Lineage graph of an artifact version or run (SVG layout included)")
    def lineage(ref: str = "", depth: int = Query(3, ge=1, le=200), up: bool = True, down: bool = True):
        if not ref:
            return {"ref": "", "depth": depth, "available": True, "graph": {"nodes": [], "edges": []},
                    "svg": None, "choices": pages.artifacts_page(repo()).get("artifacts", [])}
        if ref.startswith("run:"):
            sec.check_run_id(ref[4:])
        else:
            sec.check_ref(ref)
        return pages.lineage_graph(repo(), ref, depth=depth, up=up, down=down)

    @page("/commits", "commits.html", "Git history with the runs and artifact versions of each commit")
    def commits(page: int = Query(1, ge=1, le=100_000)):
        return pages.commits_page(repo(), page=page)

    @page("/commits/{sha}", "commit.html", "One commit: message, changed files, full diff, runs, artifact versions")
    def commit(sha: str):
        return pages.commit_detail(repo(), sec.check_sha(sha))

    @page("/data", "data.html", "Tracked data in the workspace")
    def data():
        return pages.data_page(repo())

    @page("/data/{path:path}", "data_path.html", "History of one tracked path across commits")
    def data_path(path: str):
        return pages.data_history(repo(), sec.check_relpath(path))

    @router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs():
        """Swagger UI over /openapi.json, served from the vendored copy (no CDN)."""
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Runicorn viewer API",
                                   swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon.svg",
                                   swagger_ui_parameters={"validatorUrl": None, "tryItOutEnabled": True})

    @router.get("/api", include_in_schema=False, response_class=HTMLResponse)
    def api_index(request: Request):
        schema = app.openapi()
        rows = [{"path": p, "summary": op.get("summary", ""), "params": [x["name"] for x in op.get("parameters", [])]}
                for p, ops in schema["paths"].items() for op in ops.values()]
        return HTMLResponse(render("api.html", {"endpoints": rows}, current="/api"))

    return router


def _signature(fn, with_request: bool):
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if with_request:
        params.insert(0, inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request))
    return sig.replace(parameters=params)

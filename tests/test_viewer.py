"""The viewer through FastAPI's TestClient: every page and its JSON twin, empty states, errors,
security (Host header, read-only, traversal corpus, autoescape), the export and the real server."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import git
from runicorn.viewer.app import create_app
from runicorn.viewer.layout import layout

XSS = "<script>alert(1)</script>"

# Runs in a real process (the SDK as a user runs it): two finished runs with metrics, one failed run,
# three artifacts with lineage (dataset v1, v2 → train → model → evaluate → report).
POPULATE = textwrap.dedent('''
    import math, os, sys, runicorn as rn
    os.makedirs("outputs", exist_ok=True)
    open("outputs/train.csv", "w").write("a,b\\n" + "\\n".join(f"{i},{i*i}" for i in range(50)))
    with rn.init(project="vision", name="prepare", tags=["data"]):
        a = rn.Artifact("mnist-small", type="dataset", description=XSS)
        a.add_file("outputs/train.csv"); a.add_metadata({"rows": 50, "note": XSS})
        rn.log_artifact(a, aliases=["first"])
    open("outputs/train.csv", "a").write("\\n50,2500")
    with rn.init(project="vision", name="prepare-2"):
        a = rn.Artifact("mnist-small", type="dataset"); a.add_file("outputs/train.csv"); a.add_metadata({"rows": 51})
        rn.log_artifact(a)
    for i, lr in enumerate((0.1, 0.01)):
        with rn.init(project="vision", name=f"train-{i}", config={"lr": lr, "model": {"depth": 18}}, tags=["sweep"]):
            rn.use_artifact("mnist-small:latest")
            for s in range(400):
                rn.log({"loss": math.exp(-s / (80 + 40 * i)), "val/acc": 1 - math.exp(-s / 60)}, step=s)
            print("epoch done", i)
            if i == 0:
                open("outputs/model.bin", "wb").write(b"m" * 4096)
                m = rn.Artifact("resnet-tiny", type="model"); m.add_file("outputs/model.bin"); m.add_metadata({"acc": 0.93})
                rn.log_artifact(m, aliases=["best"])
                open("outputs/notes.txt", "w").write("notes of the run\\n")
                rn.save("outputs/notes.txt")
    with rn.init(project="other", name=XSS, config={"danger": XSS}):
        rn.use_artifact("resnet-tiny:best")
        rn.log({"test/acc": 0.91})
        r = rn.Artifact("eval-report", type="report"); open("outputs/report.txt", "w").write("acc 0.91\\n")
        r.add_file("outputs/report.txt"); rn.log_artifact(r)
''').replace("XSS", repr(XSS))

FAIL = "import runicorn as rn\nrun = rn.init(project='vision', name='broken')\nrn.log({'loss': 1.0}, step=0)\nraise RuntimeError('boom')\n"


def _run(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(list(args), cwd=root, capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=300)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


def build_repo(root: Path) -> dict:
    """A real repository with tracked data, three commits, runs, artifacts and lineage."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    rn = [sys.executable, "-m", "runicorn"]
    _run(root, *rn, "init")
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("x,y\n1,2\n")
    (root / "model.pth").write_bytes(b"\x00" * 2048)
    _run(root, *rn, "add", "data", "model.pth")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Track data and model")
    (root / "data" / "b.csv").write_text("x,y\n3,4\n")
    _run(root, *rn, "add", "data")
    (root / "train.py").write_text("print('train')\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "More data")
    (root / "populate.py").write_text(POPULATE)
    (root / "fail.py").write_text(FAIL)
    (root / "train.py").write_text("print('train v2')\n")  # a dirty work tree: runs record a diff
    _run(root, sys.executable, "populate.py")
    subprocess.run([sys.executable, "fail.py"], cwd=root, capture_output=True, timeout=120)
    _run(root, *rn, "artifacts", "stage", "resnet-tiny:v1", "staging")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Artifacts and scripts")
    return {"root": root}


@pytest.fixture(scope="module")
def repo_root(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("viewer")
    home = base / "home"
    home.mkdir()
    saved = {k: os.environ.get(k) for k in ("HOME", "XDG_CONFIG_HOME", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
                                               "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_CONFIG_NOSYSTEM")}
    os.environ.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_AUTHOR_NAME="Test",
                      GIT_AUTHOR_EMAIL="test@example.com", GIT_COMMITTER_NAME="Test",
                      GIT_COMMITTER_EMAIL="test@example.com", GIT_CONFIG_NOSYSTEM="1")
    try:
        build_repo(base / "repo")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return base / "repo"


@pytest.fixture
def client(repo_root) -> TestClient:
    return TestClient(create_app(repo_root), base_url="http://127.0.0.1")


def _runs(client) -> dict:
    return {r["name"]: r for r in client.get("/api/runs").json()["runs"]}


def _commit_shas(root: Path) -> list[str]:
    return git(root, "log", "--format=%H").split()


# -- every page and its twin ------------------------------------------------------------------
def test_every_page_and_json_twin_renders(client, repo_root):
    runs = _runs(client)
    run_id = runs["train-0"]["id"]
    sha = _commit_shas(repo_root)[0]
    pages = ["/", "/runs", f"/runs/{run_id}", f"/compare?runs={run_id},{runs['train-1']['id']}", "/artifacts",
             "/artifacts/mnist-small", "/artifacts/mnist-small?tab=files", "/artifacts/mnist-small?tab=versions",
             "/artifacts/mnist-small?tab=lineage&version=v1", "/artifacts/mnist-small/diff?a=v1&b=v2",
             "/lineage", "/lineage?ref=resnet-tiny:v1&depth=2", f"/lineage?ref=run:{run_id}", "/commits",
             f"/commits/{sha}", "/data", "/data/data", f"/runs/{run_id}/files/outputs/notes.txt"]
    for page in pages:
        html = client.get(page)
        assert html.status_code == 200, (page, html.text[:500])
        assert html.headers["content-type"].startswith("text/html")
        assert "<nav>" in html.text and "Runicorn" in html.text
        twin = client.get("/api" + (page if page != "/" else "/dashboard"))
        assert twin.status_code == 200, (page, twin.text[:300])
        assert isinstance(twin.json(), dict)


def test_dashboard_shows_repository_runs_artifacts_and_data(client, repo_root):
    d = client.get("/api/dashboard").json()
    assert d["branch"] == "main" and d["head"] == _commit_shas(repo_root)[0]
    assert d["counts"] == {"tracked": 2, "runs": 6, "artifacts": 3}
    assert {t["path"] for t in d["tracked"]} == {"data", "model.pth"}
    assert {(v["name"], v["version"]) for v in d["artifacts"]["versions"]} == {
        ("mnist-small", 1), ("mnist-small", 2), ("resnet-tiny", 1), ("eval-report", 1)}
    html = client.get("/").text
    assert "train-1" in html and "resnet-tiny" in html and "No remote configured" in html


def test_runs_list_filters_sorts_searches_and_paginates(client, repo_root):
    all_runs = client.get("/api/runs").json()
    assert all_runs["total"] == 6
    assert client.get("/api/runs?branch=main").json()["total"] == 6
    assert client.get("/api/runs?branch=mai").json()["total"] == 0  # a branch is matched whole
    last, started_at = _commit_shas(repo_root)[:2]  # every run started on the commit before the last
    assert client.get(f"/api/runs?commit={started_at[:7]}").json()["total"] == 6
    assert client.get(f"/api/runs?commit={started_at.upper()}").json()["total"] == 6
    assert client.get(f"/api/runs?commit={last[:7]}").json()["total"] == 0
    html = client.get(f"/runs?branch=main&commit={started_at[:7]}&per_page=4").text
    assert f'name="commit" placeholder="commit" value="{started_at[:7]}"' in html and 'value="main"' in html
    assert f"branch=main&amp;commit={started_at[:7]}&amp;sort=" in html  # the pager keeps both
    failed = client.get("/api/runs?status=failed").json()
    assert [r["name"] for r in failed["runs"]] == ["broken"]
    assert client.get("/api/runs?project=other").json()["total"] == 1
    assert [r["name"] for r in client.get("/api/runs?q=train-").json()["runs"]] == ["train-1", "train-0"]
    assert client.get("/api/runs?tag=sweep").json()["total"] == 2
    by_name = [r["name"] for r in client.get("/api/runs?sort=name").json()["runs"]]
    assert by_name == sorted(by_name)
    page2 = client.get("/api/runs?per_page=4&page=2").json()
    assert page2["pages"] == 2 and len(page2["runs"]) == 2
    html = client.get("/runs?per_page=4&page=2").text
    assert "page 2 of 2" in html and "← previous" in html
    assert 'href="/runs?sort=-started_at&amp;per_page=4&amp;page=1"' in html  # the page size is kept
    assert "No run matches these filters" in client.get("/runs?q=nothing-like-this").text


def test_run_detail_has_git_environment_config_metrics_logs_files(client):
    run = _runs(client)["train-0"]
    d = client.get(f"/api/runs/{run['id']}").json()
    assert d["run"]["config"] == {"lr": 0.1, "model": {"depth": 18}}
    assert {m["key"] for m in d["metrics"]} == {"loss", "val/acc"}
    loss = next(m for m in d["metrics"] if m["key"] == "loss")["points"]
    assert 2 <= len(loss["step"]) <= 500 and loss["step"][0] == 0 and loss["step"][-1] == 399
    assert "train v2" in d["diff"]  # the dirty work tree at start
    assert "epoch done 0" in d["logs"]
    assert [f["path"] for f in d["files"]] == ["outputs/notes.txt"]
    html = client.get(f"/runs/{run['id']}").text
    assert 'class="chart-data"' in html and "<polyline" in html  # JS chart data + no-JS SVG
    assert 'class="add">+print(&#39;train v2&#39;)' in html
    assert "resnet-tiny:v1" in html and "mnist-small:v2" in html  # created / used
    assert f"/commits/{d['run']['git']['commit']}" in html


def test_metric_endpoint_downsamples_and_zooms_server_side(client):
    run_id = _runs(client)["train-0"]["id"]
    full = client.get(f"/api/runs/{run_id}/metrics/loss?points=20").json()
    assert len(full["step"]) <= 20 and full["step"][0] == 0 and full["step"][-1] == 399
    zoom = client.get(f"/api/runs/{run_id}/metrics/loss?points=500&x_min=100&x_max=120").json()
    assert zoom["step"] == list(range(100, 121))
    slash = client.get(f"/api/runs/{run_id}/metrics/val/acc?points=50").json()
    assert slash["key"] == "val/acc" and len(slash["value"]) <= 50
    assert client.get(f"/api/runs/{run_id}/metrics/nope").status_code == 404


def test_failed_run_is_shown_failed(client):
    broken = _runs(client)["broken"]
    assert broken["status"] == "failed"
    assert 'badge s-failed' in client.get(f"/runs/{broken['id']}").text


def test_compare_overlays_metrics_and_highlights_differences(client):
    runs = _runs(client)
    a, b = runs["train-0"]["id"], runs["train-1"]["id"]
    d = client.get(f"/api/compare?runs={a}&runs={b}").json()
    loss = next(m for m in d["metrics"] if m["key"] == "loss")
    assert [s["run"] for s in loss["series"]] == [a, b]
    lr = next(r for r in d["config"] if r["key"] == "lr")
    depth = next(r for r in d["config"] if r["key"] == "model.depth")
    assert lr["differs"] and lr["values"] == [0.1, 0.01] and not depth["differs"]
    html = client.get(f"/compare?runs={a},{b}").text
    assert '<tr class="differs"><td class="mono">lr</td>' in html
    assert "Pick runs to compare" in client.get("/compare").text


def test_artifacts_list_stats_filter_and_search(client):
    d = client.get("/api/artifacts").json()
    assert [a["name"] for a in d["artifacts"]] == ["eval-report", "mnist-small", "resnet-tiny"]
    assert d["stats"]["total_versions"] == 4 and d["types"] == ["dataset", "model", "report"]
    assert [a["name"] for a in client.get("/api/artifacts?type=model").json()["artifacts"]] == ["resnet-tiny"]
    assert [a["name"] for a in client.get("/api/artifacts?q=mnist").json()["artifacts"]] == ["mnist-small"]
    resnet = next(a for a in d["artifacts"] if a["name"] == "resnet-tiny")
    assert resnet["aliases"] == ["latest", "best"] and resnet["stages"] == ["staging"]
    html = client.get("/artifacts").text
    assert "space saved" in html and "dedup pool" in html
    assert '<span class="tag stage">staging</span>' in html and "<th>Stage</th>" in html
    assert "No artifact matches" in client.get("/artifacts?q=zzz").text


def test_artifact_detail_tabs_versions_and_diff(client):
    info = client.get("/artifacts/mnist-small").text
    assert "Version History" in info and "first" in info and "latest" in info
    v1 = client.get("/api/artifacts/mnist-small?version=v1").json()
    assert v1["info"]["version"] == 1 and v1["info"]["metadata"]["rows"] == 50
    files = client.get("/artifacts/mnist-small?tab=files").text
    assert "train.csv" in files
    versions = client.get("/artifacts/mnist-small?tab=versions").text
    assert "?version=v1" in versions and "Show differences" in versions
    diff = client.get("/api/artifacts/mnist-small/diff?a=v1&b=v2").json()["diff"]
    assert [f["path"] for f in diff["files"]["changed"]] == ["train.csv"]
    assert diff["metadata"]["changed"]["rows"] == [50, 51]


def test_lineage_graph_is_laid_out_with_clickable_nodes(client):
    d = client.get("/api/lineage?ref=resnet-tiny:v1&depth=3").json()
    ids = {n["id"] for n in d["svg"]["nodes"]}
    assert "artifact:resnet-tiny:v1" in ids and "artifact:mnist-small:v2" in ids
    xs = {n["id"]: n["x"] for n in d["svg"]["nodes"]}
    for e in d["graph"]["edges"]:  # data flows left to right
        assert xs[e["source"]] < xs[e["target"]]
    html = client.get("/lineage?ref=resnet-tiny:v1").text
    assert 'href="/artifacts/mnist-small?version=v2"' in html and re.search(r'href="/runs/\d{8}_\d{6}_\w{6}"', html)
    shallow = client.get("/api/lineage?ref=resnet-tiny:v1&depth=1").json()
    assert len(shallow["svg"]["nodes"]) < len(d["svg"]["nodes"])
    assert "Pick an artifact" in client.get("/lineage").text


def test_commits_list_runs_and_artifact_versions_per_commit(client, repo_root):
    shas = _commit_shas(repo_root)
    d = client.get("/api/commits").json()
    assert [c["sha"] for c in d["commits"]] == shas
    with_runs = next(c for c in d["commits"] if c["runs"])
    assert with_runs["sha"] == shas[1]  # runs started on the commit before the last
    assert {v["name"] for v in with_runs["artifact_versions"]} >= {"resnet-tiny"}
    assert next(c for c in d["commits"] if c["sha"] == shas[1])["data_changes"] == ["data"]
    assert {m["name"] for m in d["commits"][0]["manifests"]} == {"mnist-small", "resnet-tiny", "eval-report"}
    last = client.get(f"/api/commits/{shas[0]}").json()
    assert {(m["name"], m["version"]) for m in last["manifests"]} == {
        ("mnist-small", 1), ("mnist-small", 2), ("resnet-tiny", 1), ("eval-report", 1)}
    detail = client.get(f"/api/commits/{shas[-1]}").json()
    assert {f["tracked"] for f in detail["data_changes"]} == {"data", "model.pth"}
    assert "+++ b/data.rn" in detail["diff"]


def test_data_pages_show_history(client, repo_root):
    d = client.get("/api/data/data").json()
    assert [h["change"] for h in d["history"]] == ["modified", "added"]
    assert d["current"]["kind"] == "dir" and d["current"]["files"] == 2
    assert "More data" in client.get("/data/data").text


def test_openapi_lists_the_json_twins(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/dashboard", "/api/runs", "/api/runs/{run_id}", "/api/artifacts/{name}", "/api/lineage",
              "/api/commits/{sha}", "/api/data/{path}", "/api/runs/{run_id}/metrics/{key}"):
        assert p in paths
    runs = paths["/api/runs"]["get"]["responses"]  # Swagger UI shows an object, and the errors there are
    assert runs["200"]["description"] == "the data the /runs page shows, as one JSON object"
    assert runs["200"]["content"]["application/json"]["schema"] == {"type": "object"}
    assert set(runs) == {"200", "400", "404", "default"}  # a bad parameter is a 400, never a 422
    assert set(runs["404"]["content"]["application/json"]["schema"]["properties"]) == {"error", "kind", "status"}
    assert set(paths["/api/dashboard"]["get"]["responses"]) == {"200", "default"}
    assert "step" in paths["/api/runs/{run_id}/metrics/{key}"]["get"]["responses"]["200"]["description"]
    assert client.get("/api/runs?page=0").json()["status"] == 400
    assert "/api/runs" in client.get("/api").text
    docs = client.get("/docs").text  # Swagger UI from the vendored copy: no CDN
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs and "cdn." not in docs
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


# -- errors and empty states --------------------------------------------------------------------
@pytest.mark.parametrize("page", ["/runs/20990101_000000_zzzzzz", "/artifacts/no-such-thing", "/commits/deadbeef",
                                  "/data/not/tracked", "/artifacts/mnist-small?version=v99",
                                  "/artifacts/mnist-small/diff?a=v1&b=v42", "/no/such/page",
                                  "/lineage?ref=nothing:v1"])
def test_unknown_things_get_a_friendly_404(client, page):
    html = client.get(page)
    assert html.status_code == 404, html.text[:300]
    assert "Back to the dashboard" in html.text and "Traceback" not in html.text
    api = client.get("/api" + page)
    assert api.status_code == 404 and "error" in api.json()


def test_empty_repository_pages(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    subprocess.run([sys.executable, "-m", "runicorn", "init"], cwd=root, check=True, capture_output=True)
    client = TestClient(create_app(root), base_url="http://127.0.0.1")
    expect = {"/": "No runs yet", "/runs": "No runs yet", "/artifacts": "No artifacts yet",
              "/commits": "No commits yet", "/data": "Nothing tracked yet", "/lineage": "No artifacts yet",
              "/compare": "Pick runs to compare"}
    for page, words in expect.items():
        r = client.get(page)
        assert r.status_code == 200 and words in r.text, page
    assert client.get("/api/runs").json()["total"] == 0


def test_not_a_runicorn_repository_is_explained(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    git(plain, "init", "-q")
    for where, words in ((plain, "runicorn init"), (tmp_path, "git init")):
        client = TestClient(create_app(where), base_url="http://127.0.0.1")
        r = client.get("/")
        assert r.status_code == 503 and words in r.text
        assert client.get("/api/runs").json()["kind"] in ("NotARunicornRepoError", "NotAGitRepoError")


# -- security -----------------------------------------------------------------------------------
def test_foreign_host_headers_are_rejected(repo_root):
    client = TestClient(create_app(repo_root), base_url="http://127.0.0.1")
    for host in ("evil.example", "evil.example:23300", "127.0.0.1.evil.example", "localhost.evil", ""):
        assert client.get("/", headers={"host": host}).status_code == 421, host
    for host in ("127.0.0.1:23300", "localhost", "localhost:8080", "[::1]:23300"):
        assert client.get("/api/dashboard", headers={"host": host}).status_code == 200, host
    lan = TestClient(create_app(repo_root, host="10.1.2.3"), base_url="http://10.1.2.3")
    assert lan.get("/api/dashboard").status_code == 200
    assert lan.get("/", headers={"host": "10.9.9.9"}).status_code == 421
    anywhere = TestClient(create_app(repo_root, host="0.0.0.0"), base_url="http://127.0.0.1")
    assert anywhere.get("/api/runs", headers={"host": f"{socket.gethostname()}:23300"}).status_code == 200
    assert anywhere.get("/api/runs", headers={"host": "evil.example"}).status_code == 421


def test_nothing_changes_state(client, repo_root):
    run_id = _runs(client)["train-0"]["id"]
    before = git(repo_root, "status", "--porcelain"), _tree_digest(repo_root)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/", "/api/runs", f"/api/runs/{run_id}", "/api/artifacts/mnist-small", "/static/viewer.css"):
            assert client.request(method, path).status_code == 405, (method, path)
    for path in ("/", "/runs", f"/runs/{run_id}", "/artifacts", "/commits", "/data", "/lineage?ref=mnist-small"):
        client.get(path)
    assert (git(repo_root, "status", "--porcelain"), _tree_digest(repo_root)) == before


def _tree_digest(root: Path) -> dict:
    """Size and mtime of every file outside .git, except SQLite's own journal files."""
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.parts and not path.name.startswith("index.db"):
            st = path.stat()
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


TRAVERSAL = ["..", "../..", "../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
             "....//....//etc/passwd", "%2e%2e", "..%5c..%5cwindows", "/etc/passwd", "%2fetc%2fpasswd",
             ".git/config", ".git%2fconfig", "data/../../x", "data%00.rn", "a%0ab", "%c0%ae%c0%ae/etc"]


def raw_get(app, target: str) -> tuple[int, str]:
    """Send TARGET to the ASGI app exactly as a server passes it on: no client-side `..` normalisation
    (httpx and browsers collapse dot segments, an attacker's raw request does not)."""
    import asyncio
    from urllib.parse import unquote

    path, _, query = target.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": unquote(path), "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"127.0.0.1:23300")], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 23300)}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode(errors="replace")


@pytest.mark.parametrize("bad", TRAVERSAL)
def test_traversal_corpus_gets_404(client, bad):
    run_id = _runs(client)["train-0"]["id"]
    for template in ("/runs/{}", "/api/runs/{}", "/artifacts/{}", "/api/artifacts/{}", "/commits/{}",
                     "/data/{}", "/api/data/{}", "/runs/%s/files/{}" % run_id, "/api/runs/%s/metrics/{}" % run_id,
                     "/static/{}", "/lineage?ref={}", "/artifacts/mnist-small?version={}"):
        status, body = raw_get(client.app, template.format(bad))
        assert status == 404, (template, bad, status)
        assert "root:x:0:0" not in body and "[core]" not in body


def test_templates_autoescape(client):
    evil = _runs(client)[XSS]
    html = client.get(f"/runs/{evil['id']}").text
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for page in ("/", "/runs", "/artifacts", "/artifacts/mnist-small", "/artifacts/mnist-small?version=v1",
                 f"/lineage?ref=run:{evil['id']}", f"/compare?runs={evil['id']}"):
        assert XSS not in client.get(page).text, page
    r = client.get("/artifacts/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert r.status_code == 404 and XSS not in r.text


# -- export ----------------------------------------------------------------------------------------
def test_export_writes_a_static_site_with_working_links(repo_root, tmp_path):
    out = tmp_path / "site"
    done = _run(repo_root, sys.executable, "-m", "runicorn", "viewer", "export", str(out), "--json")
    result = json.loads(done.stdout)
    assert result["pages"] >= 20 and (out / "index.html").is_file()
    assert (out / "static" / "vendor" / "uPlot.iife.min.js").is_file()
    broken = []
    for page in out.rglob("*.html"):
        for link in re.findall(r'(?:href|src)="([^"#]+)"', page.read_text()):
            if link.startswith(("http:", "https:", "data:", "mailto:")):
                continue
            if not (page.parent / link.split("?")[0]).exists():
                broken.append((str(page.relative_to(out)), link))
    assert not broken, broken[:10]
    assert 'href="/' not in (out / "index.html").read_text()
    again = subprocess.run([sys.executable, "-m", "runicorn", "viewer", "export", str(out)], cwd=repo_root,
                           capture_output=True, text=True)
    assert again.returncode == 1 and "--force" in again.stderr


# -- the real server ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, host: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_cli_serves_on_loopback_and_refuses_a_busy_port(repo_root):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "runicorn", "viewer", "--port", str(port)], cwd=repo_root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = time.monotonic()
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line
        status, body = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "Dashboard" in body
        assert time.monotonic() - started < 10
        assert _get(f"http://127.0.0.1:{port}/", host="attacker.example")[0] == 421
        busy = subprocess.run([sys.executable, "-m", "runicorn", "viewer", "--port", str(port)], cwd=repo_root,
                              capture_output=True, text=True, timeout=30)
        assert busy.returncode == 2 and "--port" in busy.stderr and "port in use" in busy.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_open_points_the_browser_at_the_served_url(repo_root, monkeypatch, capsys):
    import webbrowser

    import uvicorn

    from runicorn.cli import main

    servers, opened = [], []

    class Server(uvicorn.Server):  # the real server, remembered so the test can stop it
        def __init__(self, config):
            super().__init__(config)
            servers.append(self)

    def browser(url, *args, **kwargs):  # what `webbrowser.open` would show: the page at URL
        opened.append((url, *_get(url)))
        servers[0].should_exit = True
        return True

    monkeypatch.setattr(uvicorn, "Server", Server)
    monkeypatch.setattr(webbrowser, "open", browser)
    monkeypatch.chdir(repo_root)
    watchdog = threading.Timer(20, lambda: servers and setattr(servers[0], "should_exit", True))
    watchdog.start()
    try:
        main(["viewer", "--port", "0", "--open"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    finally:
        watchdog.cancel()
    served = re.search(r"Runicorn viewer at (http://127\.0\.0\.1:\d+/)", capsys.readouterr().out).group(1)
    assert len(opened) == 1, "--open did not open a browser"
    url, status, body = opened[0]
    assert url == served and status == 200 and "Dashboard" in body


def test_cli_warns_when_binding_beyond_loopback(repo_root):
    proc = subprocess.Popen([sys.executable, "-m", "runicorn", "viewer", "--host", "0.0.0.0", "--port", "0"],
                            cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "warning: the viewer listens on 0.0.0.0" in proc.stderr.readline()
        url = re.search(r"http://\S+", proc.stdout.readline()).group(0)
        assert _get(url + "api/runs")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- layout -----------------------------------------------------------------------------------------
def test_layout_layers_follow_the_data_and_survive_cycles():
    graph = {"nodes": [{"id": i, "kind": "run", "label": i} for i in "abcde"],
             "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "c"},
                       {"source": "a", "target": "c"}, {"source": "d", "target": "c"}]}
    out = layout(graph, focus="c")
    x = {n["id"]: n["x"] for n in out["nodes"]}
    assert x["a"] < x["b"] < x["c"] and x["d"] == x["b"]  # a source sits next to its consumer
    assert next(n for n in out["nodes"] if n["id"] == "c")["focus"]
    assert len(out["edges"]) == 4 and all(e["d"].startswith("M") for e in out["edges"])
    cyc = layout({"nodes": [{"id": "p"}, {"id": "q"}], "edges": [{"source": "p", "target": "q"},
                                                                 {"source": "q", "target": "p"}]})
    assert len(cyc["nodes"]) == 2 and len(cyc["edges"]) == 2
    assert layout({"nodes": [], "edges": []})["nodes"] == []


def test_remote_page_shows_what_is_not_pushed(tmp_repo, tmp_path):
    tmp_repo.gen({"data": {"a.csv": "1,2\n", "b.csv": "3,4\n"}})
    assert tmp_repo.rn("add", "data").code == 0
    assert tmp_repo.rn("remote", "add", "store", str(tmp_path / "store"), "--default").code == 0
    client = TestClient(create_app(tmp_repo.root), base_url="http://127.0.0.1")
    assert "what is not pushed?" in client.get("/").text
    before = client.get("/api/remotes/store").json()
    assert before["not_pushed"] == 3 and before["paths"][0]["path"] == "data"  # two files and the manifest
    assert "runicorn push -r store" in client.get("/remotes/store").text
    assert tmp_repo.rn("push").code == 0
    assert client.get("/api/remotes/store").json()["not_pushed"] == 0
    assert client.get("/remotes/nope").status_code == 404


def test_run_diff_download_is_the_whole_diff(client):
    run = _runs(client)["train-0"]
    d = client.get(f"/api/runs/{run['id']}").json()
    assert d["diff_truncated"] is False and d["diff_size"] == len(d["diff"])
    patch = client.get(f"/runs/{run['id']}/diff.patch")
    assert patch.status_code == 200 and patch.headers["content-type"].startswith("text/plain")
    assert patch.text == d["diff"] and "+print('train v2')" in patch.text


def test_an_unexpected_error_gets_a_friendly_500(repo_root, monkeypatch):
    from runicorn.viewer import pages

    def broken(repo):
        raise KeyError("boom")

    monkeypatch.setattr(pages, "data_page", broken)  # stands in for a bug in a page
    client = TestClient(create_app(repo_root), base_url="http://127.0.0.1", raise_server_exceptions=False)
    html = client.get("/data")
    assert html.status_code == 500 and "unexpected error: KeyError" in html.text and "Traceback" not in html.text
    assert client.get("/api/data").json()["kind"] == "KeyError"


def test_lineage_direction_and_depth_from_the_form(client):
    both = client.get("/api/lineage?ref=resnet-tiny:v1&depth=3").json()["graph"]["nodes"]
    up = client.get("/api/lineage?ref=resnet-tiny:v1&depth=3&up=false&up=true&down=false").json()["graph"]["nodes"]
    down = client.get("/api/lineage?ref=resnet-tiny:v1&depth=3&up=false&down=false&down=true").json()["graph"]["nodes"]
    ids = lambda nodes: {n["id"] for n in nodes}  # noqa: E731
    assert "artifact:mnist-small:v2" in ids(up) and "artifact:eval-report:v1" not in ids(up)
    assert "artifact:eval-report:v1" in ids(down) and "artifact:mnist-small:v2" not in ids(down)
    assert ids(up) | ids(down) == ids(both)
    html = client.get("/lineage?ref=resnet-tiny:v1&depth=2").text
    assert 'name="up" value="true" checked' in html and '<option value="2" selected>' in html
    for depth in (4, 200):  # any depth the URL accepts is the selected option: Redraw keeps it
        html = client.get(f"/lineage?ref=resnet-tiny:v1&depth={depth}").text
        assert re.findall(r'<option value="(\d+)" selected>', html) == [str(depth)]
    options = re.findall(r'<option value="(\d+)"', client.get("/lineage?ref=resnet-tiny:v1&depth=4").text)
    assert options == sorted(options, key=int) and len(options) == len(set(options))


def test_data_history_of_an_uncommitted_and_an_untracked_path(tmp_repo):
    tmp_repo.gen({"fresh.bin": b"x" * 100})
    assert tmp_repo.rn("add", "fresh.bin").code == 0
    client = TestClient(create_app(tmp_repo.root), base_url="http://127.0.0.1")
    d = client.get("/api/data/fresh.bin").json()
    assert d["history"] == [] and d["current"]["size"] == 100
    assert "No commit records this path yet" in client.get("/data/fresh.bin").text
    assert client.get("/data/never-tracked.bin").status_code == 404


HOLD_LOCK = """
import sys, time
from pathlib import Path
from runicorn.core.repo import Repo
with Repo.find().lock():
    Path(sys.argv[1]).write_text("held")
    time.sleep(60)
"""


def test_pages_never_wait_for_the_repository_lock(client, repo_root, tmp_path):
    run_id = _runs(client)["train-0"]["id"]
    flag = tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(flag)], cwd=repo_root)  # a busy writer
    try:
        deadline = time.monotonic() + 30
        while not flag.exists():
            assert time.monotonic() < deadline and holder.poll() is None, "the lock holder did not start"
            time.sleep(0.05)
        started = time.monotonic()
        for page in ("/", "/runs", f"/runs/{run_id}", "/artifacts", "/artifacts/mnist-small?tab=lineage",
                     "/commits", "/data", "/data/data", "/lineage?ref=resnet-tiny:v1"):
            assert client.get(page).status_code == 200, page
        assert time.monotonic() - started < 20  # core.lock_timeout is 60 s: nothing waited for it
    finally:
        holder.kill()
        holder.wait()


# -- a running run's charts -----------------------------------------------------------------------
GROWING = """
import math, sys, runicorn as rn
run = rn.init(project="live", name="growing")
print(run.id, flush=True)
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "log":  # steps A..B-1, wavy values, never two alike
        for s in range(int(args[0]), int(args[1])):
            rn.log({"wave": math.sin(s * 0.37) * (1 + s % 7) + s * 1e-6}, step=s)
    elif cmd == "set":  # the last step again, a new value ("inf" too)
        rn.log({"wave": float(args[1])}, step=int(args[0]))
    elif cmd == "end":
        break
rn.finish()
"""


def _min_max(points: list[dict], lo: int, width: int) -> list[tuple]:
    """The reference downsample: per bucket of WIDTH steps from LO, its lowest and highest point
    (NaN ignored unless alone, infinities compare), by step."""
    value = lambda p: float(p.get("nonfinite") or "nan") if p["value"] is None else p["value"]  # noqa: E731
    buckets: dict = {}
    for p in points:
        buckets.setdefault((p["step"] - lo) // width, []).append(p)
    out = []
    for b in sorted(buckets):
        ordered = [p for p in buckets[b] if value(p) == value(p)] or buckets[b][:1]
        low, high = min(ordered, key=value), max(ordered, key=value)
        out += sorted({low["step"]: low, high["step"]: high}.values(), key=lambda p: p["step"])
    return [(p["step"], p["value"]) for p in out]


def test_a_running_runs_chart_grows_from_the_series_it_keeps(tmp_repo, monkeypatch):
    from runicorn.core import runs
    from runicorn.core.repo import Repo
    from runicorn.viewer import series

    reads = []
    real = runs.metric_series
    monkeypatch.setattr(runs, "metric_series", lambda *a, **kw: reads.append(kw) or real(*a, **kw))
    tmp_repo.gen({"grow.py": GROWING})
    proc = subprocess.Popen([sys.executable, "grow.py"], cwd=tmp_repo.root, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    client = TestClient(create_app(tmp_repo.root), base_url="http://127.0.0.1")
    repo = Repo(tmp_repo.root)
    try:
        run_id = proc.stdout.readline().strip()

        def step(command: str, done) -> dict:
            proc.stdin.write(command + "\n")
            proc.stdin.flush()
            deadline = time.monotonic() + 30
            while not done():  # the run's flusher indexes its points every second
                assert time.monotonic() < deadline, f"{command!r} did not reach the index"
                time.sleep(0.05)
            reads.clear()
            shown = client.get(f"/api/runs/{run_id}/metrics/wave?points=50").json()
            grid = series._CACHE[("running", str(repo.root), run_id, "wave", 50)]
            everything = real(repo, run_id, "wave", max_points=10**9)
            assert list(zip(shown["step"], shown["value"])) == _min_max(everything, grid.lo, grid.width), command
            assert len(shown["step"]) <= 50 and grid.hi == everything[-1]["step"]
            return {"width": grid.width, "whole": [r.get("x_min") for r in reads] == [None]}

        last = lambda n: lambda: (runs.metric_bounds(repo, run_id, "wave") or (0, -1))[1] == n  # noqa: E731
        assert step("log 0 30", last(29)) == {"width": 1, "whole": True}  # short: every point
        assert step("log 30 61", last(60)) == {"width": 3, "whole": False}  # grew past 50: buckets of 3
        assert step("log 61 1000", last(999)) == {"width": 40, "whole": True}  # long unseen: downsampled afresh
        assert step("log 1000 1200", last(1199)) == {"width": 80, "whole": False}  # merged pairs
        at_1199 = lambda: real(repo, run_id, "wave", max_points=2, x_min=1199)[0]["value"]  # noqa: E731
        assert step("set 1199 1000", lambda: at_1199() == 1000) == {"width": 80, "whole": False}  # logged again
        assert 1199 in client.get(f"/api/runs/{run_id}/metrics/wave?points=50").json()["step"]
        assert step("set 1199 inf", lambda: at_1199() is None)  # infinity: the highest value, drawn as a gap
        assert all(r.get("x_min") is not None and r["max_points"] <= 2 * 80 for r in reads)  # a tail, not a scan
    finally:
        proc.communicate("end\n", timeout=60)
    final = client.get(f"/api/runs/{run_id}/metrics/wave?points=50").json()  # ended: the Runs API's own
    assert final["step"] == [p["step"] for p in real(repo, run_id, "wave", max_points=50)]

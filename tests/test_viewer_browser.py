"""The viewer in a real browser: Debian's chromium driven by Playwright against `runicorn viewer`.

Clicks through dashboard → run (chart drawn, zoomed on the server) → artifact → lineage → node →
runs list → compare. Any console error, failed request or HTTP error fails the test. Screenshots go
to tests/output/viewer/ (gitignored) for a person to look at.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_viewer import _free_port, _get, repo_root  # noqa: F401 — the populated repository fixture

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent / "output" / "viewer"
LAUNCH_ARGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--disable-quic", "--disable-gpu"]

sync_api = pytest.importorskip("playwright.sync_api")
if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/install-test-deps.sh installs it (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(repo_root):  # noqa: F811
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "runicorn", "viewer", "--port", str(port)], cwd=repo_root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if _get(url + "/api/dashboard")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError(f"viewer did not start: {proc.stderr.read()}")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


class Watch:
    """Collects console errors, failed requests and HTTP error responses of one page."""

    def __init__(self, page):
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        # ERR_ABORTED is Chromium cancelling a request because the page navigated away (a click
        # that leaves before the favicon arrived): not a failure of the server.
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} {r.failure}")
                if "ERR_ABORTED" not in (r.failure or "") else None)
        page.on("response", lambda r: self.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _drawn(page, selector: str = "figure.chart.drawn canvas") -> None:
    page.wait_for_selector(selector, timeout=10000)
    painted = page.eval_on_selector(selector, """c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let ink = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) ink++; return ink; }""")
    assert painted > 200, "the chart canvas is blank"


def _fully_visible(page, items: str, box: str) -> None:
    """Every element ITEMS lies inside the element BOX as drawn (nothing cut at an edge)."""
    outer = page.locator(box).first.bounding_box()
    for item in page.locator(items).all():
        b = item.bounding_box()
        assert outer["x"] <= b["x"] and b["x"] + b["width"] <= outer["x"] + outer["width"] + 0.5, (b, outer)
        assert outer["y"] <= b["y"] and b["y"] + b["height"] <= outer["y"] + outer["height"] + 0.5, (b, outer)


def test_click_through_the_viewer(server, chromium):
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    watch = Watch(page)
    page.goto(server + "/")
    assert page.title().startswith("Dashboard")
    _shot(page, "01-dashboard")

    page.click("text=train-0")
    page.wait_for_url("**/runs/*")
    _drawn(page)
    assert page.locator("figure.chart.drawn").count() == 2
    _shot(page, "02-run")

    chart = page.locator("figure.chart.drawn .u-over").first
    box = chart.bounding_box()
    with page.expect_response(lambda r: "/metrics/" in r.url and "x_min=" in r.url) as zoom:
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
    assert zoom.value.ok
    page.wait_for_selector("figure.chart[data-zoomed='1']")
    _shot(page, "03-run-zoomed")

    page.click("header nav >> text=Artifacts")
    page.wait_for_url("**/artifacts")
    _shot(page, "04-artifacts")
    page.click("a.artifact-link:text('resnet-tiny')")
    page.wait_for_url("**/artifacts/resnet-tiny")
    assert page.locator("nav.tabs a.active").inner_text() == "Info"
    _shot(page, "05-artifact")

    page.click("nav.tabs >> text=Lineage")
    page.wait_for_selector("svg.dag .node")
    assert page.locator("svg.dag .node").count() >= 4
    _fully_visible(page, "svg.dag .node", ".graph-wrap")
    _shot(page, "06-lineage")
    page.click("a.node-link[data-node='artifact:mnist-small:v2']")
    page.wait_for_url("**/artifacts/mnist-small?version=v2")
    assert "mnist-small" in page.locator("h1").inner_text() and "v2" in page.locator("h1").inner_text()

    page.click("header nav >> text=Runs")
    page.wait_for_url("**/runs")
    page.check("tr:has(a:text-is('train-0')) input[type=checkbox]")
    page.check("tr:has(a:text-is('train-1')) input[type=checkbox]")
    page.click("#compare-button")
    page.wait_for_url("**/compare?*")
    _drawn(page)
    legend = page.locator("figure.chart.drawn").first.locator(".u-legend .u-series")
    assert legend.count() == 3  # the x axis and two runs
    assert page.locator("tr.differs").count() >= 1
    _shot(page, "07-compare")
    page.close()
    assert not watch.problems, watch.problems


def test_pages_work_without_javascript(server, chromium, repo_root):  # noqa: F811
    context = chromium.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = Watch(page)
    page.goto(server + "/runs?q=train-0")
    page.click("a.run-link")
    assert page.locator("svg.nojs-chart polyline").count() == 2  # the server-drawn charts
    _shot(page, "08-no-javascript-run")
    page.goto(server + "/lineage?ref=resnet-tiny:v1")
    _fully_visible(page, "svg.dag .node", ".graph-wrap")
    page.click("a.node-link[data-node='artifact:mnist-small:v2']")
    assert "/artifacts/mnist-small" in page.url
    _shot(page, "08-no-javascript-artifact")
    context.close()
    assert not watch.problems, watch.problems


LIVE = """
import sys, time, runicorn as rn
with rn.init(project="live", name="live-run"):
    for s in range(40):
        rn.log({"loss": 1.0 / (s + 1)}, step=s)
        print("step", s, flush=True)
        if s == 3:
            open("live-started", "w").write("1")
        time.sleep(0.25)
"""


def test_a_running_run_updates_without_reload(server, chromium, repo_root):  # noqa: F811
    (repo_root / "live.py").write_text(LIVE)
    marker = repo_root / "live-started"
    proc = subprocess.Popen([sys.executable, "live.py"], cwd=repo_root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        watch = Watch(page)
        page.goto(server + "/runs?q=live-run")
        page.click("a.run-link")
        assert page.locator("#run-status .badge").inner_text() == "running"
        first_logs = page.locator("#logs-body").inner_text()
        page.wait_for_function("document.querySelector('#run-status .badge').textContent !== 'running'",
                               timeout=30000)
        assert page.locator("#run-status .badge").inner_text() == "finished", (watch.problems, proc.stderr.read())
        assert "step 39" in page.locator("#logs-body").inner_text() and "step 39" not in first_logs
        assert "ended" in page.locator("#live-note").inner_text()
        ended = page.locator("#run-end").inner_text()  # written by the page itself: end time and duration
        assert re.fullmatch(r" ?· ended \d{4}-\d\d-\d\d \d\d:\d\d · \d+s", ended), ended
        logs = page.eval_on_selector("#logs-body", "b => [b.scrollTop, b.scrollHeight - b.clientHeight]")
        assert logs[1] > 0 and logs[0] >= logs[1] - 24, logs  # the log box follows the newest lines
        _shot(page, "09-live-run-finished")
        page.reload()
        assert page.locator("#run-end").inner_text() == ended  # the same words as the server's
        page.close()
        assert not watch.problems, watch.problems
    finally:
        proc.wait(timeout=60)
        marker.unlink(missing_ok=True)


def test_exported_site_works_from_the_file_system(chromium, repo_root, tmp_path):  # noqa: F811
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "runicorn", "viewer", "export", str(site)], cwd=repo_root,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    watch = Watch(page)
    page.goto((site / "index.html").as_uri())
    page.click("text=train-0")
    _drawn(page)
    page.click("header nav >> text=Artifacts")
    page.click("a.artifact-link:text('resnet-tiny')")
    page.click("nav.tabs >> text=Lineage")
    page.click("a.node-link[data-node='artifact:mnist-small:v2']")
    assert page.url.endswith("/artifacts/mnist-small/index.html")
    _shot(page, "10-export")
    page.close()
    assert not watch.problems, watch.problems


def test_openapi_docs_work_offline(server, chromium):
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    watch = Watch(page)
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=15000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/runs" in p for p in paths) and any("/api/lineage" in p for p in paths)
    block = "#operations-default-dashboard_api_api_dashboard_get"
    page.click(f"{block} .opblock-summary")
    with page.expect_response(lambda r: r.url.endswith("/api/dashboard")) as answer:
        page.click(f"{block} button.execute")
    assert answer.value.status == 200
    page.wait_for_selector(f"{block} .live-responses-table tbody .response-col_status")
    assert page.locator(f"{block} .live-responses-table tbody .response-col_status").first.inner_text() == "200"
    _shot(page, "11-api-docs")
    page.close()
    assert not watch.problems, watch.problems

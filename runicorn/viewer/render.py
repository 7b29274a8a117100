"""Jinja2 rendering of the viewer's pages (autoescaped), used by the server and by `viewer export`.

Templates live in the top-level `templates/viewer/` folder of a source checkout and in
`runicorn/templates/viewer/` inside the wheel; `template_dir()` finds whichever is present.
"""
from __future__ import annotations

import json
import posixpath
import re
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import jinja2

import runicorn
from runicorn.viewer.pages import node_href

PACKAGE = Path(runicorn.__file__).resolve().parent
STATIC_DIR = Path(__file__).resolve().parent / "static"


def template_dir() -> Path:
    """`runicorn/templates/viewer` (installed wheel) or `<checkout>/templates/viewer` (editable)."""
    for candidate in (PACKAGE / "templates" / "viewer", PACKAGE.parent / "templates" / "viewer"):
        if (candidate / "base.html").is_file():
            return candidate
    raise FileNotFoundError("viewer templates not found (expected runicorn/templates/viewer or templates/viewer)")


def size(n) -> str:
    if n is None or n == "":
        return "—"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def when(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
    text = str(value)
    return text.replace("T", " ")[:16] if re.match(r"^\d{4}-\d\d-\d\dT", text) else text


def duration(seconds) -> str:
    if seconds is None or seconds == "":
        return "—"
    s = int(float(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s" if m else f"{s}s"


def number(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "—" if v is None else str(v)


def to_json(value, indent=None) -> str:
    return json.dumps(value, indent=indent, default=str, sort_keys=indent is not None)


def script_json(value) -> str:
    """JSON safe inside <script type=application/json>: no '</' can close the tag."""
    return json.dumps(value, default=str, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


def sparkline(step: list, value: list, width: int = 640, height: int = 200) -> dict:
    """An SVG polyline of one series: the chart a browser without JavaScript sees."""
    pts = [(s, v) for s, v in zip(step, value) if isinstance(v, (int, float)) and isinstance(s, (int, float))]
    if not pts:
        return {"points": "", "min": None, "max": None, "first": None, "last": None}
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    dx, dy = (x1 - x0) or 1, (y1 - y0) or 1
    coords = " ".join(f"{4 + (x - x0) / dx * (width - 8):.1f},{height - 4 - (y - y0) / dy * (height - 8):.1f}"
                      for x, y in pts)
    return {"points": coords, "min": y0, "max": y1, "first": x0, "last": x1}


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())),
                             autoescape=jinja2.select_autoescape(["html"], default=True),
                             undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(size=size, when=when, duration=duration, number=number, tojson_pretty=lambda v: to_json(v, 2),
                       script_json=script_json, q=lambda s: quote(str(s), safe="/:@"))
    env.globals.update(sparkline=sparkline, node_href=node_href, isinstance=isinstance, dict=dict, list=list,
                       str=str)
    return env


def render(template: str, data: dict, url: Callable[[str], str] = lambda p: p, exported: bool = False,
           current: str = "/") -> str:
    """HTML of TEMPLATE with the page's DATA; URL maps an absolute viewer path to a link."""
    return environment().get_template(template).render(
        d=data, u=url, exported=exported, current=current, section=current.strip("/").split("/")[0])


def relative_url(from_page: str, exported: set[str]) -> Callable[[str], str]:
    """For the static export: '/runs/x' → '../runs/x/index.html' from FROM_PAGE's file."""
    here = posixpath.dirname(export_file(from_page))

    def url(path: str) -> str:
        target = path if path in exported else path.split("?")[0]
        if path.startswith("/static/"):
            return posixpath.relpath(path.lstrip("/"), here or ".")
        if target not in exported:
            return "#"
        return posixpath.relpath(export_file(target), here or ".")

    return url


def export_file(path: str) -> str:
    """The file a viewer path is written to: '/' → index.html, '/runs/x' → runs/x/index.html,
    '/artifacts/a?tab=files' → artifacts/a/tab-files.html."""
    base, _, query = path.partition("?")
    base = base.strip("/")
    folder = f"{base}/" if base else ""
    if not query:
        return f"{folder}index.html"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", query).strip("-")
    return f"{folder}{name}.html"

"""Chart series: downsampled on the server (each bucket's lowest and highest point), and kept.

A run that has ended never changes, so its series are cached as they are: the second view of a
run with millions of points costs no database scan.

A running run only grows at its end (steps never go backwards; only the last step can be logged
again), so its series is kept as buckets of a fixed step grid and extended: a request re-reads the
last bucket and what was indexed after it (`metric_bounds` says how far that is), and when the run
has outgrown the grid, neighbouring buckets merge into wider ones (exactly: the new width is a
multiple of the old). The poll of a running run with a million points reads a few thousand rows
instead of scanning them all. Read-only, like every page.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from runicorn.core import runs
from runicorn.core.repo import Repo

CACHE_SIZE = 512
_CACHE: OrderedDict = OrderedDict()
_LOCK = threading.Lock()
_ORDER = {"Infinity": math.inf, "-Infinity": -math.inf}  # how non-finite values compare ("NaN" does not)


@dataclass(frozen=True)
class Grid:
    """The downsample of a running run's metric up to step `hi`: bucket b holds steps
    [lo + b*width, lo + (b+1)*width) and keeps its lowest and highest point (one if they coincide)."""

    lo: int
    hi: int
    width: int
    buckets: dict

    def rows(self) -> list[dict]:
        return [p for b in sorted(self.buckets) for p in self.buckets[b]]


def series(repo: Repo, run_id: str, key: str, points: int, x_min=None, x_max=None, final: bool = False) -> dict:
    """Compact columns {'step': [...], 'value': [...]} (a third of the bytes of a list of dicts).
    FINAL: the run has ended (its series are cached whole)."""
    if not final and x_min is None and x_max is None:
        return _columns(_running(repo, run_id, key, points))
    cache_key = ("final", str(repo.root), run_id, key, points, x_min, x_max)
    hit = _get(cache_key) if final else None
    if hit is not None:
        return hit
    data = _columns(runs.metric_series(repo, run_id, key, max_points=points, x_min=x_min, x_max=x_max))
    if final:
        _put(cache_key, data)
    return data


def _running(repo: Repo, run_id: str, key: str, points: int) -> list[dict]:
    bounds = runs.metric_bounds(repo, run_id, key)
    if bounds is None:
        return []
    lo, hi = bounds
    cache_key = ("running", str(repo.root), run_id, key, points)
    old = _get(cache_key)
    if old is None or old.lo != lo or hi < old.hi:  # first view, or the index was rebuilt meanwhile
        grid = _fresh(repo, run_id, key, points, lo, hi)
    else:
        last = (old.hi - lo) // old.width  # the last bucket may have changed (its step logged again): re-read it
        start = lo + last * old.width
        if hi - start + 1 > max(points, (hi - lo + 1) // 4):  # long unseen: a fresh downsample costs less
            grid = _fresh(repo, run_id, key, points, lo, hi)
        else:  # max_points covers the range: the points come back whole
            tail = runs.metric_series(repo, run_id, key, max_points=hi - start + 1, x_min=start, x_max=hi)
            kept = {b: v for b, v in old.buckets.items() if b < last}
            grid = _fit(Grid(lo, hi, old.width, _fold(kept, tail, lo, old.width)), points)
    _put(cache_key, grid)
    return grid.rows()


def _fresh(repo: Repo, run_id: str, key: str, points: int, lo: int, hi: int) -> Grid:
    """The grid of steps LO..HI from one downsample by the Runs read API (two grouped scans)."""
    rows = runs.metric_series(repo, run_id, key, max_points=points, x_max=hi)
    width = 1 if hi - lo + 1 <= points else -(-(hi - lo + 1) // _buckets(points))
    return _fit(Grid(lo, hi, width, _fold({}, rows, lo, width)), points)


def _buckets(points: int) -> int:
    return max(1, points // 2)  # two points (lowest, highest) per bucket


def _fit(grid: Grid, points: int) -> Grid:
    """GRID, its buckets merged into wider ones (a multiple of its width) if it has too many."""
    span = grid.hi - grid.lo + 1
    if (span <= points) if grid.width == 1 else (-(-span // grid.width) <= _buckets(points)):
        return grid
    needed = -(-span // _buckets(points))
    width = grid.width * -(-needed // grid.width)
    merged: dict = {}
    for b, kept in grid.buckets.items():
        nb = b * grid.width // width
        merged[nb] = _extremes(merged.get(nb, ()) + kept)
    return Grid(grid.lo, grid.hi, width, merged)


def _fold(buckets: dict, rows: list[dict], lo: int, width: int) -> dict:
    for p in rows:
        b = (p["step"] - lo) // width
        buckets[b] = _extremes(buckets.get(b, ()) + (p,))
    return buckets


def _extremes(found: tuple) -> tuple:
    """The lowest and the highest point of FOUND, by step (SQL's MIN/MAX: NaN counts only if alone)."""
    ordered = [p for p in found if _value(p) is not None]
    if not ordered:
        return found[:1]
    low, high = min(ordered, key=_value), max(ordered, key=_value)
    return (low,) if low is high else tuple(sorted((low, high), key=lambda p: p["step"]))


def _value(point: dict):
    v = point.get("value")
    return _ORDER.get(point.get("nonfinite")) if v is None else v


def _columns(rows: list[dict]) -> dict:
    return {"step": [r.get("step") for r in rows], "value": [_num(r.get("value")) for r in rows]}


def _num(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


def _get(cache_key: tuple):
    with _LOCK:
        hit = _CACHE.get(cache_key)
        if hit is not None:
            _CACHE.move_to_end(cache_key)
        return hit


def _put(cache_key: tuple, value) -> None:
    with _LOCK:
        _CACHE[cache_key] = value
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)

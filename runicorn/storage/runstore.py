"""The runs part of the SQLite index: one row per run, metric points per (run, key, step).

Derived state: everything here is rebuilt from the run folders by `runicorn index rebuild`.
Writes are short BEGIN IMMEDIATE transactions through `Index.write`, batched (one transaction per
flush of a run's buffer), and idempotent (a replayed point replaces itself).
"""
from __future__ import annotations

import json
import math
from typing import Iterable

from runicorn.storage.index import Index

RUN_COLUMNS = ("run_id", "project", "name", "status", "started_at", "ended_at", "duration", "exit_code",
               "git_commit", "branch", "dirty", "host", "user", "tags", "notes", "config", "summary")
JSON_COLUMNS = ("tags", "config", "summary")
SORTABLE = {"started_at", "ended_at", "duration", "name", "project", "status", "run_id"}

Point = tuple[str, int, float, float]  # key, step, value, time

# Charts show this many points (the viewer's default); finished runs keep them precomputed.
PREVIEW_POINTS = 500


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def row_of(doc: dict) -> tuple:
    """The index row of a run document (only the columns the index keeps)."""
    git = doc.get("git") or {}
    return (doc["id"], doc.get("project") or "", doc.get("name") or "", doc.get("status") or "running",
            float(doc.get("started_at") or 0), doc.get("ended_at"), doc.get("duration"), doc.get("exit_code"),
            git.get("commit"), git.get("branch"), None if git.get("dirty") is None else int(bool(git["dirty"])),
            doc.get("host"), doc.get("user"), _dumps(doc.get("tags") or []), doc.get("notes") or "",
            _dumps(doc.get("config") or {}), _dumps(doc.get("summary") or {}))


def _from_row(row) -> dict:
    out = dict(zip(RUN_COLUMNS, row))
    for key in JSON_COLUMNS:
        try:
            out[key] = json.loads(out[key])
        except (TypeError, ValueError):
            out[key] = [] if key == "tags" else {}
    out["dirty"] = None if out["dirty"] is None else bool(out["dirty"])
    return out


class RunIndex:
    def __init__(self, index: Index):
        self.index = index
        self._series: dict[tuple[str, str], int] = {}

    # -- writes --------------------------------------------------------------------------
    def put_run(self, doc: dict) -> None:
        with self.index.write() as db:
            self._put_run(db, doc)

    def _put_run(self, db, doc: dict) -> None:
        marks = ", ".join("?" * len(RUN_COLUMNS))
        db.execute(f"INSERT OR REPLACE INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({marks})", row_of(doc))
        db.execute("DELETE FROM run_tags WHERE run_id = ?", (doc["id"],))
        db.executemany("INSERT OR IGNORE INTO run_tags (run_id, tag) VALUES (?, ?)",
                       [(doc["id"], str(t)) for t in doc.get("tags") or []])

    def put_points(self, run_id: str, points: Iterable[Point], doc: dict | None = None) -> None:
        """One transaction: the points (and, with DOC, the run row)."""
        points = list(points)
        if not points and doc is None:
            return
        with self.index.write() as db:
            if doc is not None:
                self._put_run(db, doc)
            rows = []
            for key, step, value, when in points:
                series = self._series_id(db, run_id, key)
                rows.append((series, step, None if math.isnan(value) else value, when))
            db.executemany("INSERT OR REPLACE INTO run_points (series, step, value, time) VALUES (?, ?, ?, ?)", rows)

    def _series_id(self, db, run_id: str, key: str) -> int:
        sid = self._series.get((run_id, key))
        if sid is None:
            db.execute("INSERT OR IGNORE INTO run_series (run_id, key) VALUES (?, ?)", (run_id, key))
            sid = db.execute("SELECT id FROM run_series WHERE run_id = ? AND key = ?", (run_id, key)).fetchone()[0]
            self._series[(run_id, key)] = sid
        return sid

    def delete_run(self, run_id: str) -> None:
        with self.index.write() as db:
            self._delete(db, run_id)
        self._series = {k: v for k, v in self._series.items() if k[0] != run_id}

    def _delete(self, db, run_id: str) -> None:
        db.execute("DELETE FROM run_series_preview WHERE series IN (SELECT id FROM run_series WHERE run_id = ?)",
                   (run_id,))
        db.execute("DELETE FROM run_points WHERE series IN (SELECT id FROM run_series WHERE run_id = ?)", (run_id,))
        db.execute("DELETE FROM run_series WHERE run_id = ?", (run_id,))
        db.execute("DELETE FROM run_tags WHERE run_id = ?", (run_id,))
        db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))

    def clear(self) -> None:
        with self.index.write() as db:
            for table in ("run_series_preview", "run_points", "run_series", "run_tags", "runs"):
                db.execute(f"DELETE FROM {table}")  # noqa: S608 — fixed names
        self._series = {}

    # -- reads (never take the write lock) -------------------------------------------------
    def get(self, run_id: str) -> dict | None:
        row = self.index.db.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return _from_row(row) if row else None

    def has_runs(self) -> bool:
        return self.index.db.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is not None

    def ids_with_status(self, status: str) -> list[str]:
        return [r[0] for r in self.index.db.execute("SELECT run_id FROM runs WHERE status = ?", (status,))]

    def all_ids(self) -> set[str]:
        return {r[0] for r in self.index.db.execute("SELECT run_id FROM runs")}

    def query(self, where: list[str], params: list, sort: str, limit: int, offset: int) -> tuple[list[dict], int]:
        """Rows matching WHERE (SQL fragments over `runs`, built by the caller from fixed text) and the total."""
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        desc = sort.startswith("-")
        column = sort.lstrip("-+")
        if column not in SORTABLE:
            raise ValueError(column)
        total = self.index.db.execute(f"SELECT COUNT(*) FROM runs{clause}", params).fetchone()[0]  # noqa: S608
        order = f"{column} {'DESC' if desc else 'ASC'}, run_id {'DESC' if desc else 'ASC'}"
        rows = self.index.db.execute(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM runs{clause} ORDER BY {order} LIMIT ? OFFSET ?",  # noqa: S608
            [*params, limit, offset]).fetchall()
        return [_from_row(r) for r in rows], total

    def keys(self, run_id: str) -> list[str]:
        return [r[0] for r in self.index.db.execute("SELECT key FROM run_series WHERE run_id = ? ORDER BY key", (run_id,))]

    def series(self, run_id: str, key: str, max_points: int, x_min=None, x_max=None) -> list[dict]:
        """Points of one metric, downsampled to about MAX_POINTS keeping each bucket's min and max."""
        row = self.index.db.execute("SELECT id FROM run_series WHERE run_id = ? AND key = ?", (run_id, key)).fetchone()
        if row is None:
            return []
        if x_min is None and x_max is None:
            kept = self.index.db.execute("SELECT points FROM run_series_preview WHERE series = ? AND max_points = ?",
                                         (row[0], max_points)).fetchone()
            if kept is not None:
                return [_point(r) for r in json.loads(kept[0])]
        return [_point(r) for r in self._downsample(row[0], max_points, x_min, x_max)]

    def bounds(self, run_id: str, key: str) -> tuple[int, int] | None:
        """(first step, last step) of one metric, by two index seeks; None before its first point."""
        row = self.index.db.execute("SELECT id FROM run_series WHERE run_id = ? AND key = ?", (run_id, key)).fetchone()
        lo, hi = self._bounds("series = ?", [row[0]]) if row else (None, None)
        return None if lo is None else (lo, hi)

    def _bounds(self, where: str, params: list) -> tuple:
        return self.index.db.execute(
            f"SELECT (SELECT step FROM run_points WHERE {where} ORDER BY step LIMIT 1), "  # noqa: S608
            f"(SELECT step FROM run_points WHERE {where} ORDER BY step DESC LIMIT 1)", params * 2).fetchone()

    def _downsample(self, series: int, max_points: int, x_min=None, x_max=None) -> list[tuple]:
        where, params = "series = ?", [series]
        if x_min is not None:
            where += " AND step >= ?"
            params.append(int(x_min))
        if x_max is not None:
            where += " AND step <= ?"
            params.append(int(x_max))
        # Two index seeks, not a scan: steps are unique per series, so hi - lo + 1 bounds the count.
        lo, hi = self._bounds(where, params)
        if lo is None:
            return []
        if hi - lo + 1 <= max_points:
            sql = f"SELECT step, value, time FROM run_points WHERE {where} ORDER BY step"  # noqa: S608
            return self.index.db.execute(sql, params).fetchall()
        buckets = max(1, max_points // 2)
        width = max(1, -(-(hi - lo + 1) // buckets))
        # SQLite returns the bare columns of the row holding MIN()/MAX(): each bucket's extremes survive.
        found: dict[int, tuple] = {}
        for agg in ("MIN", "MAX"):
            sql = (f"SELECT step, {agg}(value), time FROM run_points WHERE {where} "  # noqa: S608
                   f"GROUP BY (step - ?) / ?")
            for r in self.index.db.execute(sql, [*params, lo, width]):
                found[r[0]] = r
        return [found[s] for s in sorted(found)]

    def keep_previews(self, run_id: str, max_points: int = PREVIEW_POINTS) -> None:
        """Store the downsampled series of a run that has ended (its points never change again).
        Only series longer than MAX_POINTS: shorter ones are read whole, as fast as a preview."""
        rows = []
        for sid, lo, hi in self.index.db.execute(
                "SELECT id, (SELECT step FROM run_points WHERE series = id ORDER BY step LIMIT 1), "
                "(SELECT step FROM run_points WHERE series = id ORDER BY step DESC LIMIT 1) "
                "FROM run_series WHERE run_id = ?", (run_id,)).fetchall():
            if lo is not None and hi - lo + 1 > max_points:
                rows.append((sid, max_points, json.dumps(self._downsample(sid, max_points))))
        if rows:
            with self.index.write() as db:
                db.executemany("INSERT OR REPLACE INTO run_series_preview VALUES (?, ?, ?)", rows)


def _point(row) -> dict:
    return {"step": row[0], "value": float("nan") if row[1] is None else row[1], "time": row[2]}

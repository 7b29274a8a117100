"""The download cache's ledger (`<artifacts.cache_dir>/ledger.db`): what was downloaded, when it was
last used, and where it was linked. SQLite with WAL and `BEGIN IMMEDIATE`, like the repository index,
so several processes can download at once."""
from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS entries (
        key TEXT PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL, digest TEXT NOT NULL,
        size INTEGER NOT NULL, files INTEGER NOT NULL, path TEXT NOT NULL,
        created_at REAL NOT NULL, last_used REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS entry_objects (
        key TEXT NOT NULL, oid TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (key, oid)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS entry_objects_oid ON entry_objects (oid)",
    "CREATE TABLE IF NOT EXISTS manifests (key TEXT PRIMARY KEY, manifest TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS links (
        path TEXT PRIMARY KEY, oid TEXT NOT NULL, key TEXT NOT NULL)""",
]


class Ledger:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA busy_timeout = 30000")
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                self.db.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                pass  # another process is switching it; it ends up in WAL either way
        with self.write() as db:
            for sql in SCHEMA:
                db.execute(sql)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def record(self, key: str, name: str, version: int, digest: str, path: str, objects: dict[str, int],
               files: int, manifest: str | None = None) -> None:
        now = time.time()
        with self.write() as db:
            if manifest is not None:
                db.execute("INSERT OR REPLACE INTO manifests (key, manifest) VALUES (?, ?)", (key, manifest))
            db.execute("INSERT INTO entries (key, name, version, digest, size, files, path, created_at, last_used) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET last_used = excluded.last_used",
                       (key, name, version, digest, sum(objects.values()), files, path, now, now))
            db.executemany("INSERT OR IGNORE INTO entry_objects (key, oid, size) VALUES (?, ?, ?)",
                           [(key, o, s) for o, s in objects.items()])

    def add_links(self, key: str, links: list[tuple[str, str]]) -> None:
        with self.write() as db:
            db.executemany("INSERT OR REPLACE INTO links (path, oid, key) VALUES (?, ?, ?)",
                           [(p, o, key) for p, o in links])

    def entries(self) -> list[dict]:
        cols = ("key", "name", "version", "digest", "size", "files", "path", "created_at", "last_used")
        rows = self.db.execute(f"SELECT {', '.join(cols)} FROM entries ORDER BY last_used, key").fetchall()  # noqa: S608
        return [dict(zip(cols, r)) for r in rows]

    def objects(self, key: str) -> dict[str, int]:
        return dict(self.db.execute("SELECT oid, size FROM entry_objects WHERE key = ?", (key,)))

    def links(self, key: str | None = None) -> list[tuple[str, str]]:
        if key is None:
            return self.db.execute("SELECT path, oid FROM links").fetchall()
        return self.db.execute("SELECT path, oid FROM links WHERE key = ?", (key,)).fetchall()

    def pool(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT oid, max(size) FROM entry_objects GROUP BY oid"))

    def manifest(self, key: str) -> str | None:
        row = self.db.execute("SELECT manifest FROM manifests WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def forget(self, key: str, dead_links: list[str]) -> None:
        with self.write() as db:
            db.execute("DELETE FROM entries WHERE key = ?", (key,))
            db.execute("DELETE FROM manifests WHERE key = ?", (key,))
            db.execute("DELETE FROM entry_objects WHERE key = ?", (key,))
            db.executemany("DELETE FROM links WHERE path = ?", [(p,) for p in dead_links])

    def close(self) -> None:
        self.db.close()

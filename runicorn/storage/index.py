"""The SQLite index (`.runicorn/index.db`): derived, rebuildable state shared by many processes.

WAL is set once at creation; every write is a short `BEGIN IMMEDIATE` transaction with a busy
timeout, so concurrent writers queue instead of failing with "database is locked". The schema
evolves only through the named MIGRATIONS below, applied in order and recorded.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from runicorn.errors import DiskFullError

BUSY_TIMEOUT_S = 30.0

# (name, SQL). Append only: never edit or reorder an entry that has shipped.
MIGRATIONS: list[tuple[str, str]] = [
    ("0001_stat_memo", """
        CREATE TABLE memo (
            ino      INTEGER PRIMARY KEY,
            size     INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            oid      TEXT    NOT NULL
        )"""),
    ("0002_memo_by_oid", "CREATE INDEX memo_oid ON memo (oid)"),
    ("0003_dirstate", """
        CREATE TABLE dirstate (
            path        TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            oid         TEXT NOT NULL
        )"""),
    ("0004_remote_objects", """
        CREATE TABLE remote_objects (
            remote TEXT NOT NULL,
            oid    TEXT NOT NULL,
            PRIMARY KEY (remote, oid)
        ) WITHOUT ROWID"""),
    # ctime joins the key: an in-place write that restores the old mtime still changes ctime.
    ("0005_memo_ctime", "ALTER TABLE memo ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0"),
    ("0006_remote_corrupt", """
        CREATE TABLE remote_corrupt (
            remote TEXT NOT NULL,
            oid    TEXT NOT NULL,
            PRIMARY KEY (remote, oid)
        ) WITHOUT ROWID"""),
]

# Runs (core/runs*.py). Names start with 01.
MIGRATIONS += [
    ("0101_runs", """
        CREATE TABLE runs (
            run_id     TEXT PRIMARY KEY,
            project    TEXT NOT NULL DEFAULT '',
            name       TEXT NOT NULL DEFAULT '',
            status     TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at   REAL,
            duration   REAL,
            exit_code  INTEGER,
            git_commit TEXT,
            branch     TEXT,
            dirty      INTEGER,
            host       TEXT,
            user       TEXT,
            tags       TEXT NOT NULL DEFAULT '[]',
            notes      TEXT NOT NULL DEFAULT '',
            config     TEXT NOT NULL DEFAULT '{}',
            summary    TEXT NOT NULL DEFAULT '{}'
        )"""),
    ("0102_run_series", """
        CREATE TABLE run_series (
            id     INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            key    TEXT NOT NULL,
            UNIQUE (run_id, key)
        )"""),
    # value NULL = NaN (SQLite stores NaN as NULL); one row per (series, step): idempotent replays.
    ("0103_run_points", """
        CREATE TABLE run_points (
            series INTEGER NOT NULL,
            step   INTEGER NOT NULL,
            value  REAL,
            time   REAL NOT NULL,
            PRIMARY KEY (series, step)
        ) WITHOUT ROWID"""),
    ("0104_run_tags", """
        CREATE TABLE run_tags (
            run_id TEXT NOT NULL,
            tag    TEXT NOT NULL,
            PRIMARY KEY (tag, run_id)
        ) WITHOUT ROWID"""),
    ("0105_runs_by_started", "CREATE INDEX runs_started ON runs (started_at)"),
    ("0106_runs_by_project", "CREATE INDEX runs_project ON runs (project, started_at)"),
    ("0107_runs_by_commit", "CREATE INDEX runs_commit ON runs (git_commit)"),
    # The downsampled series of a finished run, computed once at finish: a chart reads one row.
    ("0108_run_series_preview", """
        CREATE TABLE run_series_preview (
            series     INTEGER NOT NULL,
            max_points INTEGER NOT NULL,
            points     TEXT    NOT NULL,
            PRIMARY KEY (series, max_points)
        ) WITHOUT ROWID"""),
]

# Artifacts, registry and lineage (core/artifacts*.py). Names start with 02.
# Derived from the committed YAML under .runicorn/artifacts/ (and run records for "used" edges);
# `runicorn index rebuild` recreates every row. art_max is the one local memory: the highest version
# number ever seen per artifact, so a number is never handed out twice, even after a purge.
MIGRATIONS += [
    ("0201_art_artifacts", """
        CREATE TABLE art_artifacts (
            name        TEXT PRIMARY KEY,
            type        TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            description TEXT
        )"""),
    ("0202_art_versions", """
        CREATE TABLE art_versions (
            name        TEXT    NOT NULL,
            version     INTEGER NOT NULL,
            type        TEXT    NOT NULL,
            digest      TEXT    NOT NULL,
            created_at  TEXT,
            size        INTEGER NOT NULL,
            files       INTEGER NOT NULL,
            refs        INTEGER NOT NULL,
            run_id      TEXT,
            git_commit  TEXT,
            deleted     INTEGER NOT NULL,
            description TEXT,
            tags        TEXT NOT NULL,
            metadata    TEXT NOT NULL,
            stat        TEXT NOT NULL,
            PRIMARY KEY (name, version)
        ) WITHOUT ROWID"""),
    ("0203_art_objects", """
        CREATE TABLE art_objects (
            name    TEXT    NOT NULL,
            version INTEGER NOT NULL,
            oid     TEXT    NOT NULL,
            size    INTEGER NOT NULL,
            PRIMARY KEY (name, version, oid)
        ) WITHOUT ROWID"""),
    ("0204_art_objects_oid", """
        CREATE INDEX art_objects_oid ON art_objects (oid)"""),
    ("0205_art_aliases", """
        CREATE TABLE art_aliases (
            name    TEXT    NOT NULL,
            alias   TEXT    NOT NULL,
            kind    TEXT    NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (name, alias, version)
        ) WITHOUT ROWID"""),
    ("0206_art_events", """
        CREATE TABLE art_events (
            name       TEXT    NOT NULL,
            seq        INTEGER NOT NULL,
            at         TEXT    NOT NULL,
            event      TEXT    NOT NULL,
            alias      TEXT,
            stage      TEXT,
            version    INTEGER NOT NULL,
            previous   INTEGER,
            by         TEXT,
            run_id     TEXT,
            git_commit TEXT,
            PRIMARY KEY (name, seq)
        ) WITHOUT ROWID"""),
    ("0207_art_edges", """
        CREATE TABLE art_edges (
            source TEXT NOT NULL,
            target TEXT NOT NULL,
            origin TEXT NOT NULL,
            PRIMARY KEY (source, target, origin)
        ) WITHOUT ROWID"""),
    ("0208_art_edges_target", """
        CREATE INDEX art_edges_target ON art_edges (target)"""),
    ("0209_art_edges_origin", """
        CREATE INDEX art_edges_origin ON art_edges (origin)"""),
    ("0210_art_max", """
        CREATE TABLE art_max (
            name        TEXT PRIMARY KEY,
            max_version INTEGER NOT NULL
        ) WITHOUT ROWID"""),
]

MemoRow = tuple[int, int, int, int, str]  # ino, size, mtime_ns, ctime_ns, oid


def memo_row(st, oid: str) -> MemoRow:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, oid)


@contextmanager
def _disk_errors(path: Path) -> Iterator[None]:
    """SQLite's 'database or disk is full' / 'disk I/O error' become one actionable line."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if "full" in text or "disk i/o" in text:
            raise DiskFullError(path) from None
        raise


class Index:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()
        with _disk_errors(self.path):
            self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                      check_same_thread=False)
            self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._ensure_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()

    def _ensure_wal(self) -> None:
        """WAL is set once, by whichever process creates the index first; switching needs an
        exclusive lock that the busy handler does not wait for, so concurrent first opens retry."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                self.db.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taken with BEGIN IMMEDIATE (never upgraded later).

        Threads of one process share the connection, so they take turns (transfer pools write)."""
        with self._write_lock, _disk_errors(self.path):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        done = {row[0] for row in self.db.execute("SELECT name FROM schema_migrations")}
        pending = [(n, sql) for n, sql in MIGRATIONS if n not in done]
        if not pending:
            return
        with self.write() as db:
            done = {row[0] for row in db.execute("SELECT name FROM schema_migrations")}
            for name, sql in pending:
                if name not in done:
                    db.execute(sql)
                    db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, time.time()))

    def applied_migrations(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT name FROM schema_migrations ORDER BY name")]

    def close(self) -> None:
        self.db.close()


class StatMemo:
    """(inode, size, mtime_ns) → oid: an unchanged file is never hashed twice."""

    def __init__(self, index: Index):
        self.index = index
        self._rows: dict[int, tuple[int, int, str]] | None = None

    def _all(self) -> dict[int, tuple[int, int, int, str]]:
        if self._rows is None:
            cur = self.index.db.execute("SELECT ino, size, mtime_ns, ctime_ns, oid FROM memo")
            self._rows = {row[0]: row[1:] for row in cur}
        return self._rows

    def get(self, ino: int, size: int, mtime_ns: int, ctime_ns: int) -> str | None:
        row = self._all().get(ino)
        if row is not None and row[0] == size and row[1] == mtime_ns and row[2] == ctime_ns:
            return row[3]
        return None

    def get_lenient(self, ino: int, size: int, mtime_ns: int, ctime_ns: int, with_ctime: bool) -> str | None:
        """Like get(), comparing ctime only when WITH_CTIME."""
        if with_ctime:
            return self.get(ino, size, mtime_ns, ctime_ns)
        row = self._all().get(ino)
        if row is not None and row[0] == size and row[1] == mtime_ns:
            return row[3]
        return None

    def put_many(self, rows: Iterable[MemoRow]) -> None:
        rows = list(rows)
        if not rows:
            return
        with self.index.write() as db:
            db.executemany("INSERT OR REPLACE INTO memo (ino, size, mtime_ns, ctime_ns, oid) VALUES (?, ?, ?, ?, ?)",
                           rows)
        if self._rows is not None:
            for ino, *rest in rows:
                self._rows[ino] = tuple(rest)

    def forget_oids(self, oids: Iterable[str]) -> None:
        with self.index.write() as db:
            db.executemany("DELETE FROM memo WHERE oid = ?", [(o,) for o in oids])
        self._rows = None


class NoMemo(StatMemo):
    """The memo turned off (`core.memo: false`, tests): every file is hashed."""

    def __init__(self):
        self._rows = {}

    def get(self, ino, size, mtime_ns, ctime_ns):
        return None

    def get_lenient(self, ino, size, mtime_ns, ctime_ns, with_ctime):
        return None

    def put_many(self, rows):
        pass

    def forget_oids(self, oids):
        pass


class DirState:
    """Tracked folder → (fingerprint of every file's stat, oid) when last seen clean.

    Lets `status` answer "unchanged" for a large folder from one stat walk, without loading
    the memo or encoding manifests (git's index plays this role for git).
    """

    def __init__(self, index: Index | None):
        self.index = index

    def get(self, path: str) -> tuple[str, str] | None:
        if self.index is None:
            return None
        row = self.index.db.execute("SELECT fingerprint, oid FROM dirstate WHERE path = ?", (path,)).fetchone()
        return (row[0], row[1]) if row else None

    def put(self, path: str, fingerprint: str, oid: str) -> None:
        if self.index is None or self.get(path) == (fingerprint, oid):
            return
        with self.index.write() as db:
            db.execute("INSERT OR REPLACE INTO dirstate (path, fingerprint, oid) VALUES (?, ?, ?)",
                       (path, fingerprint, oid))


class RemoteIndex:
    """Objects known to be on each remote (learned by push and fetch).

    A hint that makes a no-op push nearly free; never trusted for deletion (gc lists the remote).
    """

    def __init__(self, index: Index, remote: str):
        self.index = index
        self.remote = remote

    def known(self) -> set[str]:
        cur = self.index.db.execute("SELECT oid FROM remote_objects WHERE remote = ?", (self.remote,))
        return {row[0] for row in cur}

    def add(self, oids: Iterable[str]) -> None:
        rows = [(self.remote, o) for o in oids]
        if rows:
            with self.index.write() as db:
                db.executemany("INSERT OR IGNORE INTO remote_objects (remote, oid) VALUES (?, ?)", rows)

    def corrupt(self) -> set[str]:
        """Objects found corrupt on the remote (by fetch or verify): the next push overwrites them."""
        cur = self.index.db.execute("SELECT oid FROM remote_corrupt WHERE remote = ?", (self.remote,))
        return {row[0] for row in cur}

    def mark_corrupt(self, oids: Iterable[str], corrupt: bool = True) -> None:
        rows = [(self.remote, o) for o in oids]
        if not rows:
            return
        with self.index.write() as db:
            if corrupt:
                db.executemany("INSERT OR IGNORE INTO remote_corrupt (remote, oid) VALUES (?, ?)", rows)
                db.executemany("DELETE FROM remote_objects WHERE remote = ? AND oid = ?", rows)
            else:
                db.executemany("DELETE FROM remote_corrupt WHERE remote = ? AND oid = ?", rows)

    def forget(self, oids: Iterable[str] | None = None) -> None:
        with self.index.write() as db:
            if oids is None:
                db.execute("DELETE FROM remote_objects WHERE remote = ?", (self.remote,))
            else:
                db.executemany("DELETE FROM remote_objects WHERE remote = ? AND oid = ?",
                               [(self.remote, o) for o in oids])

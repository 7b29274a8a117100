"""The derived artifact index (SQLite tables `art_*`): kept in step with the committed YAML.

Every read first calls `sync`, which stats the files under `.runicorn/artifacts/<name>/` and
re-reads only the artifacts whose files changed (a `git checkout`, a merge, a hand edit) and,
within one, only the manifests whose stat changed. So the index is never stale and never the
source of truth: `rebuild` drops it and reads everything again.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator

from runicorn.core.artifact_registry import replay
from runicorn.storage import artifact_store as store

USE_ORIGIN = "use"


def node_artifact(name: str, version: int) -> str:
    return f"artifact:{name}:v{version}"


def node_run(run_id: str) -> str:
    return f"run:{run_id}"


def node_data(path: str, oid: str) -> str:
    return f"data:{path}@{oid[:12]}"


def _stat_key(path: Path) -> str:
    st = os.stat(path)
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def sync(repo, names: list[str] | None = None, uses: bool = True) -> None:
    """Bring the index in step with the files (only what changed is re-read). An index that has never
    seen an artifact (created fresh: a new clone, a deleted index.db) also gets the uses recorded
    in the run records, as `runicorn index rebuild` does."""
    db = repo.index.db
    known = dict(db.execute("SELECT name, fingerprint FROM art_artifacts"))
    fresh = not known and not db.execute("SELECT 1 FROM art_max LIMIT 1").fetchone()  # art_max survives rebuilds
    seen: set[str] = set()
    for name, mark in store.fingerprints(repo.root, names):
        seen.add(name)
        if known.get(name) != mark and store.NAME_RE.match(name):
            reload(repo, name, mark)
    if fresh and seen and uses:
        add_use_edges(repo, run_documents(repo))
    gone = [n for n in known if n not in seen and (names is None or n in names)]
    if gone:
        with repo.index.write() as w:
            for name in gone:
                _delete_rows(w, name)


def _delete_rows(w, name: str, keep_versions: bool = False) -> None:
    w.execute("DELETE FROM art_artifacts WHERE name = ?", (name,))
    w.execute("DELETE FROM art_aliases WHERE name = ?", (name,))
    w.execute("DELETE FROM art_events WHERE name = ?", (name,))
    if not keep_versions:
        w.execute("DELETE FROM art_edges WHERE origin >= ? AND origin < ?", (f"manifest:{name}:", f"manifest:{name};"))
        w.execute("DELETE FROM art_versions WHERE name = ?", (name,))
        w.execute("DELETE FROM art_objects WHERE name = ?", (name,))


def reload(repo, name: str, mark: str | None = None, fresh: dict[int, dict] | None = None) -> None:
    """Re-read NAME's manifests (those whose stat changed) and history into the index.

    FRESH: manifests this process just wrote (already validated), used instead of re-reading them."""
    files = store.version_files(repo.root, name)
    db = repo.index.db
    cached = dict(db.execute("SELECT version, stat FROM art_versions WHERE name = ?", (name,)))
    parsed: dict[int, dict] = {}
    stats: dict[int, str] = {}
    for version, path in files.items():
        stats[version] = _stat_key(path)
        if fresh and version in fresh:
            parsed[version] = fresh[version]
        elif cached.get(version) != stats[version]:
            rel = store.manifest_rel(name, version)
            data = store.read_limited(path, store.MAX_MANIFEST_BYTES, rel)
            parsed[version] = store.parse_manifest(data, rel, name, version)
    history_path = repo.root / store.history_rel(name)
    events = []
    if history_path.is_file():
        rel = store.history_rel(name)
        events = store.parse_history(store.read_limited(history_path, store.MAX_HISTORY_BYTES, rel), rel)
    state = replay(events, {v: True for v in files})
    if mark is None:
        mark = dict(store.fingerprints(repo.root, [name])).get(name, "")
    with repo.index.write() as w:
        _delete_rows(w, name, keep_versions=True)
        # every parsed version is replaced even if another process inserted it meanwhile
        stale = [(name, v) for v in sorted(set(parsed) | {v for v in cached if v not in files})]
        w.executemany("DELETE FROM art_versions WHERE name = ? AND version = ?", stale)
        w.executemany("DELETE FROM art_objects WHERE name = ? AND version = ?", stale)
        w.executemany("DELETE FROM art_edges WHERE origin = ?", [(f"manifest:{n}:v{v}",) for n, v in stale])
        for version, doc in parsed.items():
            _insert_version(w, doc, stats[version])
            _insert_edges(w, doc)
        kind = w.execute("SELECT type, description FROM art_versions WHERE name = ? ORDER BY version DESC LIMIT 1",
                         (name,)).fetchone()
        w.execute("INSERT OR REPLACE INTO art_artifacts (name, type, fingerprint, description) VALUES (?, ?, ?, ?)",
                  (name, kind[0] if kind else "", mark, kind[1] if kind else None))
        w.executemany("INSERT INTO art_aliases (name, alias, kind, version) VALUES (?, ?, ?, ?)",
                      [(name, a, k, v) for a, k, v in state.rows()])
        w.executemany("INSERT INTO art_events (name, seq, at, event, alias, stage, version, previous, by, run_id, "
                      "git_commit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [(name, i, e["at"], e["event"], e.get("alias"), e.get("stage"), e["version"], e.get("previous"),
                        e.get("by"), e.get("run"), e.get("commit")) for i, e in enumerate(state.events)])
        top = max([*files, *state.purged, 0])
        w.execute("INSERT INTO art_max (name, max_version) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
                  "max_version = max(max_version, excluded.max_version)", (name, top))


def _insert_version(w, doc: dict, stat: str) -> None:
    by = doc.get("created_by") or {}
    w.execute("INSERT INTO art_versions (name, version, type, digest, created_at, size, files, refs, run_id, git_commit, "
              "deleted, description, tags, metadata, stat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              (doc["name"], doc["version"], doc["type"], doc["digest"], doc.get("created_at"), doc["size"],
               len(doc["files"]), len(doc["references"]), by.get("run"), by.get("commit"), int(doc.get("deleted", False)),
               doc.get("description"), json.dumps(doc["tags"]), json.dumps(doc["metadata"], default=str), stat))
    sizes: dict[str, int] = {}
    for f in doc["files"]:
        sizes[f["oid"]] = f["size"]
    w.executemany("INSERT OR IGNORE INTO art_objects (name, version, oid, size) VALUES (?, ?, ?, ?)",
                  [(doc["name"], doc["version"], oid, size) for oid, size in sizes.items()])


def _insert_edges(w, doc: dict) -> None:
    """Lineage edges defined by one manifest: input → producing run → this version."""
    run = (doc.get("created_by") or {}).get("run")
    if not run:
        return
    origin = f"manifest:{doc['name']}:v{doc['version']}"
    rows = [(node_run(run), node_artifact(doc["name"], doc["version"]), origin)]
    for i in doc["inputs"]:
        source = node_artifact(i["artifact"], i["version"]) if "artifact" in i else node_data(i["data"], i["oid"])
        rows.append((source, node_run(run), origin))
    w.executemany("INSERT OR IGNORE INTO art_edges (source, target, origin) VALUES (?, ?, ?)", rows)


def add_use_edge(repo, name: str, version: int, run_id: str) -> None:
    with repo.index.write() as w:
        w.execute("INSERT OR IGNORE INTO art_edges (source, target, origin) VALUES (?, ?, ?)",
                  (node_artifact(name, version), node_run(run_id), USE_ORIGIN))


def max_version(repo, name: str) -> int:
    row = repo.index.db.execute("SELECT max_version FROM art_max WHERE name = ?", (name,)).fetchone()
    return row[0] if row else 0


def note_max(repo, name: str, version: int) -> None:
    with repo.index.write() as w:
        w.execute("INSERT INTO art_max (name, max_version) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
                  "max_version = max(max_version, excluded.max_version)", (name, version))


def run_documents(repo) -> Iterator[dict]:
    """The run records of the repository's run folders (an unreadable one is skipped)."""
    from runicorn.core import runs  # runs build on artifacts: imported late
    from runicorn.errors import RunicornError

    folders = runs.store_of(repo)
    for run_id in folders.run_ids():
        try:
            yield runs.read_doc(folders.runs_dir / run_id)
        except RunicornError:
            continue


def add_use_edges(repo, documents: Iterable[dict]) -> int:
    """The artifact → run edges of the uses the run DOCUMENTS recorded (`artifacts.used`); idempotent."""
    rows = []
    for doc in documents:
        run_id = doc.get("id") or doc.get("run_id")
        for u in ((doc.get("artifacts") or {}).get("used") or []):
            name = u.get("artifact") or u.get("name") if isinstance(u, dict) else None
            if isinstance(name, str) and type(u.get("version")) is int and isinstance(run_id, str) and run_id:
                rows.append((node_artifact(name, u["version"]), node_run(run_id), USE_ORIGIN))
    if rows:
        with repo.index.write() as w:
            w.executemany("INSERT OR IGNORE INTO art_edges (source, target, origin) VALUES (?, ?, ?)", rows)
    return len(rows)


def rebuild(repo, documents: Iterable[dict] = ()) -> dict:
    """Drop every derived artifact row and read the YAML (and the run records' used artifacts) again."""
    with repo.index.write() as w:
        for table in ("art_artifacts", "art_versions", "art_objects", "art_aliases", "art_events", "art_edges"):
            w.execute(f"DELETE FROM {table}")  # noqa: S608 — fixed table names
    sync(repo, uses=False)
    used = add_use_edges(repo, documents)
    db = repo.index.db
    return {"artifacts": db.execute("SELECT count(*) FROM art_artifacts").fetchone()[0],
            "versions": db.execute("SELECT count(*) FROM art_versions").fetchone()[0],
            "edges": db.execute("SELECT count(*) FROM art_edges").fetchone()[0], "used_edges": used}

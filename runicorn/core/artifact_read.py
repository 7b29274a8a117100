"""The artifact read API (CLI and viewer): plain, JSON-able dicts from the index, never a write to git.

Every call first brings the index in step with the YAML files (`artifact_index.sync`), so what it
returns is what the checked-out branch holds.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from runicorn.core import artifact_index as aindex
from runicorn.core.artifact_registry import RegistryState, replay
from runicorn.errors import ArtifactNotFoundError
from runicorn.storage import artifact_store as store

_VERSION = re.compile(r"^v?([1-9][0-9]{0,8})$")
_STAGE_ORDER = list(store.STAGES)


def open_repo(repo):
    """A Repo from a Repo, a path, or None (the repository around the current directory)."""
    from runicorn.core.repo import Repo

    if isinstance(repo, Repo):
        return repo
    return Repo.find(Path(repo) if repo is not None else None)


def split_ref(ref: str) -> tuple[str, str | None]:
    if not isinstance(ref, str) or not ref:
        raise ArtifactNotFoundError(f"artifact {ref!r}", [], "name one as NAME or NAME:VERSION")
    name, _, spec = ref.partition(":")
    return store.check_name(name), (spec or None)


def versions_state(repo, name: str) -> RegistryState:
    """Aliases and stages of NAME replayed from its history file (exact; used under the lock)."""
    present = {v: True for v in store.version_files(repo.root, name)}
    path = repo.root / store.history_rel(name)
    events: list[dict] = []
    if path.is_file():
        rel = store.history_rel(name)
        events = store.parse_history(store.read_limited(path, store.MAX_HISTORY_BYTES, rel), rel)
    return replay(events, present)


def known_refs(repo, name: str) -> list[str]:
    db = repo.index.db
    refs = [f"v{v}" + (" (deleted)" if d else "") for v, d in
            db.execute("SELECT version, deleted FROM art_versions WHERE name = ? ORDER BY version", (name,))]
    refs += sorted({a for (a,) in db.execute("SELECT alias FROM art_aliases WHERE name = ?", (name,))})
    return refs + (["latest"] if refs else [])


def resolve(repo, ref: str, include_deleted: bool = False) -> tuple[str, int]:
    """NAME[:SPEC] → (name, version). SPEC: latest (default), vN or N, an alias, or a stage."""
    name, spec = split_ref(ref)
    aindex.sync(repo, [name])
    db = repo.index.db
    if not db.execute("SELECT 1 FROM art_artifacts WHERE name = ?", (name,)).fetchone():
        names = [n for (n,) in db.execute("SELECT name FROM art_artifacts ORDER BY name")]
        raise ArtifactNotFoundError(f"artifact {name!r}", names)
    rows = dict(db.execute("SELECT version, deleted FROM art_versions WHERE name = ?", (name,)))
    version = None
    if spec in (None, "latest"):
        live = [v for v, d in rows.items() if not d]
        version = max(live) if live else None
    elif _VERSION.match(spec):
        version = int(_VERSION.match(spec).group(1))
        if version in rows and rows[version] and not include_deleted:
            raise ArtifactNotFoundError(f"{name}:v{version} (soft-deleted)", known_refs(repo, name),
                                        f"restore it with `runicorn artifacts restore {name}:v{version}`")
    else:
        held = [v for (v,) in db.execute("SELECT version FROM art_aliases WHERE name = ? AND alias = ?", (name, spec))]
        version = max(held) if held else None
        if version is not None and rows.get(version) and not include_deleted:
            raise ArtifactNotFoundError(f"{name}:{spec} (it points to v{version}, which is soft-deleted)",
                                        known_refs(repo, name),
                                        f"restore it with `runicorn artifacts restore {name}:v{version}` or move the alias")
    if version is None or version not in rows:
        raise ArtifactNotFoundError(f"{name}:{spec or 'latest'}", known_refs(repo, name),
                                    f"see `runicorn artifacts versions {name}`")
    return name, version


def load_manifest(repo, name: str, version: int) -> dict:
    rel = store.manifest_rel(name, version)
    path = repo.root / rel
    if not path.is_file():
        raise ArtifactNotFoundError(f"{name}:v{version}", known_refs(repo, name))
    return store.parse_manifest(store.read_limited(path, store.MAX_MANIFEST_BYTES, rel), rel, name, version)


def _aliases_by_version(repo, name: str) -> tuple[dict[int, list[str]], dict[int, str]]:
    aliases: dict[int, list[str]] = {}
    stages: dict[int, str] = {}
    for alias, kind, version in repo.index.db.execute(
            "SELECT alias, kind, version FROM art_aliases WHERE name = ? ORDER BY alias", (name,)):
        if kind == "stage":
            stages[version] = alias
        else:
            aliases.setdefault(version, []).append(alias)
    return aliases, stages


def list_artifacts(repo, type: str | None = None, search: str | None = None) -> list[dict]:
    """One row per artifact: type, live versions, latest version and its size, total size, the aliases
    its versions hold (`latest` first, as in `list_versions`) and the stages they are in."""
    repo = open_repo(repo)
    aindex.sync(repo)
    sql = ("SELECT a.name, a.type, a.description, "
           "sum(CASE WHEN v.deleted = 0 THEN 1 ELSE 0 END), max(CASE WHEN v.deleted = 0 THEN v.version END), "
           "sum(v.size), count(v.version) "
           "FROM art_artifacts a JOIN art_versions v ON v.name = a.name")
    where, args = [], []
    if type:
        where.append("a.type = ?")
        args.append(type)
    if search:
        where.append("(a.name LIKE ? ESCAPE '\\' OR a.description LIKE ? ESCAPE '\\')")
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        args += [pattern, pattern]
    sql += (" WHERE " + " AND ".join(where) if where else "") + " GROUP BY a.name ORDER BY a.name"
    db = repo.index.db
    held: dict[str, dict[str, list[str]]] = {}  # name -> {"alias": [...], "stage": [...]}
    for name, alias, kind in db.execute("SELECT DISTINCT name, alias, kind FROM art_aliases ORDER BY alias"):
        held.setdefault(name, {}).setdefault("stage" if kind == "stage" else "alias", []).append(alias)
    out = []
    rows = db.execute(sql, args).fetchall()
    latest_rows = {}
    for i in range(0, len(rows), 500):  # the latest version's size and date, in a few indexed lookups
        keys = [(r[0], r[4]) for r in rows[i:i + 500] if r[4] is not None]
        if keys:
            marks = " OR ".join(["(name = ? AND version = ?)"] * len(keys))
            latest_rows.update({(n, v): (s, c) for n, v, s, c in db.execute(
                f"SELECT name, version, size, created_at FROM art_versions WHERE {marks}",  # noqa: S608
                [x for k in keys for x in k])})
    for name, kind, description, live, latest, total, count in rows:
        size, created = latest_rows.get((name, latest), (0, None))
        out.append({"name": name, "type": kind, "description": description, "versions": live or 0,
                    "deleted_versions": count - (live or 0), "latest": latest, "size": size if latest else 0,
                    "total_size": total or 0, "updated_at": created,
                    "aliases": (["latest"] if latest else []) + held.get(name, {}).get("alias", []),
                    "stages": sorted(held.get(name, {}).get("stage", []), key=_STAGE_ORDER.index)})
    return out


def list_versions(repo, name: str) -> list[dict]:
    """Every version of NAME (soft-deleted ones flagged), oldest first, with aliases and stage."""
    repo = open_repo(repo)
    name, _ = split_ref(name)
    resolve_artifact_exists(repo, name)
    aliases, stages = _aliases_by_version(repo, name)
    rows = repo.index.db.execute(
        "SELECT version, created_at, size, files, refs, run_id, git_commit, deleted, digest, description, tags "
        "FROM art_versions WHERE name = ? ORDER BY version", (name,)).fetchall()
    live = [r[0] for r in rows if not r[7]]
    latest = max(live) if live else None
    return [{"name": name, "version": v, "created_at": c, "size": s, "files": f, "references": refs, "run": run,
             "commit": commit, "deleted": bool(d), "digest": digest, "description": desc, "tags": json.loads(tags),
             "aliases": (["latest"] if v == latest else []) + aliases.get(v, []), "stage": stages.get(v, "none")}
            for v, c, s, f, refs, run, commit, d, digest, desc, tags in rows]


def resolve_artifact_exists(repo, name: str) -> None:
    aindex.sync(repo, [name])
    db = repo.index.db
    if not db.execute("SELECT 1 FROM art_artifacts WHERE name = ?", (name,)).fetchone():
        names = [n for (n,) in db.execute("SELECT name FROM art_artifacts ORDER BY name")]
        raise ArtifactNotFoundError(f"artifact {name!r}", names)


def artifact_info(repo, name: str, version=None) -> dict:
    """Everything about one version (default: latest), plus the artifact's aliases, stages and history."""
    repo = open_repo(repo)
    if version is None and ":" in str(name):
        ref = name
    else:
        ref = f"{name}:{'latest' if version is None else (f'v{version}' if isinstance(version, int) else version)}"
    name, number = resolve(repo, ref, include_deleted=True)
    doc = load_manifest(repo, name, number)
    versions = list_versions(repo, name)
    row = next(v for v in versions if v["version"] == number)
    db = repo.index.db
    history = [{"at": at, "event": ev, "alias": alias, "stage": stage, "version": v, "previous": prev, "by": by,
                "run": run, "commit": commit} for at, ev, alias, stage, v, prev, by, run, commit in db.execute(
        "SELECT at, event, alias, stage, version, previous, by, run_id, git_commit FROM art_events WHERE name = ? "
        "ORDER BY seq", (name,))]
    used_by = [t[4:] for (t,) in db.execute("SELECT DISTINCT target FROM art_edges WHERE source = ? ORDER BY target",
                                           (aindex.node_artifact(name, number),)) if t.startswith("run:")]
    return {"name": name, "version": number, "ref": f"{name}:v{number}", "type": doc["type"],
            "description": doc.get("description"), "status": "deleted" if doc.get("deleted") else "ready",
            "created_at": doc.get("created_at"), "created_by": doc.get("created_by") or {}, "digest": doc["digest"],
            "size": doc["size"], "metadata": doc["metadata"], "tags": doc["tags"], "files": doc["files"],
            "references": doc["references"], "inputs": doc["inputs"], "aliases": row["aliases"],
            "stage": row["stage"], "used_by": used_by, "versions": len(versions),
            "artifact_aliases": {a: v["version"] for v in versions for a in v["aliases"]},
            "artifact_stages": {v["stage"]: v["version"] for v in versions if v["stage"] != "none"},
            "history": history}


def artifact_stats(repo) -> dict:
    """Totals, deduplication (bytes referenced by versions vs distinct objects) and a split by type."""
    repo = open_repo(repo)
    aindex.sync(repo)
    db = repo.index.db
    total_files = db.execute("SELECT coalesce(sum(size), 0) FROM art_objects").fetchone()[0]
    logical = db.execute("SELECT coalesce(sum(size), 0) FROM art_versions").fetchone()[0]
    pool = db.execute("SELECT coalesce(sum(s), 0) FROM (SELECT max(size) s FROM art_objects GROUP BY oid)").fetchone()[0]
    by_type = {}
    for kind, artifacts, versions, size in db.execute(
            "SELECT a.type, count(DISTINCT a.name), count(v.version), coalesce(sum(v.size), 0) FROM art_artifacts a "
            "JOIN art_versions v ON v.name = a.name GROUP BY a.type ORDER BY a.type"):
        by_type[kind] = {"artifacts": artifacts, "versions": versions, "size": size}
    saved = max(total_files - pool, 0)
    return {"total_artifacts": db.execute("SELECT count(*) FROM art_artifacts").fetchone()[0],
            "total_versions": db.execute("SELECT count(*) FROM art_versions").fetchone()[0],
            "deleted_versions": db.execute("SELECT count(*) FROM art_versions WHERE deleted = 1").fetchone()[0],
            "total_size": logical, "files_size": total_files, "references_size": max(logical - total_files, 0),
            "dedup_enabled": True, "pool_size": pool, "space_saved": saved,
            "dedup_ratio": round(saved / total_files, 4) if total_files else 0.0, "by_type": by_type}


def _diff_maps(old: dict, new: dict) -> dict:
    return {"added": {k: new[k] for k in sorted(set(new) - set(old))},
            "removed": {k: old[k] for k in sorted(set(old) - set(new))},
            "changed": {k: [old[k], new[k]] for k in sorted(set(old) & set(new)) if old[k] != new[k]}}


def artifact_diff(repo, a: str, b: str) -> dict:
    """Files added / removed / changed and metadata, tag and reference changes from A to B.
    B may be just a version (`v3`, an alias) of A's artifact."""
    repo = open_repo(repo)
    name_a, va = resolve(repo, a, include_deleted=True)
    name_b, vb = resolve(repo, b if ":" in b and not b.startswith(":") else f"{name_a}:{b.lstrip(':')}",
                         include_deleted=True)
    old, new = load_manifest(repo, name_a, va), load_manifest(repo, name_b, vb)
    fo = {f["path"]: f for f in old["files"]}
    fn = {f["path"]: f for f in new["files"]}
    changed = [{"path": p, "old_oid": fo[p]["oid"], "new_oid": fn[p]["oid"], "old_size": fo[p]["size"],
                "new_size": fn[p]["size"]} for p in sorted(set(fo) & set(fn)) if fo[p]["oid"] != fn[p]["oid"]]
    ro = {r["name"]: r for r in old["references"]}
    rn = {r["name"]: r for r in new["references"]}
    return {"a": f"{name_a}:v{va}", "b": f"{name_b}:v{vb}", "same_content": old["digest"] == new["digest"],
            "files": {"added": [fn[p] for p in sorted(set(fn) - set(fo))],
                      "removed": [fo[p] for p in sorted(set(fo) - set(fn))], "changed": changed,
                      "unchanged": len([p for p in set(fo) & set(fn) if fo[p]["oid"] == fn[p]["oid"]])},
            "metadata": _diff_maps(old["metadata"], new["metadata"]),
            "references": _diff_maps(ro, rn),
            "tags": {"added": [t for t in new["tags"] if t not in old["tags"]],
                     "removed": [t for t in old["tags"] if t not in new["tags"]]},
            "size": {"a": old["size"], "b": new["size"]}, "type": {"a": old["type"], "b": new["type"]}}


def registry_at(repo, name: str, when: str) -> dict:
    """Aliases and stages of NAME as they were at WHEN (ISO time or date, UTC): "what was in
    production on 3 May" is `registry_at(repo, name, "2025-05-03T23:59:59")["stages"]`."""
    repo = open_repo(repo)
    name, _ = split_ref(name)
    resolve_artifact_exists(repo, name)
    present = {v: True for v in store.version_files(repo.root, name)}
    path = repo.root / store.history_rel(name)
    rel = store.history_rel(name)
    events = store.parse_history(store.read_limited(path, store.MAX_HISTORY_BYTES, rel), rel) if path.is_file() else []
    until = when if "T" in when else when + "T23:59:59.999999Z"
    state = replay(events, present, until=until)
    stages: dict[str, list[int]] = {}
    for v, s in sorted(state.stages.items()):
        stages.setdefault(s, []).append(v)
    return {"name": name, "at": until, "aliases": {a: v for a, (_, v) in sorted(state.aliases.items())},
            "stages": {s: (vs if s == "archived" else vs[-1]) for s, vs in stages.items()}}

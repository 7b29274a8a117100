"""Writing artifacts: log a version, move aliases and stages, soft-delete, restore, purge.

Order (as `add`): the artifact's committed files are checked first (a bad manifest stops
everything before a byte is stored), then file objects into the cache, one durability step, then —
under the repository lock — the version number, the manifest (atomic), the history events, the
index. Identical content returns the current latest version; content identical to an older
version becomes a new version (its bytes are already stored). A killed
`log_artifact` leaves at most unnamed objects (gc collects them) and never a manifest that names
a missing object. Version numbers come from the highest number seen in the workspace, in every
branch, tag and remote-tracking branch, in the history's purge events and in the index's memory,
so a number is never handed out twice and branches of one clone never collide.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from runicorn.core import artifact_index as aindex
from runicorn.core.artifact_read import known_refs, open_repo, resolve, versions_state
from runicorn.core.artifact_registry import check_transition, now_iso, stage_events, who, STAGE_NONE, STAGES
from runicorn.core.events import NULL, Reporter
from runicorn.errors import ArtifactNameError, ArtifactNotFoundError, RunicornError
from runicorn.storage import artifact_store as store
from runicorn.storage import fsutil
from runicorn.storage.cache import RACY_NS
from runicorn.storage.hashing import hash_many


class Version(int):
    """The version number log_artifact returns: an int (`f"name:v{version}"`), with details."""

    name: str = ""
    digest: str = ""
    created: bool = True

    def __new__(cls, number: int, name: str = "", digest: str = "", created: bool = True):
        obj = super().__new__(cls, number)
        obj.name, obj.digest, obj.created = name, digest, created
        return obj

    @property
    def ref(self) -> str:
        return f"{self.name}:v{int(self)}"


def content_digest(files: list[dict], references: list[dict]) -> str:
    """sha256 over the sorted (path, oid, size) and (name, uri, checksum, size): the content's identity."""
    canon = json.dumps({"files": sorted((f["path"], f["oid"], f["size"]) for f in files),
                        "references": sorted((r["name"], r["uri"], r.get("checksum") or "", r.get("size") or -1)
                                             for r in references)}, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


def _hash_files(repo, entries: dict[str, Path], reporter: Reporter) -> tuple[list[dict], list[tuple]]:
    """Hash ENTRIES (the stat memo first); read-only. Returns (files, memo rows to record once stored)."""
    items = sorted(entries.items())
    stats = []
    for _, src in items:
        try:
            stats.append(os.stat(src))
        except FileNotFoundError:
            raise RunicornError(f"{src} disappeared before it was logged; check the path") from None
    oids = [repo.memo.get(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) for st in stats]
    pending = [i for i, o in enumerate(oids) if o is None]
    advance = reporter.task("hashing artifact files", len(pending))
    hashed = hash_many([items[i][1] for i in pending], repo.jobs, lambda: advance(1), [stats[i].st_size for i in pending])
    reporter.end_task()
    limit = time.time_ns() - RACY_NS
    rows = []
    for i, oid in zip(pending, hashed):
        if oid is None:
            raise RunicornError(f"{items[i][1]} disappeared while it was hashed; rerun")
        oids[i] = oid
        st = stats[i]
        if st.st_mtime_ns < limit:
            rows.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, oid))
    files = [{"path": dest, "oid": oid, "size": st.st_size} for (dest, _), oid, st in zip(items, oids, stats)]
    return files, rows


def _store_files(repo, entries: dict[str, Path], files: list[dict]) -> tuple[list[str], int]:
    """Copy the content the cache lacks into it (one durability step). Returns (new oids, new bytes)."""
    repo.odb.prepare()
    new, added = [], 0
    for (_, src), f in zip(sorted(entries.items()), files):
        if repo.odb.exists(f["oid"]) or f["oid"] in new:
            continue
        got, created = repo.odb.copy_in(src)
        if got != f["oid"]:
            raise RunicornError(f"{src} changed while it was being logged; rerun when it is complete")
        if created:
            new.append(got)
            added += f["size"]
    fsutil.make_durable([repo.odb.path(o) for o in new], repo.cache_dir)
    repo.guard.record(new)
    return new, added


def _highest_known(repo, name: str) -> int:
    top = max([*store.version_files(repo.root, name), aindex.max_version(repo, name), 0])
    under = f"{store.DIR}/{name}"
    try:
        commits = repo.git.scope_commits(True, True, False, True)
    except RunicornError:
        commits = []
    for commit in commits:
        for path, _ in repo.git.files_in_tree(str(commit.id), lambda p: p.endswith(".yaml"), under):
            m = store.VERSION_FILE_RE.match(path.rsplit("/", 1)[-1])
            if m:
                top = max(top, int(m.group(1)))
    return top


def _base_event(repo, run) -> dict:
    return {"at": now_iso(), "by": who(), "run": getattr(run, "id", None) if run else None,
            "commit": (getattr(run, "git_commit", None) if run else None) or repo.git.head_sha()}


def log_artifact(repo, artifact, aliases: list[str] | None = None, run=None, reporter: Reporter = NULL) -> Version:
    """Store ARTIFACT as the next version of its name, or return the current latest version when
    it holds identical content (content identical to an older version becomes a new version; its
    bytes are already in the cache). ALIASES are set (moved) to it; `latest` and the version's own
    `vN` may be listed and change nothing. With RUN, lineage inputs are recorded."""
    repo = open_repo(repo if repo is not None else getattr(run, "repo", None))
    aliases, pinned = _requested_aliases(aliases)
    name = artifact.name
    _check_layout(artifact.entries)
    aindex.sync(repo, [name])  # a bad manifest of NAME stops here, before anything is hashed or stored
    files, memo_rows = _hash_files(repo, artifact.entries, reporter)
    references = [dict(r) for r in artifact.references]
    digest = content_digest(files, references)
    if pinned:  # a conflicting vN fails before any content is stored (checked again under the lock)
        _check_pinned(name, *_next_version(repo, name, digest), pinned)
    new_oids, added = _store_files(repo, artifact.entries, files)
    repo.memo.put_many(memo_rows)
    with repo.lock(reporter.info):
        aindex.sync(repo, [name])
        version, created = _next_version(repo, name, digest)
        _check_pinned(name, version, created, pinned)
        dropped = [] if created else _unrecorded(repo, artifact, version)
        git_paths = _write_version(repo, artifact, version, files, references, digest, run, aliases, created)
    repo.autostage(sorted(set(git_paths)))
    if dropped:
        from runicorn.core.run_live import warn  # the runs' RunicornWarning (never raises, even under -W error)

        warn(_unrecorded_message(f"{name}:v{version}", dropped))
    result = Version(version, name, digest, created)
    artifact.version, artifact._repo = result, repo
    artifact.new_objects, artifact.new_bytes = len(new_oids), added
    if run is not None and hasattr(run, "note_artifact_logged"):
        run.note_artifact_logged(name, int(version), digest)
    return result


def _write_version(repo, artifact, version: int, files, references, digest: str, run, aliases: list[str],
                   created: bool) -> list[str]:
    """Under the lock: the manifest (when CREATED), the alias events, the index. Returns the git paths."""
    name = artifact.name
    git_paths = store.ensure_dir(repo.root, name)
    fresh = {}
    if created:
        doc = _manifest(repo, artifact, version, files, references, digest, run)
        rel = store.manifest_rel(name, version)
        data = store.encode_manifest(doc)
        fresh = {version: store.parse_manifest(data, rel, name, version)
                 if len(doc["files"]) < 1000 else doc}  # small: prove the writer and reader agree
        fsutil.atomic_write(repo.root / rel, data)
        git_paths.append(rel)
        aindex.note_max(repo, name, version)
    base = _base_event(repo, run)
    state = versions_state(repo, name)
    for alias in aliases:
        previous = state.aliases.get(alias, (None, None))[1]
        if previous != version:
            store.append_event(repo.root, name, {**base, "event": "alias", "alias": alias, "version": version,
                                                 "previous": previous})
            git_paths.append(store.history_rel(name))
    aindex.reload(repo, name, fresh=fresh)
    return git_paths


def _requested_aliases(aliases) -> tuple[list[str], dict[int, str]]:
    """ALIASES split into (aliases to set, {version number: spelling} the caller expects). `latest`
    is automatic and `vN` names a version, so both only confirm (seed: aliases=['latest', 'v1'])."""
    names, pinned = [], {}
    for alias in aliases or []:
        if alias == "latest":
            continue
        if isinstance(alias, str) and store.VERSION_LIKE_RE.match(alias):
            pinned[int(alias.lstrip("vV"))] = alias
            continue
        names.append(store.check_alias(alias))
    return names, pinned


def _next_version(repo, name: str, digest: str) -> tuple[int, bool]:
    """(version, created): the current latest when it already holds DIGEST, else the next free number."""
    row = repo.index.db.execute("SELECT version, digest FROM art_versions WHERE name = ? AND deleted = 0 "
                                "ORDER BY version DESC LIMIT 1", (name,)).fetchone()
    if row and row[1] == digest:
        return row[0], False
    return _highest_known(repo, name) + 1, True


def _check_pinned(name: str, version: int, created: bool, pinned: dict[int, str]) -> None:
    wrong = [spelling for number, spelling in sorted(pinned.items()) if number != version]
    if wrong:
        what = "would become the new version" if created else "is already the latest version,"
        raise ArtifactNameError(f"aliases list {wrong[0]!r}, but this content {what} {name}:v{version}: version "
                                f"numbers are assigned, not chosen; drop {wrong[0]!r} from aliases (or use a word "
                                "alias such as best)")


def _unrecorded_message(ref: str, dropped: list[str]) -> str:
    one = len(dropped) == 1
    return (f"{ref} already holds this content, so it was returned and the new {', '.join(dropped)} "
            f"{'was' if one else 'were'} not recorded (a version's metadata is fixed when it is created). To record "
            f"{'it' if one else 'them'}, log changed content (a new version), or soft-delete {ref} "
            f"(`runicorn artifacts delete {ref}`) and log again")


def _unrecorded(repo, artifact, version: int) -> list[str]:
    """What ARTIFACT sets that differs from the stored VERSION (returned instead of a new version)."""
    row = repo.index.db.execute("SELECT type, description, tags, metadata FROM art_versions WHERE name = ? AND "
                                "version = ?", (artifact.name, version)).fetchone()
    if row is None:
        return []
    kind, description, tags, metadata = row
    canon = lambda value: json.dumps(value, sort_keys=True, default=str)  # noqa: E731
    dropped = []
    if artifact.type != kind:
        dropped.append(f"type {artifact.type!r}")
    if artifact.description is not None and artifact.description != description:
        dropped.append("description")
    if artifact.metadata and canon(artifact.metadata) != canon(json.loads(metadata)):
        dropped.append("metadata")
    if artifact.tags and sorted(artifact.tags) != sorted(json.loads(tags)):
        dropped.append("tags")
    return dropped


def _check_layout(entries: dict) -> None:
    """No name inside the artifact may be both a file and a folder ('x' and 'x/y')."""
    for path in entries:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in entries:
                raise ArtifactNameError(f"{'/'.join(parts[:i])!r} is both a file and a folder in the artifact; "
                                        "rename one of them (add_file(..., name=...) or add_dir(..., name=...))")


def _valid_inputs(items: list[dict]) -> list[dict]:
    """The run's inputs that a manifest can hold (a malformed one is left out, never written)."""
    out = []
    for item in items:
        try:
            store._check_input(item, "inputs")
        except RunicornError:
            continue
        out.append({k: v for k, v in item.items() if k in ("artifact", "version", "digest", "data", "oid")})
    return out


def _manifest(repo, artifact, version: int, files, references, digest: str, run) -> dict:
    created_by = {"run": getattr(run, "id", None) if run else None,
                  "commit": (getattr(run, "git_commit", None) if run else None) or repo.git.head_sha(),
                  "user": who().split("@")[0], "host": who().split("@", 1)[1]}
    inputs = []
    if run is not None and hasattr(run, "lineage_inputs"):
        own = {(n, v) for n, v in repo.index.db.execute("SELECT name, version FROM art_versions WHERE run_id = ?",
                                                        (getattr(run, "id", None),))}
        # a run's own outputs are never its inputs: the lineage graph stays acyclic
        inputs = _valid_inputs([dict(i) for i in run.lineage_inputs() if (i.get("artifact"), i.get("version")) not in own])
    return {"runicorn": store.FORMAT_VERSION, "name": artifact.name, "version": version, "type": artifact.type,
            "description": artifact.description, "created_at": now_iso(),
            "created_by": {k: v for k, v in created_by.items() if v is not None}, "digest": digest,
            "size": sum(f["size"] for f in files) + sum(r.get("size") or 0 for r in references),
            "deleted": False, "metadata": artifact.metadata, "tags": list(artifact.tags), "files": files,
            "references": references, "inputs": inputs}


# -- registry moves --------------------------------------------------------------------------------
def _live_version(repo, ref: str) -> tuple[str, int]:
    name, version = resolve(repo, ref)
    row = repo.index.db.execute("SELECT deleted FROM art_versions WHERE name = ? AND version = ?",
                                (name, version)).fetchone()
    if row and row[0]:
        raise ArtifactNameError(f"{name}:v{version} is deleted; restore it with `runicorn artifacts restore "
                                f"{name}:v{version}` first")
    return name, version


def set_alias(repo, ref: str, alias: str, run=None, reporter: Reporter = NULL) -> dict:
    """Point ALIAS of REF's artifact at REF's version (moving it from wherever it was)."""
    repo = open_repo(repo)
    alias = store.check_alias(alias)
    with repo.lock(reporter.info):
        name, version = _live_version(repo, ref)
        previous = versions_state(repo, name).aliases.get(alias, (None, None))[1]
        if previous != version:
            rel = store.append_event(repo.root, name, {**_base_event(repo, run), "event": "alias", "alias": alias,
                                                       "version": version, "previous": previous})
            aindex.reload(repo, name)
            repo.autostage([rel])
    return {"name": name, "alias": alias, "version": version, "previous": previous}


def remove_alias(repo, name: str, alias: str, run=None, reporter: Reporter = NULL) -> dict:
    repo = open_repo(repo)
    with repo.lock(reporter.info):
        name, _ = resolve(repo, name)
        held = versions_state(repo, name).aliases.get(alias)
        if held is None:
            raise ArtifactNotFoundError(f"alias {alias!r} of {name}", sorted(versions_state(repo, name).aliases),
                                        f"see `runicorn artifacts info {name}`")
        rel = store.append_event(repo.root, name, {**_base_event(repo, run), "event": "unalias", "alias": alias,
                                                   "version": held[1], "previous": held[1]})
        aindex.reload(repo, name)
        repo.autostage([rel])
    return {"name": name, "alias": alias, "version": None, "previous": held[1]}


def set_stage(repo, ref: str, stage: str, force: bool = False, run=None, reporter: Reporter = NULL) -> dict:
    """Move REF's version to STAGE (none, staging, production, archived) under the transition rules."""
    repo = open_repo(repo)
    if stage not in (STAGE_NONE, *STAGES):
        raise ArtifactNameError(f"unknown stage {stage!r}; use one of none, {', '.join(STAGES)}")
    with repo.lock(reporter.info):
        name, version = _live_version(repo, ref)
        state = versions_state(repo, name)
        current = state.stages.get(version, STAGE_NONE)
        check_transition(current, stage, f"{name}:v{version}", force)
        events = [] if current == stage else stage_events(state, version, stage, _base_event(repo, run))
        rels = [store.append_event(repo.root, name, e) for e in events]
        if events:
            aindex.reload(repo, name)
            repo.autostage(sorted(set(rels)))
    moved = [{"version": e["version"], "from": e["from"], "to": e["stage"]} for e in events]
    return {"name": name, "version": version, "stage": stage, "previous": current, "moves": moved}


def _rewrite_deleted(repo, name: str, version: int, deleted: bool) -> str:
    rel = store.manifest_rel(name, version)
    path = repo.root / rel
    doc = store.parse_manifest(store.read_limited(path, store.MAX_MANIFEST_BYTES, rel), rel, name, version)
    doc["deleted"] = deleted
    fsutil.atomic_write(path, store.encode_manifest(doc))
    return rel


def delete_version(repo, ref: str, permanent: bool = False, run=None, reporter: Reporter = NULL) -> dict:
    """Soft delete (manifest flagged, recoverable) or, with PERMANENT, remove the manifest; the
    version number stays taken (a purge event) and the objects are left for `runicorn gc`."""
    repo = open_repo(repo)
    with repo.lock(reporter.info):
        name, version = resolve(repo, ref, include_deleted=True)
        base = {**_base_event(repo, run), "version": version}
        if permanent:
            (repo.root / store.manifest_rel(name, version)).unlink()
            rels = [store.manifest_rel(name, version),
                    store.append_event(repo.root, name, {**base, "event": "purge"})]
            aindex.note_max(repo, name, version)
        else:
            rels = [_rewrite_deleted(repo, name, version, True),
                    store.append_event(repo.root, name, {**base, "event": "delete"})]
        aindex.reload(repo, name)
        repo.autostage(rels)
    return {"name": name, "version": version, "permanent": permanent}


def restore_version(repo, ref: str, run=None, reporter: Reporter = NULL) -> dict:
    repo = open_repo(repo)
    with repo.lock(reporter.info):
        name, version = resolve(repo, ref, include_deleted=True)
        rels = [_rewrite_deleted(repo, name, version, False),
                store.append_event(repo.root, name, {**_base_event(repo, run), "event": "restore", "version": version})]
        aindex.reload(repo, name)
        repo.autostage(rels)
    return {"name": name, "version": version, "restored": True}


__all__ = ["Version", "log_artifact", "set_alias", "remove_alias", "set_stage", "delete_version", "restore_version",
           "content_digest", "known_refs"]

"""Materialising artifact versions: links from the repository cache, a user-level download cache,
objects fetched from the default remote when missing, and LRU cleanup of the download cache.

- A download into a folder inside the repository links from the repository cache (as `checkout`).
- A download anywhere else (or with no folder: `<cache>/files/<name>/v<N>-<digest12>/`) goes through
  the download cache `artifacts.cache_dir`: objects are hardlinked (or copied) from the repository
  cache into it, then linked to the target. The ledger remembers each download's last use and
  every file it linked outside the cache.
- `cleanup` evicts least recently used downloads beyond `max_size` or older than `max_age`, but
  never one whose objects a workspace still links (a recorded link that is still the same inode).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
from pathlib import Path

from runicorn.config import Config, parse_duration
from runicorn.core.events import NULL, Reporter
from runicorn.errors import ArtifactNotFoundError, ObjectMissingError, RemoteObjectCorruptError, UsageError
from runicorn.storage import fsutil
from runicorn.storage.artifact_ledger import Ledger
from runicorn.storage.cache import Linker
from runicorn.storage.odb import ObjectDB
from runicorn.storage.safepath import check_no_symlink_parents

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$", re.I)
_UNITS = {"": 1, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(text: str) -> int:
    """'10GB', '500M', '1.5GiB', '2048' → bytes (decimal units; GiB/MiB binary)."""
    m = _SIZE.match(str(text))
    if not m:
        raise UsageError(f"size {text!r} is not valid; use a number with KB, MB, GB or TB, e.g. 10GB")
    number, unit, suffix = float(m.group(1)), m.group(2).lower(), m.group(3).lower()
    base = 1024 if suffix.startswith("i") else 1000
    return int(number * base ** _UNITS[unit])


def default_dir(config: Config | None = None) -> Path:
    configured = (config or Config(None)).get("artifacts.cache_dir")
    if configured:
        return Path(os.path.expanduser(configured)).absolute()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "runicorn" / "artifacts"


class DownloadCache:
    def __init__(self, root: Path, link_chain: list[str] | None = None):
        self.root = Path(root)
        self.odb = ObjectDB(self.root)
        self.files = self.root / "files"
        self.linker = Linker(self.odb, link_chain or ["reflink", "hardlink", "copy"], self.root / "tmp")
        self._ledger: Ledger | None = None

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self.root / "ledger.db")
        return self._ledger

    @staticmethod
    def key(doc: dict) -> str:
        return f"{doc['name']}:v{doc['version']}:{doc['digest'][7:19]}"

    def default_target(self, doc: dict) -> Path:
        return self.files / doc["name"] / f"v{doc['version']}-{doc['digest'][7:19]}"

    def has_all(self, doc: dict) -> bool:
        return all(self.odb.exists(f["oid"]) for f in doc["files"])

    def adopt(self, source: ObjectDB, oids: set[str]) -> None:
        """Objects from the repository cache: a hardlink when on one filesystem, else a verified copy."""
        for oid in sorted(oids):
            if self.odb.exists(oid):
                continue
            (self.odb.objects / oid[:2]).mkdir(parents=True, exist_ok=True)
            try:
                os.link(source.path(oid), self.odb.path(oid))
                continue
            except FileExistsError:
                continue
            except OSError:
                pass
            with open(source.path(oid), "rb") as fin:
                got, _ = self.odb.put_stream(fin, oid)
            if got != oid:
                raise RemoteObjectCorruptError([oid], "the repository cache")
        fsutil.make_durable([self.odb.path(o) for o in oids], self.root)

    def materialise(self, doc: dict, target: Path | None) -> Path:
        """Link DOC's files into TARGET (default: the cache's own folder for it) and record the use."""
        key = self.key(doc)
        own = target is None
        target = self.default_target(doc) if own else target
        links = link_files(self.odb, self.linker, doc, target)
        objects = {f["oid"]: f["size"] for f in doc["files"]}
        self.ledger.record(key, doc["name"], doc["version"], doc["digest"], str(self.default_target(doc)), objects,
                           len(doc["files"]), json.dumps(doc, default=str))
        if not own:
            self.ledger.add_links(key, links)
        return target

    def find(self, name: str, spec: str | None) -> dict:
        """The manifest of a downloaded version, for use outside any repository: NAME with `latest`
        (the highest version downloaded here) or `vN`. Aliases and stages need the repository."""
        rows = [e for e in self.ledger.entries() if e["name"] == name]
        if spec in (None, "latest") and rows:
            wanted = max(e["version"] for e in rows)
        elif spec and re.fullmatch(r"v?[1-9][0-9]{0,8}", spec):
            wanted = int(spec.lstrip("v"))
        else:
            wanted = None
        hits = sorted((e for e in rows if e["version"] == wanted), key=lambda e: -e["last_used"])
        text = self.ledger.manifest(hits[0]["key"]) if hits else None
        if text is None:
            known = sorted({f"{e['name']}:v{e['version']}" for e in self.ledger.entries()})
            raise ArtifactNotFoundError(f"{name}:{spec or 'latest'} in the download cache {self.root}", known,
                                        "outside a repository only downloaded versions (by number or latest) can be "
                                        "used; download it inside the repository first (`runicorn artifacts download`)")
        return json.loads(text)

    # -- list / cleanup -------------------------------------------------------------------------
    def _live_links(self, key: str | None = None) -> tuple[set[str], list[str]]:
        """(oids a workspace still links, recorded link paths that are gone or replaced)."""
        live, dead = set(), []
        for path, oid in self.ledger.links(key):
            try:
                same = os.stat(path).st_ino == os.stat(self.odb.path(oid)).st_ino
            except OSError:
                same = False
            if same:
                live.add(oid)
            else:
                dead.append(path)
        return live, dead

    def listing(self) -> list[dict]:
        live, _ = self._live_links()
        out = []
        for e in self.ledger.entries():
            objects = self.ledger.objects(e["key"])
            out.append({**e, "linked": bool(live & set(objects)), "materialised": Path(e["path"]).is_dir()})
        return out

    def cleanup(self, max_size: int | None = None, max_age: float | None = None, dry_run: bool = False) -> dict:
        now = time.time()
        live, dead = self._live_links()
        pool = self.ledger.pool()
        total = sum(pool.values())
        evicted, kept = [], []
        remaining = {e["key"]: self.ledger.objects(e["key"]) for e in self.ledger.entries()}
        freed = 0
        for e in self.ledger.entries():  # least recently used first
            expired = max_age is not None and now - e["last_used"] > max_age
            over = max_size is not None and total > max_size
            if not (expired or over):
                continue
            objects = remaining[e["key"]]
            if live & set(objects):
                kept.append(e["key"])
                continue
            del remaining[e["key"]]
            still = {o for objs in remaining.values() for o in objs}
            gone = {o: s for o, s in objects.items() if o not in still}
            evicted.append(e["key"])
            freed += sum(gone.values())
            total -= sum(gone.values())
            if not dry_run:
                _remove_tree(Path(e["path"]), self.files)
                self.ledger.forget(e["key"], [p for p, _ in self.ledger.links(e["key"]) if p in dead])
                for oid in gone:
                    self.odb.remove(oid)
        return {"evicted": evicted, "kept_linked": kept, "freed_bytes": freed, "size": total, "dry_run": dry_run}


def _remove_tree(path: Path, inside: Path) -> None:
    """Remove a materialised download (read-only files in writable folders); only under INSIDE."""
    try:
        path.relative_to(inside)
    except ValueError:
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)


def link_files(odb: ObjectDB, linker: Linker, doc: dict, target: Path) -> list[tuple[str, str]]:
    """Make TARGET/<path> the content of each file (atomic per file; other files left alone)."""
    target.mkdir(parents=True, exist_ok=True)
    kind = linker.kind_for(target)
    links = []
    for f in doc["files"]:
        check_no_symlink_parents(target, f["path"])
        dest = target / f["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            st = os.lstat(dest)
            if stat.S_ISREG(st.st_mode) and st.st_ino == os.stat(odb.path(f["oid"])).st_ino:
                links.append((str(dest), f["oid"]))
                continue
        except FileNotFoundError:
            pass
        linker.link(f["oid"], dest, False, kind)
        links.append((str(dest), f["oid"]))
    return links


def ensure_objects(repo, doc: dict, remote: str | None, reporter: Reporter = NULL) -> int:
    """Every file object of DOC in the repository cache; missing ones are fetched (verified) from
    REMOTE or the default remote. Returns how many were fetched."""
    missing = sorted({f["oid"] for f in doc["files"] if not repo.odb.exists(f["oid"])})
    if not missing:
        return 0
    remotes = repo.config.remotes()
    if not remotes and not remote:
        raise ObjectMissingError(missing, f"the cache (and no remote is configured) for {doc['name']}:v{doc['version']}")
    from runicorn.core.remotes import open_remote
    from runicorn.core.transfer import TransferResult, download_missing

    store = open_remote(repo, remote)
    result = TransferResult(store.name)
    new: list[str] = []
    where = {f["oid"]: f"{doc['name']}:v{doc['version']}/{f['path']}" for f in doc["files"]}
    advance = reporter.task(f"fetching {doc['name']}:v{doc['version']} from {store.name}", len(missing), "objects")
    repo.odb.prepare()
    with repo.lock(reporter.info):
        download_missing(repo, store, [(o, where[o]) for o in missing], result, new, advance)
        fsutil.make_durable([repo.odb.path(o) for o in new], repo.cache_dir)
        repo.guard.record(new)
    reporter.end_task()
    if result.corrupt:
        raise RemoteObjectCorruptError(result.corrupt, store.name)
    if result.missing:
        raise ObjectMissingError(sorted(result.missing), f"the cache and remote {store.name!r}")
    return len(new)


def download(repo, doc: dict, target_dir=None, remote: str | None = None, reporter: Reporter = NULL) -> Path:
    """DOC's files as a folder (see the module docstring for where they come from). REPO None: from
    the download cache alone (a process outside any repository)."""
    if repo is None:
        cache = DownloadCache(default_dir())
        if not cache.has_all(doc):
            raise ObjectMissingError(sorted({f["oid"] for f in doc["files"] if not cache.odb.exists(f["oid"])}),
                                     f"the download cache {cache.root}")
        return cache.materialise(doc, Path(target_dir).absolute() if target_dir is not None else None)
    cache = DownloadCache(default_dir(repo.config), repo.config.get("cache.link"))
    target = Path(target_dir).absolute() if target_dir is not None else None
    inside = target is not None and _inside(target, repo.root)
    if target is None and cache.has_all(doc):
        return cache.materialise(doc, None)
    ensure_objects(repo, doc, remote, reporter)
    for oid in sorted({f["oid"] for f in doc["files"]}):
        repo.guard.check(oid)  # a damaged object is never handed out
    if inside:
        link_files(repo.odb, repo.linker, doc, target)
        return target
    cache.adopt(repo.odb, {f["oid"] for f in doc["files"]})
    return cache.materialise(doc, target)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


class ArtifactCache:
    """The download cache as an object (the seed's `ArtifactCache().get(...)`, `.list()`, `.cleanup(...)`)."""

    def __init__(self, root=None, *, cache_dir=None):
        where = root if root is not None else cache_dir
        self._cache = DownloadCache(Path(where) if where is not None else default_dir())

    @property
    def root(self) -> Path:
        return self._cache.root

    def get(self, name: str, version="latest") -> str | None:
        """The folder holding NAME's VERSION (3, "v3" or "latest" = highest downloaded) when it was
        downloaded on this machine and its objects are still cached (the folder is re-linked if it
        was removed, and counts as a use); else None."""
        spec = f"v{version}" if type(version) is int else str(version)
        try:
            doc = self._cache.find(name, spec)
        except ArtifactNotFoundError:
            return None
        if not self._cache.has_all(doc):
            return None
        return str(self._cache.materialise(doc, None))

    def list(self) -> list[dict]:
        return self._cache.listing()

    def cleanup(self, max_size_gb: float = 10.0, max_age_days: float = 30, dry_run: bool = False) -> dict:
        return self._cache.cleanup(int(max_size_gb * 1e9), max_age_days * 86400.0, dry_run)


def cache_list(config: Config | None = None) -> list[dict]:
    return DownloadCache(default_dir(config)).listing()


def cache_cleanup(max_size: str | int | None = None, max_age: str | float | None = None, dry_run: bool = False,
                  config: Config | None = None) -> dict:
    size = parse_size(max_size) if isinstance(max_size, str) else max_size
    try:
        age = parse_duration(max_age) if max_age is not None else None
    except ValueError as exc:
        raise UsageError(f"--max-age: {exc}") from None
    if size is None and age is None:
        size, age = parse_size("10GB"), parse_duration("30d")
    return DownloadCache(default_dir(config)).cleanup(size, age, dry_run)

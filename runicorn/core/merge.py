"""The git merge driver for `.rn` pointers (`merge=runicorn` in `.gitattributes`).

Git calls it with the base, ours and theirs versions of a pointer when both branches changed it.
For tracked folders the three directory manifests (Merkle trees in the cache) are merged
three-way, subtree by subtree: a subtree only one side changed is taken whole by its oid, so only
the manifests on the paths both sides touched are read. Manifests missing from the cache are
fetched from the default remote (manifests only, never file content).

Clean: the merged pointer is written over OURS (git's `%A`). A real conflict (one file changed
differently on both sides, or a single tracked file changed both ways) leaves OURS holding two
complete merged pointers between conflict markers — the first takes our version of each
conflicting file, the second theirs, and both carry every non-conflicting change of both
branches. Both merged manifests are in the cache, so either resolution checks out directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runicorn.core.events import NULL, Reporter
from runicorn.core.repo import Repo
from runicorn.errors import MergeDriverError, RunicornError
from runicorn.storage import fsutil
from runicorn.storage import pointer as ptr
from runicorn.storage.manifest import Entry, Tree, encode

MARKER_SIZE = 7


@dataclass
class Conflict:
    path: str  # inside the tracked folder ('' = the tracked path itself)
    base: Entry | None
    ours: Entry | None
    theirs: Entry | None

    def describe(self) -> str:
        def side(e: Entry | None) -> str:
            return "deleted" if e is None else f"{e.kind} {e.oid[:12]}"

        return f"ours {side(self.ours)}, theirs {side(self.theirs)}"


@dataclass
class MergeResult:
    path: str  # the pointer's path in the repository
    clean: bool
    text: str  # what was written to OURS
    conflicts: list[Conflict] = field(default_factory=list)
    fetched: int = 0

    def to_json(self) -> dict:
        return {"path": self.path, "clean": self.clean, "fetched": self.fetched,
                "conflicts": [{"path": c.path, "ours": c.ours and c.ours.oid, "theirs": c.theirs and c.theirs.oid}
                              for c in self.conflicts]}


def merge_pointer_files(repo: Repo, base: Path, ours: Path, theirs: Path, name: str,
                        reporter: Reporter = NULL) -> MergeResult:
    """Merge the pointer versions in BASE, OURS and THEIRS (git's %O %A %B) into OURS."""
    b, o, t = (_read(path, name, side) for path, side in ((base, "base"), (ours, "ours"), (theirs, "theirs")))
    if o is None or t is None:
        raise MergeDriverError(name, "one side deleted the pointer while the other changed it")
    merger = _Merger(repo, name, reporter)
    with repo.lock(reporter.info):
        repo.odb.prepare()
        result = merger.merge(b, o, t)
        fsutil.make_durable([str(repo.odb.path(x)) for x in merger.new], repo.cache_dir)
    fsutil.atomic_write(ours, result.text.encode())
    return result


def _read(path: Path, name: str, side: str) -> ptr.Pointer | None:
    data = path.read_bytes()
    if not data.strip():
        return None  # added on both sides: no base
    try:
        return ptr.parse(data, f"{name} ({side})")
    except RunicornError as exc:
        raise MergeDriverError(name, f"the {side} version is not a valid pointer ({exc.message})") from None


class _Merger:
    def __init__(self, repo: Repo, name: str, reporter: Reporter):
        self.repo, self.name, self.reporter = repo, name, reporter
        self.conflicts: list[Conflict] = []
        self.new: list[str] = []  # objects this merge created or fetched
        self.fetched = 0
        self._store = None

    def merge(self, b: ptr.Pointer | None, o: ptr.Pointer, t: ptr.Pointer) -> MergeResult:
        if _same(o, t) or (b is not None and _same(b, t)):
            return MergeResult(self.name, True, o.to_yaml())
        if b is not None and _same(b, o):
            return MergeResult(self.name, True, _with_extra(t, o).to_yaml())
        if o.kind != "dir" or t.kind != "dir" or (b is not None and b.kind != "dir"):
            self.conflicts.append(Conflict("", _entry(b), _entry(o), _entry(t)))
            return self._result(o, t)
        base = self.load(b.oid, "base") if b is not None else {}
        mine, yours = self._merge(base, self.load(o.oid, "ours"), self.load(t.oid, "theirs"), "")
        merged_o, merged_t = (self._pointer(tree, o, t) for tree in (mine, yours))
        if not self.conflicts:
            return MergeResult(self.name, True, merged_o.to_yaml(), fetched=self.fetched)
        return self._result(merged_o, merged_t)

    def _result(self, o: ptr.Pointer, t: ptr.Pointer) -> MergeResult:
        text = (f"{'<' * MARKER_SIZE} ours\n{o.to_yaml()}{'=' * MARKER_SIZE}\n"
                f"{t.to_yaml()}{'>' * MARKER_SIZE} theirs\n")
        return MergeResult(self.name, False, text, self.conflicts, self.fetched)

    def _merge(self, base: Tree, ours: Tree, theirs: Tree, prefix: str) -> tuple[Tree, Tree]:
        """(merged tree preferring ours on conflicts, the same preferring theirs)."""
        mine: Tree = {}
        yours: Tree = {}
        for name in sorted(base.keys() | ours.keys() | theirs.keys()):
            x, o, t = base.get(name), ours.get(name), theirs.get(name)
            if o == t or x == t:
                pick = (o, o)
            elif x == o:
                pick = (t, t)
            elif o is not None and t is not None and o.kind == t.kind == "dir":
                sub = self.load(x.oid, "base") if x is not None and x.kind == "dir" else {}
                a, b = self._merge(sub, self.load(o.oid, "ours"), self.load(t.oid, "theirs"), f"{prefix}{name}/")
                pick = (self._store_tree(a), self._store_tree(b))
            else:
                self.conflicts.append(Conflict(prefix + name, x, o, t))
                pick = (o, t)
            if pick[0] is not None:
                mine[name] = pick[0]
            if pick[1] is not None:
                yours[name] = pick[1]
        return mine, yours

    def _store_tree(self, tree: Tree) -> Entry:
        oid, created = self.repo.odb.put_bytes(encode(tree))
        if created:
            self.new.append(oid)
        return Entry("dir", oid, sum(e.size for e in tree.values()), False, sum(e.files for e in tree.values()))

    def _pointer(self, tree: Tree, o: ptr.Pointer, t: ptr.Pointer) -> ptr.Pointer:
        e = self._store_tree(tree)
        return _with_extra(ptr.Pointer(o.path, "dir", e.oid, e.size, e.files, dict(o.extra)), t)

    def load(self, oid: str, side: str) -> Tree:
        """A manifest from the cache, fetched from the default remote when absent."""
        if not self.repo.odb.exists(oid):
            self._fetch(oid, side)
        return self.repo.trees.load(oid)

    def _fetch(self, oid: str, side: str) -> None:
        from runicorn.core.transfer import TransferResult, download_missing

        if not self.repo.config.remotes():
            raise MergeDriverError(self.name, f"the {side} manifest {oid[:12]} is not in the cache and no "
                                              "remote is configured")
        if self._store is None:
            from runicorn.core.remotes import open_remote

            self._store = open_remote(self.repo, None, 0)
        result = TransferResult(self._store.name)
        new: list[str] = []
        self.repo.odb.prepare()
        download_missing(self.repo, self._store, [(oid, self.name)], result, new, lambda n=1: None)
        if not self.repo.odb.exists(oid):
            why = "corrupt" if result.corrupt else "missing"
            raise MergeDriverError(self.name, f"the {side} manifest {oid[:12]} is not in the cache and is "
                                              f"{why} on remote {self._store.name!r}")
        self.repo.guard.record(new)
        self.new += new
        self.fetched += len(new)


def _same(a: ptr.Pointer, b: ptr.Pointer) -> bool:
    return (a.kind, a.oid) == (b.kind, b.oid)


def _entry(p: ptr.Pointer | None) -> Entry | None:
    return None if p is None else Entry(p.kind, p.oid, p.size, False, p.files or 1)


def _with_extra(p: ptr.Pointer, other: ptr.Pointer) -> ptr.Pointer:
    """P, plus the unknown keys only OTHER has (unknown keys are kept, as everywhere)."""
    p.extra = {**other.extra, **p.extra}
    return p

"""A Runicorn repository: a git work tree with `.runicorn/` and `.runicorn.yaml`."""
from __future__ import annotations

import os
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

from runicorn.config import Config
from runicorn.errors import NotARunicornRepoError, PathNotTrackedError
from runicorn.storage import pointer as ptr
from runicorn.storage.cache import Linker, ObjectGuard
from runicorn.storage.git import GitRepo, discover_root
from runicorn.core.workspace import Snapshot, snapshot
from runicorn.storage.git import ignore_matcher
from runicorn.storage.index import DirState, Index, NoMemo, StatMemo
from runicorn.storage.lock import repo_lock
from runicorn.storage.manifest import TreeReader
from runicorn.storage.odb import ObjectDB
from runicorn.storage.safepath import check_no_symlink_parents, repo_relative

DIRNAME = ".runicorn"
IGNORE_FILE = ".runicornignore"
PRUNE = {".git", DIRNAME}


class Repo:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.dir = self.root / DIRNAME
        self.config = Config(self.root)
        cache = Path(os.path.expanduser(self.config.get("cache.dir")))
        self.cache_dir = cache if cache.is_absolute() else self.root / cache
        self.odb = ObjectDB(self.cache_dir)
        self.tmp_dir = self.dir / "tmp"
        self.git = GitRepo(self.root)

    @classmethod
    def find(cls, start: Path | None = None) -> "Repo":
        """The repository containing START (default: the current directory); read-only."""
        root = discover_root(Path(start or Path.cwd()))
        if not (root / DIRNAME).is_dir():
            raise NotARunicornRepoError(root)
        return cls(root)

    @cached_property
    def index(self) -> Index:
        return Index(self.dir / "index.db")

    @cached_property
    def memo(self) -> StatMemo:
        return StatMemo(self.index) if self.config.get("core.memo") else NoMemo()

    @cached_property
    def dirstate(self) -> DirState:
        return DirState(self.index if self.config.get("core.memo") else None)

    @cached_property
    def _ignore(self) -> tuple[Callable[[str, bool], bool], bytes]:
        try:
            salt = (self.root / IGNORE_FILE).read_bytes()
        except FileNotFoundError:
            salt = b""
        return ignore_matcher(self.root, IGNORE_FILE), salt

    def snapshot(self, rel: str, expect: str | None = None, on_hashed=None) -> Snapshot | None:
        """Workspace content of tracked path REL (`.runicornignore` applied).

        With EXPECT (the pointer's oid), a folder whose stat fingerprint was last seen clean
        with that oid is answered from one stat walk.
        """
        ignored, salt = self._ignore
        known = None
        if expect is not None:
            row = self.dirstate.get(rel)
            known = lambda mark: expect if row == (mark, expect) else None  # noqa: E731
        rel_ignored = None if ignored is None else (lambda sub, is_dir: ignored(f"{rel}/{sub}", is_dir))
        return snapshot(self.abspath(rel), self.memo, self.jobs, rel_ignored, on_hashed, known, salt)

    def remember_clean(self, rel: str, snap: Snapshot) -> None:
        """Record that REL's folder, as stat'ed in SNAP, has SNAP.oid (skipped while racy)."""
        if snap.kind == "dir" and snap.fingerprint and not snap.racy and snap.trees:
            self.dirstate.put(rel, snap.fingerprint, snap.oid)

    @cached_property
    def guard(self) -> ObjectGuard:
        return ObjectGuard(self.odb, self.memo)

    @cached_property
    def linker(self) -> Linker:
        return Linker(self.odb, self.config.get("cache.link"), self.tmp_dir)

    @cached_property
    def trees(self) -> TreeReader:
        return TreeReader(self.odb)

    @property
    def jobs(self) -> int:
        return self.config.get("core.jobs") or os.cpu_count() or 2

    @contextmanager
    def lock(self, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        with repo_lock(self.tmp_dir / "repo.lock", self.config.get("core.lock_timeout"), on_wait):
            yield

    def autostage(self, rels: list[str]) -> None:
        """Stage the pointers / manifests a command just wrote, when `core.autostage` is on.

        RELS are repo-relative files; a file that no longer exists is removed from the git index."""
        if rels and self.config.get("core.autostage"):
            self.git.stage(rels)

    # -- paths ---------------------------------------------------------------------------
    def rel(self, user_path: str | os.PathLike) -> str:
        """A user-given path as a checked repo-relative path ('.rn' suffix stripped)."""
        rel = repo_relative(self.root, user_path)
        return rel[: -len(ptr.SUFFIX)] if rel.endswith(ptr.SUFFIX) else rel

    def abspath(self, rel: str) -> Path:
        return self.root / rel

    def pointer_file(self, rel: str) -> Path:
        return self.root / (rel + ptr.SUFFIX)

    def check_writable(self, rel: str) -> None:
        check_no_symlink_parents(self.root, rel + ptr.SUFFIX)

    def load_pointer(self, rel: str) -> ptr.Pointer:
        path = self.pointer_file(rel)
        if not path.is_file():
            raise PathNotTrackedError(rel)
        return ptr.load(path, rel + ptr.SUFFIX)

    # -- tracked paths -------------------------------------------------------------------
    def pointer_paths(self) -> list[str]:
        """Every tracked path in the workspace (from its `.rn` file); tracked folders are not entered."""
        found: list[str] = []
        for top, dirs, files in os.walk(self.root):
            rel_top = os.path.relpath(top, self.root)
            prefix = "" if rel_top == "." else rel_top.replace(os.sep, "/") + "/"
            names = {f[: -len(ptr.SUFFIX)] for f in files if f.endswith(ptr.SUFFIX)}
            found.extend(prefix + n for n in names if n)
            dirs[:] = [d for d in dirs if d not in PRUNE and d not in names]
        return sorted(found)

    def tracked(self, paths: list[str] | None = None) -> list[tuple[str, ptr.Pointer]]:
        """(relpath, pointer) for PATHS (default: all), validated; a path inside a tracked folder maps to it."""
        if not paths:
            return [(rel, self.load_pointer(rel)) for rel in self.pointer_paths()]
        out: dict[str, ptr.Pointer] = {}
        for user_path in paths:
            for rel in self._tracked_at(self.rel(user_path)):
                out[rel] = self.load_pointer(rel)
        return sorted(out.items())

    def targets(self, paths: list[str] | None = None) -> list[tuple[str, ptr.Pointer, str]]:
        """(tracked path, pointer, part inside it or '') for PATHS — granular commands use the part."""
        if not paths:
            return [(rel, p, "") for rel, p in self.tracked()]
        out: dict[tuple[str, str], ptr.Pointer] = {}
        for user_path in paths:
            rel = self.rel(user_path)
            for owner in self._tracked_at(rel):
                part = rel[len(owner) + 1:] if rel.startswith(owner + "/") else ""
                out[(owner, part)] = self.load_pointer(owner)
        whole = {owner for owner, part in out if not part}
        return sorted((o, p, part) for (o, part), p in out.items() if not part or o not in whole)

    def _tracked_at(self, rel: str) -> list[str]:
        """REL's owner, or every tracked path inside REL when REL is a plain folder."""
        try:
            return [self.owner_of(rel)]
        except PathNotTrackedError:
            inside = [t for t in self.pointer_paths() if t.startswith(rel + "/")]
            if not inside:
                raise
            return inside

    def owner_of(self, rel: str) -> str:
        """The tracked path that REL is or lies inside; PathNotTrackedError if none."""
        parts = rel.split("/")
        for i in range(len(parts), 0, -1):
            candidate = "/".join(parts[:i])
            if self.pointer_file(candidate).is_file():
                return candidate
        raise PathNotTrackedError(rel)

"""All access to git goes through this module.

pygit2 (libgit2) reads revisions, trees, blobs, refs and history; it is also the only library
allowed to write `.git/index` (autostage). dulwich supplies the pure-Python gitignore matcher
used for `.runicornignore`. Nothing else in Runicorn imports either library.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from runicorn.errors import GitError, NotAGitRepoError, RevisionError

POINTER_SUFFIX = ".rn"


class _LazyPygit2:
    """pygit2 imported on first use: status, add and checkout never need it (saves ~30 ms a command)."""

    def __getattr__(self, name: str):
        import pygit2 as module

        globals()["pygit2"] = module
        return getattr(module, name)


pygit2 = _LazyPygit2()


def discover_root(start: Path) -> Path:
    """The work tree root containing START (the nearest folder with a `.git`); read-only."""
    current = Path(os.path.abspath(start))
    for folder in (current, *current.parents):
        if os.path.exists(os.path.join(folder, ".git")):
            return Path(os.path.realpath(folder))
    raise NotAGitRepoError(start)


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author: str
    email: str
    time: int
    message: str


def _info(commit) -> CommitInfo:
    return CommitInfo(str(commit.id), commit.author.name, commit.author.email, commit.commit_time,
                      commit.message.strip().splitlines()[0] if commit.message.strip() else "")


class GitRepo:
    def __init__(self, root: Path):
        self.root = root
        try:
            self.repo = pygit2.Repository(str(root))
        except pygit2.GitError as exc:
            raise NotAGitRepoError(root) from exc

    # -- state --------------------------------------------------------------------------
    def head_sha(self) -> str | None:
        if self.repo.head_is_unborn:
            return None
        return str(self.repo.head.target)

    def branch(self) -> str | None:
        if self.repo.head_is_unborn:
            ref = self.repo.references.get("HEAD")
            return ref.target.removeprefix("refs/heads/") if ref is not None else None
        return None if self.repo.head_is_detached else self.repo.head.shorthand

    def is_dirty(self) -> bool:
        flags = pygit2.GIT_STATUS_IGNORED | pygit2.GIT_STATUS_CURRENT
        return any(not (f & flags) for f in self.repo.status().values())

    # -- revisions -----------------------------------------------------------------------
    def resolve(self, rev: str):
        try:
            obj = self.repo.revparse_single(rev)
            return obj.peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            raise RevisionError(rev) from None

    def read_file(self, rev: str, relpath: str) -> bytes | None:
        """Bytes of RELPATH in REV's tree, or None when it is not there."""
        tree = self.resolve(rev).tree
        try:
            obj = tree[relpath]
        except KeyError:
            return None
        return obj.data if obj.type == pygit2.GIT_OBJECT_BLOB else None

    def files_in_tree(self, rev: str, match: Callable[[str], bool], under: str = "") -> Iterator[tuple[str, bytes]]:
        """(path, bytes) of every blob in REV whose path satisfies MATCH."""
        tree = self.resolve(rev).tree
        if under:
            try:
                tree = tree[under]
            except KeyError:
                return
            if tree.type != pygit2.GIT_OBJECT_TREE:
                return
        yield from self._walk_tree(tree, under + "/" if under else "", match, seen=None)

    def _walk_tree(self, tree, prefix: str, match, seen: set | None):
        for entry in tree:
            path = prefix + entry.name
            if entry.type == pygit2.GIT_OBJECT_TREE:
                if seen is not None:
                    if entry.id in seen:
                        continue
                    seen.add(entry.id)
                yield from self._walk_tree(self.repo[entry.id], path + "/", match, seen)
            elif entry.type == pygit2.GIT_OBJECT_BLOB and match(path):
                if seen is not None:
                    if entry.id in seen:
                        continue
                    seen.add(entry.id)
                yield path, self.repo[entry.id].data

    def stage(self, relpaths: list[str]) -> None:
        """`git add` / `git rm --cached` for RELPATHS (the only write to `.git/index`)."""
        try:
            index = self.repo.index
            index.read()
            for rel in relpaths:
                if (self.root / rel).is_file():
                    index.add(rel)
                elif rel in index:
                    index.remove(rel)
            index.write()
        except (pygit2.GitError, OSError) as exc:
            shown = " ".join(relpaths)
            raise GitError(f"the files were written but could not be staged in git ({exc}); "
                           f"run `git add {shown}` yourself (core.autostage)") from None

    # -- what the hooks and the merge driver need ----------------------------------------
    def config_get(self, key: str) -> str | None:
        """KEY from git's config (all levels); None when unset."""
        try:
            return self.repo.config[key]
        except KeyError:
            return None

    def config_set(self, key: str, value: str) -> None:
        """Set KEY in the repository's own `.git/config`."""
        self.repo.config[key] = value

    def config_unset(self, key: str) -> None:
        try:
            del self.repo.config[key]
        except (KeyError, pygit2.GitError):
            pass

    def hooks_dir(self) -> Path:
        """Where git runs hooks from: `core.hooksPath` (relative = from the work tree root) or the
        common git folder's `hooks/` (shared by linked worktrees)."""
        custom = self.config_get("core.hooksPath")
        if custom:
            path = Path(os.path.expanduser(custom))
            return path if path.is_absolute() else self.root / path
        git_dir = Path(self.repo.path)
        common = git_dir / "commondir"
        if common.is_file():
            git_dir = (git_dir / common.read_text().strip()).resolve()
        return git_dir / "hooks"

    def changed_files(self, old: str | None, new: str, match: Callable[[str], bool]) -> list[str]:
        """Paths satisfying MATCH whose blob differs between commits OLD and NEW (OLD None or
        unknown: every matching path in NEW). Deleted paths are included."""
        new_tree = self.resolve(new).tree
        try:
            old_tree = self.resolve(old).tree if old else None
        except RevisionError:
            old_tree = None
        if old_tree is None:
            return sorted(p for p, _ in self._walk_tree(new_tree, "", match, seen=None))
        paths = set()
        for delta in old_tree.diff_to_tree(new_tree).deltas:
            for path in (delta.old_file.path, delta.new_file.path):
                if path and match(path):
                    paths.add(path)
        return sorted(paths)

    def commits_between(self, tip: str, hide: list[str], hide_refs_prefix: str | None = None) -> list:
        """Commits reachable from TIP but not from HIDE (shas; unknown ones ignored) nor from any
        ref under HIDE_REFS_PREFIX (e.g. `refs/remotes/origin/`): what a push sends."""
        walker = self.repo.walk(self.resolve(tip).id, pygit2.GIT_SORT_NONE)
        hidden = [h for h in hide if h and set(h) != {"0"}]
        if hide_refs_prefix:
            hidden += [n for n in self.repo.references if n.startswith(hide_refs_prefix)]
        for rev in hidden:
            try:
                walker.hide(self.resolve(rev).id)
            except RevisionError:
                continue
        return list(walker)

    def introduced_files(self, commits: Iterable, match: Callable[[str], bool]) -> Iterator[tuple[str, str, bytes]]:
        """(commit sha, path, bytes) of the matching blobs each commit introduces: present in it and
        different from every parent (a root commit introduces all of its files), as git-lfs scans
        a push. Each blob is yielded once."""
        seen: set = set()
        for commit in commits:
            if not commit.parents:
                found = {path: None for path, _ in self._walk_tree(commit.tree, "", match, seen=None)}
            else:
                found = None
                for parent in commit.parents:
                    paths = {d.new_file.path for d in parent.tree.diff_to_tree(commit.tree).deltas
                             if d.new_file.path and match(d.new_file.path)}
                    found = paths if found is None else found & paths
            for path in sorted(found or ()):
                try:
                    entry = commit.tree[path]
                except KeyError:
                    continue  # deleted by this commit
                if entry.type == pygit2.GIT_OBJECT_BLOB and entry.id not in seen:
                    seen.add(entry.id)
                    yield str(commit.id), path, self.repo[entry.id].data

    def index_files(self, match: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
        index = self.repo.index
        index.read()
        for entry in index:
            if match(entry.path):
                yield entry.path, self.repo[entry.id].data

    # -- scopes for gc -------------------------------------------------------------------
    def scope_commits(self, branches: bool, tags: bool, all_commits: bool, remote_branches: bool = False) -> list:
        """Commits whose trees are gc roots: HEAD, plus branch/tag tips (and remote-tracking
        branches when REMOTE_BRANCHES), plus all history."""
        tips = []
        if not self.repo.head_is_unborn:
            tips.append(self.repo.head.peel(pygit2.Commit))
        for name in self.repo.references:
            wanted = ((branches and name.startswith("refs/heads/")) or (tags and name.startswith("refs/tags/"))
                      or (remote_branches and name.startswith("refs/remotes/")))
            if all_commits:
                wanted = wanted or name.startswith("refs/")
            if wanted:
                tips.append(self._peel_ref(name))
        tips = [c for c in tips if c is not None]
        if not all_commits:
            return list({c.id: c for c in tips}.values())
        return self._history(tips)

    def _peel_ref(self, name: str):
        try:
            obj = self.repo.references[name].peel()
        except (KeyError, pygit2.GitError, ValueError) as exc:
            raise GitError(f"git ref {name} cannot be read ({exc}); repair it (`git fsck`) and rerun") from None
        return obj if obj.type == pygit2.GIT_OBJECT_COMMIT else None

    def _history(self, tips: list) -> list:
        walker = None
        for tip in tips:
            if walker is None:
                walker = self.repo.walk(tip.id, pygit2.GIT_SORT_NONE)
            else:
                walker.push(tip.id)
        return list(walker) if walker is not None else []

    def files_in_commits(self, commits: Iterable, match: Callable[[str], bool]) -> Iterator[tuple[str, str, bytes]]:
        """(commit sha, path, bytes) of matching blobs across COMMITS, each blob/tree visited once."""
        seen: set = set()
        for commit in commits:
            try:
                tree = commit.tree
            except pygit2.GitError as exc:
                raise GitError(f"commit {commit.id} cannot be read ({exc}); repair it (`git fsck`)") from None
            for path, data in self._walk_tree(tree, "", match, seen):
                yield str(commit.id), path, data

    # -- history of one path -------------------------------------------------------------
    def path_history(self, relpath: str, max_count: int | None = None) -> Iterator[tuple[CommitInfo, bytes | None]]:
        """Commits (newest first) where the blob at RELPATH changed, with its new bytes (None = deleted)."""
        if self.repo.head_is_unborn:
            return
        count = 0
        order = pygit2.GIT_SORT_TOPOLOGICAL | pygit2.GIT_SORT_TIME  # same-second commits stay in order
        for commit in self.repo.walk(self.repo.head.target, order):
            here = _blob_id(commit.tree, relpath)
            parents = [_blob_id(p.tree, relpath) for p in commit.parents]
            if (not parents and here is not None) or (parents and all(here != p for p in parents)):
                yield _info(commit), (self.repo[here].data if here is not None else None)
                count += 1
                if max_count and count >= max_count:
                    return


def _blob_id(tree, relpath: str):
    try:
        entry = tree[relpath]
    except KeyError:
        return None
    return entry.id if entry.type == pygit2.GIT_OBJECT_BLOB else None


def is_pointer_path(path: str) -> bool:
    return path.endswith(POINTER_SUFFIX)


def ignore_matcher(root: Path, ignore_file: str = ".runicornignore") -> Callable[[str, bool], bool] | None:
    """A gitignore-syntax matcher for ROOT/IGNORE_FILE (dulwich): (relpath, is_dir) → ignored.

    None when there is no ignore file (callers skip matching altogether)."""
    path = root / ignore_file
    if not path.is_file():
        return None
    from dulwich.ignore import IgnoreFilter

    patterns = IgnoreFilter.from_path(str(path))

    def ignored(rel: str, is_dir: bool) -> bool:
        return bool(patterns.is_ignored(rel + ("/" if is_dir else "")))

    return ignored


def git_version() -> str:
    return f"libgit2 {pygit2.LIBGIT2_VERSION}, pygit2 {pygit2.__version__}"


def git_output(root: Path, *args: str, check: bool = True) -> bytes:
    """Raw stdout of a read-only git command (runs capture `git diff` / `ls-files` exactly as git
    shows them: binary patches, .gitignore, submodules). Takes no optional locks; raises OSError."""
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, check=False,
                          env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"})
    if check and done.returncode != 0:
        raise OSError(f"git {args[0]} failed: {done.stderr.decode(errors='replace').strip()[:200]}")
    return done.stdout


def run_git(root: Path, *args: str) -> str:
    """Run the git command line (the demo and hooks use it as a user would); raises GitError."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except FileNotFoundError:
        raise GitError("the git command is not installed; install git and rerun") from None
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return done.stdout

"""Links between the cache and the workspace, and protection of cached objects.

`cache.link` is a chain (default reflink, hardlink, copy); the first type that works between
the cache and the workspace filesystem is used. Hardlinked files are read-only and share the
object's inode, so an in-place write would damage the object: `ObjectGuard` records each
object's (inode, size, mtime_ns) in the stat memo and re-hashes any object whose stat changed
before it is trusted, linked again or pushed.
"""
from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from runicorn.errors import CorruptObjectError, ObjectMissingError, RunicornError
from runicorn.storage import fsutil
from runicorn.storage.index import StatMemo, memo_row
from runicorn.storage.odb import ObjectDB

FICLONE = 0x40049409
# A file whose mtime is this close to the moment it was stat'ed may still change within the same
# timestamp tick ("racy git"); it is never recorded as unchanged.
RACY_NS = 1_000_000_000


def reflink(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
        except OSError:
            os.unlink(dst)
            raise


def probe_link_type(odb: ObjectDB, workspace_dir: Path, chain: list[str]) -> str:
    """The first link type of CHAIN that works from the cache into WORKSPACE_DIR."""
    odb.objects.mkdir(parents=True, exist_ok=True)
    src = fsutil.tmp_name(odb.objects / "probe")
    src.write_bytes(b"runicorn link probe")
    try:
        for kind in chain:
            dst = fsutil.tmp_name(workspace_dir / "probe")
            try:
                _make_link(kind, src, dst)
            except OSError:
                continue
            else:
                os.unlink(dst)
                return kind
    finally:
        os.unlink(src)
    raise RunicornError(f"no link type of {chain} works between the cache and {workspace_dir}; add `copy` to cache.link")


def _make_link(kind: str, src: Path, dst: Path) -> None:
    if kind == "hardlink":
        os.link(src, dst)
    elif kind == "reflink":
        reflink(src, dst)
    elif kind == "symlink":
        os.symlink(src, dst)
    else:
        import shutil

        shutil.copyfile(src, dst)


class ObjectGuard:
    """Trust an object only while its stat matches what was recorded when it was written."""

    def __init__(self, odb: ObjectDB, memo: StatMemo):
        self.odb = odb
        self.memo = memo

    def record(self, oids) -> None:
        rows = []
        for oid in oids:
            rows.append(memo_row(os.stat(self.odb.path(oid)), oid))
        self.memo.put_many(rows)

    def suspect(self, oid: str) -> bool:
        """True unless the memo vouches for this object's current stat (it may have been written in place)."""
        st = os.stat(self.odb.path(oid))
        return self.memo.get(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != oid

    def check(self, oid: str, record: bool = True) -> os.stat_result:
        """Stat of a trustworthy object OID; re-hashes it if its stat changed; quarantines if corrupt.

        ctime also changes when a link to the object is made or removed, so it is compared only
        while the object is linked somewhere besides the cache (nlink > 1): only then can it have
        been written through a workspace link. (An object whose every workspace link was deleted
        after an in-place write that restored mtime is left to `verify`.)"""
        try:
            st = os.stat(self.odb.path(oid))
        except FileNotFoundError:
            raise ObjectMissingError([oid]) from None
        if self.memo.get_lenient(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_nlink > 1) == oid:
            return st
        actual = self.odb.rehash(oid)
        if actual != oid:
            self.odb.quarantine(oid)
            self.memo.forget_oids([oid])
            raise CorruptObjectError(oid, actual)
        if record and st.st_mtime_ns < time.time_ns() - RACY_NS:  # a still-changing file is never vouched for
            self.memo.put_many([memo_row(st, oid)])
        return st


class Linker:
    """Materialises objects in the workspace with the configured link chain."""

    def __init__(self, odb: ObjectDB, chain: list[str], scratch: Path):
        self.odb = odb
        self.chain = chain
        self.scratch = scratch  # where probes are made when it shares the workspace's device
        self._kind: dict[int, str] = {}

    def kind_for(self, directory: Path) -> str:
        dev = os.stat(directory).st_dev
        if dev not in self._kind:
            self.scratch.mkdir(parents=True, exist_ok=True)
            where = self.scratch if os.stat(self.scratch).st_dev == dev else directory
            self._kind[dev] = probe_link_type(self.odb, where, self.chain)
        return self._kind[dev]

    def shares_inode(self, kind: str, executable: bool) -> bool:
        """True when the workspace file will be the object itself (hardlink)."""
        return kind == "hardlink" and not executable

    def link(self, oid: str, dest: Path, executable: bool, kind: str) -> None:
        """Make DEST the content of OID, atomically (a reader sees old or new, never half)."""
        src = self.odb.path(oid)
        if kind != "hardlink" or executable:
            if kind in ("copy", "hardlink"):
                self.odb.make_writable_copy(oid, dest, executable)
                return
        tmp = fsutil.tmp_name(dest)
        try:
            _make_link(kind, src, tmp)
            if kind == "reflink":
                os.chmod(tmp, 0o755 if executable else 0o644)
            try:
                os.rename(tmp, dest)
            except IsADirectoryError:
                raise RunicornError(f"{dest} is a directory; remove it or use --force") from None
        except OSError as exc:
            fsutil.unlink_quietly(tmp)
            if exc.errno == errno.ENOENT and not os.path.exists(src):
                raise ObjectMissingError([oid]) from None
            fsutil.raise_os_error(exc, dest)

    def link_new(self, oid: str, dest: Path) -> bool:
        """Fast path for a hardlink to a DEST that does not exist yet: one link(2), atomic."""
        try:
            os.link(self.odb.path(oid), dest)
            return True
        except FileExistsError:
            return False


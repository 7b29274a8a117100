"""The local object database: content-addressed, write-once, read-only files.

Layout: `<cache>/objects/<oid[:2]>/<oid[2:]>` — `object_relpath` is the one function that knows it,
and every remote uses it too. New objects appear under their final name only when complete
(a hardlink of a finished file, or a temp file renamed); durability is one batched
`flush_filesystem` by the caller before anything that names them is written.
"""
from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path
from typing import Iterator

from runicorn.errors import ManifestError, ObjectMissingError
from runicorn.storage import fsutil
from runicorn.storage.hashing import OID_LEN, copy_and_hash, hash_bytes, hash_file, is_oid

READ_ONLY = 0o444


def object_relpath(oid: str) -> str:
    """`objects/ab/cdef…`: the path of OID under the cache and under every remote."""
    return f"objects/{oid[:2]}/{oid[2:]}"


class ObjectDB:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.quarantine_dir = self.root / "quarantine"
        self._prefix = str(self.objects) + os.sep

    def path(self, oid: str) -> str:
        """Absolute path of OID (a str: this is on every hot path)."""
        return f"{self._prefix}{oid[:2]}{os.sep}{oid[2:]}"

    def exists(self, oid: str) -> bool:
        return os.path.exists(self.path(oid))

    def prepare(self) -> None:
        """Create the 256 fan-out folders once, so hot paths never mkdir."""
        for i in range(256):
            (self.objects / f"{i:02x}").mkdir(parents=True, exist_ok=True)

    def _fanout(self, oid: str) -> Path:
        directory = self.objects / oid[:2]
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def adopt(self, src: str, oid: str) -> bool:
        """Hardlink the finished file SRC in as OID (no copy). False if OID was already there."""
        dest = self.path(oid)
        os.chmod(src, READ_ONLY)  # first: the object must never exist writable, even after a kill
        try:
            os.link(src, dest)
        except FileExistsError:
            return False
        except FileNotFoundError:
            self._fanout(oid)  # prepare() was not run on this cache
            return self.adopt(src, oid)
        except OSError as exc:
            fsutil.raise_os_error(exc, dest)
        return True

    def copy_in(self, src: Path, on_bytes=None) -> tuple[str, bool]:
        """Stream SRC into the cache, hashing while copying. Returns (oid, created)."""
        directory = self.objects / "00"
        directory.mkdir(parents=True, exist_ok=True)
        tmp = fsutil.tmp_name(directory / "incoming")
        try:
            with open(src, "rb") as fin, open(tmp, "xb") as fout:
                oid = copy_and_hash(fin, fout, on_bytes)
            return oid, self._commit_tmp(tmp, oid)
        except OSError as exc:
            fsutil.unlink_quietly(tmp)
            fsutil.raise_os_error(exc, src)
            raise

    def put_bytes(self, data: bytes) -> tuple[str, bool]:
        """Store DATA (manifests, small records). Returns (oid, created)."""
        oid = hash_bytes(data)
        if self.exists(oid):
            return oid, False
        tmp = fsutil.tmp_name(self._fanout(oid) / "incoming")
        try:
            with open(tmp, "xb") as f:
                f.write(data)
            return oid, self._commit_tmp(tmp, oid)
        except OSError as exc:
            fsutil.unlink_quietly(tmp)
            fsutil.raise_os_error(exc, self.path(oid))
            raise

    def put_stream(self, fin, expected_oid: str | None = None, on_bytes=None) -> tuple[str, bool]:
        """Store what FIN yields; when EXPECTED_OID is given a mismatch stores nothing."""
        directory = self.objects / (expected_oid[:2] if expected_oid else "00")
        directory.mkdir(parents=True, exist_ok=True)
        tmp = fsutil.tmp_name(directory / "incoming")
        try:
            with open(tmp, "xb") as fout:
                oid = copy_and_hash(fin, fout, on_bytes)
            if expected_oid and oid != expected_oid:
                fsutil.unlink_quietly(tmp)
                return oid, False
            return oid, self._commit_tmp(tmp, oid)
        except OSError as exc:
            fsutil.unlink_quietly(tmp)
            fsutil.raise_os_error(exc, tmp)
            raise

    def _commit_tmp(self, tmp: Path, oid: str) -> bool:
        os.chmod(tmp, READ_ONLY)
        self._fanout(oid)
        if self.exists(oid):
            fsutil.unlink_quietly(tmp)
            return False
        os.replace(tmp, self.path(oid))
        return True

    def read_bytes(self, oid: str, limit: int) -> bytes:
        path = self.path(oid)
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            raise ObjectMissingError([oid]) from None
        if len(data) > limit:
            raise ManifestError(oid, f"larger than {limit} bytes")
        return data

    def rehash(self, oid: str) -> str:
        return hash_file(self.path(oid))

    def quarantine(self, oid: str) -> Path:
        """Move a corrupt object out of the way (kept for inspection, never served)."""
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        target = self.quarantine_dir / f"{oid}.{int(time.time())}"
        os.replace(self.path(oid), target)
        return target

    def remove(self, oid: str) -> None:
        fsutil.unlink_quietly(self.path(oid))

    def iter_oids(self) -> Iterator[str]:
        if not self.objects.is_dir():
            return
        for fan in sorted(os.scandir(self.objects), key=lambda e: e.name):
            if len(fan.name) != 2 or not fan.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(fan.path):
                oid = fan.name + entry.name
                if len(oid) == OID_LEN and is_oid(oid):
                    yield oid

    def clean_tmp(self, older_than: float = 3600) -> int:
        removed = 0
        if self.objects.is_dir():
            for fan in os.scandir(self.objects):
                if fan.is_dir(follow_symlinks=False):
                    removed += fsutil.remove_stale_tmp(Path(fan.path), older_than)
        return removed

    def make_writable_copy(self, oid: str, dest: Path, executable: bool) -> None:
        """DEST becomes a private copy of OID (never sharing the object's inode)."""
        tmp = fsutil.tmp_name(dest)
        try:
            shutil.copyfile(self.path(oid), tmp)
            os.chmod(tmp, 0o755 if executable else 0o644)
            os.replace(tmp, dest)
        except OSError as exc:
            fsutil.unlink_quietly(tmp)
            fsutil.raise_os_error(exc, dest)



def is_read_only(mode: int) -> bool:
    return not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)

"""SHA-256 content hashing, streamed in fixed buffers (memory stays flat whatever the size)."""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, Callable, Iterable

HASH_NAME = "sha256"
OID_LEN = 64
BUFSIZE = 1 << 20
_HEX = set("0123456789abcdef")


def is_oid(value: object) -> bool:
    return isinstance(value, str) and len(value) == OID_LEN and set(value) <= _HEX


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path) -> str:
    """Hash a file's bytes exactly as stored (no normalisation): equals `sha256sum`."""
    with open(path, "rb", buffering=0) as f:
        if os.fstat(f.fileno()).st_size <= BUFSIZE:
            return hashlib.sha256(f.read()).hexdigest()
        digest = hashlib.sha256()
        buf = bytearray(BUFSIZE)
        view = memoryview(buf)
        while n := f.readinto(buf):
            digest.update(view[:n])
        return digest.hexdigest()


def copy_and_hash(src: BinaryIO, dst: BinaryIO, on_bytes: Callable[[int], None] | None = None) -> str:
    """Copy SRC to DST in 1 MiB chunks, hashing on the way; returns the oid."""
    digest = hashlib.sha256()
    buf = bytearray(BUFSIZE)
    view = memoryview(buf)
    while True:
        n = src.readinto(buf)
        if not n:
            return digest.hexdigest()
        digest.update(view[:n])
        dst.write(view[:n])
        if on_bytes:
            on_bytes(n)


def hash_many(paths: Iterable, jobs: int, on_done: Callable[[], None] | None = None) -> list[str]:
    """Hash many files in parallel threads (hashlib releases the GIL on large updates)."""
    paths = list(paths)
    if len(paths) < 2 or jobs <= 1:
        out = []
        for p in paths:
            out.append(hash_file(p))
            if on_done:
                on_done()
        return out

    def one(p):
        oid = hash_file(p)
        if on_done:
            on_done()
        return oid

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, paths, chunksize=64))

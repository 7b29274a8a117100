"""SHA-256 content hashing, streamed in fixed buffers (memory stays flat whatever the size)."""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, Callable, Sequence

HASH_NAME = "sha256"
OID_LEN = 64
BUFSIZE = 1 << 20
PARALLEL_MIN_BYTES = 4 << 20
_HEX = set("0123456789abcdef")


def is_oid(value: object) -> bool:
    return isinstance(value, str) and len(value) == OID_LEN and set(value) <= _HEX


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path) -> str:
    """Hash a file's bytes exactly as stored (no normalisation): equals `sha256sum`."""
    with open(path, "rb", buffering=0) as f:
        if os.fstat(f.fileno()).st_size <= BUFSIZE:
            return hashlib.sha256(f.readall()).hexdigest()  # readall sizes its buffer by fstat
        digest = hashlib.sha256()
        buf = bytearray(BUFSIZE)
        view = memoryview(buf)
        while n := f.readinto(buf):
            digest.update(view[:n])
        return digest.hexdigest()


def copy_and_hash(src: BinaryIO, dst: BinaryIO, on_bytes: Callable[[int], None] | None = None) -> str:
    """Copy SRC to DST in 1 MiB chunks, hashing on the way; returns the oid."""
    digest = hashlib.sha256()
    if not hasattr(src, "readinto"):  # some remote file objects (sshfs) only read()
        while chunk := src.read(BUFSIZE):
            digest.update(chunk)
            dst.write(chunk)
            if on_bytes:
                on_bytes(len(chunk))
        return digest.hexdigest()
    buf = bytearray(BUFSIZE)
    view = memoryview(buf)
    while n := src.readinto(buf):
        digest.update(view[:n])
        dst.write(view[:n])
        if on_bytes:
            on_bytes(n)
    return digest.hexdigest()


def _hash_if_there(path) -> str | None:
    try:
        return hash_file(path)
    except FileNotFoundError:
        return None  # vanished since it was listed (a concurrent command renamed it away)


def hash_many(paths: Sequence, jobs: int, on_done: Callable[[], None] | None = None,
              sizes: Sequence[int] | None = None) -> list[str | None]:
    """Hash many files. Large files go to JOBS threads (hashlib releases the GIL on big updates);
    small ones are hashed in this thread, where thread hand-offs would cost more than the hash
    (measured here: 100k 1–4 KiB files, 0.7 s serial vs 6 s in two threads)."""
    paths = list(paths)
    out: list[str | None] = [None] * len(paths)
    done = [False] * len(paths)
    big = [i for i, size in enumerate(sizes or ()) if size >= PARALLEL_MIN_BYTES]
    if len(big) > 1 and jobs > 1:
        def one(i: int) -> None:
            out[i] = _hash_if_there(paths[i])
            done[i] = True
            if on_done:
                on_done()

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, big))
    for i, p in enumerate(paths):
        if not done[i]:
            out[i] = _hash_if_there(p)
            if on_done:
                on_done()
    return out  # type: ignore[return-value]

"""Remotes: the cache's object layout on another filesystem, reached through fsspec.

A remote is `ObjectStore(fs, root)`: `objects/<2>/<62>` under ROOT (the same `object_relpath` as
the cache), plus `runs/` for shared run records. Adding a scheme is one entry in SCHEMES and an
extra in pyproject.toml. Writes are atomic on every back end: a temp name + rename on directory
and SSH remotes, a direct PUT on S3 (an object exists only once complete). Every object read
from a remote is re-hashed before it enters the cache.
"""
from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import re
import secrets
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import unquote, urlsplit

from runicorn.errors import ConfigError, RemoteError
from runicorn.storage.hashing import BUFSIZE, is_oid
from runicorn.storage.manifest import MANIFEST_HEAD
from runicorn.storage.odb import ObjectDB, object_relpath

TRANSIENT_RETRIES = 3
BACKOFF_S = 0.5


@dataclass(frozen=True)
class Scheme:
    name: str
    extra: str | None  # pip extra that brings its fsspec back end
    atomic_put: bool  # True when a PUT is all-or-nothing (S3): no temp + rename needed
    jobs: int  # default parallel transfers


SCHEMES = {
    "local": Scheme("local", None, False, 2),  # file creation is kernel-bound: more threads only add GIL contention
    "ssh": Scheme("ssh", "ssh", False, 8),
    "s3": Scheme("s3", "s3", True, 16),
}
SUPPORTED = "a local path or file:///path, ssh://[user@]host[:port]/path, s3://bucket[/prefix]"


@dataclass(frozen=True)
class Location:
    scheme: str
    root: str  # path on the remote filesystem (bucket/prefix for S3)
    host: str = ""
    port: int | None = None
    user: str = ""


def _no_traversal(url: str, path: str) -> None:
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    if ".." in parts or any(ord(c) < 32 for c in path):
        raise ConfigError(f"remote URL {url!r} contains '..' or control characters; give a plain path")


def parse_url(url: str, repo_root: Path | None = None) -> Location:
    """Validate URL and split it; unknown schemes are refused with the supported list."""
    if not url or not isinstance(url, str):
        raise ConfigError(f"remote URL is empty; use {SUPPORTED}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file" and parts.netloc not in ("", "localhost"):
        raise ConfigError(f"remote URL {url!r} names a host; file:// remotes are local (file:///path)")
    if scheme in ("", "file") or re.match(r"^[A-Za-z]$", scheme):
        path = unquote(parts.path) if scheme == "file" else url
        _no_traversal(url, path)
        base = Path(os.path.expanduser(path))
        if not base.is_absolute():
            base = (repo_root or Path.cwd()) / base
        return Location("local", os.path.normpath(base))
    if scheme == "ssh":
        _no_traversal(url, parts.path)
        if not parts.hostname or not parts.path.strip("/"):
            raise ConfigError(f"remote URL {url!r} needs a host and a path: ssh://[user@]host[:port]/path")
        return Location("ssh", parts.path.rstrip("/") or "/", parts.hostname, parts.port, parts.username or "")
    if scheme == "s3":
        _no_traversal(url, parts.path)
        if not parts.netloc:
            raise ConfigError(f"remote URL {url!r} needs a bucket: s3://bucket[/prefix]")
        return Location("s3", f"{parts.netloc}{parts.path.rstrip('/')}")
    raise ConfigError(f"unsupported remote URL scheme {scheme!r} in {url!r}; use {SUPPORTED}")


def _import_backend(module: str, extra: str):
    try:
        return __import__(module)
    except ImportError:
        raise RemoteError(f"the {extra} back end is not installed; run `pip install runicorn[{extra}]`") from None


def make_filesystem(loc: Location, options: dict[str, Any]):
    """The fsspec filesystem for LOC, configured from remote OPTIONS (credentials included)."""
    if loc.scheme == "local":
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem()
    if loc.scheme == "ssh":
        sshfs = _import_backend("sshfs", "ssh")
        # keepalives: a server that dies mid-transfer is noticed within ~30 s instead of never
        kwargs: dict[str, Any] = {"port": options.get("port") or loc.port or 22, "skip_instance_cache": True,
                                  "connect_timeout": 15, "keepalive_interval": 10, "keepalive_count_max": 3}
        user = options.get("user") or loc.user
        if user:
            kwargs["username"] = user
        if options.get("keyfile"):
            kwargs["client_keys"] = [os.path.expanduser(options["keyfile"])]
        if options.get("password"):
            kwargs["password"] = options["password"]
        known = options.get("known_hosts")
        if known:
            kwargs["known_hosts"] = None if known == "none" else os.path.expanduser(known)
        return sshfs.SSHFileSystem(loc.host, **kwargs)
    s3fs = _import_backend("s3fs", "s3")
    client: dict[str, Any] = {}
    if options.get("endpoint_url"):
        client["endpoint_url"] = options["endpoint_url"]
    if options.get("region"):
        client["region_name"] = options["region"]
    # fail fast on a dead endpoint: a short connect timeout, few botocore attempts (we retry too)
    kwargs = {"client_kwargs": client, "skip_instance_cache": True,
              "config_kwargs": {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}}}
    if options.get("access_key_id"):
        kwargs.update(key=options["access_key_id"], secret=options.get("secret_access_key"))
    if options.get("profile"):
        kwargs["profile"] = options["profile"]
    return s3fs.S3FileSystem(**kwargs)


def _from_backend(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("asyncssh", "botocore", "aiobotocore", "aiohttp", "s3fs", "sshfs")


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (FileNotFoundError, PermissionError, FileExistsError, IsADirectoryError, NotADirectoryError)):
        return False
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return False
    return isinstance(exc, (OSError, ConnectionError, TimeoutError)) or _from_backend(exc)


class ObjectStore:
    """Objects (and run records) on one remote. Thread-safe: transfers run in a pool."""

    def __init__(self, name: str, fs, loc: Location, jobs: int):
        self.name = name
        self.fs = fs
        self.loc = loc
        self.root = loc.root.rstrip("/")
        self.scheme = SCHEMES[loc.scheme]
        self.jobs = jobs or self.scheme.jobs
        self._folders: set[str] = set()

    def path(self, oid: str) -> str:
        return f"{self.root}/{object_relpath(oid)}"

    def retry(self, what: str, fn: Callable, *args):
        """Run FN, retrying transient errors with backoff; the last failure names the remote."""
        for attempt in range(TRANSIENT_RETRIES):
            try:
                return fn(*args)
            except BaseException as exc:  # noqa: BLE001 — filtered right below
                if not _transient(exc) or attempt == TRANSIENT_RETRIES - 1:
                    if isinstance(exc, (FileNotFoundError, KeyboardInterrupt)) or not isinstance(exc, Exception):
                        raise
                    raise RemoteError(f"{what} on remote {self.name!r} failed: {type(exc).__name__}: {exc}; "
                                      "check the remote is reachable and rerun (transfers resume)") from None
                time.sleep(BACKOFF_S * 2 ** attempt)
        raise AssertionError("unreachable")

    # -- existence ------------------------------------------------------------------------
    def exists(self, oid: str) -> bool:
        return bool(self.retry("checking an object", self.fs.exists, self.path(oid)))

    def list_oids(self) -> set[str]:
        """Every object on the remote (one listing; for S3 a paginated key listing)."""
        base = f"{self.root}/objects"
        try:
            found = self.retry("listing objects", self.fs.find, base)
        except FileNotFoundError:
            return set()
        out = set()
        for path in found:
            rel = path[len(base):].lstrip("/") if path.startswith(base) else path.rsplit("/objects/", 1)[-1]
            oid = rel.replace("/", "")
            if is_oid(oid):
                out.add(oid)
        return out

    def estimate_count(self) -> int:
        """Objects on the remote, estimated from the `objects/00` fan-out folder (× 256)."""
        try:
            return len(self.retry("listing objects", self.fs.ls, f"{self.root}/objects/00", False)) * 256
        except FileNotFoundError:
            return 0

    def stale_temps(self, older_than_s: float) -> list[str]:
        """Temp files an interrupted push left on the remote, older than OLDER_THAN_S."""
        try:
            found = self.retry("listing objects", lambda: self.fs.find(f"{self.root}/objects", withdirs=False,
                                                                         detail=True))
        except FileNotFoundError:
            return []
        cutoff = time.time() - older_than_s
        stale = []
        for path, info in found.items():
            if "/.rn-tmp-" in path:
                when = info.get("mtime") or info.get("LastModified")
                when = when.timestamp() if hasattr(when, "timestamp") else when
                if when is not None and float(when) <= cutoff:
                    stale.append(path)
        return stale

    # -- transfer ---------------------------------------------------------------------------
    def upload(self, odb: ObjectDB, oid: str, on_bytes=None) -> int:
        """Copy cached OID to the remote; it appears under its final name only when complete."""
        final = self.path(oid)
        if self.scheme.atomic_put:
            self.retry(f"uploading {oid[:12]}", self._stream_up, odb.path(oid), final, on_bytes)
            return os.path.getsize(odb.path(oid))
        folder = posixpath.dirname(final)
        tmp = f"{folder}/.rn-tmp-{secrets.token_hex(8)}"
        if folder not in self._folders:  # one round trip per fan-out folder, not per object
            self.retry("creating a folder", lambda: self.fs.makedirs(folder, exist_ok=True))
            self._folders.add(folder)
        try:
            self.retry(f"uploading {oid[:12]}", self._stream_up, odb.path(oid), tmp, on_bytes)
            rename = os.replace if self.loc.scheme == "local" else self.fs.mv
            self.retry(f"renaming {oid[:12]} into place", rename, tmp, final)
        except BaseException:
            self._remove_quietly(tmp)
            raise
        return os.path.getsize(odb.path(oid))

    def _stream_up(self, local: str, remote: str, on_bytes) -> None:
        if self.loc.scheme == "local":  # same bytes, without fsspec's per-call overhead (~1 ms a file)
            shutil.copyfile(local, remote)
            if on_bytes:
                on_bytes(os.path.getsize(remote))
            return
        with open(local, "rb") as fin, _remote_file(self.fs, remote, "wb") as fout:
            while chunk := fin.read(BUFSIZE):
                fout.write(chunk)
                if on_bytes:
                    on_bytes(len(chunk))

    def download(self, odb: ObjectDB, oid: str, on_bytes=None) -> tuple[str, bool]:
        """Fetch OID into the cache, re-hashed on the way; returns (actual oid, stored)."""
        def fetch():
            with (open(self.path(oid), "rb") if self.loc.scheme == "local"
                  else _remote_file(self.fs, self.path(oid), "rb")) as fin:
                return odb.put_stream(fin, expected_oid=oid, on_bytes=on_bytes)

        return self.retry(f"downloading {oid[:12]}", fetch)

    def hash_remote(self, oid: str) -> str:
        """Re-hash one remote object without storing it (verify --remote)."""
        def run():
            digest = hashlib.sha256()
            with _remote_file(self.fs, self.path(oid), "rb") as fin:
                while chunk := fin.read(BUFSIZE):
                    digest.update(chunk)
            return digest.hexdigest()

        return self.retry(f"reading {oid[:12]}", run)

    def modified(self, oid: str) -> float | None:
        info = self.retry("reading object info", self.fs.info, self.path(oid))
        for key in ("mtime", "LastModified", "created"):
            value = info.get(key)
            if value is not None:
                return value.timestamp() if hasattr(value, "timestamp") else float(value)
        return None

    def is_manifest(self, oid: str) -> bool:
        """True when the remote object OID is a folder manifest (reads its first bytes only)."""
        def head() -> bytes:
            with _remote_file(self.fs, self.path(oid), "rb") as f:
                return f.read(len(MANIFEST_HEAD))

        return self.retry(f"reading {oid[:12]}", head) == MANIFEST_HEAD

    def delete(self, oid: str) -> None:
        self.retry(f"deleting {oid[:12]}", self.fs.rm_file, self.path(oid))

    def _remove_quietly(self, path: str) -> None:
        """Best-effort removal of a temp file after a failed upload (the connection may be gone)."""
        try:
            self.fs.rm_file(path)
        except Exception as exc:  # noqa: BLE001 — filtered: only I/O and back-end errors are swallowed
            if not (isinstance(exc, (OSError, ValueError)) or _from_backend(exc)):
                raise


@contextmanager
def _remote_file(fs, path: str, mode: str) -> Iterator[Any]:
    """fs.open(PATH, MODE), closed for good even when the connection died under it.

    A remote file whose close failed stays open, and the garbage collector retries the close at
    interpreter exit, when fsspec's event loop no longer runs: the process would hang there forever
    (seen with sshfs after the server was killed mid-upload). So a failed close marks it closed.
    A write that failed is discarded, never closed: closing an S3 file commits what it holds, and
    that would put a partial object under its final name."""
    f = fs.open(path, mode)
    try:
        yield f
    except BaseException:
        _abandon(f, discard="w" in mode)
        raise
    try:
        f.close()
    except BaseException:
        _abandon(f, discard=False)
        raise


def _abandon(f, discard: bool) -> None:
    try:
        if discard and hasattr(f, "discard"):
            f.discard()  # s3fs: abort the multipart upload; nothing reaches the final name
        else:
            f.close()  # sshfs writes under a temporary name, removed after the failure
    except Exception:  # noqa: BLE001 — the transfer already failed with the error that matters
        pass
    for attr in ("_closed", "closed"):  # sshfs's SSHFile / fsspec's AbstractBufferedFile
        try:
            setattr(f, attr, True)
        except AttributeError:
            pass


def open_store(name: str, options: dict[str, Any], repo_root: Path | None, jobs: int = 0) -> ObjectStore:
    if "url" not in options or not options["url"]:
        raise ConfigError(f"remote {name!r} has no url; set it with `runicorn remote add {name} URL`")
    loc = parse_url(options["url"], repo_root)
    try:
        fs = make_filesystem(loc, options)
    except (OSError, ConnectionError, TimeoutError) as exc:
        raise RemoteError(f"cannot connect to remote {name!r} ({type(exc).__name__}: {exc}); "
                          "check the URL, credentials and network, then rerun") from None
    except Exception as exc:  # noqa: BLE001 — back ends raise their own connection errors (asyncssh)
        if not _from_backend(exc):
            raise
        raise RemoteError(f"cannot connect to remote {name!r} ({type(exc).__name__}: {exc}); "
                          "check the URL, credentials and network, then rerun") from None
    return ObjectStore(name, fs, loc, jobs or options.get("jobs") or 0)

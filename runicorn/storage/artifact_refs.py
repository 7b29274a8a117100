"""External references of artifacts: describing and re-checking data that is not copied.

A local path or `file://` URI is hashed here (streamed); any other scheme is opened through
fsspec when its back end is installed. A checksum is `sha256:<64 hex digits>`; anything else
(e.g. a placeholder) is recorded as given and reported as not verifiable.
"""
from __future__ import annotations

import hashlib
import os
import re
from urllib.parse import unquote, urlsplit

from runicorn.storage.hashing import BUFSIZE, hash_file

SHA256 = re.compile(r"^sha256:([0-9a-f]{64})$")


def local_path(uri: str) -> str | None:
    """The filesystem path of a local URI (plain path or file://), else None."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return unquote(parts.path)
    if parts.scheme == "" or (len(parts.scheme) == 1 and os.name == "nt"):
        return uri
    return None


def describe_local(uri: str) -> tuple[str, int] | None:
    """(checksum, size) of a local regular file; None for folders, remote or missing data."""
    path = local_path(uri)
    if path is None or not os.path.isfile(path):
        return None
    return "sha256:" + hash_file(path), os.path.getsize(path)


def measure(uri: str) -> tuple[str, int]:
    """(checksum, size) of the data at URI now; OSError / FileNotFoundError when unreadable.

    Only single files can be measured: a folder raises IsADirectoryError."""
    path = local_path(uri)
    if path is not None:
        if os.path.isdir(path):
            raise IsADirectoryError(path)
        return "sha256:" + hash_file(path), os.path.getsize(path)
    import fsspec  # only for references on other filesystems

    digest = hashlib.sha256()
    size = 0
    with fsspec.open(uri, "rb") as f:
        while chunk := f.read(BUFSIZE):
            digest.update(chunk)
            size += len(chunk)
    return "sha256:" + digest.hexdigest(), size


def verifiable(checksum: str | None) -> bool:
    return bool(checksum and SHA256.match(checksum))

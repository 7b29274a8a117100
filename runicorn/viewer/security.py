"""What the viewer lets in: local Host headers only, GET/HEAD only, ids and paths checked before use.

Every id or path taken from a URL goes through one of the `check_*` functions, which raise
`PageNotFoundError` (rendered as a 404 page) for anything that is not a plain, well-formed name:
a traversal corpus (`..`, encoded slashes, absolute paths, NUL, `.git`) never reaches the disk.
"""
from __future__ import annotations

import re
import socket

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from runicorn.errors import PageNotFoundError

LOCAL_NAMES = {"localhost", "127.0.0.1", "[::1]", "::1"}
READ_METHODS = {"GET", "HEAD"}

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}(:[A-Za-z0-9_.\-]{1,64})?$")
_SHA = re.compile(r"^[0-9a-fA-F]{4,40}$")
_KEY = re.compile(r"^[^\x00-\x1f\\]{1,200}$")
_NODE = re.compile(r"^(artifact|run|data):[^\x00-\x1f\\]{1,300}$")


def _no(what: str, value: str) -> PageNotFoundError:
    return PageNotFoundError(what, value)


def check_run_id(value: str) -> str:
    if not _RUN_ID.match(value or "") or ".." in value:
        raise _no("run", value)
    return value


def check_name(value: str) -> str:
    if not _NAME.match(value or "") or ".." in value:
        raise _no("artifact", value)
    return value


def check_ref(value: str) -> str:
    """An artifact reference NAME or NAME:VERSION (v3, 3, latest, an alias or stage)."""
    if not _REF.match(value or "") or ".." in value:
        raise _no("artifact", value)
    return value


def check_sha(value: str) -> str:
    if not _SHA.match(value or ""):
        raise _no("commit", value)
    return value.lower()


def check_metric_key(value: str) -> str:
    """A metric key: any printable text up to 200 characters; '/' separates groups (val/acc)."""
    if not _KEY.match(value or "") or any(p in ("", ".", "..") for p in value.split("/")):
        raise _no("metric", value)
    return value


def check_node(value: str) -> str:
    if not _NODE.match(value or "") or "/../" in f"/{value}/" or value.endswith(":.."):
        raise _no("lineage node", value)
    return value


def check_relpath(value: str) -> str:
    """A repository-relative path: plain segments, no `..`, `.`, `.git`, backslash or control chars."""
    if not value or len(value) > 1024 or value.startswith("/") or "\\" in value:
        raise _no("path", value)
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        raise _no("path", value)
    parts = value.split("/")
    if any(p in ("", ".", "..") or p.lower() == ".git" for p in parts):
        raise _no("path", value)
    return value


def allowed_hosts(bound: str) -> set[str]:
    """Host names a request may carry: localhost, the bound address, and for a wildcard bind
    (0.0.0.0, ::) this machine's own name and addresses."""
    names = set(LOCAL_NAMES)
    if bound in ("0.0.0.0", "::"):
        names.update(_own_names())
    elif bound:
        names.add(bound.lower())
        if ":" in bound and not bound.startswith("["):
            names.add(f"[{bound.lower()}]")
    return names


def _own_names() -> set[str]:
    host = socket.gethostname()
    names = {host.lower(), socket.getfqdn().lower()}
    try:
        names.update(a.lower() for a in socket.gethostbyname_ex(host)[2])
    except OSError:  # a host name that does not resolve: only the names themselves
        pass
    return names


def host_name(header: str) -> str:
    """The host part of a Host header ('[::1]:8000' → '[::1]', 'a:1' → 'a')."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[: end + 1] if end > 0 else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class LocalOnly:
    """ASGI middleware: 421 for a Host header naming another machine (DNS rebinding), 405 for writes."""

    def __init__(self, app: ASGIApp, bound: str = "127.0.0.1"):
        self.app = app
        self.allowed = allowed_hosts(bound)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
            if host_name(host) not in self.allowed:
                response = PlainTextResponse(
                    "421 Misdirected Request: this viewer only answers to localhost or its bound address\n",
                    status_code=421)
                await response(scope, receive, send)
                return
            if scope["method"] not in READ_METHODS:
                response = PlainTextResponse("405 Method Not Allowed: the viewer is read-only\n",
                                             status_code=405, headers={"Allow": "GET, HEAD"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

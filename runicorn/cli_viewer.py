"""The command line for viewer, viewer export; registered on runicorn.cli.app."""
from __future__ import annotations

import errno
import socket
import sys
import threading
import time
import webbrowser
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from runicorn.cli import Json, Quiet, Verbose, _say, app
from runicorn.console import print_json
from runicorn.errors import RunicornError, ViewerBindError

viewer_app = typer.Typer(help="Serve the web viewer (runs, artifacts, lineage, commits, data); see docs/viewer.md.",
                         invoke_without_command=True)
app.add_typer(viewer_app, name="viewer")

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _config_default(key: str):
    from runicorn.config import Config
    from runicorn.storage.git import discover_root

    try:
        return Config(discover_root(Path.cwd())).get(key)
    except RunicornError:  # outside a repo (or a broken config) the declared default applies
        from runicorn.config import KEYS

        return KEYS[key].default


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "port in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise ViewerBindError(f"{host}:{port}", reason) from None
    except (socket.gaierror, OverflowError) as exc:
        sock.close()
        raise ViewerBindError(f"{host}:{port}", str(exc)) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@viewer_app.callback()
def viewer(ctx: typer.Context,
           host: Annotated[Optional[str], typer.Option("--host", help="Address to bind (default viewer.host, 127.0.0.1).")] = None,
           port: Annotated[Optional[int], typer.Option("--port", help="Port (default viewer.port, 23300; 0 = any free port).")] = None,
           open_browser: Annotated[bool, typer.Option("--open", help="Open the dashboard in a web browser.")] = False,
           quiet: Quiet = False) -> None:
    """Serve the read-only web viewer of this repository (Ctrl-C stops it)."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from runicorn.viewer.app import create_app

    host = host or _config_default("viewer.host")
    port = _config_default("viewer.port") if port is None else port
    if host not in LOOPBACK:
        print(f"warning: the viewer listens on {host}, reachable from other machines; it only answers requests "
              "whose Host header is this address or localhost", file=sys.stderr)
    sock = _bind(host, port)
    real_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{real_port}/"
    server = uvicorn.Server(uvicorn.Config(create_app(Path.cwd(), host=host), log_level="warning",
                                           access_log=False, lifespan="off"))
    _say(quiet, f"Runicorn viewer at {url} (read-only; Ctrl-C to stop)")
    sys.stdout.flush()
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    server.run(sockets=[sock])


@viewer_app.command("export")
def export(directory: Annotated[Path, typer.Argument(help="Folder to write the static site into (absent or empty).")],
           force: Annotated[bool, typer.Option("--force", help="Replace DIR if it is not empty.")] = False,
           json: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Write the viewer's pages as a static site (open DIR/index.html; no server needed)."""
    from runicorn.core.repo import Repo
    from runicorn.viewer.export import export_site

    started = time.perf_counter()
    result = export_site(Repo.find(), directory, force=force)
    result["seconds"] = round(time.perf_counter() - started, 3)
    if json:
        print_json(result)
    else:
        _say(quiet, f"exported {result['pages']} pages to {result['dir']} in {result['seconds']} s; "
                    f"open {result['index']}")

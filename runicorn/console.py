"""Terminal output for the CLI: rich on a terminal, plain lines otherwise, JSON when asked."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape as _escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from runicorn.core.events import Reporter


def interactive() -> bool:
    """A person is at a terminal: stdin and stdout are ttys and CI is not set."""
    return sys.stdin.isatty() and sys.stdout.isatty() and not os.environ.get("CI")


def _color() -> bool | None:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR") or os.environ.get("RUNICORN_FORCE_COLOR"):
        return True
    if os.environ.get("CI"):
        return False  # CI logs are not terminals, even when a runner fakes one
    return None


def plain_usage_errors() -> None:
    """typer draws usage errors and --help with its own rich console: no colour there either
    when ours has none (CI, NO_COLOR)."""
    if _color() is False:
        try:
            import typer.rich_utils
        except ImportError:  # typer without rich: plain already
            return
        typer.rich_utils.COLOR_SYSTEM = None


out = Console(highlight=False, soft_wrap=True, force_terminal=_color(), no_color=_color() is False)
err = Console(stderr=True, highlight=False, soft_wrap=True, force_terminal=_color(), no_color=_color() is False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def printable(text: str) -> str:
    """TEXT on one line with control characters escaped (names in errors come from files)."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def error(message: str) -> None:
    err.print("[red]error:[/red] " + _escape(printable(message)))


class CliReporter(Reporter):
    """Progress bars on a terminal; a plain line every few seconds otherwise; quiet silences info."""

    PLAIN_EVERY_S = 5.0

    def __init__(self, quiet: bool = False, verbose: bool = False, machine: bool = False):
        self.quiet = quiet
        self.verbose = verbose
        self.machine = machine  # --json: stdout is reserved for the document
        self.bars = not quiet and not machine and interactive()
        self._progress: Progress | None = None

    def task(self, description: str, total: int | None = None, unit: str = "files") -> Callable[[int], None]:
        if self.bars:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=err, transient=True)
            self._progress.start()
            task_id = self._progress.add_task(description, total=total)
            progress = self._progress
            return lambda n=1: progress.advance(task_id, n)
        return self._plain(description, total, unit)

    def _plain(self, description: str, total: int | None, unit: str) -> Callable[[int], None]:
        if self.quiet:
            return lambda n=1: None
        state = {"done": 0, "last": time.monotonic()}

        def advance(n: int = 1) -> None:
            state["done"] += n
            now = time.monotonic()
            if now - state["last"] >= self.PLAIN_EVERY_S:
                state["last"] = now
                of = f"/{total:,}" if total else ""
                err.print(_escape(f"{description}: {state['done']:,}{of} {unit}"))

        return advance

    def end_task(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def warn(self, message: str) -> None:
        err.print("[yellow]warning:[/yellow] " + _escape(printable(message)))

    def info(self, message: str) -> None:
        if not self.quiet:
            err.print(_escape(message))

    def confirm(self, question: str) -> bool:
        if not interactive():
            return False
        import typer

        return typer.confirm(question, default=False)

"""How core reports to an interface without printing: a Reporter the interface implements."""
from __future__ import annotations

from typing import Callable


class Reporter:
    """No-op reporter (library use, tests). The CLI passes one backed by rich."""

    def task(self, description: str, total: int | None = None, unit: str = "files") -> Callable[[int], None]:
        """Start a unit of long work; returns advance(n)."""
        return lambda n=1: None

    def end_task(self) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def confirm(self, question: str) -> bool:
        """Asked before destructive work; library default: no."""
        return False


NULL = Reporter()

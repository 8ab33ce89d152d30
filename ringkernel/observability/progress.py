"""A one-line progress bar for long command-line work (``python -m bench``, ``python -m fuzz``).

It draws only when the stream is a terminal: logs and pipes get the tools'
ordinary lines instead of carriage returns.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def bar(fraction: float, width: int = 24) -> str:
    """``[#########...............]  37%`` for ``fraction`` (clamped into 0..1)."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:3.0f}%"


class ProgressBar:
    """``step(label)`` before each of ``total`` items; ``close()`` ends the line."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.done = 0
        self.start = time.monotonic()

    def step(self, label: str) -> None:
        """Shows that item ``done + 1`` (``label``) is under way, then counts it."""
        self.draw(label)
        self.done += 1

    def draw(self, label: str) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        text = f"{bar(self.done / self.total)} {self.done + 1}/{self.total} {label}  {elapsed:.0f}s"
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()

    def close(self) -> None:
        """Clears the bar's line, so what is printed next starts clean."""
        if self.enabled:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

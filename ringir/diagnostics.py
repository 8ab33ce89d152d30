"""Diagnostics: source locations and the one error type users see.

Every error caused by the user's input (kernel source, RingIR text, launch
arguments) is a :class:`CompileError` formatted like a C compiler's::

    kernels.py:12:9: error: 'print' is not supported in kernels
        print(x)
        ^^^^^^^^

Lines and columns are 1-based and count from the start of the file.
"""

from __future__ import annotations

import linecache
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLoc:
    """A span in a source file: 1-based line and column, ``end_col`` exclusive."""

    filename: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.col}"


class CompileError(Exception):
    """Bad input to the compiler, with the place in the user's source that caused it."""

    def __init__(
        self,
        message: str,
        *,
        filename: str | None = None,
        line: int | None = None,
        col: int | None = None,
        end_col: int | None = None,
        source_line: str | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.message = message
        self.filename = filename
        self.line = line
        self.col = col
        self.end_col = end_col
        self.notes = tuple(notes)
        if source_line is None and filename and line:
            source_line = linecache.getline(filename, line).rstrip("\r\n") or None
        self.source_line = source_line
        super().__init__(self.format())

    @classmethod
    def at(cls, loc: SourceLoc | None, message: str, *, notes: tuple[str, ...] = ()) -> CompileError:
        """An error at ``loc`` (or without position when ``loc`` is None)."""
        if loc is None:
            return cls(message, notes=notes)
        end_col = loc.end_col if loc.end_line in (None, loc.line) else None
        return cls(message, filename=loc.filename, line=loc.line, col=loc.col, end_col=end_col, notes=notes)

    def format(self) -> str:
        where = ""
        if self.filename or self.line:
            parts = [self.filename or "<unknown>"]
            if self.line is not None:
                parts.append(str(self.line))
                if self.col is not None:
                    parts.append(str(self.col))
            where = ":".join(parts) + ": "
        text = f"{where}error: {self.message}"
        if self.source_line is not None and self.col is not None:
            text += "\n" + _caret_lines(self.source_line, self.col, self.end_col)
        for note in self.notes:
            text += f"\nnote: {note}"
        return text

    def __str__(self) -> str:
        return self.format()


def _caret_lines(source_line: str, col: int, end_col: int | None) -> str:
    """The source line and a ``^^^`` underline spanning ``col``..``end_col``."""
    line = source_line.expandtabs(1)
    start = max(col - 1, 0)
    stop = end_col - 1 if end_col is not None and end_col > col else start + 1
    stop = max(min(stop, len(line)), start + 1)
    return f"    {line}\n    {' ' * start}{'^' * (stop - start)}"


def debug_tracebacks() -> bool:
    """``RINGKERNEL_DEBUG=1`` keeps the compiler's internal traceback on errors."""
    return os.environ.get("RINGKERNEL_DEBUG", "") not in ("", "0")

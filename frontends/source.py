"""Finding a function's source and resolving the names it uses.

The frontend reads a kernel from the *whole file's* syntax tree so line and
column numbers are the file's own, also for nested and indented functions.
Names are resolved through a :class:`Resolver`: the decorators resolve them
against the live function's globals and closure; ``ringc`` resolves them
statically without executing the file.

Annotations follow Python's own rules, which differ from the body's: Python
evaluates a nested function's annotations at ``def`` time *in the enclosing
scope*, so ``def k(x: Array[f64])`` inside ``outer`` sees ``outer``'s locals
without making them closure cells.  Evaluated annotations are taken as they
are from ``__annotations__``; string annotations (``from __future__ import
annotations``) and annotations of body variables are resolved against the
closure, then the enclosing scope's locals captured when the decorator ran
(as TorchScript's ``createResolutionCallbackFromFrame`` does), then globals
and builtins.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import linecache
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ringkernel.frontends.dsl import TypeVar
from ringkernel.ringir.diagnostics import CompileError, SourceLoc
from ringkernel.ringir.types import Type


class Resolver(Protocol):
    """Maps a free name in a kernel to the Python object it denotes."""

    def lookup(self, name: str) -> Any:
        """Returns the object, or raises ``KeyError`` if the name is unknown."""
        ...


@dataclass(frozen=True)
class FunctionSource:
    """A Python function's syntax tree plus what is needed to report errors in it."""

    name: str
    filename: str
    node: ast.FunctionDef
    lines: tuple[str, ...]
    resolver: Resolver = field(compare=False)

    def loc(self, node: ast.AST) -> SourceLoc:
        """The 1-based, character-based location of ``node`` in the file."""
        line = getattr(node, "lineno", self.node.lineno)
        end_line = getattr(node, "end_lineno", None)
        col = _char_col(self.lines, line, getattr(node, "col_offset", 0))
        end_col = None
        end_offset = getattr(node, "end_col_offset", None)
        if end_line is not None and end_offset is not None:
            end_col = _char_col(self.lines, end_line, end_offset) + 1
        return SourceLoc(self.filename, line, col + 1, end_line, end_col)

    def error(self, node: ast.AST, message: str) -> CompileError:
        loc = self.loc(node)
        source_line = self.lines[loc.line - 1].rstrip("\r\n") if loc.line <= len(self.lines) else None
        end_col = loc.end_col if loc.end_line in (None, loc.line) else None
        return CompileError(
            message,
            filename=loc.filename,
            line=loc.line,
            col=loc.col,
            end_col=end_col,
            source_line=source_line,
        )


def _char_col(lines: tuple[str, ...], line: int, byte_col: int) -> int:
    """ast columns count UTF-8 bytes; diagnostics count characters."""
    if not 1 <= line <= len(lines):
        return byte_col
    return len(lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


class RuntimeResolver:
    """Resolves body names like Python would at call time: closure, globals, builtins."""

    def __init__(self, pyfunc: Any, enclosing: dict[str, Any] | None = None) -> None:
        self._closure: dict[str, Any] = {}
        code = pyfunc.__code__
        for name, cell in zip(code.co_freevars, pyfunc.__closure__ or ()):
            try:
                self._closure[name] = cell.cell_contents
            except ValueError:
                continue  # a cell not yet filled: treated as unknown
        self._globals = pyfunc.__globals__
        self._enclosing = enclosing or {}
        self._annotations: dict[str, Any] = dict(getattr(pyfunc, "__annotations__", None) or {})

    def lookup(self, name: str) -> Any:
        if name in self._closure:
            return self._closure[name]
        if name in self._globals:
            return self._globals[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise KeyError(name)

    def annotation(self, name: str) -> Any:
        """The evaluated annotation of parameter ``name`` (``"return"`` for the result).

        Raises ``KeyError`` when there is none or it is a string still to be resolved.
        """
        value = self._annotations[name]
        if isinstance(value, str):
            raise KeyError(name)
        return value

    def lookup_annotation_name(self, name: str) -> Any:
        """A name inside a string or body annotation: closure, enclosing locals, globals, builtins."""
        if name in self._closure:
            return self._closure[name]
        if name in self._enclosing:
            return self._enclosing[name]
        return self.lookup(name)


def enclosing_scope(pyfunc: Any, max_depth: int = 16) -> dict[str, Any] | None:
    """The type-like locals of the scope that is defining ``pyfunc`` right now, if any.

    Called by a decorator: walks up the stack to the frame of the function (or
    class body) named by ``pyfunc``'s qualified name.  Only values that can
    appear in a type annotation are kept (types, modules, RingIR types, numpy
    dtypes, rk.TypeVars), so a kernel does not keep the enclosing function's
    arrays alive.
    Module-level functions need none: their scope is their globals.
    """
    qualname = getattr(pyfunc, "__qualname__", "")
    parent = qualname.rpartition(".")[0]
    if not parent:
        return None
    if parent.endswith(".<locals>"):
        parent = parent[: -len(".<locals>")]
    frame: types.FrameType | None = sys._getframe(1)
    for _ in range(max_depth):
        if frame is None:
            return None
        if getattr(frame.f_code, "co_qualname", frame.f_code.co_name) == parent:
            return {k: v for k, v in frame.f_locals.items() if _type_like(v)}
        frame = frame.f_back
    return None


def _type_like(value: Any) -> bool:
    return isinstance(value, (type, types.ModuleType, Type, np.dtype, TypeVar))


def source_of(pyfunc: Any, enclosing: dict[str, Any] | None = None) -> FunctionSource:
    """The :class:`FunctionSource` of a live Python function.

    ``enclosing`` holds the defining scope's locals (see :func:`enclosing_scope`)
    for annotations that Python left as strings.
    """
    name = pyfunc.__name__
    code = getattr(pyfunc, "__code__", None)
    if code is None:
        raise CompileError(f"'{name}' is not a Python function; only functions can be kernels")
    filename = code.co_filename
    lines = tuple(linecache.getlines(filename, pyfunc.__globals__))
    node = _find_def(lines, name, code.co_firstlineno) if lines else None
    if node is None:
        try:
            src_lines, start = inspect.getsourcelines(pyfunc)
        except (OSError, TypeError):
            raise CompileError(
                f"cannot read the source of '{name}' (defined in {filename}); kernels must be "
                "defined in a file or in source registered with linecache"
            ) from None
        lines = tuple([""] * (start - 1) + list(src_lines))
        node = _find_def(lines, name, code.co_firstlineno)
        if node is None:
            raise CompileError(f"cannot find the definition of '{name}' in {filename}")
    return FunctionSource(name, filename, node, lines, RuntimeResolver(pyfunc, enclosing))


def _find_def(lines: tuple[str, ...], name: str, first_line: int) -> ast.FunctionDef | None:
    tree: ast.AST | None
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # too deep elsewhere in the file
        tree = _parse_indented(lines, first_line)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            if first_line in (start, node.lineno):
                return node  # type: ignore[return-value]
    return None


def _parse_indented(lines: tuple[str, ...], first_line: int) -> ast.AST | None:
    """Parses just the block starting at ``first_line`` when the file as a whole does not parse."""
    block = inspect.getblock(list(lines[first_line - 1 :]))
    indent = len(block[0]) - len(block[0].lstrip())
    body = "".join(line[indent:] if line[:indent].isspace() else line for line in block)
    try:
        tree = ast.parse(body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    ast.increment_lineno(tree, first_line - 1)
    for node in ast.walk(tree):
        if hasattr(node, "col_offset"):
            node.col_offset += indent
            end_offset = getattr(node, "end_col_offset", None)
            if end_offset is not None:
                node.end_col_offset = end_offset + indent  # type: ignore[attr-defined]
    return tree

"""Reading kernels from a Python file without running it, for ``ringc``.

``ringc`` must be safe on untrusted files, so it never imports or executes
them.  :func:`scan_source` parses the file with ``ast`` and walks its
*top-level* statements in order, binding each module-level name the way
Python would, but statically:

- imports of ``ringkernel`` (and the submodules a kernel file uses), ``math``
  and ``numpy`` bind :class:`StaticModule` tables of the objects ringc itself
  already imported: ringc never imports anything a file names (importing
  ``numpy.f2py.__main__`` or ``ringkernel.__main__`` runs a program);
- ``N = 256`` or ``SCALE = 2.0 * N``: numeric constant expressions are
  evaluated by the arithmetic evaluator over the ``ast`` that the kernel
  translator folds with too (:mod:`ringkernel.frontends.consteval`, never ``eval``);
- functions decorated with ``@rk.kernel`` / ``@rk.func`` (under whatever alias
  the file imported) become :class:`StaticFunction` stand-ins that the
  frontend translates exactly like the decorators' objects;
- ``@rk.message`` classes become real message classes, built by the real
  decorator from the statically read fields (no class body runs), and
  ``@rk.actor`` classes become :class:`StaticActor`, whose methods go through
  the same actor frontend and actor-lowering pass as ``@rk.actor``;
- anything else (a call's result, an import from another module, a plain
  function, a name bound inside ``if``/``try``) is a :class:`RuntimeOnly`
  marker.  A kernel that uses one gets a diagnostic at the use, saying that
  ringc cannot know its value without running the file.

Decorated functions nested inside other functions or classes are not found:
their names and constants live in scopes that only exist at run time.
"""

from __future__ import annotations

import ast
import builtins
import functools
import io
import sys
import tokenize
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ringkernel.frontends import consteval
from ringkernel.frontends.consteval import NotConstant
from ringkernel.frontends.dsl import Array, Port, PortType, TypeVar, Vec
from ringkernel.frontends.source import FunctionSource
from ringkernel.ringir import Module
from ringkernel.ringir.diagnostics import CompileError

ALLOWED_MODULES = ("ringkernel", "math", "numpy")
"""Top-level packages whose names a scanned file may import (from :data:`STATIC_MODULES`)."""

STATIC_MODULES = (
    "math",
    "numpy",
    "ringkernel",
    "ringkernel.kernels",
    "ringkernel.actors",
    "ringkernel.frontends.dsl",
    "ringkernel.ringir.types",
)
"""The modules whose names ringc knows: each is a table of objects ringc had already imported."""

SAFE_BUILTINS = ("range", "abs", "min", "max", "int", "float", "bool", "len", "print", "tuple")
"""Builtins that resolve to the real objects (the frontend knows them by identity)."""

FUNCTION_KINDS = ("kernel", "func")
CLASS_KINDS = ("actor", "message", "struct")


@dataclass(frozen=True)
class RuntimeOnly:
    """A module-level name whose value only running the file would tell."""

    name: str
    why: str
    line: int
    message: str | None = None  # replaces the "cannot know without running" wording


class StaticFunction:
    """Stands in for the object ``@rk.kernel`` / ``@rk.func`` would have returned."""

    def __init__(self, kind: str, source: FunctionSource) -> None:
        self.__name__ = source.name
        self.ringkernel_kind = kind
        self.ringkernel_source = source
        self.line = source.node.lineno
        self.syntax = source.node

    @property
    def scope_value(self) -> Any:
        return self

    def __repr__(self) -> str:
        return f"<ringc {self.ringkernel_kind} {self.__name__} at line {self.line}>"


class StaticMessage:
    """A ``@rk.message`` class of the file; kernels and handlers see the real message class."""

    ringkernel_kind = "message"

    def __init__(self, stmt: ast.ClassDef, cls: type) -> None:
        self.__name__ = stmt.name
        self.line = stmt.lineno
        self.syntax = stmt
        self.scope_value = cls

    def fields(self) -> str:
        from ringkernel.frontends.actors import message_info

        info = message_info(self.scope_value)
        assert info is not None  # a StaticMessage wraps a message class
        return ", ".join(f"{f.name}: {f.type}" for f in info.layout.fields)


class StaticStruct:
    """A ``@rk.struct`` class of the file; kernels see the real struct type, built from its fields."""

    ringkernel_kind = "struct"

    def __init__(self, stmt: ast.ClassDef, struct: Any) -> None:
        self.__name__ = stmt.name
        self.line = stmt.lineno
        self.syntax = stmt
        self.scope_value = struct


class StaticActor:
    """A ``@rk.actor`` class of the file, compiled like ``ActorType`` but from the syntax tree.

    Its handlers and helpers are read when it is first compiled, so messages
    defined further down the file resolve (as they would for the decorator at
    run time, in any order the file imports them).
    """

    ringkernel_kind = "actor"

    def __init__(self, stmt: ast.ClassDef, fields: list[tuple[ast.AnnAssign, Any, Any]], method_source: Any):
        self.__name__ = stmt.name
        self.line = stmt.lineno
        self.stmt = self.syntax = stmt
        self.fields = fields
        self.method_source = method_source
        self._info: Any = None
        self._modules: dict[str, Module] = {}

    @property
    def scope_value(self) -> Any:
        return RuntimeOnly(self.__name__, "", self.line, f"actor '{self.__name__}' cannot be used in kernels")

    @property
    def info(self) -> Any:
        if self._info is None:
            self._info = static_actor_info(self)
        return self._info

    def module(self, mode: str = "persistent") -> Module:
        """The lowered RingIR of the actor: handler funcs plus its loop kernel (``ActorType.module``)."""
        from ringkernel.frontends.actors import build_actor_module
        from ringkernel.ringir.passes.actor_lowering import lower_actor

        if mode not in self._modules:
            module = build_actor_module(self.info)
            self._modules[mode] = lower_actor(module, self.info.name, mode, threads=self.info.threads)
        return self._modules[mode]


@dataclass
class ScanResult:
    """What :func:`scan_source` found, in file order, and the errors of the definitions themselves.

    ``entries`` are the kernels and funcs (what ``build_module`` takes);
    ``definitions`` also holds the message and actor classes.
    """

    filename: str
    definitions: list[Any]
    errors: list[CompileError]
    scope: dict[str, Any]
    lines: tuple[str, ...] = ()

    def nesting_error(self, definition: Any) -> tuple[int, CompileError]:
        """How deeply ``definition``'s syntax nests, and the error at its deepest statement."""
        depth, statement = nesting_depth(definition.syntax)
        message = _TOO_DEEP(depth=f" ({depth} levels)")
        return depth, located_error(self.filename, self.lines, statement, message)

    @property
    def entries(self) -> list[StaticFunction]:
        return [d for d in self.definitions if isinstance(d, StaticFunction)]

    @property
    def actors(self) -> list[StaticActor]:
        return [d for d in self.definitions if isinstance(d, StaticActor)]

    @property
    def messages(self) -> list[StaticMessage]:
        return [d for d in self.definitions if isinstance(d, StaticMessage)]

    def get(self, name: str) -> Any:
        for definition in self.definitions:
            if definition.__name__ == name:
                return definition
        return None


class StaticResolver:
    """Resolves a function's free names against a file's statically known module scope.

    One resolver per function, so a :class:`RuntimeOnly` name can be reported
    at its first use inside that function.
    """

    def __init__(self, scope: dict[str, Any], star_imports: list[tuple[str, int]], source: _Located):
        self.scope = scope
        self.star_imports = star_imports
        self.located = source

    def lookup(self, name: str) -> Any:
        if name in self.scope:
            value = self.scope[name]
            if isinstance(value, RuntimeOnly):
                raise self.located.error_at_use(name, _runtime_message(value))
            return value
        if name in SAFE_BUILTINS:
            return getattr(builtins, name)
        if hasattr(builtins, name):
            raise self.located.error_at_use(name, f"the Python builtin '{name}' is not available in kernels")
        if self.star_imports:
            module, line = self.star_imports[0]
            raise self.located.error_at_use(
                name,
                f"'{name}' is not defined in this file; it may come from 'from {module} import *' "
                f"(line {line}), which ringc cannot follow without running the file",
            )
        raise KeyError(name)


@dataclass(frozen=True)
class _Located:
    """A function's syntax tree and file text, to point at the first use of a name."""

    filename: str
    node: ast.FunctionDef
    lines: tuple[str, ...]

    def error_at_use(self, name: str, message: str) -> CompileError:
        uses = [
            n
            for part in _searchable_parts(self.node)
            for n in ast.walk(part)
            if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
        ]
        first = min(uses, key=lambda n: (n.lineno, n.col_offset)) if uses else self.node
        return located_error(self.filename, self.lines, first, message)


class _NoNames:
    def lookup(self, name: str) -> Any:
        raise KeyError(name)


def located_error(filename: str, lines: tuple[str, ...], node: Any, message: str) -> CompileError:
    """A CompileError at ``node`` of a file (character columns, source line, caret)."""
    return FunctionSource("<module>", filename, node, lines, _NoNames()).error(node, message)


def _searchable_parts(fn: ast.FunctionDef) -> list[ast.AST]:
    """Everything in a function that the frontend resolves names in (not its decorators)."""
    return [fn.args, *([fn.returns] if fn.returns else []), *fn.body]


def _runtime_message(value: RuntimeOnly) -> str:
    if value.message:
        return value.message
    return f"ringc cannot know the value of '{value.name}' without running the file: {value.why}"


# --- scanning -------------------------------------------------------------------------------


def split_lines(text: str) -> tuple[str, ...]:
    """The file's lines as ``ast`` counts them (only \\n, \\r\\n and \\r end a line)."""
    lines: list[str] = []
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "\r\n":
            end = i + 2 if text.startswith("\r\n", i) else i + 1
            lines.append(text[start:end])
            start = i = end
            continue
        i += 1
    if start < len(text):
        lines.append(text[start:])
    return tuple(lines)


@dataclass(frozen=True)
class ScanContext:
    """What the reader needs of RingKernel's facade, handed in so this module imports no facade.

    ``decorators`` maps ``id`` of each decorator object (``rk.kernel``,
    ``rk.func``, ``rk.actor``, ``rk.message``) to the kind it marks;
    ``make_message`` is ``rk.message``, which builds a real message class
    from the fields read statically.
    """

    decorators: dict[int, str]
    make_message: Callable[[type], type]
    make_struct: Callable[[type], Any] | None = None

    @classmethod
    def from_facade(cls, facade: Any) -> ScanContext:
        """The context of a module-like ``facade`` holding the decorators by their kind names."""
        decorators = {}
        for kind in (*FUNCTION_KINDS, *CLASS_KINDS):
            obj = getattr(facade, kind, None)
            if obj is not None:
                decorators[id(obj)] = kind
        return cls(decorators, facade.message, getattr(facade, "struct", None))


def scan_source(text: str, filename: str, context: ScanContext | None = None) -> ScanResult:
    """Finds the ``@rk.kernel``/``@rk.func`` functions of a Python file, without running it.

    ``context`` defaults to the decorators of ringc's own table of ``ringkernel``
    (:func:`static_modules`): the objects a scanned file's imports resolve to.
    A syntax error in the file is raised as :class:`CompileError` at its line and column.
    """
    tree = parse_python(text, filename)
    if context is None:
        context = ScanContext.from_facade(static_modules()["ringkernel"])
    return _Scanner(filename, split_lines(text), context).scan(tree)


def parse_python(text: str, filename: str) -> ast.Module:
    """``ast.parse`` with Python's own errors turned into located ``CompileError``s."""
    lines = split_lines(text)
    try:
        return ast.parse(text, filename=filename)
    except SyntaxError as exc:
        line = exc.lineno or 1
        source_line = lines[line - 1].rstrip("\r\n") if 0 < line <= len(lines) else None
        end_col = exc.end_offset if getattr(exc, "end_lineno", None) in (None, line) else None
        raise CompileError(
            f"invalid Python syntax: {exc.msg}",
            filename=filename,
            line=line,
            col=exc.offset or 1,
            end_col=end_col,
            source_line=source_line,
        ) from None
    except (RecursionError, MemoryError):  # the parser's MemoryError is its own stack running out
        line, col = _densest_logical_line(text)
        byte_col = len(lines[line - 1][:col].encode("utf-8")) if line <= len(lines) else 0
        raise located_error(filename, lines, _Place(line, byte_col), _TOO_DEEP(depth="")) from None
    except ValueError as exc:
        raise CompileError(f"cannot parse the file: {exc}", filename=filename) from None


_TOO_DEEP = ("this expression is nested too deeply for ringc{depth}; split it into smaller steps "
             "with temporary variables").format


@dataclass(frozen=True)
class _Place:
    """A line and 0-based column, for errors found without a syntax tree."""

    lineno: int
    col_offset: int


def _densest_logical_line(text: str) -> tuple[int, int]:
    """Where the parser most likely ran out of depth: the logical line with the most operators.

    Python's parser gives no place when it recurses too deeply; the tokenizer
    does not recurse, and a nested expression is made of operators and brackets.
    """
    best, place, count, start = -1, (1, 0), 0, None
    skip = (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                if start is not None and count > best:
                    best, place = count, start
                count, start = 0, None
            elif token.type not in skip:
                start = start or token.start
                count += token.type == tokenize.OP
    except (tokenize.TokenError, SyntaxError):
        pass
    return place


def nesting_error(filename: str, lines: tuple[str, ...], root: ast.AST) -> CompileError:
    """The error for a RecursionError while compiling ``root``: at its most deeply nested statement."""
    depth, statement = nesting_depth(root)
    return located_error(filename, lines, statement, _TOO_DEEP(depth=f" ({depth} levels)"))


def nesting_depth(root: ast.AST) -> tuple[int, ast.AST]:
    """The depth of ``root``'s syntax tree and the statement holding its deepest node.

    Measured without recursion, so it works where the compiler ran out of stack.
    """
    depth, statement = 0, root
    stack: list[tuple[ast.AST, int, ast.AST]] = [(root, 0, root)]
    while stack:
        node, level, owner = stack.pop()
        if isinstance(node, ast.stmt):
            owner = node
        if level > depth:
            depth, statement = level, owner
        stack.extend((child, level + 1, owner) for child in ast.iter_child_nodes(node))
    return depth, statement


class _Scanner:
    """Walks the top-level statements in order, binding names statically."""

    def __init__(self, filename: str, lines: tuple[str, ...], context: ScanContext) -> None:
        self.filename = filename
        self.lines = lines
        self.scope: dict[str, Any] = {}
        self.star_imports: list[tuple[str, int]] = []
        self.definitions: list[Any] = []
        self.errors: list[CompileError] = []
        self.kinds = context.decorators
        self.make_message = context.make_message
        self.make_struct = context.make_struct

    def scan(self, tree: ast.Module) -> ScanResult:
        for stmt in tree.body:
            handler = getattr(self, f"stmt_{type(stmt).__name__}", self.stmt_other)
            try:
                handler(stmt)
            except RecursionError:
                self.errors.append(nesting_error(self.filename, self.lines, stmt))
                for name in _bound_names(stmt):
                    self.runtime_only(name, f"line {stmt.lineno} is nested too deeply to evaluate", stmt)
        return ScanResult(self.filename, self.definitions, self.errors, self.scope, self.lines)

    def error(self, node: ast.AST, message: str) -> CompileError:
        return located_error(self.filename, self.lines, node, message)

    def runtime_only(self, name: str, why: str, node: ast.AST) -> None:
        self.scope[name] = RuntimeOnly(name, why, getattr(node, "lineno", 0))

    # --- imports ---

    def stmt_Import(self, stmt: ast.Import) -> None:
        """``import a.b`` binds ``a``, ``import a.b as c`` binds ``a.b``: both from ringc's tables."""
        for alias in stmt.names:
            root = alias.name.split(".")[0]
            bound = alias.asname or root
            module = _known_module(alias.name if alias.asname else root)
            if module is None:
                self.runtime_only(bound, f"it is the module '{alias.name}' (line {stmt.lineno}), "
                                  f"{_unknown_module(alias.name)}", stmt)
            else:
                self.scope[bound] = module

    def stmt_ImportFrom(self, stmt: ast.ImportFrom) -> None:
        source = "." * stmt.level + (stmt.module or "")
        module = _known_module(stmt.module) if stmt.level == 0 and stmt.module else None
        for alias in stmt.names:
            if alias.name == "*":
                if module is None:
                    self.star_imports.append((source, stmt.lineno))
                else:
                    self.scope.update(_public_names(module))
                continue
            bound = alias.asname or alias.name
            if module is None:
                self.runtime_only(bound, f"it is imported from '{source}' (line {stmt.lineno}), "
                                  f"{_unknown_module(source)}", stmt)
                continue
            value = _member(module, alias.name)
            if value is None:
                self.runtime_only(bound, f"'{source}' has no '{alias.name}' that ringc knows "
                                  f"(line {stmt.lineno})", stmt)
            else:
                self.scope[bound] = value

    # --- assignments ---

    def stmt_Assign(self, stmt: ast.Assign) -> None:
        self.assign([t for t in stmt.targets], stmt.value, stmt)

    def stmt_AnnAssign(self, stmt: ast.AnnAssign) -> None:
        if stmt.value is not None:
            self.assign([stmt.target], stmt.value, stmt)

    def stmt_AugAssign(self, stmt: ast.AugAssign) -> None:
        self.assign([stmt.target], ast.BinOp(stmt.target, stmt.op, stmt.value), stmt)

    def assign(self, targets: list[ast.expr], value: ast.expr, stmt: ast.stmt) -> None:
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        others = [t for t in targets if not isinstance(t, ast.Name)]
        for target in others:
            for name in _bound_names(target):
                self.runtime_only(name, f"it is unpacked or set indirectly at line {stmt.lineno}", stmt)
        if not names:
            return
        result: Any = self.static_object(value)  # an alias: K = rk.kernel, Vec = Array[f32]
        if result is None or isinstance(result, (int, float)):
            try:
                result = ConstantEvaluator(self.scope).evaluate(value)
            except NotConstant as exc:
                result = None
                example = f"{names[0]} = 4 * 256"
                why = (f"line {stmt.lineno} sets it to {exc.reason}; kernels can use module-level "
                       f"numbers and arithmetic on them, e.g. '{example}', and arrays written as "
                       "np.array([...], dtype=np.float32) literals")
        for name in names:
            if result is None:
                self.runtime_only(name, why, stmt)
            else:
                self.scope[name] = result

    # --- definitions ---

    def stmt_FunctionDef(self, stmt: ast.FunctionDef) -> None:
        kind, problem = self.decorator_kind(stmt)
        if problem is not None:
            self.errors.append(problem)
        if kind is None or kind not in FUNCTION_KINDS:
            if kind in CLASS_KINDS:
                self.errors.append(self.error(stmt, f"@{kind} applies to classes, not functions"))
            if stmt.decorator_list:
                why = f"it is decorated with '{ast.unparse(stmt.decorator_list[0])}' (line {stmt.lineno})"
                self.runtime_only(stmt.name, why, stmt)
            else:
                message = (f"'{stmt.name}' is a plain Python function (line {stmt.lineno}); kernels can "
                           "only call @rk.func device functions")
                self.scope[stmt.name] = RuntimeOnly(stmt.name, "", stmt.lineno, message)
            return
        self.add_entry(StaticFunction(kind, self.method_source(stmt)))

    def stmt_AsyncFunctionDef(self, stmt: ast.AsyncFunctionDef) -> None:
        kind, _ = self.decorator_kind(stmt)
        if kind is not None:
            self.errors.append(self.error(stmt, f"async functions cannot be @rk.{kind} functions"))
        self.runtime_only(stmt.name, f"it is an async function (line {stmt.lineno})", stmt)

    def stmt_ClassDef(self, stmt: ast.ClassDef) -> None:
        kind, problem = self.decorator_kind(stmt)
        if problem is not None:
            self.errors.append(problem)
        if kind in FUNCTION_KINDS:
            self.errors.append(self.error(stmt, f"@rk.{kind} applies to functions, not classes"))
        if kind == "message" and problem is None:
            try:
                self.add_entry(StaticMessage(stmt, self.message_class(stmt)))
                return
            except CompileError as exc:
                self.errors.append(exc)
        elif kind == "struct" and problem is None and self.make_struct is not None:
            try:
                self.add_entry(StaticStruct(stmt, self.struct_type(stmt)))
                return
            except CompileError as exc:
                self.errors.append(exc)
        elif kind == "actor" and problem is None:
            self.add_entry(StaticActor(stmt, self.class_fields(stmt), self.method_source))
            return
        self.runtime_only(stmt.name, f"it is a class (line {stmt.lineno})", stmt)

    def add_entry(self, entry: Any) -> None:
        self.definitions = [d for d in self.definitions if d.__name__ != entry.__name__] + [entry]
        self.scope[entry.__name__] = entry.scope_value

    def class_fields(self, stmt: ast.ClassDef) -> list[tuple[ast.AnnAssign, Any, Any]]:
        """``(statement, annotation object, default)`` for each ``name: T [= default]`` of a class body.

        Nothing here raises: a field ringc cannot read is reported when the
        class is compiled, at the field.
        """
        fields = []
        for item in stmt.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                annotation = self.static_object(_unquote(item.annotation))
                default: Any = None
                if item.value is not None:
                    evaluate = ConstantEvaluator(self.scope).evaluate
                    try:  # a tuple or list of constants: a Vec field's default
                        default = (tuple(evaluate(e) for e in item.value.elts)
                                   if isinstance(item.value, (ast.Tuple, ast.List)) else evaluate(item.value))
                    except NotConstant as exc:
                        default = NotConstant(exc.reason)
                fields.append((item, annotation, default))
        return fields

    def message_class(self, stmt: ast.ClassDef) -> type:
        """The real message class, made by ``rk.message`` from the fields read statically."""
        from ringkernel.frontends.actors import name_problem

        annotations: dict[str, Any] = {}
        namespace: dict[str, Any] = {"__module__": "ringc", "__qualname__": stmt.name}
        for item, annotation, default in self.class_fields(stmt):
            name = item.target.id  # type: ignore[union-attr]
            if problem := name_problem(name, stmt.name, "message field"):
                raise self.error(item.target, problem)
            if annotation is None or isinstance(annotation, str):
                raise self.error(item.annotation, f"ringc cannot tell the type of field '{name}' statically")
            if isinstance(default, NotConstant):
                assert item.value is not None  # a default that was read
                raise self.error(item.value, f"the default of '{name}' must be a number ({default.reason})")
            annotations[name] = annotation
            if default is not None:
                namespace[name] = default
        namespace["__annotations__"] = annotations
        try:
            return self.make_message(type(stmt.name, (), namespace))
        except CompileError as exc:
            if exc.line is not None:
                raise
            raise self.error(stmt, exc.message) from None

    def struct_type(self, stmt: ast.ClassDef) -> Any:
        """The real struct type, made by ``rk.struct`` from the fields read statically."""
        assert self.make_struct is not None
        annotations: dict[str, Any] = {}
        for item, annotation, _ in self.class_fields(stmt):
            name = item.target.id  # type: ignore[union-attr]
            if item.value is not None:
                raise self.error(item.value, f"struct fields take no default value ('{name}')")
            if annotation is None or isinstance(annotation, str):
                raise self.error(item.annotation, f"ringc cannot tell the type of field '{name}' statically")
            annotations[name] = annotation
        namespace = {"__module__": "ringc", "__qualname__": stmt.name, "__annotations__": annotations}
        try:
            return self.make_struct(type(stmt.name, (), namespace))
        except CompileError as exc:
            if exc.line is not None:
                raise
            raise self.error(stmt, exc.message) from None

    def method_source(self, item: ast.FunctionDef) -> FunctionSource:
        resolver = StaticResolver(self.scope, self.star_imports, _Located(self.filename, item, self.lines))
        return FunctionSource(item.name, self.filename, item, self.lines, resolver)

    def decorator_kind(self, stmt: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        """The RingKernel kind of ``stmt``'s decorator, and an error if ringc cannot honour it.

        Decorators *above* RingKernel's are ignored: ringc assumes they hand the
        kernel back (as a registry decorator does).  Decorators *below* it would
        have to run first, so they are an error.
        """
        kinds = [self.decorator_of(d) for d in stmt.decorator_list]
        for pos, kind in enumerate(kinds):
            if kind is None:
                continue
            inner = stmt.decorator_list[pos + 1 :]
            if inner:
                return kind, self.error(
                    inner[0],
                    f"ringc cannot apply '{ast.unparse(inner[0])}' without running the file; "
                    f"put @{ast.unparse(stmt.decorator_list[pos])} directly above the definition",
                )
            return kind, None
        return None, None

    def decorator_of(self, node: ast.expr) -> str | None:
        """The kind of one decorator; ``@rk.actor(budget=..., threads=...)`` is an actor too
        (``threads`` changes its kernel: :func:`static_actor_info` reads it)."""
        if isinstance(node, ast.Call) and not node.args:
            kind = self.kinds.get(id(self.static_object(node.func)))
            return kind if kind == "actor" else None
        return self.kinds.get(id(self.static_object(node)))

    def static_object(self, node: ast.expr) -> Any:
        """The object of a name, an attribute chain, ``Array[T]``, ``Vec[T, N]`` or ``rk.Port[Msg]``;
        None when not statically known.

        Only attributes of :class:`StaticModule` tables are read, and only
        RingKernel's own ``Array`` is subscripted, so no code can run.
        """
        if isinstance(node, ast.Name):
            if node.id not in self.scope:
                builtin = getattr(builtins, node.id, None)
                return builtin if isinstance(builtin, type) else None  # int, float, bool, ...
            value = self.scope[node.id]
            return None if isinstance(value, RuntimeOnly) else value
        if isinstance(node, ast.Attribute):
            base = self.static_object(node.value)
            if not isinstance(base, StaticModule):
                return None
            return getattr(base, node.attr, None)
        if isinstance(node, ast.Call) and self.static_object(node.func) is TypeVar:
            return _type_variable(node)  # T = rk.TypeVar("T"): a declaration, nothing runs
        if isinstance(node, ast.Subscript) and self.static_object(node.value) is Array:
            index = node.slice
            try:
                if isinstance(index, ast.Tuple) and len(index.elts) == 2:  # Array[T, N]
                    ndim = index.elts[1]
                    rank = ndim.value if isinstance(ndim, ast.Constant) else None
                    return Array[self.static_object(index.elts[0]), rank]  # type: ignore[misc]
                return Array[self.static_object(index)]  # type: ignore[misc]
            except TypeError:
                return None
        if isinstance(node, ast.Subscript) and self.static_object(node.value) is Vec:
            parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else []
            if len(parts) != 2:
                return None
            try:
                length = ConstantEvaluator(self.scope).evaluate(parts[1])
                return Vec[self.static_object(parts[0]), length]  # type: ignore[misc]
            except (NotConstant, TypeError):
                return None
        if isinstance(node, ast.Subscript) and self.static_object(node.value) is Port:
            return PortType(self.static_object(node.slice))  # rk.Port[Msg]: an actor's output port
        if isinstance(node, ast.Call):
            return self.numpy_literal(node)
        return None

    def numpy_literal(self, node: ast.Call) -> np.ndarray | None:
        """``np.array([...], dtype=np.float32)`` with literal data: the array, read without running.

        The data must be a literal (``ast.literal_eval``); the dtype, if given,
        a numpy type the file imported.  Anything else is not statically known.
        """
        func = self.static_object(node.func)
        if not (func is np.array or func is np.asarray) or len(node.args) != 1:
            return None
        dtype: Any = None
        for keyword in node.keywords:
            if keyword.arg != "dtype":
                return None
            given = keyword.value
            dtype = given.value if isinstance(given, ast.Constant) else self.static_object(given)
            if dtype is None:
                return None
        try:
            data = ast.literal_eval(node.args[0])
            return np.array(data, dtype=dtype)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError):
            return None  # np.array([2**70], dtype=np.int32) overflows: Python would fail here too

    # --- everything else ---

    def stmt_Expr(self, stmt: ast.Expr) -> None:
        """Docstrings and bare calls: their effects only happen at run time, and ringc ignores them."""

    def stmt_other(self, stmt: ast.stmt) -> None:
        what = type(stmt).__name__.lower()
        for name in _bound_names(stmt):
            self.runtime_only(
                name,
                f"it is bound inside the '{what}' statement at line {stmt.lineno}; ringc only "
                "evaluates top-level assignments",
                stmt,
            )


def _type_variable(call: ast.Call) -> TypeVar | None:
    """The TypeVar ``rk.TypeVar("T")`` declares, when written with one string literal."""
    if len(call.args) != 1 or call.keywords:
        return None
    arg = call.args[0]
    if not isinstance(arg, ast.Constant) or not isinstance(arg.value, str) or not arg.value.isidentifier():
        return None
    return TypeVar(arg.value)


def _unknown_module(name: str) -> str:
    if name.split(".")[0] in ALLOWED_MODULES:
        return f"and ringc does not import '{name}' (it knows {', '.join(STATIC_MODULES)})"
    return f"and ringc only follows imports of {_allowed_list()}"


class StaticModule(types.ModuleType):
    """A module as ringc knows it: a fixed table of names, never the live module.

    Reading an attribute is a dictionary lookup, so nothing a file names can
    make ringc import a module or run code (a live module's ``__getattr__``,
    numpy's for one, imports submodules on first use).
    """

    def __init__(self, name: str, names: dict[str, Any], public: list[str] | None = None) -> None:
        super().__init__(name)
        self.__dict__.update(names)
        self.__all__ = public if public is not None else sorted(names)

    def __repr__(self) -> str:
        return f"<module '{self.__name__}' as ringc knows it>"


@functools.cache
def static_modules() -> dict[str, StaticModule]:
    """Every dotted module name ringc knows -> its table (parents hold their known submodules).

    Built from the modules ringc itself had already imported (``sys.modules``);
    a module it did not import stays unknown rather than being imported.
    """
    tables: dict[str, StaticModule] = {}
    for name in STATIC_MODULES:
        live = sys.modules.get(name)
        if live is not None:
            names = _table_values(name, live)
            public = [n for n in getattr(live, "__all__", sorted(names)) if n in names]
            tables[name] = StaticModule(name, names, public)
    for name in list(tables):
        parts = name.split(".")
        paths = [".".join(parts[:depth]) for depth in range(1, len(parts) + 1)]
        for parent_path, child_path, attr in zip(paths, paths[1:], parts[1:]):
            parent = tables.setdefault(parent_path, StaticModule(parent_path, {}))
            child = tables.setdefault(child_path, StaticModule(child_path, {}))
            if attr not in vars(parent):  # ringkernel.kernel (the function) is not a submodule
                setattr(parent, attr, child)
    return tables


def _table_values(name: str, live: types.ModuleType) -> dict[str, Any]:
    """The public, non-module names of ``live``; of numpy only what kernels can use."""
    values = {}
    public = dict(vars(live))
    lazy = getattr(live, "__all__", ()) if name == "ringkernel" else ()
    for attr in lazy:  # the facade loads its names on first use; numpy's would import submodules
        if attr not in public:
            public[attr] = getattr(live, attr)
    for attr, value in public.items():
        if attr.startswith("_") or isinstance(value, types.ModuleType):
            continue
        if name == "numpy" and not _numpy_kernel_value(value):
            continue
        values[attr] = value
    return values


def _numpy_kernel_value(value: Any) -> bool:
    """Scalar types (``np.float32``), ufuncs (``np.sqrt``), numbers (``np.pi``), and
    ``np.array``/``np.asarray`` (whose literal calls ringc reads as embedded tables)."""
    if value is np.array or value is np.asarray:
        return True
    if isinstance(value, type):
        return issubclass(value, np.generic)
    return isinstance(value, (np.ufunc, float, int))


def _allowed_list() -> str:
    return ", ".join(ALLOWED_MODULES[:-1]) + " and " + ALLOWED_MODULES[-1]


def _known_module(name: str) -> StaticModule | None:
    """ringc's table for the module ``name``, or None if ringc does not know it."""
    return static_modules().get(name)


def _member(module: StaticModule, name: str) -> Any:
    """``from module import name``: a name of the table, else a known submodule, else None."""
    if not name.startswith("_") and name in vars(module):
        return vars(module)[name]
    return _known_module(f"{module.__name__}.{name}")


def _public_names(module: StaticModule) -> dict[str, Any]:
    return {n: vars(module)[n] for n in module.__all__}


def _bound_names(node: ast.AST) -> list[str]:
    """Names a statement binds in the scope it runs in (not inside nested functions/classes)."""
    names: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Name) and isinstance(current.ctx, (ast.Store, ast.Del)):
            names.append(current.id)
        elif isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(current.name)
            stack.extend(current.decorator_list)
            continue
        elif isinstance(current, (ast.Import, ast.ImportFrom)):
            names.extend((a.asname or a.name).split(".")[0] for a in current.names if a.name != "*")
        elif isinstance(current, ast.ExceptHandler) and current.name:
            names.append(current.name)
        elif isinstance(current, (ast.MatchAs, ast.MatchStar)) and current.name:
            names.append(current.name)
        elif isinstance(current, ast.MatchMapping) and current.rest:
            names.append(current.rest)
        if isinstance(current, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        stack.extend(ast.iter_child_nodes(current))
    return sorted(set(names))


def static_actor_info(actor: StaticActor) -> Any:
    """The ``ActorInfo`` of an actor class read from its syntax tree.

    Reads the state fields (with located errors) and the method sources, then applies
    the same rules as a live class through ``build_actor_info``.
    """
    from ringkernel.frontends.actors import build_actor_info, default_fits, name_problem, record_field
    from ringkernel.frontends.python import python_object_type

    filename, lines = actor.method_source(actor.stmt).filename, actor.method_source(actor.stmt).lines
    state_fields, defaults = [], {}
    ports: dict[str, Any] = {}
    for item, annotation, default in actor.fields:
        name = item.target.id  # type: ignore[union-attr]
        if isinstance(annotation, PortType):  # an output port (issue 23), not state
            ports[name] = _static_port(name, annotation, item, actor, filename, lines, len(ports))
            continue
        if problem := name_problem(name, actor.__name__, "state field"):
            raise located_error(filename, lines, item.target, problem)
        ty = python_object_type(annotation) if annotation is not None else None
        field = record_field(name, ty, "actor", actor.__name__, f"'{ast.unparse(item.annotation)}'")
        if isinstance(field, str):
            raise located_error(filename, lines, item.annotation, field)
        if isinstance(default, (NotConstant, np.generic)) or (
                default is not None and not default_fits(default, field)):
            what = "a number" if len(field) == 2 else f"a number or {field[2]} numbers"
            raise located_error(filename, lines, item.value,
                                f"actor '{actor.__name__}': the default of '{name}' must be {what}")
        state_fields.append(field)
        defaults[name] = 0 if default is None else default
    methods = [
        actor.method_source(item)
        for item in actor.stmt.body
        if isinstance(item, ast.FunctionDef) and not item.name.startswith("__")
    ]
    info = build_actor_info(
        actor.__name__, state_fields, defaults, methods,
        lambda message: located_error(filename, lines, actor.stmt, message), ports,
    )
    info.threads = _static_threads(actor, filename, lines)
    return info


def _static_port(name: str, port: Any, item: ast.AnnAssign, actor: StaticActor, filename: str, lines: Any,
                 number: int) -> Any:
    """``name: rk.Port[Msg]`` read statically: the same rules as a live class's ports."""
    from ringkernel.frontends.actors import PortInfo, message_info, name_problem

    if problem := name_problem(name, actor.__name__, "port"):
        raise located_error(filename, lines, item.target, problem)
    info = message_info(port.message)
    if info is None:
        raise located_error(filename, lines, item.annotation,
                            f"port '{name}' of '{actor.__name__}' carries {port.message!r}, which is not a "
                            "message; declare it with a @rk.message class: 'out: rk.Port[Msg]'")
    if item.value is not None:
        raise located_error(filename, lines, item.value,
                            f"port '{name}' of '{actor.__name__}' takes no value: 'out: rk.Port[Msg]'")
    return PortInfo(name, number, info)


def _static_threads(actor: StaticActor, filename: str, lines: Any) -> int:
    """``@rk.actor(threads=N)``'s N (1 without it): it changes the kernel, so ringc reads it."""
    from ringkernel.frontends.actors import actor_threads

    for decorator in actor.stmt.decorator_list:
        for kw in decorator.keywords if isinstance(decorator, ast.Call) else ():
            if kw.arg != "threads":
                continue
            if not isinstance(kw.value, ast.Constant):
                raise located_error(filename, lines, kw.value, "ringc reads threads= as a number: threads=64")
            try:
                return actor_threads(kw.value.value)
            except ValueError as exc:
                raise located_error(filename, lines, kw.value, str(exc)) from None
    return 1


def _unquote(node: ast.expr) -> ast.expr:
    """A string annotation (``x: "f32"``) as the expression it spells."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return node
    return node


# --- constant expressions -------------------------------------------------------------------


class ConstantEvaluator(consteval.ConstantEvaluator):
    """The shared evaluator, where a name bound only at run time is not a known constant."""

    unknown = (RuntimeOnly,)


__all__ = [
    "scan_source",
    "parse_python",
    "split_lines",
    "ScanResult",
    "StaticFunction",
    "StaticMessage",
    "StaticActor",
    "StaticResolver",
    "ScanContext",
    "RuntimeOnly",
    "ConstantEvaluator",
    "NotConstant",
    "ALLOWED_MODULES",
]

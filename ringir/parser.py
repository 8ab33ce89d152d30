"""Reads the RingIR text form (``grammar.lark``) back into a verified :class:`Module`.

Lark checks the shape of the text; this module resolves names (``%value`` to
its defining :class:`Value` under region scoping, ``$local`` to its
declaration, ``struct Name`` to the module's struct), checks opcodes, operand
counts, types and literals, stamps a :class:`SourceLoc` on every statement and
function, and runs the verifier.  Every problem is a :class:`CompileError`
that shows the offending line with a caret; no lark exception escapes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ringkernel.ringir.diagnostics import CompileError, SourceLoc
from ringkernel.ringir.limits import MAX_NESTING, array_size_problem
from ringkernel.ringir.nodes import (
    ATOMIC_OPS,
    BINARY_OPS,
    COMPARE_OPS,
    FUNCTION_KINDS,
    MATH_FUNCS,
    SUBGROUP_OPS,
    THREAD_INDEX_KINDS,
    UNARY_OPS,
    AtomicCAS,
    AtomicRMW,
    Backoff,
    Barrier,
    Binary,
    Bitcast,
    Break,
    Call,
    Cast,
    Clock,
    Compare,
    Const,
    ConstArray,
    Continue,
    Extract,
    Fence,
    ForRange,
    Function,
    GridSync,
    If,
    Load,
    LoadVar,
    LocalArray,
    LocalVar,
    Loop,
    MakeTuple,
    MathCall,
    Module,
    Return,
    SharedArray,
    Stmt,
    Store,
    StoreVar,
    Subgroup,
    SyncWarp,
    ThreadIndex,
    Unary,
    Value,
    Wake,
)
from ringkernel.ringir.printer import TEXT_VERSION
from ringkernel.ringir.types import (
    MAX_NDIM,
    MAX_TUPLE_ELEMS,
    SCALAR_TYPES,
    VOID,
    AddressSpace,
    ArrayType,
    ScalarType,
    StructType,
    TupleType,
    Type,
    float_overflows,
)
from ringkernel.ringir.verifier import verify

GRAMMAR_PATH = Path(__file__).parent / "grammar.lark"

# More digits than any 64-bit integer has: out of range without converting
# (Python refuses int() of more than 4300 digits).
_MAX_INT_DIGITS = 20
_FLOAT_MAX = {"f32": "3.4028234663852886e+38", "f64": "1.7976931348623157e+308", "f16": "65504.0"}

# How each terminal is named in "expected ..." messages.
_TERMINAL_WORDS = {
    "VALUE": "a value such as %x",
    "LOCAL": "a local such as $i",
    "FUNC": "a function name such as @f",
    "NAME": "a name",
    "NUMBER": "a number",
    "_NL": "end of line",
    "$END": "end of input",
}
_STATEMENT_START = {"VALUE", "NAME", "VAR", "IF", "LOOP", "FOR"}
_HEADER = re.compile(r"ringir[ \t]+([-+]?\d+)[ \t]*(#.*)?$")


@cache
def _lark() -> Lark:
    """The LALR parser, built once on first use."""
    return Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
    )


def parse_module(text: str | bytes, filename: str = "<ringir>") -> Module:
    """Parses and verifies RingIR text (``str``, or UTF-8 ``bytes``); problems raise :class:`CompileError`."""
    text = _as_text(text, filename)
    lines = source_lines(text)
    _check_header(lines, filename)
    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, lines, filename) from None
    module = _ModuleReader(lines, filename).read(tree)
    try:
        return verify(module)
    except CompileError as exc:
        if exc.line is None:  # every parsed node has a place; keep the promise regardless
            raise _error(lines, filename, 1, 1, exc.message) from None
        if exc.source_line is not None or exc.filename != filename:
            raise
        raise CompileError(
            exc.message,
            filename=exc.filename,
            line=exc.line,
            col=exc.col,
            end_col=exc.end_col,
            source_line=_line(lines, exc.line),
            notes=exc.notes,
        ) from None


# --- text and errors ----------------------------------------------------------------


def source_lines(text: str) -> list[str]:
    """The lines as the grammar counts them: only ``\\n`` (or ``\\r\\n``) ends a line.

    ``str.splitlines`` would also break at form feeds, U+2028 and the like,
    and every later line number would disagree with lark's.
    """
    return [line.removesuffix("\r") for line in text.split("\n")]


def _as_text(text: object, filename: str) -> str:
    """``text`` as ``str``: UTF-8 bytes are decoded; anything else is a CompileError."""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray, memoryview)):
        data = bytes(text)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            start = data.rfind(b"\n", 0, exc.start) + 1
            prefix = data[start:exc.start].decode("utf-8", errors="replace")
            shown = data[start:].split(b"\n", 1)[0].decode("utf-8", errors="replace")
            raise CompileError(
                f"RingIR text is not valid UTF-8: {exc.reason} (byte 0x{data[exc.start]:02x})",
                filename=filename, line=line, col=len(prefix) + 1,
                source_line=_printable(shown),
            ) from None
    raise CompileError(
        f"RingIR text must be a str (or UTF-8 bytes), not {type(text).__name__}",
        filename=filename, line=1, col=1, source_line="",
    )


def _printable(line: str) -> str:
    """The line for display: control and separator characters become spaces (columns stay)."""
    return "".join(c if c.isprintable() or c == "\t" else " " for c in line)


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _line(lines: list[str], number: int) -> str:
    return _printable(lines[number - 1]) if 0 < number <= len(lines) else ""


def _error(
    lines: list[str], filename: str, line: int, col: int, message: str, end_col: int | None = None
) -> CompileError:
    return CompileError(
        message,
        filename=filename,
        line=line,
        col=col,
        end_col=end_col,
        source_line=_line(lines, line),
    )


def _check_header(lines: list[str], filename: str) -> None:
    """The version header comes first, so a newer format fails with a clear message."""
    for number, raw in enumerate(lines, 1):
        content = raw.strip()
        if not content or content.startswith("#"):
            continue
        match = _HEADER.fullmatch(content)
        col = len(raw) - len(raw.lstrip()) + 1
        if match is None:
            raise _error(
                lines, filename, number, col,
                f"RingIR text must begin with the header 'ringir {TEXT_VERSION}'",
                end_col=col + len(content),
            )
        version = match.group(1)
        if version != str(TEXT_VERSION):
            vcol = raw.index(version, col - 1) + 1
            raise _error(
                lines, filename, number, vcol,
                f"unsupported RingIR text version {version}; this compiler reads version "
                f"{TEXT_VERSION}",
                end_col=vcol + len(version),
            )
        return
    raise CompileError(
        f"RingIR text is empty; it must begin with the header 'ringir {TEXT_VERSION}'",
        filename=filename,
        line=1,
        col=1,
        source_line="",
    )


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of input"
    if token.type == "_NL":
        return "end of line"
    return f"'{token.value}'"


def _expected_words(expected: set[str]) -> str:
    names = set(expected)
    words = []
    if _STATEMENT_START <= names:
        names -= _STATEMENT_START
        words.append("a statement")
    if {"NAME", "STRUCT"} <= names:
        names -= {"NAME", "STRUCT"}
        words.append("a struct or function definition")
    terminals = {t.name: t for t in _lark().terminals}
    for name in sorted(names):
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
        elif name in terminals and terminals[name].pattern.type == "str":
            words.append(f"'{terminals[name].pattern.value}'")
        else:
            words.append(name.lower())
    words.sort()
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _accepted(exc: UnexpectedToken) -> set[str]:
    """Terminals the parser would take here (more complete than ``exc.expected``)."""
    try:
        return set(exc.interactive_parser.accepts())  # type: ignore[no-untyped-call]  # lark: unannotated
    except Exception:  # lark versions differ here; fall back to its own list
        return set(exc.expected)


def _syntax_error(exc: UnexpectedInput, lines: list[str], filename: str) -> CompileError:
    """Turns a lark error into a CompileError in RingIR terms."""
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            line = len(lines) or 1
            while line > 1 and not lines[line - 1].strip():
                line -= 1
            col = len(_line(lines, line).rstrip()) + 1
        else:
            line, col = token.line, token.column
            if token.type == "_NL":
                # The newline token starts at the end of the previous line.
                col = len(_line(lines, line).rstrip()) + 1
        message = f"unexpected {_describe_token(token)}"
        expected = _expected_words(_accepted(exc))
        if expected:
            message += f"; expected {expected}"
        end_col = None
        if token.type not in ("$END", "_NL"):
            end_col = col + len(token.value)
        return _error(lines, filename, line, col, message, end_col=end_col)
    if isinstance(exc, UnexpectedCharacters):
        char = exc.char if exc.char.isprintable() else repr(exc.char)[1:-1]
        message = f"unexpected character '{char}'"
        expected = _expected_words(set(exc.allowed or ()))
        if expected:
            message += f"; expected {expected}"
        return _error(lines, filename, exc.line, exc.column, message)
    return _error(lines, filename, exc.line, exc.column, "malformed RingIR text")


# --- tree -> nodes ------------------------------------------------------------------
#
# lark types every child of a tree as ``Tree | Token`` (and placeholders for
# absent optional parts are None); the grammar fixes which one each position
# holds, and these say so where a child is read.


def _token(child: object) -> Token:
    if not isinstance(child, Token):
        raise TypeError(f"parse tree: expected a token, got {child!r}")
    return child


def _opt_token(child: object) -> Token | None:
    return None if child is None else _token(child)


def _tree(child: object) -> Tree[Token]:
    if not isinstance(child, Tree):
        raise TypeError(f"parse tree: expected a subtree, got {child!r}")
    return child


def _opt_tree(child: object) -> Tree[Token] | None:
    return None if child is None else _tree(child)


def _trees(children: list[Tree[Token] | Token]) -> list[Tree[Token]]:
    return [_tree(child) for child in children]


def _position(token: Token) -> tuple[int, int]:
    """Where ``token`` starts; lark types it optional, but every lexed token has one."""
    return token.line or 1, token.column or 1


@dataclass
class _Operand:
    """One operand after name resolution, with where it was written."""

    kind: str  # "value", "index", "local", "number", "name", "call"
    token: Token
    values: tuple[Value, ...] = ()
    local: LocalVar | None = None
    text: str = ""

    def var(self) -> LocalVar:
        """The local of a "local" operand (the caller checked the kind)."""
        if self.local is None:
            raise TypeError(f"'{self.token.value}' is a {self.kind} operand, not a local")
        return self.local


class _ModuleReader:
    def __init__(self, lines: list[str], filename: str) -> None:
        self.lines = lines
        self.filename = filename
        self.structs: dict[str, StructType] = {}

    def error(self, token: Token, message: str) -> CompileError:
        line, col = _position(token)
        return _error(self.lines, self.filename, line, col, message, end_col=col + len(token.value))

    def loc(self, tree: Tree[Token]) -> SourceLoc:
        """The statement's span on its first line (a compound statement's header)."""
        line, col = tree.meta.line, tree.meta.column
        content = _line(self.lines, line).split("#", 1)[0].rstrip()
        end_col = max(len(content) + 1, col + 1)
        return SourceLoc(self.filename, line, col, line, end_col)

    def read(self, tree: Tree[Token]) -> Module:
        items = _trees(tree.children[1:])
        struct_trees = [t for t in items if t.data == "struct"]
        for st in struct_trees:
            name = _token(st.children[0])
            if name.value in self.structs:
                raise self.error(name, f"struct '{name.value}' is defined twice")
            # Fields are filled in below; a placeholder lets fields name no structs.
            self.structs[name.value] = StructType(name.value, ())
        for st in struct_trees:
            self.structs[_token(st.children[0]).value] = self.read_struct(st)
        functions: list[Function] = []
        seen: set[str] = set()
        for ft in items:
            if ft.data != "function":
                continue
            fn = _FunctionReader(self, ft).read()
            if fn.name in seen:
                raise self.error(_token(ft.children[1]), f"function '@{fn.name}' is defined twice")
            seen.add(fn.name)
            functions.append(fn)
        return Module(tuple(functions), tuple(self.structs[_token(st.children[0]).value]
                                              for st in struct_trees))

    def read_struct(self, tree: Tree[Token]) -> StructType:
        name, fields = _token(tree.children[0]), _trees(tree.children[1:])
        if not fields:
            raise self.error(name, f"struct '{name.value}' has no fields; give it at least one")
        seen: set[str] = set()
        out = []
        for field in fields:
            fname, ftype = _token(field.children[0]), _tree(field.children[1])
            if fname.value in seen:
                raise self.error(fname, f"struct '{name.value}' has field '{fname.value}' twice")
            seen.add(fname.value)
            ty = self.type(ftype)
            if not isinstance(ty, ScalarType):
                raise self.error(fname, f"struct fields must have a scalar type, not {ty}")
            out.append((fname.value, ty))
        return StructType(name.value, tuple(out), loc=self.loc(tree))

    def tuple_type(self, tree: Tree[Token]) -> TupleType:
        names = [_token(t) for t in tree.children]
        elems = []
        for name in names:
            ty = SCALAR_TYPES.get(name.value)
            if ty is None:
                raise self.error(name, f"tuple elements must be scalars ({', '.join(SCALAR_TYPES)}), "
                                 f"not '{name.value}'")
            elems.append(ty)
        if len(elems) > MAX_TUPLE_ELEMS:
            raise self.error(names[0], f"a tuple holds at most {MAX_TUPLE_ELEMS} scalars, not {len(elems)}")
        return TupleType(tuple(elems))

    def type(self, tree: Tree[Token]) -> Type:
        if tree.data == "named_type":
            name = _token(tree.children[0])
            if name.value == "void":
                return VOID
            ty = SCALAR_TYPES.get(name.value)
            if ty is None:
                raise self.error(
                    name,
                    f"unknown type '{name.value}'; expected one of "
                    f"{', '.join(SCALAR_TYPES)}, void, array<...> or struct NAME",
                )
            return ty
        if tree.data == "tuple_type":
            return self.tuple_type(tree)
        if tree.data == "struct_type":
            name = _token(tree.children[0])
            struct = self.structs.get(name.value)
            if struct is None:
                raise self.error(name, f"unknown struct '{name.value}'")
            return struct
        elem, space = _token(tree.children[0]), _token(tree.children[1])
        size = _opt_token(tree.children[2])
        elem_ty = SCALAR_TYPES.get(elem.value)
        if elem_ty is None:
            raise self.error(
                elem, f"array elements must have a scalar type ({', '.join(SCALAR_TYPES)}), "
                f"not '{elem.value}'"
            )
        spaces = [s.value for s in AddressSpace]
        if space.value not in spaces:
            raise self.error(
                space, f"unknown address space '{space.value}'; expected {' or '.join(spaces)}"
            )
        shape = self.array_shape(_opt_tree(tree.children[3]))
        if size is None:
            return ArrayType(elem_ty, AddressSpace(space.value), None, shape)
        digits = size.value.lstrip("+0")
        if not re.fullmatch(r"\+?\d+", size.value) or not digits:
            raise self.error(
                size, f"array size must be a positive integer, not {_shorten(size.value)}"
            )
        if len(digits) > _MAX_INT_DIGITS:
            raise self.error(size, f"array size {_shorten(digits)} is larger than any target can hold")
        array = ArrayType(elem_ty, AddressSpace(space.value), int(digits), shape)
        problem = array_size_problem(array)
        if problem is not None:
            raise self.error(size, problem)
        return array


    def array_shape(self, tree: Tree[Token] | None) -> tuple[int | None, ...] | None:
        """The ``[d0, d1(, d2)]`` of an N-dimensional array type (``?``: known at launch)."""
        if tree is None:
            return None
        dims: list[int | None] = []
        for child in tree.children:
            token = _token(child)
            if token.value == "?":
                dims.append(None)
            elif re.fullmatch(r"\+?\d+", token.value) and len(token.value) <= _MAX_INT_DIGITS:
                dims.append(int(token.value))
            else:
                raise self.error(
                    token, f"an array extent is a positive integer or ?, not {_shorten(token.value)}"
                )
        if not 2 <= len(dims) <= MAX_NDIM:
            raise self.error(
                _token(tree.children[0]), f"an array shape has 2 to {MAX_NDIM} extents, not {len(dims)}"
            )
        return tuple(dims)


class _FunctionReader:
    """Reads one function: resolves names under region scoping."""

    def __init__(self, parent: _ModuleReader, tree: Tree[Token]) -> None:
        self.parent = parent
        self.tree = tree
        self.scopes: list[dict[str, Value]] = [{}]
        self.defined: dict[str, int] = {}  # value name -> line of its definition
        self.locals: dict[str, LocalVar] = {}
        self.statements_seen = False

    def error(self, token: Token, message: str) -> CompileError:
        return self.parent.error(token, message)

    # --- function ---

    def read(self) -> Function:
        children = self.tree.children
        kind, name, rest = _token(children[0]), _token(children[1]), children[2:]
        # Children after the name: params (or a None placeholder), the return type,
        # then the body's statements.
        n = 0
        while n < len(rest) and (rest[n] is None or _tree(rest[n]).data == "param"):
            n += 1
        param_trees = [_tree(t) for t in rest[:n] if t is not None]
        ret_tree, body_trees = _tree(rest[n]), _trees(rest[n + 1:])
        if kind.value not in FUNCTION_KINDS:
            raise self.error(
                kind, f"unknown function kind '{kind.value}'; expected "
                f"{' or '.join(FUNCTION_KINDS)}"
            )
        params = []
        for pt in param_trees:
            token, ty_tree = _token(pt.children[0]), _tree(pt.children[1])
            value = Value(token.value[1:], self.value_type(ty_tree, token))
            self.define(token, value)
            params.append(value)
        return_type = self.parent.type(ret_tree)
        body = self.block(body_trees, top=True)
        return Function(
            name.value[1:], kind.value, tuple(params), return_type,
            tuple(self.locals.values()), body, loc=self.parent.loc(self.tree),
        )

    def value_type(self, tree: Tree[Token], token: Token) -> Type:
        ty = self.parent.type(tree)
        if ty == VOID:
            raise self.error(token, f"value '{token.value}' cannot have type void")
        return ty

    # --- scoping ---

    def define(self, token: Token, value: Value) -> None:
        if value.name in self.defined:
            raise self.error(
                token, f"value '%{value.name}' is defined twice (first on line "
                f"{self.defined[value.name]})"
            )
        self.defined[value.name] = _position(token)[0]
        self.scopes[-1][value.name] = value

    def use(self, token: Token) -> Value:
        name = token.value[1:]
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        if name in self.defined:
            raise self.error(
                token, f"value '%{name}' is not visible here: it is defined on line "
                f"{self.defined[name]} inside a region that has ended"
            )
        raise self.error(token, f"value '%{name}' is used before it is defined")

    def local(self, token: Token) -> LocalVar:
        var = self.locals.get(token.value[1:])
        if var is None:
            raise self.error(
                token, f"local '{token.value}' is not declared; declare it with "
                f"'var {token.value}: TYPE' at the top of the function"
            )
        return var

    def block(self, trees: list[Tree[Token]], top: bool = False) -> tuple[Stmt, ...]:
        self.scopes.append({})
        out = []
        for tree in trees:
            if tree.data == "var_decl":
                self.var_decl(tree, top)
                continue
            self.statements_seen = True
            out.append(self.stmt(tree))
        self.scopes.pop()
        return tuple(out)

    def var_decl(self, tree: Tree[Token], top: bool) -> None:
        token, ty_tree = _token(tree.children[0]), _tree(tree.children[1])
        if not top or self.statements_seen:
            raise self.error(
                token, "local declarations ('var') must come first in the function body"
            )
        name = token.value[1:]
        if name in self.locals:
            raise self.error(token, f"local '{token.value}' is declared twice")
        ty = self.parent.type(ty_tree)
        if not isinstance(ty, ScalarType):
            raise self.error(token, f"local '{token.value}' must have a scalar type, not {ty}")
        self.locals[name] = LocalVar(name, ty)

    # --- statements ---

    def stmt(self, tree: Tree[Token]) -> Stmt:
        loc = self.parent.loc(tree)
        if tree.data == "define":
            return self.define_stmt(tree, loc)
        if tree.data == "effect":
            return self.effect_stmt(tree, loc)
        if len(self.scopes) - 2 >= MAX_NESTING:  # scopes: parameters, body, then one per region
            raise _error(
                self.parent.lines, self.parent.filename, loc.line, loc.col,
                f"control flow nested too deeply (limit {MAX_NESTING} levels); "
                "move inner parts into a func or flatten elif chains",
                end_col=loc.end_col,
            )
        if tree.data == "if_stmt":
            cond = self.use(_token(tree.children[0]))
            # The last child is an else_body tree or the None placeholder.
            then_trees, else_tree = _trees(tree.children[1:-1]), _opt_tree(tree.children[-1])
            then_body = self.block(then_trees)
            else_body = self.block(_trees(else_tree.children)) if else_tree is not None else ()
            return If(cond, then_body, else_body, loc=loc)
        if tree.data == "loop_stmt":
            return Loop(self.block(_trees(tree.children)), loc=loc)
        var_token, start, stop, step = (_token(t) for t in tree.children[:4])
        var = self.local(var_token)
        first, last, stride = (self.use(t) for t in (start, stop, step))
        return ForRange(var, first, last, stride, self.block(_trees(tree.children[4:])), loc=loc)

    def operands(self, tree: Tree[Token] | None) -> list[_Operand]:
        if tree is None:
            return []
        out = []
        for op in _trees(tree.children):
            kind = op.data.removesuffix("_operand")
            first = _token(op.children[0])
            if kind in ("value", "index"):
                out.append(_Operand(kind, first, tuple(self.use(_token(t)) for t in op.children)))
            elif kind == "local":
                out.append(_Operand(kind, first, local=self.local(first)))
            elif kind == "call":
                args = tuple(self.use(_token(t)) for t in op.children[1:] if t is not None)
                out.append(_Operand(kind, first, args, text=first.value[1:]))
            else:
                out.append(_Operand(kind, first, text=first.value))
        return out

    def shape_error(self, opcode: Token, spelling: str) -> CompileError:
        return self.error(opcode, f"'{opcode.value}' is written '{spelling}'")

    def expect(self, opcode: Token, ops: list[_Operand], kinds: tuple[str, ...],
               spelling: str) -> None:
        if tuple(o.kind for o in ops) != kinds:
            raise self.shape_error(opcode, spelling)

    def define_stmt(self, tree: Tree[Token], loc: SourceLoc) -> Stmt:
        result_token, ty_tree = _token(tree.children[0]), _tree(tree.children[1])
        opcode, operand_tree = _token(tree.children[2]), _opt_tree(tree.children[3])
        ty = self.value_type(ty_tree, result_token)
        result = Value(result_token.value[1:], ty)
        if opcode.value in _EFFECT_NAMES:
            raise self.error(
                opcode, f"'{opcode.value}' defines no value; write it without '%name: type ='"
            )
        if opcode.value not in _VALUE_OPCODES:
            raise self.error(opcode, f"unknown opcode '{opcode.value}'")
        ops = self.operands(operand_tree)
        stmt = self.instruction(result, opcode, ops, loc)
        self.define(result_token, result)
        return stmt

    def instruction(self, result: Value, opcode: Token, ops: list[_Operand],
                    loc: SourceLoc) -> Stmt:
        op = opcode.value
        values = tuple(v for o in ops for v in o.values)

        def plain(n: int, spelling: str) -> None:
            self.expect(opcode, ops, ("value",) * n, f"{op} {spelling}")

        if op == "const":
            if len(ops) != 1 or ops[0].kind not in ("number", "name"):
                raise self.shape_error(opcode, "const LITERAL")
            return Const(result, self.literal(ops[0], result.type), loc=loc)
        if op in UNARY_OPS:
            plain(1, "%x")
            return Unary(result, op, values[0], loc=loc)
        if op in BINARY_OPS:
            plain(2, "%a, %b")
            return Binary(result, op, values[0], values[1], loc=loc)
        if op in COMPARE_OPS:
            plain(2, "%a, %b")
            return Compare(result, op, values[0], values[1], loc=loc)
        if op == "cast":
            plain(1, "%x")
            return Cast(result, values[0], loc=loc)
        if op == "bitcast":
            plain(1, "%x")
            return Bitcast(result, values[0], loc=loc)
        if op == "clock":
            self.expect(opcode, ops, (), "clock")
            return Clock(result, loc=loc)
        if op.startswith("subgroup_") and op[len("subgroup_"):] in SUBGROUP_OPS:
            arity = SUBGROUP_OPS[op[len("subgroup_"):]]
            plain(arity, ", ".join(f"%{c}" for c in "ab"[:arity]))
            return Subgroup(result, op[len("subgroup_"):], values, loc=loc)
        if op in MATH_FUNCS:
            arity = MATH_FUNCS[op]
            plain(arity, ", ".join(f"%{c}" for c in "abc"[:arity]))
            return MathCall(result, op, values, loc=loc)
        if op == "call":
            self.expect(opcode, ops, ("call",), "call @f(%a, ...)")
            return Call(result, ops[0].text, values, loc=loc)
        if op in THREAD_INDEX_KINDS:
            if len(ops) != 1 or ops[0].kind != "number" or ops[0].text not in ("0", "1", "2"):
                raise self.error(opcode, f"'{op}' is written '{op} DIM' with DIM 0, 1 or 2")
            return ThreadIndex(result, op, int(ops[0].text), loc=loc)
        if op == "shared_array":
            self.expect(opcode, ops, (), "shared_array")
            return SharedArray(result, loc=loc)
        if op == "local_array":
            self.expect(opcode, ops, (), "local_array")
            return LocalArray(result, loc=loc)
        if op == "const_array":
            return self.const_array(result, opcode, ops, loc)
        if op == "load":
            self.expect(opcode, ops, ("index",), "load %array[%index]")
            return Load(result, values[0], values[1], loc=loc)
        if op == "load_var":
            self.expect(opcode, ops, ("local",), "load_var $x")
            return LoadVar(result, ops[0].var(), loc=loc)
        if op == "atomic_cas":
            self.expect(opcode, ops, ("index", "value", "value"),
                        "atomic_cas %array[%index], %expected, %desired")
            return AtomicCAS(result, values[0], values[1], values[2], values[3], loc=loc)
        if op.startswith("atomic_") and op[len("atomic_"):] in ATOMIC_OPS:
            self.expect(opcode, ops, ("index", "value"), f"{op} %array[%index], %value")
            return AtomicRMW(result, op[len("atomic_"):], values[0], values[1], values[2], loc=loc)
        if op == "make_tuple":
            if not ops or any(o.kind != "value" for o in ops):
                raise self.shape_error(opcode, "make_tuple %a, %b, ...")
            return MakeTuple(result, values, loc=loc)
        if op == "extract":
            if tuple(o.kind for o in ops) != ("value", "number") or not ops[1].text.isdigit():
                raise self.shape_error(opcode, "extract %tuple, INDEX")
            return Extract(result, values[0], int(ops[1].text), loc=loc)
        raise AssertionError(op)  # unreachable: define_stmt checked the opcode

    def effect_stmt(self, tree: Tree[Token], loc: SourceLoc) -> Stmt:
        opcode, operand_tree = _token(tree.children[0]), _opt_tree(tree.children[1])
        op = opcode.value
        if op not in _EFFECT_NAMES and op != "call":
            if op in _VALUE_OPCODES:
                raise self.error(
                    opcode, f"'{op}' defines a value; write it as '%name: type = {op} ...'"
                )
            if op == "else":
                raise self.error(opcode, "'else' must follow the '}' of an 'if' on its line")
            raise self.error(opcode, f"unknown statement '{op}'")
        ops = self.operands(operand_tree)
        values = tuple(v for o in ops for v in o.values)
        if op == "store":
            self.expect(opcode, ops, ("index", "value"), "store %array[%index], %value")
            return Store(values[0], values[1], values[2], loc=loc)
        if op == "store_var":
            self.expect(opcode, ops, ("local", "value"), "store_var $x, %value")
            return StoreVar(ops[0].var(), values[0], loc=loc)
        if op == "call":
            self.expect(opcode, ops, ("call",), "call @f(%a, ...)")
            return Call(None, ops[0].text, values, loc=loc)
        if op == "return":
            if ops and tuple(o.kind for o in ops) != ("value",):
                raise self.shape_error(opcode, "return' or 'return %value")
            return Return(values[0] if values else None, loc=loc)
        if op == "backoff":
            if tuple(o.kind for o in ops) == ("index", "value", "value"):
                return Backoff(values[3], values[0], values[1], values[2], loc=loc)
            spelling = "backoff %nanos' or 'backoff %bell[%word], %expected, %nanos"
            self.expect(opcode, ops, ("value",), spelling)
            return Backoff(values[0], loc=loc)
        if op == "wake":
            self.expect(opcode, ops, ("index",), "wake %bell[%word]")
            return Wake(values[0], values[1], loc=loc)
        simple = {"barrier": Barrier, "break": Break, "continue": Continue, "fence": Fence,
                  "syncwarp": SyncWarp, "grid_sync": GridSync}
        if op in simple:
            self.expect(opcode, ops, (), op)
            return simple[op](loc=loc)
        raise AssertionError(op)  # unreachable: checked above

    def const_array(self, result: Value, opcode: Token, ops: list[_Operand], loc: SourceLoc) -> Stmt:
        ty = result.type
        if not isinstance(ty, ArrayType) or ty.size is None:
            raise self.error(opcode, f"const_array must have a constant array type, not {ty}")
        if not ops or any(o.kind not in ("number", "name") for o in ops):
            raise self.shape_error(opcode, "const_array LITERAL, LITERAL, ...")
        return ConstArray(result, tuple(self.literal(o, ty.elem) for o in ops), loc=loc)

    # --- literals ---

    def literal(self, operand: _Operand, ty: Type) -> bool | int | float:
        text = operand.text
        token = operand.token
        if not isinstance(ty, ScalarType):
            raise self.error(token, f"a constant must have a scalar type, not {ty}")
        if ty.is_bool:
            if text not in ("true", "false"):
                raise self.error(token, f"bad bool literal '{text}'; expected true or false")
            return text == "true"
        if ty.is_int:
            if not re.fullmatch(r"[-+]?\d+", text):
                raise self.error(token, f"bad {ty} literal '{_shorten(text)}'; expected an integer")
            lo, hi = ty.min_value, ty.max_value
            if len(text.lstrip("+-0")) > _MAX_INT_DIGITS or not lo <= int(text) <= hi:
                raise self.error(
                    token, f"integer {_shorten(text)} is out of range for {ty} ({lo} to {hi})"
                )
            return int(text)
        if text in ("inf", "+inf"):
            return math.inf
        if text == "-inf":
            return -math.inf
        if text in ("nan", "+nan", "-nan"):
            return math.nan
        if operand.kind != "number":
            raise self.error(
                token, f"bad {ty} literal '{_shorten(text)}'; expected a number, inf or nan"
            )
        value = float(text)
        if math.isinf(value) or float_overflows(value, ty):
            raise self.error(
                token, f"float literal '{_shorten(text)}' is out of range for {ty} "
                f"(largest finite {ty} is {_FLOAT_MAX[ty.name]}); write inf for infinity"
            )
        return value


_EFFECT_NAMES = (
    "store", "store_var", "barrier", "break", "continue", "return", "fence", "backoff",
    "syncwarp", "wake", "grid_sync",
)
_VALUE_OPCODES = frozenset(
    ("const", "cast", "bitcast", "clock", "call", "shared_array", "local_array", "const_array", "load",
     "load_var", "atomic_cas", "make_tuple", "extract",
     *UNARY_OPS, *BINARY_OPS, *COMPARE_OPS, *MATH_FUNCS, *THREAD_INDEX_KINDS,
     *(f"atomic_{op}" for op in ATOMIC_OPS), *(f"subgroup_{op}" for op in SUBGROUP_OPS))
)

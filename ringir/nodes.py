"""RingIR nodes: SSA values, local variables, statements, functions, modules.

Every node is a small frozen dataclass.  Expressions are SSA values, each
defined once by an instruction statement (``result``); mutable locals are
explicit ``LocalVar``s read with ``LoadVar`` and written with ``StoreVar``.
Control flow is structured (``If``, ``Loop``, ``ForRange`` with ``Break``,
``Continue`` and ``Return``) so that WGSL and MSL can print it directly.

Source locations ride along in ``loc`` for diagnostics but take no part in
equality, so ``parse(str(m)) == m`` holds although the text form has no
locations.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ringkernel.ringir.diagnostics import SourceLoc
from ringkernel.ringir.types import ScalarType, StructType, Type


def _loc() -> Any:
    return field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Value:
    """An SSA value: printed ``%name``; its type is fixed at definition."""

    name: str
    type: Type

    def __str__(self) -> str:
        return f"%{self.name}"


@dataclass(frozen=True)
class LocalVar:
    """A mutable function-local scalar variable: printed ``$name``."""

    name: str
    type: ScalarType

    def __str__(self) -> str:
        return f"${self.name}"


class Stmt:
    """Base of every statement in a block."""

    __slots__ = ()


Block = tuple[Stmt, ...]  # a region of structured control flow

UNARY_OPS = ("neg", "not", "bitnot")
BINARY_OPS = (
    "add",
    "sub",
    "mul",
    "div",
    "rem",
    "floordiv",
    "floormod",
    "and",
    "or",
    "xor",
    "shl",
    "shr",
    "min",
    "max",
)
COMPARE_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
MATH_FUNCS = {
    # name: number of arguments
    "sqrt": 1,
    "rsqrt": 1,
    "exp": 1,
    "log": 1,
    "sin": 1,
    "cos": 1,
    "tan": 1,
    "tanh": 1,
    "floor": 1,
    "ceil": 1,
    "fabs": 1,
    "abs": 1,
    "pow": 2,
    "fma": 3,
    "atan2": 2,
    "hypot": 2,
    "copysign": 2,
    "erf": 1,
    "erfc": 1,
    "lgamma": 1,
    "log1p": 1,
    "expm1": 1,
    "cbrt": 1,
    "isnan": 1,
    "isinf": 1,
    "isfinite": 1,
    "popc": 1,
    "clz": 1,
    "ffs": 1,
    "brev": 1,
}
# Math functions whose result is not their argument type: float -> bool tests,
# and bit counts on integers whose result keeps the argument's integer type.
MATH_PREDICATES = ("isnan", "isinf", "isfinite")
INT_MATH_FUNCS = ("popc", "clz", "ffs", "brev")
THREAD_INDEX_KINDS = ("thread_id", "block_id", "block_dim", "grid_dim", "global_id")
ATOMIC_OPS = ("add", "sub", "min", "max", "and", "or", "xor", "exchange", "inc", "dec")
# inc/dec wrap as CUDA's atomicInc/atomicDec, comparing the bits as unsigned (the
# value is the limit): inc: old >= limit ? 0 : old + 1; dec: old == 0 or old > limit ? limit : old - 1.
# Float elements: min/max treat NaN as missing data (IEEE maxNum, as CUDA's fmaxf).
FLOAT_ATOMIC_OPS = ("add", "sub", "min", "max", "exchange")


def atomic_applies(op: str, elem: ScalarType) -> bool:
    """Whether the atomic read-modify-write ``op`` is defined on ``elem`` elements
    (never on bool or the small types, which no target has atomics for)."""
    if elem.is_bool or elem.is_small:
        return False
    return op in (FLOAT_ATOMIC_OPS if elem.is_float else ATOMIC_OPS)


# --- instructions that define a value -------------------------------------------------


@dataclass(frozen=True, eq=False)
class Const(Stmt):
    """A literal; floats compare by exact bit pattern, and every NaN equals every NaN."""

    result: Value
    value: bool | int | float
    loc: SourceLoc | None = _loc()

    def _key(self) -> tuple[object, ...]:
        v = self.value
        if isinstance(v, float):
            if math.isnan(v):
                return (self.result, "f", "nan")  # the text form has one NaN
            return (self.result, "f", math.copysign(1.0, v), repr(v))
        return (self.result, type(v).__name__, v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Const) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass(frozen=True)
class Unary(Stmt):
    result: Value
    op: str
    operand: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Binary(Stmt):
    """Arithmetic and bitwise ops; operands and result share one type.

    ``div`` is true division for floats and truncating division for integers;
    ``rem`` truncates likewise; ``floordiv``/``floormod`` follow Python.
    """

    result: Value
    op: str
    lhs: Value
    rhs: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Compare(Stmt):
    result: Value
    op: str
    lhs: Value
    rhs: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Cast(Stmt):
    """Numeric conversion to ``result.type`` (float→int truncates toward zero)."""

    result: Value
    value: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class MathCall(Stmt):
    result: Value
    func: str
    args: tuple[Value, ...]
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Call(Stmt):
    """A call to a ``func`` of the same module; ``result`` is None for void."""

    result: Value | None
    callee: str
    args: tuple[Value, ...]
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class ThreadIndex(Stmt):
    """``thread_id``/``block_id``/``block_dim``/``grid_dim``/``global_id`` of dim 0..2."""

    result: Value
    kind: str
    dim: int
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class SharedArray(Stmt):
    """Allocates a per-block array; its type (elem, size) is ``result.type``."""

    result: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class LocalArray(Stmt):
    """Allocates a per-work-item (private) array; its type (elem, size) is ``result.type``."""

    result: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True, eq=False)
class ConstArray(Stmt):
    """A read-only array embedded in the program (a module-level numpy array a kernel reads).

    ``data`` holds its ``result.type.size`` elements in flat (C) order; floats
    compare by bit pattern as :class:`Const` does.
    """

    result: Value
    data: tuple[bool | int | float, ...]
    loc: SourceLoc | None = _loc()

    def _key(self) -> tuple[object, ...]:
        return (self.result, tuple(_literal_key(v) for v in self.data))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConstArray) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _literal_key(v: bool | int | float) -> tuple[object, ...]:
    if isinstance(v, float):
        return ("f", "nan") if math.isnan(v) else ("f", math.copysign(1.0, v), repr(v))
    return (type(v).__name__, v)


@dataclass(frozen=True)
class Load(Stmt):
    result: Value
    array: Value
    index: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class AtomicRMW(Stmt):
    """Atomic read-modify-write of ``array[index]``; the result is the old value."""

    result: Value
    op: str
    array: Value
    index: Value
    value: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class AtomicCAS(Stmt):
    """Compare-and-swap of ``array[index]``; the result is the old value.

    Float elements (f32, f64) compare and swap their *bits*, as CUDA's
    ``atomicCAS`` on ``__float_as_uint``: -0.0 differs from 0.0, and a NaN
    matches the same NaN bits.  Every target lowers them as a CAS of the
    same-sized unsigned integer with bitcasts around it.
    """

    result: Value
    array: Value
    index: Value
    expected: Value
    desired: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class LoadVar(Stmt):
    result: Value
    var: LocalVar
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Bitcast(Stmt):
    """Reinterprets the bits of ``value`` as ``result.type`` (same width, e.g. u32 <-> f32).

    Actor queues and state are u32 words; typed fields are bitcast in and out.
    """

    result: Value
    value: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Clock(Stmt):
    """Wall-clock time in microseconds since the Unix epoch (u64); feeds actor HLCs.

    Targets without a device clock (WGSL, MSL) never see it: the actor-lowering
    pass reads host-written time from the control block for them.
    """

    result: Value
    loc: SourceLoc | None = _loc()


SUBGROUP_OPS = {
    # op: number of operands.  lane_id/size: i32; shfl*: (value, lane or delta or mask: i32)
    # -> the value's type; ballot: bool -> u32 (lanes 0..31); any/all: bool -> bool.
    "lane_id": 0,
    "size": 0,
    "shfl": 2,
    "shfl_up": 2,
    "shfl_down": 2,
    "shfl_xor": 2,
    "ballot": 1,
    "any": 1,
    "all": 1,
}


@dataclass(frozen=True)
class Subgroup(Stmt):
    """A subgroup (warp) operation over the lanes of the caller's subgroup; kernels only.

    Every lane of the subgroup must reach it together (CUDA's full-mask
    ``*_sync``).  A shuffle whose source lane is outside the subgroup
    (``shfl_up`` below lane ``d``, ``shfl_down`` past the end, ``shfl_xor``
    beyond the size) gives the lane's own value; ``shfl`` takes the lane
    modulo the subgroup size, as CUDA's ``__shfl_sync`` does.
    """

    result: Value
    op: str
    args: tuple[Value, ...]
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class MakeTuple(Stmt):
    """Groups scalars into a ``tuple<...>`` value, the one way a func returns several values."""

    result: Value
    elems: tuple[Value, ...]
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Extract(Stmt):
    """Element ``index`` (a constant) of a ``tuple<...>`` value."""

    result: Value
    tuple: Value
    index: int
    loc: SourceLoc | None = _loc()


# --- statements without a result ------------------------------------------------------


@dataclass(frozen=True)
class Fence(Stmt):
    """A sequentially consistent memory fence at system scope (host and device agree).

    Orders a queue slot's payload before the index update that publishes it.
    """

    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Backoff(Stmt):
    """A hint that this lane is idle: sleep about ``nanos`` (u32) nanoseconds, or yield.

    With a *doorbell* (``doorbell[word]``, a u32 word of a global array, and
    the ``expected`` value read from it before the lane last looked for
    work), the sleep *parks*: it ends early once another thread changes that
    word and wakes it, and does not start if the word already differs (so a
    wake-up between the last look and the park is never lost).

    cpu: ``futex`` wait on the doorbell (``usleep`` without one); PTX:
    ``nanosleep`` (sm_70+); elsewhere it may do nothing.
    """

    nanos: Value
    doorbell: Value | None = None
    word: Value | None = None
    expected: Value | None = None
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Wake(Stmt):
    """Wakes every thread parked (a ``Backoff`` with a doorbell, or the host) on ``array[word]``.

    The other half of a doorbell: the waker changes the word first (an
    atomic), then wakes, so a waiter that has not parked yet sees the new
    value and does not park.  Lets a persistent loop wake a host thread
    waiting for its reply instead of the host polling.

    cpu: ``futex`` wake of all waiters on the word; elsewhere nothing (the
    host polls).
    """

    array: Value
    word: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Store(Stmt):
    array: Value
    index: Value
    value: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class StoreVar(Stmt):
    var: LocalVar
    value: Value
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Barrier(Stmt):
    """Block-wide execution and shared-memory barrier."""

    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class GridSync(Stmt):
    """Grid-wide execution and global-memory barrier (CUDA ``grid.sync()``); kernels only.

    Every work-item of the whole launch waits here until all have arrived,
    and global memory written before it is visible to every work-item after
    it.  It needs every block resident at once (a cooperative launch), so
    only the cuda and cpu runtimes run it; it must sit in control flow that
    every work-item of the grid takes alike (the verifier checks).
    """

    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class SyncWarp(Stmt):
    """Waits for the lanes of the subgroup and orders their memory (CUDA ``__syncwarp``)."""

    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class If(Stmt):
    cond: Value
    then_body: tuple[Stmt, ...]
    else_body: tuple[Stmt, ...] = ()
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Loop(Stmt):
    """Repeats ``body`` until a ``Break`` (or ``Return``) leaves it."""

    body: tuple[Stmt, ...]
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class ForRange(Stmt):
    """``for var in range(start, stop, step)`` with Python's semantics.

    ``start``, ``stop`` and ``step`` are evaluated once, before the loop, and
    share ``var``'s integer type.  The loop runs while ``var < stop`` if
    ``step > 0`` and while ``var > stop`` if ``step < 0``; a zero step runs no
    iteration.  ``Continue`` goes to the increment.
    """

    var: LocalVar
    start: Value
    stop: Value
    step: Value
    body: tuple[Stmt, ...]
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Break(Stmt):
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Continue(Stmt):
    loc: SourceLoc | None = _loc()


@dataclass(frozen=True)
class Return(Stmt):
    value: Value | None = None
    loc: SourceLoc | None = _loc()


Instruction = (
    Const | Unary | Binary | Compare | Cast | MathCall | Call | ThreadIndex | SharedArray
    | LocalArray | ConstArray | Load | AtomicRMW | AtomicCAS | LoadVar | Bitcast | Clock | Subgroup
    | MakeTuple | Extract
)


# --- functions and modules ------------------------------------------------------------

FUNCTION_KINDS = ("kernel", "func")


@dataclass(frozen=True)
class Function:
    """A ``kernel`` (entry point, returns void) or a device ``func``."""

    name: str
    kind: str
    params: tuple[Value, ...]
    return_type: Type
    locals: tuple[LocalVar, ...]
    body: tuple[Stmt, ...]
    loc: SourceLoc | None = _loc()

    @property
    def is_kernel(self) -> bool:
        return self.kind == "kernel"


@dataclass(frozen=True)
class Module:
    """A compilation unit: struct types and functions, in a deterministic order."""

    functions: tuple[Function, ...]
    structs: tuple[StructType, ...] = ()

    def get(self, name: str) -> Function:
        for fn in self.functions:
            if fn.name == name:
                return fn
        raise KeyError(name)

    @property
    def kernels(self) -> tuple[Function, ...]:
        return tuple(f for f in self.functions if f.is_kernel)

    def __str__(self) -> str:
        from ringkernel.ringir.printer import print_module

        return print_module(self)


def result_of(stmt: Stmt) -> Value | None:
    """The value a statement defines, if any."""
    return getattr(stmt, "result", None)


# The fields of each statement that hold the values it reads, in field order.
# Every statement class is listed (an unlisted one is an error, not "reads
# nothing"), so a new node cannot be silently invisible to DCE and the passes.
_OPERAND_FIELDS: dict[type[Stmt], tuple[str, ...]] = {
    Const: (),
    Unary: ("operand",),
    Binary: ("lhs", "rhs"),
    Compare: ("lhs", "rhs"),
    Cast: ("value",),
    MathCall: ("args",),
    Call: ("args",),
    ThreadIndex: (),
    SharedArray: (),
    LocalArray: (),
    ConstArray: (),
    Load: ("array", "index"),
    AtomicRMW: ("array", "index", "value"),
    AtomicCAS: ("array", "index", "expected", "desired"),
    LoadVar: (),
    Bitcast: ("value",),
    Clock: (),
    MakeTuple: ("elems",),
    Extract: ("tuple",),
    Fence: (),
    Backoff: ("nanos", "doorbell", "word", "expected"),
    Wake: ("array", "word"),
    Store: ("array", "index", "value"),
    StoreVar: ("value",),
    Barrier: (),
    GridSync: (),
    If: ("cond",),
    Loop: (),
    ForRange: ("start", "stop", "step"),
    Break: (),
    Continue: (),
    Return: ("value",),
    Subgroup: ("args",),
    SyncWarp: (),
}


def operands(stmt: Stmt) -> tuple[Value, ...]:
    """The SSA values ``stmt`` reads, in field order (not those of its nested regions)."""
    try:
        names = _OPERAND_FIELDS[type(stmt)]
    except KeyError:
        raise TypeError(f"{type(stmt).__name__} is not a RingIR statement") from None
    found: list[Value] = []
    for name in names:
        v = getattr(stmt, name)
        if isinstance(v, tuple):
            found.extend(v)
        elif v is not None:
            found.append(v)
    return tuple(found)


def child_blocks(stmt: Stmt) -> tuple[tuple[Stmt, ...], ...]:
    """The nested regions of a control-flow statement, in program order."""
    if isinstance(stmt, If):
        return (stmt.then_body, stmt.else_body)
    if isinstance(stmt, (Loop, ForRange)):
        return (stmt.body,)
    return ()


def walk(body: tuple[Stmt, ...]) -> Iterator[Stmt]:
    """Yields every statement of ``body`` and its nested regions, in program order.

    Iterative (an explicit stack of pending regions), so any depth is fine.
    """
    stack = [iter(body)]
    while stack:
        stmt = next(stack[-1], None)
        if stmt is None:
            stack.pop()
            continue
        yield stmt
        stack.extend(iter(child) for child in reversed(child_blocks(stmt)))


class NodeVisitor:
    """Dispatches ``visit(node)`` to ``visit_<ClassName>``, as Python's ``ast`` does."""

    def visit(self, node: Any) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            return self.generic_visit(node)
        return method(node)

    def generic_visit(self, node: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not handle {type(node).__name__}")

    def visit_block(self, body: tuple[Stmt, ...]) -> None:
        for stmt in body:
            self.visit(stmt)


__all__ = [
    "Value",
    "LocalVar",
    "Stmt",
    "Block",
    "Const",
    "Unary",
    "Binary",
    "Compare",
    "Cast",
    "MathCall",
    "Call",
    "ThreadIndex",
    "SharedArray",
    "LocalArray",
    "ConstArray",
    "Load",
    "AtomicRMW",
    "AtomicCAS",
    "LoadVar",
    "Bitcast",
    "Clock",
    "MakeTuple",
    "Extract",
    "Fence",
    "Backoff",
    "Wake",
    "Store",
    "StoreVar",
    "Barrier",
    "GridSync",
    "If",
    "Loop",
    "ForRange",
    "Break",
    "Continue",
    "Return",
    "Function",
    "Module",
    "StructType",
    "NodeVisitor",
    "walk",
    "child_blocks",
    "result_of",
    "operands",
    "UNARY_OPS",
    "BINARY_OPS",
    "COMPARE_OPS",
    "MATH_FUNCS",
    "MATH_PREDICATES",
    "INT_MATH_FUNCS",
    "THREAD_INDEX_KINDS",
    "ATOMIC_OPS",
    "FLOAT_ATOMIC_OPS",
    "atomic_applies",
    "FUNCTION_KINDS",
    "SUBGROUP_OPS",
    "Subgroup",
    "SyncWarp",
    "Instruction",
]

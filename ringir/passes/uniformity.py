"""Which values and locals of a kernel hold the same value in every work-item of a block.

Work-item loops (:mod:`ringkernel.ringir.passes.workitem_loops`) may keep a
barrier inside an ``if`` or a loop only when every work-item takes the same
path there, so they ask this analysis whether a condition is *uniform*.

A value is uniform when it is a constant, a scalar kernel parameter,
``block_id``/``block_dim``/``grid_dim``, a load of a uniform local, or a pure
operation (arithmetic, comparison, cast, math, bitcast) of uniform values.
Memory loads, atomics, calls and the clock never are.  A local is uniform
when every store to it stores a uniform value in uniform control flow: not
under an ``if`` on a varying condition, not in a loop whose trip count
varies or which a varying ``break``/``continue`` leaves.  ``return`` does not
make control flow vary: a work-item that returned takes no further part.

The analysis is optimistic: it starts with every local uniform and demotes
locals until nothing changes, so a counter such as ``s = s // 2`` inside a
uniform loop stays uniform (every work-item starts from the same zero-
initialized value and applies the same updates).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ringkernel.ringir import (
    Binary,
    Bitcast,
    Break,
    Cast,
    Compare,
    Const,
    Continue,
    ForRange,
    Function,
    GridSync,
    If,
    LoadVar,
    Loop,
    MathCall,
    NodeVisitor,
    Return,
    StoreVar,
    ThreadIndex,
    Unary,
    Value,
    operands,
    walk,
)
from ringkernel.ringir.nodes import Stmt
from ringkernel.ringir.types import ScalarType

UNIFORM_INDICES = ("block_id", "block_dim", "grid_dim")
GRID_UNIFORM_INDICES = ("block_dim", "grid_dim")


@dataclass(frozen=True)
class Uniformity:
    """Names of the uniform SSA values and locals of one function."""

    values: frozenset[str]
    locals: frozenset[str]

    def is_uniform(self, value: Value) -> bool:
        return value.name in self.values


def analyze_uniformity(fn: Function, grid: bool = False) -> Uniformity:
    """Greatest fixed point: demote locals stored with varying values or under varying control.

    ``grid=True`` asks for values uniform over the whole grid (``rk.grid_sync``):
    then ``block_id`` varies too.
    """
    uniform_locals = {var.name for var in fn.locals}
    indices = GRID_UNIFORM_INDICES if grid else UNIFORM_INDICES
    while True:
        values = _ValuePass(fn, uniform_locals, indices).run()
        demoted = _StorePass(values, uniform_locals).run(fn.body)
        if not demoted:
            return Uniformity(frozenset(values), frozenset(uniform_locals))
        uniform_locals -= demoted


class _ValuePass(NodeVisitor):
    """Marks uniform SSA values in program order (definitions precede uses)."""

    def __init__(self, fn: Function, uniform_locals: set[str], indices: tuple[str, ...]) -> None:
        self.locals = uniform_locals
        self.indices = indices
        self.uniform = {p.name for p in fn.params if isinstance(p.type, ScalarType)}
        self.body = fn.body

    def run(self) -> set[str]:
        for stmt in walk(self.body):
            self.visit(stmt)
        return self.uniform

    def generic_visit(self, node: object) -> None:
        return None  # loads, atomics, calls, clock: may differ between work-items

    def pure(self, s: Unary | Binary | Compare | Cast | MathCall | Bitcast) -> None:
        """A pure instruction is uniform when every value it reads is."""
        if all(o.name in self.uniform for o in operands(s)):
            self.uniform.add(s.result.name)

    visit_Unary = visit_Binary = visit_Compare = visit_Cast = visit_MathCall = visit_Bitcast = pure

    def visit_Const(self, s: Const) -> None:
        self.uniform.add(s.result.name)

    def visit_ThreadIndex(self, s: ThreadIndex) -> None:
        if s.kind in self.indices:
            self.uniform.add(s.result.name)

    def visit_LoadVar(self, s: LoadVar) -> None:
        if s.var.name in self.locals:
            self.uniform.add(s.result.name)


class _StorePass(NodeVisitor):
    """Finds uniform locals that a store makes vary (a varying value, or varying control)."""

    def __init__(self, values: set[str], uniform_locals: set[str]) -> None:
        self.values = values
        self.locals = uniform_locals
        self.divergent = False
        self.demoted: set[str] = set()

    def run(self, body: tuple[Stmt, ...]) -> set[str]:
        self.visit_block(body)
        return self.demoted

    def generic_visit(self, node: object) -> None:
        return None

    @contextmanager
    def diverging(self, varies: bool) -> Iterator[None]:
        outer = self.divergent
        self.divergent = outer or varies
        yield
        self.divergent = outer

    def demote(self, name: str) -> None:
        if name in self.locals:
            self.demoted.add(name)

    def visit_StoreVar(self, s: StoreVar) -> None:
        if self.divergent or s.value.name not in self.values:
            self.demote(s.var.name)

    def visit_If(self, s: If) -> None:
        with self.diverging(s.cond.name not in self.values):
            self.visit_block(s.then_body)
            self.visit_block(s.else_body)

    def visit_Loop(self, s: Loop) -> None:
        with self.diverging(varying_exit(s.body, self.values)):
            self.visit_block(s.body)

    def visit_ForRange(self, s: ForRange) -> None:
        varying_trip = any(v.name not in self.values for v in (s.start, s.stop, s.step))
        if self.divergent or varying_trip:
            self.demote(s.var.name)
        with self.diverging(varying_trip or varying_exit(s.body, self.values)):
            self.visit_block(s.body)


def varying_exit(body: tuple[Stmt, ...], values: set[str] | frozenset[str],
                 under_varying_if: bool = False) -> bool:
    """Whether a ``break``/``continue`` of this loop sits under an ``if`` on a varying value."""
    for stmt in body:
        if isinstance(stmt, (Break, Continue)) and under_varying_if:
            return True
        if isinstance(stmt, If):
            varies = under_varying_if or stmt.cond.name not in values
            if varying_exit(stmt.then_body, values, varies) or varying_exit(
                stmt.else_body, values, varies
            ):
                return True
    return False


def grid_sync_problem(fn: Function) -> tuple[Stmt, str] | None:
    """The first ``grid_sync`` (or early ``return``) of kernel ``fn`` that not every work-item of
    the grid reaches alike, and why; None when every one is grid-uniform.

    A ``grid_sync`` under an ``if`` on a varying condition, or in a loop whose
    trip count or exit varies, would wait for work-items that never come
    (a hang on a GPU); so would a ``return`` under varying control in a
    kernel that syncs the grid (CUDA's arriving thread could be the one that left).
    """
    if not any(isinstance(s, GridSync) for s in walk(fn.body)):
        return None
    uniform = analyze_uniformity(fn, grid=True)
    return _GridSyncCheck(uniform.values).find(fn.body)


class _GridSyncCheck:
    """Walks a kernel tracking whether control flow may differ between work-items of the grid.

    ``ahead`` says a ``grid_sync`` may still run after the current statement
    list (later in an enclosing list, or in the next trip of an enclosing
    loop): only then is a varying ``return`` a problem.
    """

    def __init__(self, values: frozenset[str]) -> None:
        self.values = values

    def find(self, body: tuple[Stmt, ...], why: str = "", ahead: bool = False) -> tuple[Stmt, str] | None:
        for k, stmt in enumerate(body):
            later = ahead or _has_grid_sync(body[k + 1:])
            found = self.check(stmt, why, later)
            if found is not None:
                return found
        return None

    def check(self, stmt: Stmt, why: str, ahead: bool) -> tuple[Stmt, str] | None:
        if why and (isinstance(stmt, GridSync) or isinstance(stmt, Return) and ahead):
            return stmt, why
        if isinstance(stmt, If):
            cause = why or ("" if stmt.cond.name in self.values else "an 'if' whose condition "
                            "differs between work-items (it depends on thread or block indices or memory)")
            return self.find(stmt.then_body, cause, ahead) or self.find(stmt.else_body, cause, ahead)
        if isinstance(stmt, (Loop, ForRange)):
            again = ahead or _has_grid_sync(stmt.body)
            varying = isinstance(stmt, ForRange) and any(
                v.name not in self.values for v in (stmt.start, stmt.stop, stmt.step))
            cause = why or ("a 'for' loop whose bounds differ between work-items" if varying else
                            "a loop that work-items may leave at different times"
                            if varying_exit(stmt.body, self.values) else "")
            return self.find(stmt.body, cause, again)
        return None


def _has_grid_sync(body: tuple[Stmt, ...]) -> bool:
    return any(isinstance(s, GridSync) for s in walk(body))

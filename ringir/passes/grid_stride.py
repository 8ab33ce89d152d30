"""Grid-stride loops with a uniform trip structure, so work-item loops can interchange them (host only).

``for i in range(global_id(0), n, grid_dim(0) * B)`` (CUDA's grid-stride
loop) starts at a different index in every work-item, so
:mod:`ringkernel.ringir.passes.workitem_interchange` cannot put it at block
level and the block's work-items each walk their own strided slice, one
after another: scalar code, one cache line per load.  Written as::

    if step > 0:
        for j in range(U, n, step):          # U = block_id * block_dim: uniform
            if j + thread_id < n:            # exact, in 64 bits
                i = j + thread_id
                body
    else:
        the original loop

the outer loop is uniform and interchanges: ``for j: for tx: body(j + tx)``
reads ``x[j .. j + block)`` contiguously, which LLVM vectorizes.

Why it is the same loop: with ``step > 0`` and ``thread_id >= 0``, the
original visits ``i = U + t + m * step`` while ``i < n``; each such ``m``
has ``U + m * step <= i < n``, so the new loop reaches it, and the guard
skips exactly the ``m`` the original never ran.  Every work-item still runs
its iterations in order, with the same ``i``; after the loop the variable
holds the last ``i`` either way.  A zero or negative step (or one that
overflowed) takes the original loop.

Applies to a ``range`` loop of an ``i32`` variable whose start is
``global_id(d)``, ``thread_id(d)`` or ``uniform + thread_id(d)`` (``thread_id``
also through a local assigned it once, at the top level), whose stop
and step are uniform, with no barrier, ``return``, ``break``/``continue`` of
it or ``func`` call in its body, in block-level position (the kernel's top
level, or the body of control flow holding a barrier).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace

from ringkernel.ringir import (
    Barrier,
    Binary,
    Call,
    Cast,
    Compare,
    Const,
    ForRange,
    If,
    LoadVar,
    LocalVar,
    Loop,
    Stmt,
    StoreVar,
    ThreadIndex,
    Value,
    result_of,
    walk,
)
from ringkernel.ringir.passes.uniformity import Uniformity
from ringkernel.ringir.passes.workitem_interchange import definitions, exits
from ringkernel.ringir.types import BOOL, I32, I64

FreshValue = Callable[[str, object], Value]
FreshVar = Callable[[str, object], LocalVar]


def version_grid_stride_loops(
    body: tuple[Stmt, ...], uniformity: Uniformity, var_writers: dict[str, int],
    fresh: FreshValue, fresh_var: FreshVar,
) -> tuple[tuple[Stmt, ...], list[LocalVar], set[int]]:
    """``body`` with its grid-stride loops versioned, the new loop variables, and ``id()`` of each original.

    The originals (the ``else`` branches) keep their statements, so callers
    can tell them apart (the interchange ignores their memory accesses: they
    never run together with the new loop).
    """
    rewriter = _Rewriter(definitions(body), uniformity, var_writers, fresh, fresh_var)
    rewriter.top = body
    rewriter.top_position = {id(s): i for i, s in enumerate(body)}
    return rewriter.block(body), rewriter.new_vars, rewriter.originals


class _Rewriter:
    def __init__(self, defs: dict[str, Stmt], uniformity: Uniformity, var_writers: dict[str, int],
                 fresh: FreshValue, fresh_var: FreshVar) -> None:
        self.defs, self.uniformity, self.var_writers = defs, uniformity, var_writers
        self.fresh, self.fresh_var = fresh, fresh_var
        self.top: tuple[Stmt, ...] = ()
        self.top_position: dict[int, int] = {}
        self.new_vars: list[LocalVar] = []
        self.originals: set[int] = set()
        # locals assigned once, at the top level, with thread_id(axis): (axis, top-level position)
        # of the assignment, for those assigned so far
        self.tid_locals: dict[str, tuple[int, int]] = {}

    def block(self, body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
        """Rewrites the candidates of a block-level ``body``, descending into barrier control flow."""
        out: list[Stmt] = []
        for stmt in body:
            self.note_tid_local(stmt, top=body is self.top)
            if isinstance(stmt, ForRange) and self.candidate(stmt) is not None:
                out += self.version(stmt)
            elif isinstance(stmt, (Loop, ForRange)) and _has_barrier(stmt):
                out.append(replace(stmt, body=self.block(stmt.body)))
            elif isinstance(stmt, If) and _has_barrier(stmt):
                out.append(replace(stmt, then_body=self.block(stmt.then_body),
                                   else_body=self.block(stmt.else_body)))
            else:
                out.append(stmt)
        return tuple(out)

    def note_tid_local(self, stmt: Stmt, top: bool) -> None:
        """Remembers ``t = thread_id(d)`` at the top level (the only assignment of ``t``)."""
        if top and isinstance(stmt, StoreVar) and self.var_writers.get(stmt.var.name) == 1:
            index = self.defs.get(stmt.value.name)
            if isinstance(index, ThreadIndex) and index.kind == "thread_id":
                self.tid_locals[stmt.var.name] = (index.dim, self.top_position[id(stmt)])

    def thread_axis(self, v: Value) -> int | None:
        """The axis whose ``thread_id`` ``v`` is (directly, or loaded from a local holding it)."""
        stmt = self.defs.get(v.name)
        if isinstance(stmt, ThreadIndex) and stmt.kind == "thread_id":
            return stmt.dim
        if isinstance(stmt, LoadVar) and stmt.var.name in self.tid_locals:
            axis, assigned = self.tid_locals[stmt.var.name]
            # a load at the top level before the assignment still reads the initial zero
            return axis if self.top_position.get(id(stmt), assigned + 1) > assigned else None
        return None

    def candidate(self, loop: ForRange) -> tuple[str, Value | None, int] | None:
        """How a grid-stride loop's start is made, or None: ("zero" | "block" | "value", base, axis).

        "zero" starts at ``thread_id``, "block" at ``global_id`` (the block's
        first index is the base), "value" at ``base + thread_id``.
        """
        if loop.var.type != I32 or self.var_writers.get(loop.var.name) != 1:
            return None
        if not (self.uniformity.is_uniform(loop.stop) and self.uniformity.is_uniform(loop.step)):
            return None
        if exits(loop.body) or any(isinstance(s, (Barrier, Call)) for s in walk(loop.body)):
            return None
        start = self.defs.get(loop.start.name)
        axis = self.thread_axis(loop.start)
        if axis is not None:
            return "zero", None, axis
        if isinstance(start, ThreadIndex) and start.kind == "global_id":
            return "block", None, start.dim
        if isinstance(start, Binary) and start.op == "add":
            for base, tid in ((start.lhs, start.rhs), (start.rhs, start.lhs)):
                axis = self.thread_axis(tid)
                if axis is not None and self.uniformity.is_uniform(base):
                    return "value", base, axis
        return None

    def version(self, loop: ForRange) -> list[Stmt]:
        candidate = self.candidate(loop)
        assert candidate is not None
        kind, base, axis = candidate
        fresh = self.fresh
        out: list[Stmt] = []
        zero, positive = fresh("gs.zero", I32), fresh("gs.pos", BOOL)
        out += [Const(zero, 0), Compare(positive, "gt", loop.step, zero)]
        then: list[Stmt] = []
        start = fresh("gs.base", I32)
        if kind == "zero":
            then.append(Const(start, 0))
        elif kind == "block":
            block, size = fresh("gs.bid", I32), fresh("gs.bdim", I32)
            then += [ThreadIndex(block, "block_id", axis), ThreadIndex(size, "block_dim", axis),
                     Binary(start, "mul", block, size)]
        else:
            assert base is not None
            start = base
        j = self.fresh_var("gs.j", I32)
        self.new_vars.append(j)
        jv, tid, j64, t64, sum64, n64, inside, i = (
            fresh(stem, ty) for stem, ty in (
                ("gs.jv", I32), ("gs.tid", I32), ("gs.j64", I64), ("gs.t64", I64),
                ("gs.sum", I64), ("gs.n64", I64), ("gs.in", BOOL), ("gs.i", I32)))
        guarded = (Binary(i, "add", jv, tid), StoreVar(loop.var, i),
                   *_renamed(loop.body, fresh, {}))
        step_body = (
            LoadVar(jv, j), ThreadIndex(tid, "thread_id", axis), Cast(j64, jv), Cast(t64, tid),
            Binary(sum64, "add", j64, t64), Cast(n64, loop.stop), Compare(inside, "lt", sum64, n64),
            If(inside, guarded, ()),
        )
        then.append(ForRange(j, start, loop.stop, loop.step, step_body, loc=loop.loc))
        self.originals.add(id(loop))
        out.append(If(positive, tuple(then), (loop,), loc=loop.loc))
        return out


def _has_barrier(stmt: Stmt) -> bool:
    return any(isinstance(s, Barrier) for s in walk((stmt,)))


def _renamed(body: tuple[Stmt, ...], fresh: FreshValue, names: dict[str, Value]) -> tuple[Stmt, ...]:
    """A copy of ``body`` whose every defined value has a fresh name (uses follow)."""
    out: list[Stmt] = []
    for stmt in body:
        changes: dict[str, object] = {}
        for f in fields(stmt):  # type: ignore[arg-type]
            if f.name in ("result", "loc"):
                continue
            v = getattr(stmt, f.name)
            if isinstance(v, Value):
                changes[f.name] = names.get(v.name, v)
            elif isinstance(v, tuple) and v and isinstance(v[0], Value):
                changes[f.name] = tuple(names.get(x.name, x) for x in v)
            elif isinstance(v, tuple) and v and isinstance(v[0], Stmt):
                changes[f.name] = _renamed(v, fresh, names)
        r = result_of(stmt)
        if r is not None:
            names[r.name] = changes["result"] = fresh(f"gs.{r.name}.", r.type)
        out.append(replace(stmt, **changes))  # type: ignore[type-var]
    return tuple(out)

"""Schedules inside work-item loops that LLVM can vectorize across work-items (host only).

:mod:`ringkernel.ringir.passes.workitem_loops` runs the code between two
barriers (a *region*) as ``for tx in block: region(tx)``.  LLVM vectorizes
innermost loops only, so a region holding ``for k in range(TILE)`` keeps the
work-item loop outside and stays scalar.  This module holds the decisions
that give the work-item loop the innermost place; the rewrite itself is the
work-item loop pass's (it already knows how to put a loop at block level and
privatize what crosses it):

*Interchange* (:func:`interchangeable_loops`).  A ``range`` loop of a region
whose start, stop and step are uniform (the same in every work-item,
:mod:`ringkernel.ringir.passes.uniformity`) becomes block-level control flow,
exactly like a loop holding a barrier: ``for k: for tx: body(tx, k)``.

Why it is legal: between two barriers the work-items of a race-free kernel
never observe each other's memory effects (a read of another work-item's
write without a barrier between them is a data race), so *any* interleaving
of their statements is a valid schedule -- running them one after another is
one, running iteration ``k`` of every work-item before iteration ``k + 1``
of any is another.  Each work-item still runs its own iterations in order,
with its own state: the locals the body changes are privatized per
work-item (and the uniform ones shared, as they agree), so only the
order *between* work-items changes.  The loop is left alone when the
argument does not hold or cannot be checked cheaply:

- a barrier inside (it is block-level already), a ``return`` anywhere in the
  body, or a ``break``/``continue`` of this loop: a work-item-dependent exit
  would need the trip count per work-item;
- a bound that may differ between work-items, or a loop variable assigned
  elsewhere;
- a ``func`` call in the body (its memory effects are not visible here), or
  a ``local_array`` made before the loop (it cannot cross into a region);
- an array that the barrier-free run around the loop both writes and reads
  (an atomic's old value counts as a read) at anything but one and the same work-item-dependent
  index defined before the loop (``local_array`` arrays are the work-item's
  own and exempt): such code may read a value another
  work-item wrote in the same region, which only the one-after-another
  schedule defines (the race is the kernel's, but its result must not
  change under the compiler).  Atomics alone are fine: any order of them is
  a valid interleaving.

*Narrowing* (:func:`narrowing_guard`).  A region whose whole body is
``if tid < s: ...`` with ``s`` uniform (tree reductions) runs its work-item
loop over ``[0, min(s, block))`` with the body unguarded: the skipped
work-items would have done nothing.  ``<=``, ``>``, ``>=`` and ``==``
(``if tid == 0``) narrow the same way, on any axis.

*Rematerialization* (:func:`pure_chain`).  A value crossing a barrier that
is a cheap pure function of the work-item's indices (``tx = thread_id(0)``,
``col = block_id(0) * TILE + tx``) is recomputed in each region rather than
stored per work-item and loaded back: the load would hide from LLVM that
``tb[k * TILE + tx]`` is contiguous in ``tx``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ringkernel.ringir import (
    AtomicCAS,
    AtomicRMW,
    Barrier,
    Binary,
    Break,
    Call,
    Cast,
    Compare,
    Const,
    Continue,
    ForRange,
    If,
    Load,
    LoadVar,
    Loop,
    Return,
    Stmt,
    Store,
    StoreVar,
    ThreadIndex,
    Unary,
    Value,
    child_blocks,
    operands,
    result_of,
    walk,
)
from ringkernel.ringir.passes.uniformity import Uniformity
from ringkernel.ringir.types import AddressSpace, ArrayType

# Integer ops that may trap or be undefined (division by zero): never recomputed.
_TRAPPING = frozenset({"div", "rem", "floordiv", "floormod"})
# Longest chain a value is recomputed from, in statements.
CHAIN_LIMIT = 16


def pure_chain(value: Value, defs: dict[str, Stmt], params: set[str], locals_ok: set[str],
               kinds: set[str]) -> list[Stmt] | None:
    """The statements computing ``value`` (definitions first), or None if it is not cheap and pure.

    Allowed: constants, parameters in ``params``, thread indices of ``kinds``,
    loads of the locals in ``locals_ok``, and non-trapping arithmetic,
    comparisons and casts of those, at most :data:`CHAIN_LIMIT` statements.
    """
    chain: list[Stmt] = []
    seen: set[str] = set()

    def visit(v: Value) -> bool:
        if v.name in params or v.name in seen:
            return True
        stmt = defs.get(v.name)
        if isinstance(stmt, ThreadIndex):
            ok = stmt.kind in kinds
        elif isinstance(stmt, Const):
            ok = True
        elif isinstance(stmt, LoadVar):
            ok = stmt.var.name in locals_ok
        elif isinstance(stmt, Binary) and stmt.op not in _TRAPPING or isinstance(
                stmt, (Unary, Compare, Cast)):
            ok = all(visit(o) for o in operands(stmt))
        else:
            ok = False
        if not ok or len(chain) >= CHAIN_LIMIT:
            return False
        seen.add(v.name)
        chain.append(stmt)  # type: ignore[arg-type]
        return True

    return chain if visit(value) else None


def definitions(body: tuple[Stmt, ...]) -> dict[str, Stmt]:
    """SSA name -> its defining statement, over ``body`` and everything nested in it."""
    return {r.name: s for s in walk(body) if (r := result_of(s)) is not None}


def exits(body: tuple[Stmt, ...], nested: bool = False) -> bool:
    """A ``return`` anywhere, or a ``break``/``continue`` of the loop whose body this is."""
    for stmt in body:
        if isinstance(stmt, Return) or isinstance(stmt, (Break, Continue)) and not nested:
            return True
        if isinstance(stmt, If) and (exits(stmt.then_body, nested) or exits(stmt.else_body, nested)):
            return True
        if isinstance(stmt, (Loop, ForRange)) and exits(stmt.body, True):
            return True
    return False


def interchangeable_loops(run: list[Stmt], uniformity: Uniformity, var_writers: dict[str, int],
                          ignored: frozenset[int] = frozenset()) -> set[int]:
    """``id()`` of every ``range`` loop in the barrier-free ``run`` that may run at block level.

    ``run`` is a maximal list of statements between block-level statements;
    loops nested in a chosen loop are candidates too (their own bodies are
    split again), and so are loops under an ``if`` on a uniform condition
    (the ``if`` is then chosen too).  The memory accesses of the statements
    in ``ignored`` (:mod:`ringkernel.ringir.passes.grid_stride`'s original
    loops, which never run with their versioned copy) do not count.  See the
    module docstring for the rules.
    """
    if not _independent_accesses(run, ignored):
        return set()
    chosen: set[int] = set()

    def visit(body: tuple[Stmt, ...] | list[Stmt]) -> bool:
        found = False
        for stmt in body:
            if isinstance(stmt, ForRange) and _interchangeable(stmt, uniformity, var_writers):
                chosen.add(id(stmt))
                visit(stmt.body)
                found = True
            elif isinstance(stmt, If) and uniformity.is_uniform(stmt.cond):
                if visit(stmt.then_body) | visit(stmt.else_body):
                    chosen.add(id(stmt))
                    found = True
        return found

    visit(run)
    return chosen


def _interchangeable(loop: ForRange, uniformity: Uniformity, var_writers: dict[str, int]) -> bool:
    if not all(uniformity.is_uniform(v) for v in (loop.start, loop.stop, loop.step)):
        return False
    if var_writers.get(loop.var.name, 0) != 1 or exits(loop.body):
        return False
    if any(isinstance(s, (Barrier, Call)) for s in walk(loop.body)):
        return False
    inside = definitions(loop.body)  # a work-item's own array cannot cross into the loop's region
    return not any(_private(v) and v.name not in inside for s in walk(loop.body) for v in operands(s))


def _independent_accesses(run: list[Stmt], ignored: frozenset[int]) -> bool:
    """Whether every array ``run`` both writes and reads is accessed at one index only.

    That index must be defined outside the run's loops (the same in every
    iteration, so a work-item only ever touches its own element).  Arrays
    only stored to, or only updated atomically, are free.
    """
    stmts = _walk_except(run, ignored)
    inside_loops = {r.name for s in stmts if isinstance(s, (Loop, ForRange))
                    for t in walk(s.body) if (r := result_of(t)) is not None}
    accesses: dict[str, list[tuple[bool, bool, Value]]] = {}
    for s in stmts:
        if isinstance(s, (Load, Store, AtomicRMW, AtomicCAS)) and not _private(s.array):
            atomic = isinstance(s, (AtomicRMW, AtomicCAS))
            accesses.setdefault(s.array.name, []).append(
                (not isinstance(s, Load), atomic, s.index))
    for uses in accesses.values():
        writes = [u for u in uses if u[0]]
        if not writes or all(atomic for _, atomic, _ in uses):
            continue
        if not any(atomic or not write for write, atomic, _ in uses):
            continue  # only stored to: nothing here reads another work-item's value
        indices = {index.name for _, _, index in uses}
        if len(indices) > 1 or indices & inside_loops:
            return False
    return True


def _private(array: Value) -> bool:
    """A per-work-item (``local_array``) array: no other work-item can see it."""
    return isinstance(array.type, ArrayType) and array.type.space == AddressSpace.LOCAL


def _walk_except(body: list[Stmt], ignored: frozenset[int]) -> list[Stmt]:
    """Every statement of ``body`` and nested in it, except those in ``ignored`` and inside them."""
    out: list[Stmt] = []
    for stmt in body:
        if id(stmt) in ignored:
            continue
        out.append(stmt)
        for child in child_blocks(stmt):
            out += _walk_except(list(child), ignored)
    return out


@dataclass(frozen=True)
class Guard:
    """``if <thread index on axis> <op> bound``: the region's loop runs ``axis`` over a sub-range."""

    axis: int
    op: str  # "lt", "le" or "eq" with the thread index on the left
    bound: Value
    body: tuple[Stmt, ...]  # the region's body without the guard


_FLIP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq"}  # ``s > tid`` is ``tid < s``


def narrowing_guard(body: tuple[Stmt, ...], defs: dict[str, Stmt], axis_of: dict[str, int],
                    stored_ok: set[str]) -> Guard | None:
    """The guard of a region ``prefix; if tid < s: ...`` (nothing after), if it narrows.

    ``axis_of`` maps locals (by ``$name``) known to hold ``thread_id(axis)``.
    The prefix must be pure, assigning only the locals of ``stored_ok`` (it
    is skipped for the skipped work-items).  The caller checks that ``s`` is
    uniform and computable at block level.
    """
    if not body or not isinstance(body[-1], If) or body[-1].else_body:
        return None
    guard = body[-1]
    prefix = body[:-1]
    if not all(isinstance(s, (Const, ThreadIndex, LoadVar, Binary, Unary, Compare, Cast))
               or isinstance(s, StoreVar) and s.var.name in stored_ok for s in prefix):
        return None
    if any(isinstance(s, Binary) and s.op in _TRAPPING for s in prefix):
        return None
    cond = defs.get(guard.cond.name)
    if not isinstance(cond, Compare) or cond not in prefix or cond.op not in _FLIP:
        return None
    op, tid, bound = cond.op, cond.lhs, cond.rhs
    if _axis(tid, defs, axis_of) is None:
        op, tid, bound = _FLIP[op], bound, tid
    axis = _axis(tid, defs, axis_of)
    if axis is None:
        return None
    if op not in ("lt", "le", "eq"):
        return None  # ``tid > s`` would narrow from below: not worth a case
    return Guard(axis, op, bound, (*prefix, *guard.then_body))


def _axis(v: Value, defs: dict[str, Stmt], axis_of: dict[str, int]) -> int | None:
    if v.name in axis_of:
        return axis_of[v.name]
    stmt = defs.get(v.name)
    if isinstance(stmt, ThreadIndex) and stmt.kind == "thread_id":
        return stmt.dim
    if isinstance(stmt, LoadVar):
        return axis_of.get("$" + stmt.var.name)
    return None


__all__ = ["Guard", "definitions", "exits", "interchangeable_loops", "narrowing_guard", "pure_chain"]

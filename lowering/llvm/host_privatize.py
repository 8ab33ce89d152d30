"""Private copies of small global arrays that a kernel only updates with atomics (host only).

A histogram's ``atomic_add(bins, v, 1)`` costs a locked instruction per
update, and the cores fight over the bins' cache lines.  When a kernel uses
an integer global array *only* as the target of ``atomic_add``/``sub``,
``or`` or ``xor`` whose old values nobody reads, no work-item can observe the array during the
launch, so each launch-wrapper call (one range of blocks on one pool thread)
may update a zeroed private copy with plain instructions and merge it into
the array at the end with one atomic per non-zero element.  The integer
operations commute, so the result is exactly the atomics' result.

The private copy is updated by a *variant* of the kernel (:func:`private_variant`)
whose atomics on those arrays are plain load, operation, store; the wrapper
runs the variant when every such array got its copy, and the kernel itself
otherwise.  Only arrays the kernel body updates directly (not through
``func`` calls) qualify, so the variant needs no copies of callees.

The wrapper decides at run time: the array must have 1 to
:data:`PRIVATE_LIMIT` elements, must not overlap any other array argument
(aliasing), and the runtime must have passed the lengths table; otherwise the
kernel updates the array itself, atomically.
"""

from __future__ import annotations

from dataclasses import replace

from ringkernel.ringir import (
    AddressSpace,
    AtomicRMW,
    Binary,
    ForRange,
    Function,
    If,
    Load,
    Loop,
    Stmt,
    Store,
    Value,
    operands,
    walk,
)
from ringkernel.ringir.types import ArrayType, ScalarType

PRIVATE_LIMIT = 1 << 16
"""Largest array (elements) a wrapper call copies privately."""

# RingIR atomic -> the atomicrmw that merges a private copy (sub accumulates negatively)
_MERGE = {"add": "add", "sub": "add", "or": "or", "xor": "xor"}


def privatizable_arrays(fn: Function) -> dict[int, str]:
    """Parameter index -> merging ``atomicrmw`` op, for each array ``fn`` may privatize."""
    found: dict[int, str] = {}
    for i, param in enumerate(fn.params):
        ty = param.type
        if not (isinstance(ty, ArrayType) and ty.space == AddressSpace.GLOBAL):
            continue
        elem = ty.elem
        if not (isinstance(elem, ScalarType) and elem.is_int and elem.bits in (32, 64)):
            continue
        ops = _atomic_updates_only(fn, param)
        merges = {_MERGE.get(op) for op in ops or ()}
        if ops and len(merges) == 1 and None not in merges:
            found[i] = merges.pop()  # type: ignore[assignment]
    return found


def _atomic_updates_only(fn: Function, array: Value) -> set[str] | None:
    """The atomic ops applied to ``array`` in ``fn``, or None for any other use (a call among them)."""
    read = [v for s in walk(fn.body) for v in operands(s)]
    ops: set[str] = set()
    for stmt in walk(fn.body):
        args = operands(stmt)
        if array not in args:
            continue
        if isinstance(stmt, AtomicRMW) and args.count(array) == 1 and stmt.array == array:
            if stmt.result in read:
                return None  # someone reads the old value
            ops.add(stmt.op)
            continue
        return None
    return ops


def private_name(kernel_name: str) -> str:
    """The RingIR name of a kernel's private-copy variant."""
    return f"{kernel_name}.private"


def private_variant(fn: Function, arrays: dict[int, str]) -> Function:
    """``fn`` with its atomics on the ``arrays`` parameters made plain load, operation, store.

    The atomic's result (unread, see :func:`privatizable_arrays`) becomes the
    loaded value, so every SSA name stays defined exactly once.
    """
    targets = {fn.params[i] for i in arrays}
    return replace(fn, name=private_name(fn.name), body=_plain(fn.body, targets))


def _plain(body: tuple[Stmt, ...], targets: set[Value]) -> tuple[Stmt, ...]:
    out: list[Stmt] = []
    for stmt in body:
        if isinstance(stmt, AtomicRMW) and stmt.array in targets:
            new = Value(f"{stmt.result.name}.private", stmt.result.type)
            out += [
                Load(result=stmt.result, array=stmt.array, index=stmt.index, loc=stmt.loc),
                Binary(result=new, op=stmt.op, lhs=stmt.result, rhs=stmt.value),
                Store(array=stmt.array, index=stmt.index, value=new, loc=stmt.loc),
            ]
        elif isinstance(stmt, If):
            out.append(replace(stmt, then_body=_plain(stmt.then_body, targets),
                               else_body=_plain(stmt.else_body, targets)))
        elif isinstance(stmt, (Loop, ForRange)):
            out.append(replace(stmt, body=_plain(stmt.body, targets)))
        else:
            out.append(stmt)
    return tuple(out)

"""Hard limits on RingIR shapes, and the checks that enforce them without recursion.

The compiler's walkers (printer, passes, emitters, their jinja2 templates)
recurse once per nested region, so a module nested deeper than Python's
stack allows would fail with ``RecursionError`` deep inside a backend.  The
verifier (and the printer, which may run on unverified modules) call
:func:`check_nesting` first; it walks iteratively and reports the first
statement past the limit as a located :class:`CompileError`.  Sizes have a
ceiling too: no target holds an array of 2**31 bytes or more, and sizes past
it overflow 32-bit offsets in the emitted code.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.nodes import Function, SharedArray, Stmt, child_blocks, walk
from ringkernel.ringir.types import MAX_NDIM, ArrayType, ScalarType

# Regions (if/else, loop, for bodies) may nest this deep.  An elif chain is one
# level per elif.  The deepest consumer, the WGSL templates, needs about 12
# Python frames a level, so 64 levels stay well inside the default limit of 1000.
MAX_NESTING = 64

# The largest array any target can hold, in bytes (offsets are 32-bit signed).
MAX_ARRAY_BYTES = 2**31 - 1


def check_nesting(fn: Function) -> None:
    """Raises ``CompileError`` at the first compound statement nested past :data:`MAX_NESTING`."""
    stack: list[tuple[tuple[Stmt, ...], int]] = [(fn.body, 0)]
    while stack:
        body, depth = stack.pop()
        for stmt in body:
            blocks = child_blocks(stmt)
            if not blocks:
                continue
            if depth >= MAX_NESTING:
                raise CompileError.at(
                    getattr(stmt, "loc", None) or fn.loc,
                    f"in '@{fn.name}': control flow nested too deeply (limit {MAX_NESTING} levels); "
                    "move inner parts into a func or flatten elif chains",
                )
            stack.extend((block, depth + 1) for block in blocks)


def array_bytes(ty: ArrayType) -> int | None:
    """Bytes a sized array takes (bool counts 4, as in :attr:`ScalarType.nbytes`)."""
    return None if ty.size is None else ty.size * ty.elem.nbytes


def array_size_problem(ty: ArrayType) -> str | None:
    """Why a sized array type can exist on no target, or None if it can."""
    shape_problem = array_shape_problem(ty)
    if shape_problem is not None:
        return shape_problem
    if ty.size is None:
        return None
    if isinstance(ty.size, bool) or not isinstance(ty.size, int) or ty.size <= 0:
        return f"array size must be a positive integer, not {ty.size!r}"
    nbytes = array_bytes(ty)
    if nbytes is not None and nbytes > MAX_ARRAY_BYTES:
        return (
            f"array of {ty.size} x {ty.elem} ({nbytes} bytes) is larger than any target can hold "
            f"(at most {MAX_ARRAY_BYTES} bytes)"
        )
    return None


MAX_LOCAL_BYTES = 32 * 1024
"""Local arrays a work-item may hold at once (its function and the deepest call
chain below it): they live on its stack, and the cpu backend's threads have
256 KiB."""

MAX_CONST_ARRAY_BYTES = 64 * 1024
"""The largest embedded read-only array: CUDA's constant memory, and a WGSL/MSL
``const`` table size every compiler here accepts (docs/dsl.md)."""


def const_array_problem(ty: ArrayType) -> str | None:
    """Why an embedded read-only array of type ``ty`` is too large, or None."""
    nbytes = array_bytes(ty)
    if nbytes is not None and nbytes > MAX_CONST_ARRAY_BYTES:
        return (
            f"{ty.size} x {ty.elem} is {nbytes} bytes; embedded read-only arrays hold at most "
            f"{MAX_CONST_ARRAY_BYTES} bytes (CUDA constant memory)"
        )
    return None


def array_shape_problem(ty: ArrayType) -> str | None:
    """Why an N-dimensional array's shape is malformed, or None.

    Unsized arrays have launch-time extents (all ``?``); sized ones list
    positive extents whose product is the size.
    """
    shape = ty.shape
    if shape is None:
        return None
    if not isinstance(shape, tuple) or not 2 <= len(shape) <= MAX_NDIM:
        return f"an array shape has 2 to {MAX_NDIM} extents, not {shape!r}"
    if ty.size is None:
        if any(d is not None for d in shape):
            return "an array without a constant size has launch-time extents, written ?"
        return None
    if any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in shape):
        return f"the extents of a sized array must be positive integers, not {shape!r}"
    if math.prod(shape) != ty.size:  # type: ignore[arg-type]
        return f"the extents {list(shape)} do not multiply to the array size {ty.size}"
    return None


def check_shared_memory(
    fn: Function,
    limit: int,
    target: str,
    elem_bytes: Callable[[ScalarType], int] | None = None,
    align: int = 1,
    hint: str = "",
) -> None:
    """Raises ``CompileError`` at the shared array that takes ``fn`` past ``limit`` bytes.

    Each array takes ``size * elem_bytes(elem)`` bytes rounded up to ``align``,
    as the target lays it out; the message names the total and the limit.
    """
    total = 0
    for stmt in walk(fn.body):
        if not isinstance(stmt, SharedArray) or not isinstance(stmt.result.type, ArrayType):
            continue
        ty = stmt.result.type
        size = ty.size or 0
        nbytes = size * (elem_bytes(ty.elem) if elem_bytes else ty.elem.nbytes)
        total += -(-nbytes // align) * align
        if total > limit:
            raise CompileError.at(
                stmt.loc or fn.loc,
                f"kernel '{fn.name}' needs {total} bytes of shared memory; {target} allows at most "
                f"{limit} bytes per block{hint}",
            )

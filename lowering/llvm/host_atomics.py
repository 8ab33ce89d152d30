"""Atomics on shared arrays of a block that runs on one thread: plain read-modify-write.

On the host, a kernel without barriers, one rewritten into work-item loops
(:mod:`ringkernel.ringir.passes.workitem_loops`), or one whose work-items are
coroutines (:mod:`ringkernel.lowering.llvm.host_coroutines`) runs each block
entirely on one OS thread, work-items interleaving only at barriers; its
shared arrays live in that thread's own area.  No other thread can touch
them, so an atomic on a shared array needs no ``lock`` prefix: a load, the
operation and a store give the same result.  The rule, in one line:
**shared-array atomics are plain in the "plain", "loops" and "coroutines"
block modes; global-array atomics, and every atomic in the "threads" mode
(one OS thread per work-item), stay hardware atomics.**
"""

from __future__ import annotations

from llvmlite import ir

from ringkernel.ringir.types import ScalarType

_INT_OPS = {"add": "add", "sub": "sub", "and": "and_", "or": "or_", "xor": "xor"}
_FLOAT_OPS = {"fadd": "fadd", "fsub": "fsub"}
_SELECTS = {"max": ">", "min": "<", "umax": ">", "umin": "<"}


def plain_rmw(b: ir.IRBuilder, op: str, ptr: ir.Value, value: ir.Value,
              elem: ScalarType) -> ir.Value | None:
    """``old = *ptr; *ptr = old <op> value; old`` for the ``atomicrmw`` operation ``op``.

    None for an operation this does not know (the caller keeps the atomic).
    """
    old = b.load(ptr, typ=value.type)
    if op in _INT_OPS and not elem.is_float:
        new = getattr(b, _INT_OPS[op])(old, value)
    elif op in _FLOAT_OPS:
        new = getattr(b, _FLOAT_OPS[op])(old, value)
    elif op == "xchg":
        new = value
    elif op in _SELECTS and not elem.is_float:
        compare = b.icmp_unsigned if op.startswith("u") else b.icmp_signed
        new = b.select(compare(_SELECTS[op], old, value), old, value)
    elif op in ("fmax", "fmin"):  # atomicrmw fmax/fmin are maxnum/minnum
        name = f"llvm.{'maxnum' if op == 'fmax' else 'minnum'}.{'f32' if elem.bits == 32 else 'f64'}"
        module = b.module
        fn = module.globals.get(name) or ir.Function(
            module, ir.FunctionType(value.type, [value.type, value.type]), name=name
        )
        new = b.call(fn, [old, value])
    else:
        return None
    b.store(new, ptr)
    return old


def plain_cmpxchg(b: ir.IRBuilder, ptr: ir.Value, expected: ir.Value, desired: ir.Value) -> ir.Value:
    """``old = *ptr; if old == expected: *ptr = desired; old`` (integers)."""
    old = b.load(ptr, typ=expected.type)
    b.store(b.select(b.icmp_unsigned("==", old, expected), desired, old), ptr)
    return old

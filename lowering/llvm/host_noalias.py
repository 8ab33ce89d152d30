"""A ``noalias`` variant of a cpu kernel, chosen per launch when its arrays do not overlap.

LLVM must assume that two array parameters may overlap (``k(x, x)`` and
overlapping views are legal, and behave as on CUDA), so it reloads after
every store and vectorizes only behind run-time checks it builds per loop.
For a kernel with two or more global array parameters the host build holds
a second copy of the kernel whose array parameters are ``noalias``; the
launch wrapper compares the arguments' byte ranges (from the lengths table,
a few compares) and calls that copy when no two overlap, else the plain one.
So overlapping arguments still get numpy's answer, and distinct ones (the
usual case) get code optimized as if written with ``restrict``.

Only the plain and work-item-loop modes get the variant, and not with
private atomic copies (:mod:`~ringkernel.lowering.llvm.host_privatize`,
which already have their own variant): the others are dominated by their
barriers.
"""

from __future__ import annotations

from dataclasses import replace

from llvmlite import ir

from ringkernel.lowering.llvm import host_kernel_symbol
from ringkernel.lowering.llvm.targets import memory_type_size
from ringkernel.ringir import Function
from ringkernel.ringir.types import AddressSpace, ArrayType, as_scalar

I64 = ir.IntType(64)
PTR = ir.PointerType()


def noalias_name(kernel_name: str) -> str:
    """The RingIR name of a kernel's ``noalias`` variant."""
    return f"{kernel_name}.noalias"


def global_arrays(fn: Function) -> list[int]:
    """Positions of ``fn``'s global array parameters (the user's arrays)."""
    return [i for i, p in enumerate(fn.params)
            if isinstance(p.type, ArrayType) and p.type.space == AddressSpace.GLOBAL]


def wants_variant(fn: Function, mode_allows: bool) -> bool:
    """Whether ``fn`` gets a noalias variant: two or more user arrays in a mode that allows it."""
    return mode_allows and len(global_arrays(fn)) >= 2


def noalias_variant(fn: Function) -> Function:
    """``fn`` under its variant's name (the attributes come in :func:`mark_noalias`)."""
    return replace(fn, name=noalias_name(fn.name))


def mark_noalias(llmod: ir.Module, fn: Function) -> None:
    """Marks the global array parameters of ``fn``'s lowered variant ``noalias``."""
    variant = llmod.globals[host_kernel_symbol(noalias_name(fn.name))]
    for i in global_arrays(fn):
        variant.args[i].add_attribute("noalias")


def arrays_are_distinct(b: ir.IRBuilder, fn: Function, argv: ir.Value, args: list[ir.Value]) -> ir.Value:
    """An i1: no two global array arguments share a byte (false without a lengths table)."""
    lengths = b.load(b.gep(argv, [ir.Constant(I64, len(fn.params))], inbounds=True, source_etype=PTR),
                     typ=PTR)
    distinct = b.alloca(ir.IntType(1), name="rk.distinct")
    b.store(ir.Constant(ir.IntType(1), 0), distinct)
    with b.if_then(b.icmp_unsigned("!=", lengths, ir.Constant(PTR, None))):
        spans = []
        for i in global_arrays(fn):
            ty = fn.params[i].type
            assert isinstance(ty, ArrayType)
            n = b.load(b.gep(lengths, [ir.Constant(I64, i)], inbounds=True, source_etype=I64), typ=I64)
            lo = b.ptrtoint(args[i], I64)
            spans.append((lo, b.add(lo, b.mul(n, ir.Constant(I64, memory_type_size(as_scalar(ty.elem)))))))
        ok: ir.Value = ir.Constant(ir.IntType(1), 1)
        for k, (lo, hi) in enumerate(spans):
            for other_lo, other_hi in spans[k + 1:]:
                overlap = b.and_(b.icmp_unsigned("<", lo, other_hi), b.icmp_unsigned("<", other_lo, hi))
                ok = b.and_(ok, b.not_(overlap))
        b.store(ok, distinct)
    return b.load(distinct, typ=ir.IntType(1))

"""Array bounds checks for the host build (the cpu backend's ``checked`` launches).

A kernel bug on the cpu backend must never write over the Python heap or
crash the interpreter.  With checks on, every global or shared array access
(load, store, atomic) first compares its index with the array's length; an
index outside ``[0, length)`` skips the access (a load or atomic yields 0)
and the work-item records the violation.  The host raises
:class:`ringkernel.BoundsError` after the launch.

How lengths reach the code:

- a kernel gets two hidden parameters after the target's own: a pointer to
  one i64 length per kernel parameter (``rk.lengths``; scalars' entries are
  unused) and a pointer to the violation record (``rk.bounds``);
- a device function gets one i64 length per array parameter, then the record
  pointer, passed by its callers;
- a shared array's length is its constant size.

The violation record is three i64 words: ``site + 1`` (0 while nothing went
wrong; the first work-item to fail claims it with a compare-and-swap), the
index (sign- or zero-extended as the index type is) and the length.
``BoundsSite`` entries, numbered in emission order, tell the host which
array and source line the site is.  NVPTX never uses this: PTX stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llvmlite import ir

from ringkernel.lowering.llvm import ops
from ringkernel.ringir import Function, Value
from ringkernel.ringir.diagnostics import SourceLoc
from ringkernel.ringir.types import I64, U64, ArrayType, ScalarType

if TYPE_CHECKING:
    from ringkernel.lowering.llvm.lower import FunctionLowerer

LL_I64 = ir.IntType(64)
PTR = ir.PointerType()
RECORD_WORDS = 3
FAIL_SYMBOL = "rk_bounds_fail"


@dataclass(frozen=True)
class BoundsSite:
    """One checked access: where it is and what it indexes (for the error message)."""

    function: str
    array: str
    shared: bool  # a constant-size array (shared, local or constant), named by its memory
    signed_index: bool
    loc: SourceLoc | None
    space: str = "shared"


def bounds_params(fn: Function) -> list[tuple[str, ir.Type]]:
    """The hidden (name, type) parameters a checked build appends to ``fn``."""
    if fn.is_kernel:
        return [("rk.lengths", PTR), ("rk.bounds", PTR)]
    lengths = [(f"{p.name}.len", LL_I64) for p in fn.params if isinstance(p.type, ArrayType)]
    return [*lengths, ("rk.bounds", PTR)]


class BoundsChecker:
    """Guards the array accesses of one function being lowered."""

    def __init__(self, fl: FunctionLowerer, sites: list[BoundsSite]) -> None:
        self.fl = fl
        self.sites = sites
        args = fl.llfn.args
        self.record = args[-1]
        arrays = [p for p in fl.fn.params if isinstance(p.type, ArrayType)]
        self.lengths: dict[str, ir.Value] = {}
        if fl.fn.is_kernel:
            b = fl.builder
            table = args[-2]
            for i, p in enumerate(fl.fn.params):
                if isinstance(p.type, ArrayType):
                    slot = b.gep(table, [ir.Constant(LL_I64, i)], inbounds=True, source_etype=LL_I64)
                    self.lengths[p.name] = b.load(slot, typ=LL_I64, name=f"{p.name}.len")
        else:
            own = args[len(args) - 1 - len(arrays):-1]
            self.lengths = {p.name: arg for p, arg in zip(arrays, own)}

    def length(self, array: Value) -> ir.Value:
        ty = array.type
        assert isinstance(ty, ArrayType)
        if ty.size is not None:
            return ir.Constant(LL_I64, ty.size)
        return self.lengths[array.name]

    def call_args(self, args: Sequence[Value]) -> list[ir.Value]:
        """What a call passes after its arguments: the arrays' lengths, then the record."""
        return [self.length(a) for a in args if isinstance(a.type, ArrayType)] + [self.record]

    def guard(
        self, array: Value, index: Value, loc: SourceLoc | None,
        access: Callable[[], ir.Value | None],
    ) -> ir.Value | None:
        """Emits ``access()`` under ``0 <= index < length``; otherwise records the site.

        Returns what ``access`` returned (0 where the access was skipped).
        """
        fl, b = self.fl, self.fl.builder
        ity = index.type
        assert isinstance(ity, ScalarType) and isinstance(array.type, ArrayType)
        signed = ity.kind == "int"
        wide = ops.cast(b, fl.value(index), ity, I64 if signed else U64)
        length = self.length(array)
        inside = b.icmp_unsigned("<", wide, length)  # a negative index is huge unsigned
        ok_bb, bad_bb, end_bb = fl.new_block("rk.inbounds"), fl.new_block("rk.oob"), fl.new_block("rk.access")
        b.cbranch(inside, ok_bb, bad_bb).set_weights([1 << 20, 1])
        b.position_at_end(bad_bb)
        site = self._site(array, signed, loc)
        b.call(_fail_function(fl.module), [self.record, ir.Constant(LL_I64, site + 1), wide, length])
        b.branch(end_bb)
        b.position_at_end(ok_bb)
        value = access()
        ok_end = b.block
        b.branch(end_bb)
        b.position_at_end(end_bb)
        if value is None:
            return None
        merged = b.phi(value.type)
        merged.add_incoming(value, ok_end)
        merged.add_incoming(ir.Constant(value.type, 0), bad_bb)
        return merged

    def _site(self, array: Value, signed: bool, loc: SourceLoc | None) -> int:
        ty = array.type
        assert isinstance(ty, ArrayType)
        self.sites.append(
            BoundsSite(self.fl.fn.name, array.name, ty.size is not None, signed, loc, ty.space.value)
        )
        return len(self.sites) - 1


def _fail_function(module: ir.Module) -> ir.Function:
    """``void rk_bounds_fail(i64 *record, i64 site1, i64 index, i64 length)``, defined once.

    The first caller claims the record with a compare-and-swap and fills in
    index and length; later violations leave it alone.  Kept out of line and
    cold so that the checks cost the fast path one compare and branch.
    """
    existing = module.globals.get(FAIL_SYMBOL)
    if existing is not None:
        return existing
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, LL_I64, LL_I64, LL_I64]),
                     name=FAIL_SYMBOL)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    fn.attributes.add("cold")
    record, site1, index, length = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    claim = b.cmpxchg(record, ir.Constant(LL_I64, 0), site1, "monotonic", "monotonic")
    with b.if_then(b.extract_value(claim, 1)):
        for word, value in ((1, index), (2, length)):
            slot = b.gep(record, [ir.Constant(LL_I64, word)], inbounds=True, source_etype=LL_I64)
            b.store(value, slot)
    b.ret_void()
    return fn

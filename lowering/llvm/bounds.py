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

N-d arrays: the frontend turns ``a[i, j]`` into the flat ``i * a.shape1 + j``,
so checking the flat index alone lets ``a[1, 9]`` of a 4 x 8 array write
``a[2, 1]``.  The checker recognizes that row-major pattern (the inner axes'
``mul``/``add`` with the array's own extents) and also compares every inner
index with its extent; the flat check then covers axis 0.  Each axis is its
own site, so the error names the axis, its index and its extent.  An index the
pattern does not match (rewritten by a pass) keeps the flat check: still
memory-safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llvmlite import ir

from ringkernel.lowering.llvm import ops
from ringkernel.ringir import Function, Value
from ringkernel.ringir.diagnostics import SourceLoc
from ringkernel.ringir.nodes import Binary, Cast, Const, Stmt, walk
from ringkernel.ringir.types import I64, U64, ArrayType, ScalarType, extent_param_name

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
    axis: int | None = None  # of an N-d array: which index failed (the record holds its extent)


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
        # a copy of a function lowered earlier (the noalias variant: same body, so the same
        # sites in the same order) reuses its site numbers instead of adding duplicates
        starts: dict[str, int] = getattr(fl.target, "site_starts", {})
        twin = getattr(fl.target, "site_twins", {}).get(fl.fn.name)
        self.reuse = starts[twin] if twin is not None else None
        self.reused = 0
        starts[fl.fn.name] = len(sites)
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
        self.defs: dict[str, Stmt] = {
            s.result.name: s for s in walk(fl.fn.body) if isinstance(s, (Binary, Cast, Const))
        }

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
        wide = self._wide(index)
        length = self.length(array)
        inside = b.icmp_unsigned("<", wide, length)  # a negative index is huge unsigned
        axes = self._axes(array, index)
        inner = []  # (in range, site, index, extent) of the inner axes of an N-d access
        for axis, (axis_index, extent) in enumerate(axes[1:] if axes else [], start=1):
            at, size = self._wide(axis_index), self._wide(extent)
            ok = b.icmp_unsigned("<", at, size)
            inner.append((ok, self._site(array, _signed(axis_index), loc, axis), at, size))
            inside = b.and_(inside, ok)
        ok_bb, bad_bb, end_bb = fl.new_block("rk.inbounds"), fl.new_block("rk.oob"), fl.new_block("rk.access")
        b.cbranch(inside, ok_bb, bad_bb).set_weights([1 << 20, 1])
        b.position_at_end(bad_bb)
        if axes:  # axis 0 unless an inner axis failed: its index, and length / inner extents
            rows = ir.Constant(LL_I64, 1)
            for *_, size in inner:
                rows = b.mul(rows, size)
            rows = b.select(b.icmp_unsigned("==", rows, ir.Constant(LL_I64, 0)), ir.Constant(LL_I64, 1), rows)
            first = axes[0][0]
            site_v: ir.Value = ir.Constant(LL_I64, self._site(array, _signed(first), loc, 0) + 1)
            bad, limit = self._wide(first), b.udiv(length, rows)
            for ok, site, at, size in reversed(inner):  # the lowest failing axis wins
                site_v = b.select(ok, site_v, ir.Constant(LL_I64, site + 1))
                bad, limit = b.select(ok, bad, at), b.select(ok, limit, size)
        else:
            site_v, bad, limit = ir.Constant(LL_I64, self._site(array, signed, loc) + 1), wide, length
        b.call(_fail_function(fl.module), [self.record, site_v, bad, limit])
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

    def _wide(self, value: Value) -> ir.Value:
        """``value`` as an i64 (sign- or zero-extended as its type is)."""
        ty = value.type
        assert isinstance(ty, ScalarType)
        return ops.cast(self.fl.builder, self.fl.value(value), ty, I64 if _signed(value) else U64)

    def _axes(self, array: Value, index: Value) -> list[tuple[Value, Value]] | None:
        """``[(index, extent), ...]`` per axis of an N-d access whose flat ``index`` is the
        frontend's row-major ``(i * e1 + j) * e2 + k``; None otherwise (axis 0's extent is
        ``index`` itself: unused)."""
        ty = array.type
        assert isinstance(ty, ArrayType)
        axes: list[tuple[Value, Value]] = []
        flat = index
        for axis in range(ty.ndim - 1, 0, -1):
            add = self.defs.get(flat.name)
            if not (isinstance(add, Binary) and add.op == "add"):
                return None
            mul = self.defs.get(add.lhs.name)
            if not (isinstance(mul, Binary) and mul.op == "mul" and self._is_extent(array, axis, mul.rhs)):
                return None
            axes.append((add.rhs, mul.rhs))
            flat = mul.lhs
        axes.append((flat, index))
        return axes[::-1] if ty.ndim > 1 else None

    def _is_extent(self, array: Value, axis: int, value: Value) -> bool:
        """Whether ``value`` is extent ``axis`` of ``array`` (its hidden parameter or constant)."""
        ty = array.type
        assert isinstance(ty, ArrayType) and ty.shape is not None
        stmt = self.defs.get(value.name)
        if isinstance(stmt, Cast):  # widened for a 64-bit index
            value, stmt = stmt.value, self.defs.get(stmt.value.name)
        if ty.shape[axis] is not None:
            return isinstance(stmt, Const) and stmt.value == ty.shape[axis]
        return stmt is None and value.name == extent_param_name(array.name, axis)

    def _site(self, array: Value, signed: bool, loc: SourceLoc | None, axis: int | None = None) -> int:
        ty = array.type
        assert isinstance(ty, ArrayType)
        if self.reuse is not None:
            number = self.reuse + self.reused
            self.reused += 1
            assert self.sites[number].array == array.name and self.sites[number].loc == loc
            return number
        self.sites.append(
            BoundsSite(self.fl.fn.name, array.name, ty.size is not None, signed, loc, ty.space.value, axis)
        )
        return len(self.sites) - 1


def _signed(value: Value) -> bool:
    ty = value.type
    return isinstance(ty, ScalarType) and ty.kind == "int"


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

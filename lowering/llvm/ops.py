"""Scalar operations in LLVM IR with RingIR's (Python's) semantics.

Every operation here is defined for every input, so no kernel can trap or
hit LLVM poison:

- integer division and remainder by zero give 0 (``x // 0 == 0``,
  ``x % 0 == 0``); GPUs do not trap either, and the host process must not die.
  ``INT_MIN // -1`` wraps to ``INT_MIN``.
- shift amounts are taken modulo the bit width (as WGSL does).
- float -> int casts saturate (``llvm.fptosi.sat``): NaN gives 0 and
  out-of-range values clamp, the same on every target.
- integer arithmetic wraps (two's complement), as numpy's does.
- ``f16`` converts to and from integers through ``f32`` (exact for every
  integer an f16 holds), so no target needs half-precision integer
  conversions and constant folding can mirror it; ``f64`` narrows to ``f16``
  through an ``f32`` rounded to odd, which is exact rounding without the
  ``__truncdfhf2`` library call a JIT cannot resolve.
"""

from __future__ import annotations

from llvmlite import ir

from ringkernel.ringir.types import F16, F32, ScalarType

BOOL_TRUE = ir.Constant(ir.IntType(1), 1)


def value_type(ty: ScalarType) -> ir.Type:
    """The LLVM type of a RingIR scalar held in a register."""
    if ty.is_bool:
        return ir.IntType(1)
    if ty.is_float:
        return {16: ir.HalfType(), 32: ir.FloatType()}.get(ty.bits, ir.DoubleType())
    return ir.IntType(ty.bits)


def _const(ty: ScalarType, value: int | float) -> ir.Constant:
    return ir.Constant(value_type(ty), value)


def unary(b: ir.IRBuilder, op: str, ty: ScalarType, x: ir.Value) -> ir.Value:
    if op == "neg":
        return b.fneg(x) if ty.is_float else b.sub(_const(ty, 0), x)
    if op == "not":
        return b.xor(x, BOOL_TRUE)
    return b.xor(x, _const(ty, -1))


def binary(b: ir.IRBuilder, op: str, ty: ScalarType, x: ir.Value, y: ir.Value) -> ir.Value:
    if ty.is_float:
        return _float_binary(b, op, ty, x, y)
    if op in ("div", "rem", "floordiv", "floormod"):
        return _int_division(b, op, ty, x, y)
    if op in ("shl", "shr"):
        amount = b.and_(y, _const(ty, ty.bits - 1))
        if op == "shl":
            return b.shl(x, amount)
        return b.ashr(x, amount) if ty.kind == "int" else b.lshr(x, amount)
    if op in ("min", "max"):
        pred = "<" if op == "min" else ">"
        less = b.icmp_signed(pred, x, y) if ty.kind == "int" else b.icmp_unsigned(pred, x, y)
        return b.select(less, x, y)
    simple = {"add": b.add, "sub": b.sub, "mul": b.mul, "and": b.and_, "or": b.or_, "xor": b.xor}
    return simple[op](x, y)


def _float_binary(b: ir.IRBuilder, op: str, ty: ScalarType, x: ir.Value, y: ir.Value) -> ir.Value:
    simple = {"add": b.fadd, "sub": b.fsub, "mul": b.fmul, "div": b.fdiv, "rem": b.frem}
    if op in simple:
        return simple[op](x, y)
    suffix = "f32" if ty.bits == 32 else "f64"
    fty = value_type(ty)
    module = b.module
    if op in ("min", "max"):
        fn = _intrinsic(module, f"llvm.{op}num.{suffix}", fty, [fty, fty])
        return b.call(fn, [x, y])
    if op == "floordiv":
        floor = _intrinsic(module, f"llvm.floor.{suffix}", fty, [fty])
        return b.call(floor, [b.fdiv(x, y)])
    # floormod: C fmod, then shifted by the divisor when the signs differ (Python/numpy).
    r = b.frem(x, y)
    zero = ir.Constant(fty, 0.0)
    nonzero = b.fcmp_unordered("!=", r, zero)
    signs_differ = b.xor(b.fcmp_ordered("<", r, zero), b.fcmp_ordered("<", y, zero))
    return b.select(b.and_(nonzero, signs_differ), b.fadd(r, y), r)


def _int_division(b: ir.IRBuilder, op: str, ty: ScalarType, x: ir.Value, y: ir.Value) -> ir.Value:
    zero = _const(ty, 0)
    is_zero = b.icmp_unsigned("==", y, zero)
    if ty.kind == "uint":
        safe = b.select(is_zero, _const(ty, 1), y)
        result = b.urem(x, safe) if op in ("rem", "floormod") else b.udiv(x, safe)
        return b.select(is_zero, zero, result)
    # y == -1 would overflow (INT_MIN / -1 traps on x86): divide by 1 and negate.
    minus_one = b.icmp_signed("==", y, _const(ty, -1))
    safe = b.select(b.or_(is_zero, minus_one), _const(ty, 1), y)
    q = b.sdiv(x, safe)
    r = b.srem(x, safe)
    if op in ("floordiv", "floormod"):
        adjust = b.and_(
            b.icmp_signed("!=", r, zero), b.icmp_signed("<", b.xor(r, y), zero)
        )
        q = b.select(adjust, b.sub(q, _const(ty, 1)), q)
        r = b.select(adjust, b.add(r, y), r)
    if op in ("rem", "floormod"):
        return r
    q = b.select(minus_one, b.sub(zero, x), q)
    return b.select(is_zero, zero, q)


_ICMP = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def compare(b: ir.IRBuilder, op: str, ty: ScalarType, x: ir.Value, y: ir.Value) -> ir.Value:
    pred = _ICMP[op]
    if ty.is_float:
        # Python: every comparison with NaN is false except '!='.
        if op == "ne":
            return b.fcmp_unordered(pred, x, y)
        return b.fcmp_ordered(pred, x, y)
    if ty.kind == "int":
        return b.icmp_signed(pred, x, y)
    return b.icmp_unsigned(pred, x, y)


def cast(b: ir.IRBuilder, x: ir.Value, src: ScalarType, dst: ScalarType) -> ir.Value:
    to = value_type(dst)
    if src == dst:
        return x
    if dst.is_bool:
        if src.is_float:
            return b.fcmp_unordered("!=", x, ir.Constant(value_type(src), 0.0))
        return b.icmp_unsigned("!=", x, ir.Constant(value_type(src), 0))
    if F32 not in (src, dst) and (src == F16 and not dst.is_float or dst == F16 and not src.is_float):
        return cast(b, cast(b, x, src, F32), F32, dst)  # see the module docstring
    if src.is_bool:
        return b.uitofp(x, to) if dst.is_float else b.zext(x, to)
    if src.is_float and dst.is_float:
        if src.bits == 64 and dst == F16:
            return b.fptrunc(_f64_to_f32_odd(b, x), to)
        return b.fpext(x, to) if dst.bits > src.bits else b.fptrunc(x, to)
    if src.is_float:
        name = "llvm.fptosi.sat" if dst.kind == "int" else "llvm.fptoui.sat"
        suffix = f"i{dst.bits}.{'f32' if src.bits == 32 else 'f64'}"
        fn = _intrinsic(b.module, f"{name}.{suffix}", to, [value_type(src)])
        return b.call(fn, [x])
    if dst.is_float:
        return b.sitofp(x, to) if src.kind == "int" else b.uitofp(x, to)
    if dst.bits == src.bits:
        return x
    if dst.bits < src.bits:
        return b.trunc(x, to)
    return b.sext(x, to) if src.kind == "int" else b.zext(x, to)


def _f64_to_f32_odd(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """``x`` rounded to f32 with round-to-odd: truncated toward zero, the last bit set if inexact.

    Rounding that result to f16 (13 fewer bits) gives exactly the f16 nearest to
    ``x``, as one direct rounding would.
    """
    f32, i32, f64 = ir.FloatType(), ir.IntType(32), ir.DoubleType()
    nearest = b.fptrunc(x, f32)
    back = b.fpext(nearest, f64)
    inexact = b.fcmp_ordered("!=", back, x)
    fabs = _intrinsic(b.module, "llvm.fabs.f64", f64, [f64])
    away = b.fcmp_ordered(">", b.call(fabs, [back]), b.call(fabs, [x]))
    bits = b.bitcast(nearest, i32)
    bits = b.select(b.and_(inexact, away), b.sub(bits, ir.Constant(i32, 1)), bits)
    bits = b.select(inexact, b.or_(bits, ir.Constant(i32, 1)), bits)
    return b.bitcast(bits, f32)


def int_abs(b: ir.IRBuilder, ty: ScalarType, x: ir.Value) -> ir.Value:
    if ty.kind == "uint":
        return x
    negative = b.icmp_signed("<", x, _const(ty, 0))
    return b.select(negative, b.sub(_const(ty, 0), x), x)


def _intrinsic(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(ret, args), name=name)


def float_test(b: ir.IRBuilder, func: str, ty: ScalarType, x: ir.Value) -> ir.Value:
    """``isnan``/``isinf``/``isfinite`` as ordered compares (no fast-math flags, so never folded away)."""
    if func == "isnan":
        return b.fcmp_unordered("uno", x, x)
    fty = value_type(ty)
    fabs = _intrinsic(b.module, f"llvm.fabs.f{ty.bits}", fty, [fty])
    magnitude = b.call(fabs, [x])
    inf = ir.Constant(fty, float("inf"))
    return b.fcmp_ordered("==" if func == "isinf" else "<", magnitude, inf)


def int_bits(b: ir.IRBuilder, func: str, ty: ScalarType, x: ir.Value) -> ir.Value:
    """``popc``/``clz``/``ffs``/``brev`` through LLVM's bit intrinsics (defined for 0: no poison)."""
    ity = value_type(ty)
    if func in ("popc", "brev"):
        name = "llvm.ctpop" if func == "popc" else "llvm.bitreverse"
        return b.call(_intrinsic(b.module, f"{name}.i{ty.bits}", ity, [ity]), [x])
    no_poison = ir.Constant(ir.IntType(1), 0)
    name = "llvm.ctlz" if func == "clz" else "llvm.cttz"
    count = b.call(_intrinsic(b.module, f"{name}.i{ty.bits}", ity, [ity, ir.IntType(1)]), [x, no_poison])
    if func == "clz":
        return count
    is_zero = b.icmp_unsigned("==", x, _const(ty, 0))
    return b.select(is_zero, _const(ty, 0), b.add(count, _const(ty, 1)))

"""Constant folding: instructions whose operands are all constants become constants.

Folding must give exactly what the target computes at run time, so it follows
the IR's semantics bit for bit: integers wrap at their width, ``div``/``rem``
truncate (C), ``floordiv``/``floormod`` floor (Python; float ``floormod`` is
``fmod`` shifted by the divisor when the signs differ), ``f32`` arithmetic
rounds through numpy ``float32``. Casts to the small types wrap (integers) or
round to nearest even (``f16``, from integers through f32 as every target
converts them), so a folded cast equals the cpu backend's bit for bit. Where
targets disagree or the result is undefined (division by zero, ``INT_MIN /
-1``, shifts by the width or more, float-to-int casts out of range,
``min``/``max`` of NaN or of zeros of different sign, transcendental math
functions whose GPU versions are not correctly rounded, a ``bitcast`` from or
to a NaN, whose payload a constant does not keep) the instruction is left for
the target. An ``If`` on a constant condition is replaced by the statements of
the branch taken.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ringkernel.ringir.nodes import (
    Binary,
    Bitcast,
    Cast,
    Compare,
    Const,
    ForRange,
    Function,
    If,
    Loop,
    MathCall,
    Module,
    Stmt,
    Unary,
    operands,
)
from ringkernel.ringir.types import ScalarType

Scalar = bool | int | float
_Foldable = Unary | Binary | Compare | Cast | Bitcast | MathCall


def fold_constants(module: Module) -> Module:
    """Returns ``module`` with constant instructions and constant ``If``s folded."""
    return replace(module, functions=tuple(_fold_function(fn) for fn in module.functions))


def _fold_function(fn: Function) -> Function:
    consts: dict[str, Scalar] = {}
    return replace(fn, body=_fold_block(fn.body, consts))


def _fold_block(body: tuple[Stmt, ...], consts: dict[str, Scalar]) -> tuple[Stmt, ...]:
    # SSA names are unique in a function, so one map serves every region: a use
    # can only see a definition that is in scope, and that one is the only one.
    out: list[Stmt] = []
    for stmt in body:
        if isinstance(stmt, If):
            cond = consts.get(stmt.cond.name)
            if isinstance(cond, bool):
                # Values defined in the taken branch move into this region; their
                # names are unique and every later use was already in their scope.
                out.extend(_fold_block(stmt.then_body if cond else stmt.else_body, consts))
                continue
            out.append(replace(
                stmt,
                then_body=_fold_block(stmt.then_body, consts),
                else_body=_fold_block(stmt.else_body, consts),
            ))
        elif isinstance(stmt, (Loop, ForRange)):
            out.append(replace(stmt, body=_fold_block(stmt.body, consts)))
        else:
            if isinstance(stmt, _Foldable):
                folded = _fold_instruction(stmt, consts)
                if folded is not None:
                    stmt = Const(stmt.result, folded, loc=stmt.loc)
            if isinstance(stmt, Const):
                consts[stmt.result.name] = stmt.value
            out.append(stmt)
    return tuple(out)


def _fold_instruction(stmt: _Foldable, consts: dict[str, Scalar]) -> Scalar | None:
    """The constant ``stmt`` computes, or None when it cannot (or must not) fold."""
    if not isinstance(stmt, (Unary, Binary, Compare, Cast, Bitcast, MathCall)):
        return None
    reads = operands(stmt)
    if any(v.name not in consts for v in reads):
        return None
    args = [consts[v.name] for v in reads]
    ty = reads[0].type
    if not isinstance(ty, ScalarType) or not isinstance(stmt.result.type, ScalarType):
        return None
    if isinstance(stmt, Unary):
        return fold_unary(stmt.op, args[0], ty)
    if isinstance(stmt, Binary):
        return fold_binary(stmt.op, args[0], args[1], ty)
    if isinstance(stmt, Compare):
        return fold_compare(stmt.op, args[0], args[1], ty)
    if isinstance(stmt, Cast):
        return fold_cast(args[0], ty, stmt.result.type)
    if isinstance(stmt, Bitcast):
        return fold_bitcast(args[0], ty, stmt.result.type)
    return fold_math(stmt.func, args, ty)


# --- scalar semantics -------------------------------------------------------------------


def wrap(value: int, ty: ScalarType) -> int:
    """Two's-complement wraparound of ``value`` to the integer type ``ty``."""
    mask = (1 << ty.bits) - 1
    value &= mask
    if ty.kind == "int" and value >> (ty.bits - 1):
        value -= 1 << ty.bits
    return value


def to_float(value: float, ty: ScalarType) -> float:
    """``value`` as the target holds it: rounded to f32 for ``f32``, to f16 for ``f16``."""
    if ty.bits == 16:
        return float(np.float16(value))
    return float(np.float32(value)) if ty.bits == 32 else float(value)


def _fp(value: float, ty: ScalarType) -> np.floating[Any]:
    result: np.floating[Any] = (
        np.float16(value) if ty.bits == 16 else np.float32(value) if ty.bits == 32 else np.float64(value)
    )
    return result


def _int(value: Scalar) -> int:
    """An operand of an integer operation (the verifier gives those integer operands)."""
    if isinstance(value, float):
        raise TypeError(f"integer operation on the float constant {value!r}")
    return value


@np.errstate(all="ignore")
def fold_unary(op: str, a: Scalar, ty: ScalarType) -> Scalar | None:
    if op == "not":
        return not a
    if op == "bitnot":
        return wrap(~_int(a), ty)
    if ty.is_float:
        return float(-_fp(a, ty))
    return wrap(-_int(a), ty)


@np.errstate(all="ignore")
def fold_binary(op: str, a: Scalar, b: Scalar, ty: ScalarType) -> Scalar | None:
    if ty.is_bool:
        return {"and": a and b, "or": a or b, "xor": a != b}.get(op)
    if ty.is_float:
        return _fold_float_binary(op, _fp(a, ty), _fp(b, ty))
    return _fold_int_binary(op, _int(a), _int(b), ty)


def _fold_int_binary(op: str, a: int, b: int, ty: ScalarType) -> int | None:
    if op in ("div", "rem", "floordiv", "floormod"):
        if b == 0:
            return None
        if ty.kind == "int" and b == -1 and a == ty.min_value:
            return None  # overflows; targets disagree
        if op == "floordiv":
            return a // b
        if op == "floormod":
            return a % b
        quotient = abs(a) // abs(b)
        if (a < 0) != (b < 0):
            quotient = -quotient
        return quotient if op == "div" else a - quotient * b
    if op in ("shl", "shr"):
        if not 0 <= b < ty.bits:
            return None  # undefined in C and LLVM; WGSL masks, PTX clamps
        return wrap(a << b, ty) if op == "shl" else a >> b
    result = {
        "add": lambda: a + b,
        "sub": lambda: a - b,
        "mul": lambda: a * b,
        "and": lambda: a & b,
        "or": lambda: a | b,
        "xor": lambda: a ^ b,
        "min": lambda: min(a, b),
        "max": lambda: max(a, b),
    }.get(op)
    return None if result is None else wrap(result(), ty)


def _fold_float_binary(op: str, a: np.floating, b: np.floating) -> float | None:
    if op in ("div", "rem", "floordiv", "floormod") and b == 0:
        return None
    if op in ("min", "max"):
        if math.isnan(a) or math.isnan(b) or (a == b and math.copysign(1, a) != math.copysign(1, b)):
            return None
        return float(min(a, b) if op == "min" else max(a, b))
    if op == "floordiv":
        return float(np.floor(a / b))
    if op == "floormod":
        # C fmod shifted by the divisor when the signs differ, as every target does.
        r = np.fmod(a, b)
        if (r != 0 or math.isnan(r)) and (r < 0) != (b < 0):
            r = r + b
        return float(r)
    operations: dict[str, Callable[[], np.floating[Any]]] = {
        "add": lambda: a + b,
        "sub": lambda: a - b,
        "mul": lambda: a * b,
        "div": lambda: a / b,
        "rem": lambda: np.fmod(a, b),
    }
    result = operations.get(op)
    return None if result is None else float(result())


@np.errstate(all="ignore")
def fold_compare(op: str, a: Scalar, b: Scalar, ty: ScalarType) -> bool:
    if ty.is_float:
        a, b = to_float(a, ty), to_float(b, ty)
    return {
        "eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b,
    }[op]


@np.errstate(all="ignore")
def fold_cast(a: Scalar, src: ScalarType, dst: ScalarType) -> Scalar | None:
    if src.is_float:
        a = to_float(a, src)
    if dst.is_bool:
        return a != 0
    if dst.is_float:
        if isinstance(a, bool):
            return 1.0 if a else 0.0
        if isinstance(a, int):
            if dst.bits == 16:  # through f32, as every target converts an integer to f16
                return to_float(_int_to_f32(a), dst)
            return _int_to_f32(a) if dst.bits == 32 else float(a)
        return to_float(a, dst)
    # dst is an integer type
    if isinstance(a, float):
        if not math.isfinite(a):
            return None
        a = math.trunc(a)
        if not dst.min_value <= a <= dst.max_value:
            return None  # undefined in C and LLVM; GPUs saturate
        return a
    return wrap(int(a), dst)


_BITS_DTYPE = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "u32": np.uint32,
               "i64": np.int64, "u64": np.uint64, "i8": np.int8, "u8": np.uint8,
               "i16": np.int16, "u16": np.uint16, "f16": np.float16}


def fold_bitcast(a: Scalar, src: ScalarType, dst: ScalarType) -> Scalar | None:
    """The bits of ``a`` (of ``src``) read as ``dst``; None when a NaN is involved."""
    if src.is_bool or dst.is_bool or src.bits != dst.bits:
        return None
    if src.is_float and math.isnan(a):
        return None
    raw = np.array([a], dtype=_BITS_DTYPE[src.name]).view(_BITS_DTYPE[dst.name])[0]
    if dst.is_float:
        return None if math.isnan(raw) else float(raw)
    return int(raw)


def _int_to_f32(n: int) -> float:
    """Round-to-nearest-even of an integer to f32, without going through f64 twice."""
    if abs(n) <= 1 << 53:
        return float(np.float32(float(n)))
    magnitude = abs(n)
    shift = magnitude.bit_length() - 24
    quotient, remainder = divmod(magnitude, 1 << shift)
    half = 1 << (shift - 1)
    if remainder > half or (remainder == half and quotient & 1):
        quotient += 1
    return math.copysign(float(quotient << shift), n)


# Math functions whose results every target computes exactly (IEEE correctly
# rounded); transcendental ones are left to the target's own implementation.
_EXACT_MATH = {
    "sqrt": np.sqrt,
    "floor": np.floor,
    "ceil": np.ceil,
    "fabs": np.abs,
    "abs": np.abs,
}


@np.errstate(all="ignore")
def fold_math(func: str, args: list[Scalar], ty: ScalarType) -> Scalar | None:
    fn = _EXACT_MATH.get(func)
    if fn is None:
        return None
    if ty.is_int:
        return wrap(abs(_int(args[0])), ty) if func == "abs" else None
    return float(fn(_fp(args[0], ty)))

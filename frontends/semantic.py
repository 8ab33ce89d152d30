"""The typing rules of the kernel language, apart from the syntax walk (as Triton's ``semantic.py``).

:class:`Semantic` decides what an operation on :class:`Operand` values means:
literal typing (an int literal adopts the other operand's type, alone it is
i32; a float literal is f32), int→float promotion, the promotion of the small
types (``i8 u8 i16 u16`` to i32 as C promotes integers, ``f16`` to f32 with
the result rounded back to f16 per operation), the mixed-types and
mixed-signedness errors (which name the exact cast to write), the result type
of each binary operator, casts and their wrapping, and the types math builtins
take. It emits the resulting IR through the function's builder. The ast walk
(:mod:`ringkernel.frontends.python`) visits the syntax and hands the operands
here; constants fold through :mod:`ringkernel.frontends.consteval`.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ringkernel.frontends import consteval
from ringkernel.frontends.source import FunctionSource
from ringkernel.ringir import (
    BOOL,
    F16,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    INT_MATH_FUNCS,
    PROMOTED,
    U8,
    U16,
    U32,
    U64,
    ArrayType,
    FunctionBuilder,
    ScalarType,
    Type,
    Value,
)
from ringkernel.ringir.diagnostics import CompileError


@dataclass(frozen=True)
class Operand:
    """An expression's result: an SSA value, or a literal still waiting for its type."""

    value: Value | None = None
    literal: bool | int | float | None = None
    node: ast.AST | None = field(default=None, compare=False)  # where it came from, for carets
    array: Any = field(default=None, compare=False)  # the ArrayRef when value is an array (arrays.py)

    @property
    def is_literal(self) -> bool:
        return self.value is None

    @property
    def type(self) -> Type | None:
        return None if self.value is None else self.value.type


def literal_default_type(lit: bool | int | float) -> ScalarType:
    if isinstance(lit, bool):
        return BOOL
    if isinstance(lit, int):
        return I32
    return F32


BINARY_OPS = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "div",
    ast.FloorDiv: "floordiv",
    ast.Mod: "floormod",
    ast.BitAnd: "and",
    ast.BitOr: "or",
    ast.BitXor: "xor",
    ast.LShift: "shl",
    ast.RShift: "shr",
    ast.Pow: "pow",
}
COMPARE_OPS = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.Gt: "gt",
    ast.GtE: "ge",
}

def op_symbol(op: ast.AST) -> str:
    return {
        "MatMult": "@",
        "Is": "is",
        "IsNot": "is not",
        "In": "in",
        "NotIn": "not in",
    }.get(type(op).__name__, type(op).__name__)


class Semantic:
    """The typing rules of one function being translated; emits through its builder ``b``."""

    def __init__(self, source: FunctionSource, b: FunctionBuilder) -> None:
        self.source = source
        self.b = b

    def error(self, message: str, node: ast.AST) -> CompileError:
        return self.source.error(node, message)

    def coerce(self, op: Operand, ty: Type, node: ast.AST, what: str = "value") -> Value:
        """``op`` as a value of type ``ty``: literals adopt it; ints promote to floats."""
        node = op.node or node
        if op.is_literal:
            return self.b.const(self.literal_as(op.literal, ty, node, what), ty)  # type: ignore
        assert op.value is not None
        if op.value.type == ty:
            return op.value
        src = op.value.type
        if isinstance(src, ScalarType) and isinstance(ty, ScalarType) and _implicit(src, ty):
            return self.b.cast(op.value, ty)
        raise self.error(
            f"{what} has type {src} but {ty} is needed here; convert it explicitly with "
            f"{ty}({source_text(op.node or node)})"
            if isinstance(ty, ScalarType)
            else f"{what} has type {src}, expected {ty}",
            node,
        )

    def promote(self, op: Operand, other: Operand | None = None) -> Operand:
        """A small-typed operand as its arithmetic type: i32 for i8..u16, f32 for f16, or the
        other operand's (non-small) type when that holds every value (``u8`` with ``u32``)."""
        ty = op.type
        if op.is_literal or not isinstance(ty, ScalarType) or not ty.is_small:
            return op
        to = PROMOTED[ty]
        wide = None if other is None or other.is_literal else other.type
        if isinstance(wide, ScalarType) and not wide.is_small and _implicit(ty, wide):
            to = wide
        return Operand(self.b.cast(op.value, to), node=op.node)  # type: ignore[arg-type]

    def promote_pair(self, a: Operand, b: Operand) -> tuple[Operand, Operand]:
        """Both operands of a binary operation or comparison promoted (see ``promote``)."""
        return self.promote(a, b), self.promote(b, a)

    def rounds_to_half(self, *ops: Operand) -> bool:
        """True when arithmetic on ``ops`` is f16 arithmetic: an f16 operand, no f32/f64 one.

        It is computed in f32 and rounded to f16 after each operation, which
        for + - * / and sqrt gives exactly the correctly rounded f16 result.
        """
        types = [op.type for op in ops if not op.is_literal]
        return F16 in types and not any(
            isinstance(t, ScalarType) and t.is_float and t != F16 for t in types
        )

    def to_half(self, result: Operand, half: bool) -> Operand:
        """``result`` rounded to f16 when the operation was f16 arithmetic (see ``rounds_to_half``)."""
        if not half or result.is_literal or result.type != F32:
            return result
        return Operand(self.b.cast(result.value, F16))  # type: ignore[arg-type]

    def literal_as(self, lit: bool | int | float, ty: Type, node: ast.AST, what: str) -> Any:
        if not isinstance(ty, ScalarType):
            raise self.error(f"a number cannot be used where {ty} is needed", node)
        if ty.is_bool:
            if isinstance(lit, bool):
                return lit
            raise self.error(f"{what} {lit!r} is not a bool; write a comparison such as x != 0", node)
        if isinstance(lit, bool):
            raise self.error(f"the bool {lit} cannot be used as {ty}; write {ty}({lit})", node)
        if ty.is_int:
            if isinstance(lit, float):
                raise self.error(
                    f"the float {lit!r} cannot be used as {ty}; write {ty}({lit!r}) to truncate", node
                )
            lo, hi = ty.min_value, ty.max_value
            if not lo <= lit <= hi:
                raise self.error(f"the integer {lit} does not fit in {ty}", node)
            return int(lit)
        try:
            value = float(lit)
        except OverflowError:
            raise self.error(f"the integer {lit} is too large for {ty}", node) from None
        if ty == F16:
            with np.errstate(over="ignore"):
                half = float(np.float16(value))
            if math.isinf(half) and not math.isinf(value):
                raise self.error(f"{lit!r} is too large for f16 (at most 65504)", node)
            return half
        if ty == F32:
            with np.errstate(over="ignore"):
                rounded = float(np.float32(value))
            if math.isinf(rounded) and not math.isinf(value):
                raise self.error(f"{lit!r} is too large for f32", node)
            return rounded
        return value

    def value_of(self, op: Operand, node: ast.AST) -> Value:
        """A literal materialized with its default type (int→i32, float→f32)."""
        if op.is_literal:
            return self.coerce(op, literal_default_type(op.literal), node, "literal")  # type: ignore
        assert op.value is not None
        return op.value

    def scalar_type(self, op: Operand, node: ast.AST) -> ScalarType:
        ty = op.type if not op.is_literal else literal_default_type(op.literal)  # type: ignore
        if not isinstance(ty, ScalarType):
            if ty is not None and not isinstance(ty, ArrayType):  # a struct, Vec or tuple value
                raise self.error(f"a {ty} value cannot be used as a number here; use its fields or "
                                 "elements", node)
            raise self.error(f"an array cannot be used as a number here (it has type {ty})", node)
        return ty

    def unify(self, a: Operand, b: Operand, node: ast.AST) -> ScalarType:
        """The common type of two operands for arithmetic and comparison."""
        if a.is_literal and b.is_literal:
            ta, tb = literal_default_type(a.literal), literal_default_type(b.literal)  # type: ignore
            return ta if ta == tb or tb.is_bool else tb if ta.is_bool else F32
        if a.is_literal or b.is_literal:
            typed, lit = (b, a) if a.is_literal else (a, b)
            ty = self.scalar_type(typed, node)
            if isinstance(lit.literal, float) and not isinstance(lit.literal, bool) and ty.is_int:
                return F32
            return ty
        ta, tb = self.scalar_type(a, node), self.scalar_type(b, node)
        if ta == tb:
            return ta
        ta, tb = PROMOTED.get(ta, ta), PROMOTED.get(tb, tb)
        if ta == tb:
            return ta
        if ta.is_int and tb.is_float:
            return tb
        if tb.is_int and ta.is_float:
            return ta
        raise self.error(mixed_types_message(ta, a, tb, b, node), node)

    def truth(self, op: Operand, node: ast.AST) -> Operand:
        """Python truthiness as a bool operand."""
        if op.is_literal:
            return Operand(literal=bool(op.literal))
        ty = self.scalar_type(op, node)
        if ty.is_bool:
            return op
        op = self.promote(op)
        ty = self.scalar_type(op, node)
        zero = self.b.const(0.0 if ty.is_float else 0, ty)
        return Operand(self.b.compare("ne", op.value, zero))  # type: ignore[arg-type]

    def binary(self, op_node: ast.operator, a: Operand, b: Operand, node: ast.AST) -> Operand:
        op = BINARY_OPS.get(type(op_node))
        if op is None:
            raise self.error(f"the operator '{op_symbol(op_node)}' is not supported", node)
        if a.is_literal and b.is_literal:
            return self.fold_literals(op_node, a.literal, b.literal, node)
        half = self.rounds_to_half(a, b)
        a, b = self.promote_pair(a, b)
        if op == "pow":
            return self.to_half(self.power(a, b, node), half)
        ty = self.unify(a, b, node)
        if op == "div" and ty.is_int:
            ty = F32  # Python's / is true division
        if op in ("and", "or", "xor") and not (ty.is_int or ty.is_bool):
            raise self.error(f"'{op_symbol(op_node)}' needs integer or bool operands, not {ty}", node)
        if op in ("shl", "shr") and not ty.is_int:
            raise self.error(f"'{op_symbol(op_node)}' needs integer operands, not {ty}", node)
        if ty.is_bool and op not in ("and", "or", "xor"):
            raise self.error(f"'{op_symbol(op_node)}' does not apply to bool values", node)
        lhs = self.coerce(a, ty, node, "the left operand")
        rhs = self.coerce(b, ty, node, "the right operand")
        return self.to_half(Operand(self.b.binary(op, lhs, rhs)), half)

    def power(self, a: Operand, b: Operand, node: ast.AST) -> Operand:
        if (
            b.is_literal
            and isinstance(b.literal, int)
            and not isinstance(b.literal, bool)
            and 0 <= b.literal <= 8
            and not a.is_literal
        ):
            ty = self.scalar_type(a, node)
            base = self.coerce(a, ty, node)
            result = self.b.const(1.0 if ty.is_float else 1, ty)
            for _ in range(b.literal):
                result = self.b.binary("mul", result, base)
            return Operand(result)
        ty = self.unify(a, b, node)
        if not ty.is_float:
            ty = F32
        return Operand(self.b.math("pow", self.coerce(a, ty, node), self.coerce(b, ty, node)))

    def fold_literals(self, op_node: ast.operator, a: Any, b: Any, node: ast.AST) -> Operand:
        try:
            result = consteval.fold_binary(op_node, a, b)
        except consteval.ConstantTooLarge:
            raise self.error("this constant expression is too large for any integer type", node) from None
        except ZeroDivisionError:
            raise self.error("division by zero in a constant expression", node) from None
        except (OverflowError, ValueError) as exc:
            raise self.error(f"invalid constant expression: {exc}", node) from None
        except TypeError:
            raise self.error(
                "invalid constant expression: bitwise operators and shifts need integer operands", node
            ) from None
        if isinstance(result, complex) or not isinstance(result, (bool, int, float)):
            raise self.error("this constant expression has no real value", node)
        return Operand(literal=result)

    def compare(self, op_node: ast.cmpop, a: Operand, b: Operand, node: ast.AST) -> Operand:
        op = COMPARE_OPS.get(type(op_node))
        if op is None:
            raise self.error(f"the comparison '{op_symbol(op_node)}' is not supported", node)
        if a.is_literal and b.is_literal:
            return Operand(literal=bool(consteval.COMPARE_OPS[op](a.literal, b.literal)))
        a, b = self.promote_pair(a, b)
        ty = self.unify(a, b, node)
        if ty.is_bool and op not in ("eq", "ne"):
            raise self.error("bool values can only be compared with == and !=", node)
        lhs = self.coerce(a, ty, node, "the left operand")
        rhs = self.coerce(b, ty, node, "the right operand")
        return Operand(self.b.compare(op, lhs, rhs))

    def bitcast_source_type(self, op: Operand, target: ScalarType, node: ast.AST) -> ScalarType:
        """The type of bitcast's operand; a literal takes the target's size (a float → f32/f64)."""
        if not op.is_literal:
            ty = self.scalar_type(op, node)
        elif isinstance(op.literal, bool):
            ty = BOOL
        elif isinstance(op.literal, float):
            ty = {16: F16, 32: F32}.get(target.bits, F64)
        else:
            unsigned = op.literal >= 0  # type: ignore[operator]
            ty = {
                (8, True): U8, (8, False): I8, (16, True): U16, (16, False): I16,
                (32, True): U32, (32, False): I32, (64, True): U64, (64, False): I64,
            }[(target.bits, unsigned)]
        if ty.is_bool:
            raise self.error("bitcast() does not apply to bool values", node)
        return ty


    def cast_literal(self, lit: Any, ty: ScalarType, node: ast.AST) -> Any:
        """A literal converted as ``ty(lit)`` converts it on the device: ints wrap, floats truncate."""
        if ty.is_float:
            return self.literal_as(float(lit), ty, node, "value")
        if isinstance(lit, float):
            if math.isnan(lit) or math.isinf(lit):
                raise self.error(f"{lit} cannot be converted to {ty}", node)
            lit = int(lit)
        lo, hi = ty.min_value, ty.max_value
        return ((int(lit) - lo) % (hi - lo + 1)) + lo  # wraps like the hardware

    def cast(self, op: Operand, ty: ScalarType, node: ast.AST, arg: ast.AST) -> Operand:
        """``ty(op)`` written at ``node`` on the argument ``arg``: a bool cast is truthiness;
        a literal converts at compile time."""
        if ty.is_bool:
            return self.truth(op, arg)
        if op.is_literal:
            return Operand(self.b.const(self.cast_literal(op.literal, ty, node), ty))
        src = self.scalar_type(op, arg)
        if src == ty:
            return op
        return Operand(self.b.cast(op.value, ty))  # type: ignore[arg-type]

    def unary(self, node: ast.UnaryOp, operand: Operand) -> Operand:
        """``not x``, ``+x``, ``-x``, ``~x``: folded on literals, else typed and emitted."""
        if isinstance(node.op, ast.Not):
            t = self.truth(operand, node.operand)
            if t.is_literal:
                return Operand(literal=not t.literal)
            return Operand(self.b.unary("not", t.value))  # type: ignore[arg-type]
        if isinstance(node.op, ast.UAdd):
            return operand
        if operand.is_literal:
            lit = operand.literal
            if isinstance(node.op, ast.USub):
                return Operand(literal=-lit)  # type: ignore[operator]
            if isinstance(lit, float):
                raise self.error("'~' needs an integer operand", node)
            return Operand(literal=~lit)  # type: ignore[operator]
        half = self.rounds_to_half(operand)
        operand = self.promote(operand)
        ty = self.scalar_type(operand, node)
        if isinstance(node.op, ast.USub):
            if ty.is_bool:
                raise self.error("'-' does not apply to bool values", node)
            return self.to_half(Operand(self.b.unary("neg", operand.value)), half)  # type: ignore[arg-type]
        if not ty.is_int:
            raise self.error(f"'~' needs an integer operand, not {ty}", node)
        return Operand(self.b.unary("bitnot", operand.value))  # type: ignore[arg-type]

    def abs(self, op: Operand, node: ast.AST) -> Operand:
        """``abs(x)``: the identity on unsigned integers, refused on bool."""
        if op.is_literal:
            return Operand(literal=abs(op.literal))  # type: ignore[arg-type]
        ty = self.scalar_type(op, node)
        if ty.is_bool:
            raise self.error("abs() does not apply to bool", node)
        if ty.kind == "uint" and not ty.is_small:
            return op
        half = self.rounds_to_half(op)
        op = self.promote(op)
        return self.to_half(Operand(self.b.math("abs", op.value)), half)  # type: ignore[arg-type]

    def min_max(self, op: str, ops: list[Operand], node: ast.AST) -> Operand:
        """``min``/``max`` of two or more operands, pairwise in the operands' common type."""
        if any(op.is_literal and isinstance(op.literal, bool) for op in ops):
            raise self.error(f"{op}() does not apply to bool", node)
        result = ops[0]
        for other in ops[1:]:
            if result.is_literal and other.is_literal:
                pair = (result.literal, other.literal)
                result = Operand(literal=min(pair) if op == "min" else max(pair))  # type: ignore[type-var]
                continue
            half = self.rounds_to_half(result, other)
            result, other = self.promote_pair(result, other)
            ty = self.unify(result, other, node)
            if ty.is_bool:
                raise self.error(f"{op}() does not apply to bool", node)
            both = self.b.binary(op, self.coerce(result, ty, node), self.coerce(other, ty, node))
            result = self.to_half(Operand(both), half)
        return result

    def subgroup(self, op: str, name: str, ops: list[Operand], node: ast.Call) -> Operand:
        """Types a Subgroup op: shuffles keep a number's type (the lane is i32), votes take truth."""
        if op in ("lane_id", "size"):
            return Operand(self.b.subgroup(op, I32))
        if op.startswith("shfl"):
            value, lane = ops
            lit = value.literal
            ty = literal_default_type(lit) if lit is not None else self.scalar_type(value, node)
            if ty.is_bool:
                raise self.error(f"{name}() shuffles numbers, not bool; shuffle i32(p) instead", node)
            lane_ty = I32 if lane.is_literal else self.scalar_type(lane, node.args[1])
            if not lane_ty.is_int or lane.is_literal and not isinstance(lane.literal, int):
                raise self.error(f"the lane of {name}() must be an integer", node.args[1])
            small = ty if ty.is_small else None
            if small is not None:  # shuffled promoted, as targets shuffle 32/64-bit words
                value, ty = self.promote(value), PROMOTED[small]
            v = self.coerce(value, ty, node.args[0], f"the value of {name}()")
            lane_i32 = lane if lane.is_literal else self.cast(lane, I32, node, node.args[1])
            moved = self.b.subgroup(op, ty, v, self.coerce(lane_i32, I32, node.args[1]))
            # back to the value's own type: exact, since every lane's value came from it
            return Operand(moved if small is None else self.b.cast(moved, small))
        pred = self.truth(ops[0], node.args[0])
        p = self.coerce(pred, BOOL, node.args[0])
        return Operand(self.b.subgroup(op, U32 if op == "ballot" else BOOL, p))

    def clamp(self, ops: list[Operand], node: ast.AST) -> Operand:
        """``rk.clamp(v, lo, hi)``: ``min(max(v, lo), hi)`` in the operands' common type."""
        return self.min_max("min", [self.min_max("max", ops[:2], node), ops[2]], node)

    def bit_math(self, func: str, op: Operand, node: ast.Call) -> Operand:
        """``rk.popc``-style bit counts: an integer argument (a literal is i32), same-typed result."""
        if op.is_literal:
            lit = op.literal
            if isinstance(lit, bool) or not isinstance(lit, int):
                raise self.error(f"{func}() needs an integer argument, not {type(lit).__name__}", node)
            ty = I32
        else:
            ty = self.scalar_type(op, node)
            if not ty.is_int:
                raise self.error(f"{func}() needs an integer argument, not {ty}", node)
        arg = self.coerce(op, ty, node.args[0], f"argument of {func}()")
        return Operand(self.b.math(func, arg))

    def math(self, func: str, ops: list[Operand], node: ast.Call) -> Operand:
        """A math function on floats: the arguments' one float type (f32 for ints and literals)."""
        if func in INT_MATH_FUNCS:
            return self.bit_math(func, self.promote(ops[0]), node)
        half = self.rounds_to_half(*ops)
        ops = [self.promote(op) for op in ops]
        ty: ScalarType | None = None
        for op in ops:
            if not op.is_literal:
                t = self.scalar_type(op, node)
                if t.is_bool:
                    raise self.error(f"{func}() needs numbers, not bool", node)
                if t.is_float:
                    if ty is not None and ty != t:
                        raise self.error(f"{func}() arguments have different types {ty} and {t}", node)
                    ty = t
        ty = ty or F32
        args = [self.coerce(op, ty, a, f"argument of {func}()") for op, a in zip(ops, node.args)]
        return self.to_half(Operand(self.b.math(func, *args)), half)


def source_text(node: ast.AST) -> str:
    """The source of an operand, for a suggested fix such as ``u32(i)``."""
    try:
        return ast.unparse(node)
    except Exception:  # a synthesized node: no better name than this
        return "..."


def _implicit(src: ScalarType, ty: ScalarType) -> bool:
    """Conversions that need no cast: int→float, small types widening to a type holding every
    value, and stores into small types (integers wrap, floats round to f16)."""
    if src.is_bool or ty.is_bool:
        return False
    if src.is_int and ty.is_float:
        return True
    if ty.is_small:
        return (src.is_int and ty.is_int) or (src.is_float and ty.is_float and src.bits <= 32)
    if src.is_small and src.is_float:
        return ty.is_float
    if src.is_small and ty.is_int:
        return ty.min_value <= src.min_value and src.max_value <= ty.max_value
    return False


def mixed_types_message(ta: ScalarType, a: Operand, tb: ScalarType, b: Operand, node: ast.AST) -> str:
    """Operands of two types that do not mix: the message names the exact casts to write."""
    left, right = source_text(a.node or node), source_text(b.node or node)
    if ta.is_int and tb.is_int and ta.bits == tb.bits:
        return (
            f"operands have different types {ta} and {tb} (signed and unsigned); convert one "
            f"of them: {tb}({left}) or {ta}({right})"
        )
    if ta.is_bool or tb.is_bool:
        return f"operands have different types {ta} and {tb}; compare with 0 or convert with {ta}(...)"
    wide, narrow = (ta, right) if ta.bits > tb.bits else (tb, left)
    return f"operands have different types {ta} and {tb}; convert one of them, e.g. {wide}({narrow})"


__all__ = ["Operand", "Semantic", "literal_default_type", "op_symbol", "BINARY_OPS", "COMPARE_OPS"]

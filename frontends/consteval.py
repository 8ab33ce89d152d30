"""Constant evaluation over Python's ``ast``: one operator table, one size guard, one evaluator.

Two places fold Python arithmetic at compile time: the kernel translator
(``2 ** 10`` between two literals inside a kernel) and ringc's static reader
(``N = 256`` / ``SCALE = 2.0 * N`` at module level, where nothing may run).
Both fold with :func:`fold_binary`, so an operator means the same thing, and
the same absurd constant (``2 ** 10 ** 9``) is refused, in either place.
:class:`ConstantEvaluator` walks a whole expression tree; the translator
folds operand by operand as it builds IR, so it calls :func:`fold_binary`
directly and words its own errors.
"""

from __future__ import annotations

import ast
import builtins
import math
from collections.abc import Callable
from typing import Any

import numpy as np

MAX_CONSTANT_BITS = 4096
"""Integers beyond this are a mistake (or an attack), not a kernel constant; far beyond u64."""

BINARY_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
    ast.LShift: lambda a, b: a << b,
    ast.RShift: lambda a, b: a >> b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitXor: lambda a, b: a ^ b,
}
"""Python's binary operators on constants, by ``ast`` operator class."""

COMPARE_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}
"""Comparisons on constants, by RingIR comparison name."""


class ConstantTooLarge(ArithmeticError):
    """Folding would build an integer beyond :data:`MAX_CONSTANT_BITS` (and could stall)."""


def too_large(op_node: ast.operator, a: Any, b: Any) -> bool:
    """Would folding ``a ** b`` or ``a << b`` build an integer of absurd size?

    Checked before folding: computing ``2 ** 10 ** 9`` to find out takes minutes.
    """
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (a, b)):
        return False
    if isinstance(op_node, ast.LShift):
        return a != 0 and b > MAX_CONSTANT_BITS
    if isinstance(op_node, ast.Pow):
        return abs(a) > 1 and b > 0 and b * a.bit_length() > MAX_CONSTANT_BITS
    return False


def fold_binary(op_node: ast.operator, a: Any, b: Any) -> Any:
    """``a <op> b`` as Python computes it; :class:`ConstantTooLarge` instead of a huge integer.

    Python's own exceptions (ZeroDivisionError, OverflowError, ValueError,
    TypeError) pass through for the caller to word; a KeyError means the
    operator is not one of :data:`BINARY_OPS`.
    """
    if too_large(op_node, a, b):
        raise ConstantTooLarge(f"'{type(op_node).__name__}' result beyond {MAX_CONSTANT_BITS} bits")
    return BINARY_OPS[type(op_node)](a, b)


class NotConstant(Exception):
    """An expression that cannot be evaluated without running the file; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_NUMPY_SCALAR_TYPES = (
    np.float32, np.float64, np.int32, np.uint32, np.int64, np.uint64, np.bool_,
    np.int8, np.uint8, np.int16, np.uint16, np.float16,
)
_CASTS = {builtins.int, builtins.float, builtins.bool, *_NUMPY_SCALAR_TYPES}


class ConstantEvaluator:
    """Evaluates numeric constant expressions over literals and known constants.

    Only arithmetic on numbers: ``+ - * / // % ** << >> & | ^ ~``, unary
    ``+ -`` and ``not``, names of known constants, attributes of allowed
    modules (``math.pi``) and ``int``/``float``/``bool``/numpy scalar casts of a
    constant.  Integers are capped at :data:`MAX_CONSTANT_BITS` bits so
    ``10 ** 10 ** 10`` is refused instead of hanging.  A scope value that is an
    instance of one of :attr:`unknown` is a name without a known value.
    """

    unknown: tuple[type, ...] = ()

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    def evaluate(self, node: ast.expr) -> Any:
        method = getattr(self, f"eval_{type(node).__name__}", None)
        if method is None:
            raise NotConstant(f"'{short(node)}', which is not a constant expression")
        return self.check(method(node), node)

    def check(self, value: Any, node: ast.expr) -> Any:
        if isinstance(value, (bool, float, np.generic)):
            return value
        if isinstance(value, int):
            if value.bit_length() > MAX_CONSTANT_BITS:
                raise NotConstant(f"'{short(node)}', whose value is too large")
            return value
        raise NotConstant(f"'{short(node)}', which is not a number")

    def eval_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, (bool, int, float)):
            return node.value
        raise NotConstant(f"{short(node)}, which is not a number")

    def eval_Name(self, node: ast.Name) -> Any:
        value = self.scope.get(node.id)
        if value is None or isinstance(value, self.unknown):
            raise NotConstant(f"'{short(node)}', which uses '{node.id}', itself not a known constant")
        return value

    def eval_Attribute(self, node: ast.Attribute) -> Any:
        base = self.static_module(node.value)
        if base is None or not hasattr(base, node.attr):
            raise NotConstant(f"'{short(node)}', which is not a constant expression")
        return getattr(base, node.attr)

    def static_module(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            value = self.scope.get(node.id)
            return value if isinstance(value, type(math)) else None
        if isinstance(node, ast.Attribute):
            base = self.static_module(node.value)
            value = getattr(base, node.attr, None) if base is not None else None
            return value if isinstance(value, type(math)) else None
        return None

    def eval_UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.evaluate(node.operand)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return +operand
        if isinstance(node.op, ast.Not):
            return not operand
        if isinstance(node.op, ast.Invert) and isinstance(operand, int) and not isinstance(operand, bool):
            return ~operand
        raise NotConstant(f"'{short(node)}', which is not a constant expression")

    def eval_BinOp(self, node: ast.BinOp) -> Any:
        a = self.evaluate(node.left)
        b = self.evaluate(node.right)
        if type(node.op) not in BINARY_OPS:
            raise NotConstant(f"'{short(node)}', which is not a constant expression")
        try:
            with np.errstate(all="raise"):
                return fold_binary(node.op, a, b)
        except ConstantTooLarge:
            raise NotConstant(f"'{short(node)}', whose value is too large") from None
        except (ArithmeticError, ValueError, TypeError, FloatingPointError) as exc:
            raise NotConstant(f"'{short(node)}', which fails: {exc}") from None

    def eval_Call(self, node: ast.Call) -> Any:
        func = self.static_callable(node.func)
        if func is None or node.keywords or len(node.args) != 1:
            raise NotConstant(f"the result of the call '{short(node)}'")
        arg = self.evaluate(node.args[0])
        try:
            return func(arg)
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise NotConstant(f"'{short(node)}', which fails: {exc}") from None

    def static_callable(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            value = self.scope.get(node.id, getattr(builtins, node.id, None))
        elif isinstance(node, ast.Attribute):
            base = self.static_module(node.value)
            value = getattr(base, node.attr, None) if base is not None else None
        else:
            return None
        return value if any(value is cast for cast in _CASTS) else None


def short(node: ast.AST) -> str:
    """An expression's source, cut to fit in one error line."""
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = [
    "MAX_CONSTANT_BITS",
    "BINARY_OPS",
    "COMPARE_OPS",
    "ConstantTooLarge",
    "too_large",
    "fold_binary",
    "NotConstant",
    "ConstantEvaluator",
    "short",
]

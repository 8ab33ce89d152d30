"""The verifier and text form of the MathCall kinds of issue 15 (float tests, bit functions)."""

from __future__ import annotations

import pytest

from ringkernel.ringir import BOOL, F32, I32, U64, VOID, Module, parse, verify
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.nodes import Const, Function, MathCall, Value


def _kernel(*body) -> Module:
    return Module((Function("k", "kernel", (), VOID, (), tuple(body)),))


def _module(arg_ty, func: str, result_ty) -> Module:
    a, r = Value("a", arg_ty), Value("r", result_ty)
    value = 1.0 if arg_ty.is_float else 1
    return _kernel(Const(a, value), MathCall(r, func, (a,)))


@pytest.mark.parametrize("func", ["isnan", "isinf", "isfinite"])
def test_float_tests_take_a_float_and_give_bool(func: str) -> None:
    m = verify(_module(F32, func, BOOL))
    assert parse(str(m)) == m
    with pytest.raises(CompileError, match="floating-point argument"):
        verify(_module(I32, func, BOOL))
    with pytest.raises(CompileError, match="returns bool"):
        verify(_module(F32, func, F32))


@pytest.mark.parametrize("func", ["popc", "clz", "ffs", "brev"])
def test_bit_functions_keep_the_integer_type(func: str) -> None:
    m = verify(_module(U64, func, U64))
    assert parse(str(m)) == m
    with pytest.raises(CompileError, match="integer argument"):
        verify(_module(F32, func, F32))
    with pytest.raises(CompileError, match="share one type"):
        verify(_module(U64, func, I32))

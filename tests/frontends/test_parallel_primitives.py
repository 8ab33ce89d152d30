"""The frontend side of issue 15's builtins: typing rules and located errors."""

from __future__ import annotations

import math

import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, u32
from ringkernel.ringir import BOOL, F32, I32, MathCall, walk
from ringkernel.ringir.diagnostics import CompileError


def _math_calls(kernel) -> dict[str, MathCall]:
    return {s.func: s for fn in kernel.ir.functions for s in walk(fn.body) if isinstance(s, MathCall)}


def test_float_tests_return_bool_and_bit_functions_keep_the_integer_type() -> None:
    @rk.kernel
    def k(x: Array[f32], u: Array[u32], o: Array[i32]):
        o[0] = i32(math.isnan(x[0])) + i32(math.isinf(x[1])) + i32(math.isfinite(x[2]))
        u[0] = rk.popc(u[1]) + rk.clz(u[2]) + rk.ffs(u[3]) + rk.brev(u[4])
        o[1] = rk.popc(7)

    calls = _math_calls(k)
    assert calls["isnan"].result.type == BOOL and calls["isnan"].args[0].type == F32
    assert calls["brev"].result.type == rk.u32 and calls["popc"].result.type in (rk.u32, I32)


def _error(kernel) -> CompileError:
    with pytest.raises(CompileError) as info:
        kernel.ir
    return info.value


def test_bit_function_of_a_float_is_a_located_error() -> None:
    @rk.kernel
    def k(x: Array[f32], o: Array[i32]):
        o[0] = rk.popc(x[0])

    err = _error(k)
    assert "popc() needs an integer argument, not f32" in str(err) and err.line is not None


def test_bit_function_of_a_float_literal_is_an_error() -> None:
    @rk.kernel
    def k(o: Array[i32]):
        o[0] = rk.clz(1.5)

    assert "clz() needs an integer argument, not float" in str(_error(k))


def test_clamp_of_bool_is_an_error() -> None:
    @rk.kernel
    def k(o: Array[i32], b: Array[bool]):
        o[0] = i32(rk.clamp(b[0], False, True))

    assert "does not apply to bool" in str(_error(k))


def test_min_max_of_bool_literals_is_an_error_not_a_fold() -> None:
    @rk.kernel
    def k(o: Array[i32]):
        o[0] = max(True, 0)

    assert "max() does not apply to bool" in str(_error(k))


def test_clamp_arity_is_checked() -> None:
    @rk.kernel
    def k(o: Array[f32]):
        o[0] = rk.clamp(o[0], 1.0)

    assert "clamp() takes 3 argument(s), got 2" in str(_error(k))


def test_isnan_of_bool_is_an_error() -> None:
    @rk.kernel
    def k(o: Array[f32], b: Array[bool]):
        o[0] = f32(math.isnan(b[0]))

    assert "isnan() needs numbers, not bool" in str(_error(k))

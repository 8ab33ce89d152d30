"""Kernels in a module with ``from __future__ import annotations``: every annotation is a string.

Python never evaluates them, so the names they use must be found the way
Python would have: the kernel's closure, the enclosing function's locals at
decoration time, globals, builtins; without ``eval``.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, i32
from ringkernel.ringir import BOOL, F32, F64, I32, U32, ArrayType


def _param_types(k) -> list:
    return [p.type for p in k.ir.kernels[-1].params]


def test_string_annotations_see_enclosing_locals() -> None:
    import numpy as local_np

    f64 = rk.f64
    Flags = Array[bool]

    @rk.kernel
    def k(x: Array[f64], y: Array[local_np.float32], flags: Flags, n: local_np.int32):
        i = rk.global_id(0)
        if i < n and flags[i]:
            y[i] = rk.f32(x[i])

    assert _param_types(k) == [ArrayType(F64), ArrayType(F32), ArrayType(BOOL), I32]


def test_string_annotations_of_body_variables_see_enclosing_locals() -> None:
    U = rk.u32

    @rk.kernel
    def k(x: Array[U]):
        v: U = 1
        x[0] = v

    assert _param_types(k) == [ArrayType(U32)]
    assert "var $v: u32" in k.compile("rir")


def test_string_annotation_forms_numpy_dtypes_and_python_types() -> None:
    @rk.kernel
    def k(a: Array[np.float32], b: Array[float], c: Array[int], s: np.uint32, t: float):
        a[0] = t

    assert _param_types(k) == [ArrayType(F32), ArrayType(F32), ArrayType(I32), U32, F32]


def test_closure_constant_and_alias_in_the_body() -> None:
    F = rk.f32
    half = 0.5

    @rk.kernel
    def k(x: Array[F], n: i32):
        i = rk.global_id(0)
        if i < n:
            x[i] = F(i) * half

    x = np.zeros(4, np.float32)
    k.launch(1, 4, (x, 4), backend="cpu")
    np.testing.assert_array_equal(x, np.arange(4, dtype=np.float32) * 0.5)


def test_annotation_strings_are_walked_not_evaluated() -> None:
    calls = []

    def side_effect():
        calls.append(1)
        return rk.f32

    @rk.kernel
    def k(x: Array[side_effect()]):
        x[0] = 1.0

    with pytest.raises(rk.CompileError, match="expected a name here"):
        k.ir
    assert calls == []

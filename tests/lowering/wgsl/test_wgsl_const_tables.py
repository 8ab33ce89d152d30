"""Embedded float tables holding inf or NaN in WGSL (found by the IR fuzzer after issue 14's merge).

WGSL constant expressions may not be inf or NaN, and naga does not evaluate
``bitcast`` in one, so such a table is emitted as the values' bits and each
load converts them; tables of finite values keep their plain literals.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f16, f32, i32
from ringkernel.lowering.wgsl.naga import WgpuUnavailable, check_wgsl, device_has_f16

SPECIAL = np.array([1.5, np.inf, -np.inf, np.nan, -0.0, 3.0e38], dtype=np.float32)
HALF_SPECIAL = np.array([0.5, np.inf, -np.inf, np.nan], dtype=np.float16)
FINITE = np.array([0.25, -2.0], dtype=np.float32)


@rk.kernel
def read_special(out: Array[f32], plain: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = SPECIAL[i]
        plain[i] = FINITE[i % 2]


@rk.kernel
def read_half_special(out: Array[f16], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = HALF_SPECIAL[i]


def _check(text: str) -> None:
    try:
        check_wgsl(text)
    except WgpuUnavailable as exc:
        pytest.skip(str(exc))


def test_an_f32_table_with_inf_and_nan_passes_naga_and_keeps_finite_tables_plain() -> None:
    text = read_special.compile("wgsl")
    _check(text)
    assert "array<u32, 6> = array<u32, 6>(1069547520u, 2139095040u, 4286578688u" in text
    assert "array<f32, 2> = array<f32, 2>(0.25f, -2.0f)" in text


def test_an_f32_table_with_inf_and_nan_reads_back_exactly(backend: str) -> None:
    n = len(SPECIAL)
    out, plain = np.zeros(n, np.float32), np.zeros(n, np.float32)
    read_special.launch(grid=1, block=8, args=(out, plain, n), backend=backend)
    exact = [0, 1, 2, 4, 5]  # every value but NaN, bit for bit (-0.0 included)
    np.testing.assert_array_equal(out.view(np.uint32)[exact], SPECIAL.view(np.uint32)[exact])
    assert math.isnan(out[3])
    np.testing.assert_array_equal(plain, FINITE[np.arange(n) % 2])


def test_an_f16_table_with_inf_and_nan(backend: str) -> None:
    if backend == "wgpu" and not device_has_f16():
        pytest.skip("the wgpu adapter lacks the shader-f16 feature")
    n = len(HALF_SPECIAL)
    out = np.zeros(n, np.float16)
    read_half_special.launch(grid=1, block=4, args=(out, n), backend=backend)
    np.testing.assert_array_equal(out[:3], HALF_SPECIAL[:3])
    assert math.isnan(out[3])
    if device_has_f16():
        _check(read_half_special.compile("wgsl", f16=True))

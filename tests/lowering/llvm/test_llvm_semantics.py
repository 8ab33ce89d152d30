"""Semantics of the LLVM lowering, checked by running the host build on the cpu backend.

These are the corners where C, LLVM and Python disagree: integer division by
zero and overflow, float->int casts of NaN, shift amounts, unsigned and
64-bit arithmetic, bool memory layout, and Python's ``range``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, f64, i32, i64, u32
from ringkernel.lowering.llvm import HostTarget, NvptxTarget, build_ir_module, lower_module_to_llvm


def run(kernel: rk.Kernel, *args: object, grid: int = 1, block: int = 32) -> None:
    kernel.launch(grid=grid, block=block, args=args, backend="cpu")


@rk.kernel
def int_division(a: Array[i32], b: Array[i32], out: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[4 * i] = a[i] // b[i]
        out[4 * i + 1] = a[i] % b[i]
        out[4 * i + 2] = (a[i] // b[i]) if b[i] != 0 else 0
        out[4 * i + 3] = a[i] % b[i] if b[i] != 0 else 0


def test_integer_division_by_zero_is_zero_and_min_over_minus_one_wraps() -> None:
    lo = np.iinfo(np.int32).min
    a = np.array([5, -5, 0, lo, lo, 7], np.int32)
    b = np.array([0, 0, 0, -1, 1, -1], np.int32)
    out = np.zeros(24, np.int32)
    run(int_division, a, b, out, len(a))
    got = out.reshape(-1, 4)
    np.testing.assert_array_equal(got[:3, :2], 0)  # x // 0 == 0, x % 0 == 0
    assert got[3, 0] == lo and got[3, 1] == 0  # INT_MIN // -1 wraps, no SIGFPE
    assert got[4, 0] == lo and got[5, 0] == -7 and got[5, 1] == 0


@rk.kernel
def float_to_int(x: Array[f32], out: Array[i32], uout: Array[u32], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = i32(x[i])
        uout[i] = u32(x[i])


def test_float_to_int_saturates_and_nan_is_zero() -> None:
    x = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, -2.7, 2.7, -0.5], np.float32)
    out = np.zeros(len(x), np.int32)
    uout = np.zeros(len(x), np.uint32)
    run(float_to_int, x, out, uout, len(x))
    i32max, i32min = np.iinfo(np.int32).max, np.iinfo(np.int32).min
    np.testing.assert_array_equal(out, [0, i32max, i32min, i32max, i32min, -2, 2, 0])
    np.testing.assert_array_equal(uout, [0, 2**32 - 1, 0, 3_000_000_000, 0, 0, 2, 0])


@rk.kernel
def shifts(x: Array[i32], s: Array[i32], ux: Array[u32], out: Array[i32], uout: Array[u32],
           n: i32):
    i = rk.global_id(0)
    if i < n:
        out[2 * i] = x[i] << s[i]
        out[2 * i + 1] = x[i] >> s[i]
        uout[i] = ux[i] >> u32(s[i])


def test_shift_amounts_wrap_and_right_shift_follows_signedness() -> None:
    x = np.array([1, -16, 3, -1], np.int32)
    s = np.array([33, 2, 32, 31], np.int32)
    ux = np.array([0x80000000, 64, 5, 0xFFFFFFFF], np.uint32)
    out = np.zeros(8, np.int32)
    uout = np.zeros(4, np.uint32)
    run(shifts, x, s, ux, out, uout, 4)
    np.testing.assert_array_equal(out.reshape(-1, 2), [[2, 0], [-64, -4], [3, 3], [-2**31, -1]])
    np.testing.assert_array_equal(uout, [0x40000000, 16, 5, 1])


@rk.kernel
def wide(a: Array[i64], d: Array[f64], out: Array[i64], dout: Array[f64], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = a[i] * 3 - 7 + a[i] // 5
        dout[i] = d[i] * 0.5 + math.sqrt(d[i])


def test_64_bit_types() -> None:
    a = np.array([2**40, -(2**40), 12345678901], np.int64)
    d = np.array([1e300, 2.0, 1e-300], np.float64)
    out = np.zeros(3, np.int64)
    dout = np.zeros(3, np.float64)
    run(wide, a, d, out, dout, 3)
    np.testing.assert_array_equal(out, a * 3 - 7 + a // 5)
    np.testing.assert_allclose(dout, d * 0.5 + np.sqrt(d), rtol=1e-15)


@rk.kernel
def flags(mask: Array[rk.bool_], invert: rk.bool_, out: Array[rk.bool_], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = (not mask[i]) if invert else mask[i]


def test_bool_arrays_and_scalars_use_numpy_layout() -> None:
    mask = np.array([True, False, True, True, False])
    out = np.zeros(5, bool)
    run(flags, mask, True, out, 5)
    np.testing.assert_array_equal(out, ~mask)
    run(flags, mask, False, out, 5)
    np.testing.assert_array_equal(out, mask)


@rk.kernel
def ranges(out: Array[i32], start: i32, stop: i32, step: i32):
    if rk.global_id(0) == 0:
        count = 0
        total = 0
        for k in range(start, stop, step):
            total += k
            count += 1
            k = 1000  # noqa: F841 -- Python: rebinding the loop variable does not change the loop
        out[0] = count
        out[1] = total


@pytest.mark.parametrize("start,stop,step", [(0, 10, 1), (10, 0, -3), (0, 10, 0), (5, 5, 1),
                                             (-4, 9, 4), (3, -3, -1)])
def test_for_range_follows_python(start: int, stop: int, step: int) -> None:
    out = np.zeros(2, np.int32)
    run(ranges, out, start, stop, step, block=1)
    values = list(range(start, stop, step)) if step else []
    assert list(out) == [len(values), sum(values)]


def test_target_hooks_shape_the_llvm_module() -> None:
    @rk.kernel
    def shared_user(x: Array[f32]):
        buf = rk.shared_array(f32, 32)
        buf[rk.thread_id(0)] = x[rk.global_id(0)]
        rk.barrier()
        x[rk.global_id(0)] = buf[31 - rk.thread_id(0)]

    host = str(build_ir_module(shared_user.ir, HostTarget()))
    nvptx = str(build_ir_module(shared_user.ir, NvptxTarget()))
    assert "rk_cpu_barrier_wait" in host and "rk.shared" in host
    assert "llvm.nvvm.barrier0" in nvptx and "ptr addrspace(1)" in nvptx
    assert "addrspace(3)" in nvptx and "llvm.nvvm.read.ptx.sreg.tid.x" in nvptx
    text = lower_module_to_llvm(shared_user.ir)
    assert text == lower_module_to_llvm(shared_user.ir)
    assert "define void @rk_kernel_shared_user(" in text

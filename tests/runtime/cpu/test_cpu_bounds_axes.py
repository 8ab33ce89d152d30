"""Checked cpu launches check every index of an N-d access, and the error names the axis.

Regression: only the flat offset ``i * a.shape1 + j`` was checked, so ``a[1, 9]``
of a 4 x 8 array silently wrote ``a[2, 1]``.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, BoundsError, f32, i32, i64


@rk.kernel
def put2(a: Array[f32, 2], i: i32, j: i32):
    a[i, j] = 1.0


@rk.kernel
def put3(a: Array[f32, 3], i: i32, j: i32, k: i32):
    a[i, j, k] = 1.0


@rk.kernel
def put_wide(a: Array[f32, 2], i: i64, j: i32):
    a[i, j] = 1.0


@rk.kernel
def put_shared(a: Array[f32], i: i32, j: i32):
    s = rk.shared_array(f32, (4, 8))
    s[i, j] = 1.0
    a[0] = s[i, j]


@rk.func
def put_in_func(a: Array[f32, 2], i: i32, j: i32):
    a[i, j] = 1.0


@rk.kernel
def put_via_func(a: Array[f32, 2], i: i32, j: i32):
    put_in_func(a, i, j)


@rk.kernel
def put_after_barrier(a: Array[f32, 2], j: i32):
    s = rk.shared_array(f32, 4)
    t = rk.thread_id(0)
    s[t] = a[t, 0]
    rk.barrier()
    a[t, j] = s[3 - t]


@pytest.mark.parametrize(
    ("kernel", "shape", "index", "axis", "extent"),
    [
        (put2, (4, 8), (1, 9), 1, 8),  # flat 17 < 32: the old check let it through
        (put2, (4, 8), (0, -1), 1, 8),
        (put2, (4, 8), (4, 0), 0, 4),
        (put2, (4, 8), (-1, 3), 0, 4),
        (put3, (4, 8, 2), (0, 0, 2), 2, 2),
        (put3, (4, 8, 2), (0, 8, 0), 1, 8),
        (put3, (4, 8, 2), (5, 0, 0), 0, 4),
        (put_wide, (4, 8), (1, 9), 1, 8),
        (put_wide, (4, 8), (9, 0), 0, 4),
        (put_via_func, (4, 8), (2, 8), 1, 8),
    ],
)
def test_each_axis_is_checked_and_named(kernel, shape, index, axis, extent) -> None:
    a = np.zeros(shape, np.float32)
    with pytest.raises(BoundsError, match=rf"index {index[axis]} out of bounds for axis {axis} of "
                       rf"array 'a'.* with extent {extent}") as info:
        kernel.launch(1, 1, (a, *index), backend="cpu")
    assert info.value.index == index[axis] and info.value.length == extent
    assert not a.any()  # nothing was written anywhere


def test_a_shared_n_d_array_is_checked_per_axis() -> None:
    out = np.zeros(1, np.float32)
    with pytest.raises(BoundsError, match="index 9 out of bounds for axis 1 of a shared array with extent 8"):
        put_shared.launch(1, 1, (out, 1, 9), backend="cpu")
    put_shared.launch(1, 1, (out, 3, 7), backend="cpu")
    assert out[0] == 1.0


def test_work_item_loop_kernels_check_each_axis() -> None:
    a = np.zeros((4, 4), np.float32)
    with pytest.raises(BoundsError, match="index 4 out of bounds for axis 1 of array 'a' with extent 4"):
        put_after_barrier.launch(1, 4, (a, 4), backend="cpu")
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    put_after_barrier.launch(1, 4, (a, 1), backend="cpu")
    np.testing.assert_array_equal(a[:, 1], [12, 8, 4, 0])


@pytest.mark.parametrize("index", [(0, 0), (3, 7), (2, 5)])
def test_in_range_n_d_accesses_still_run(index) -> None:
    a = np.zeros((4, 8), np.float32)
    put2.launch(1, 1, (a, *index), backend="cpu")
    assert a[index] == 1.0 and a.sum() == 1.0

"""The cpu backend passes raw pointers, so aliased arguments already behave as on CUDA."""

from __future__ import annotations

import numpy as np

import ringkernel as rk
from ringkernel import Array, f32, i32


@rk.kernel
def add_one(dst: Array[f32], src: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        dst[i] = src[i] + 1.0


def test_same_array_for_output_and_input() -> None:
    x = np.arange(100, dtype=np.float32)
    add_one.launch(2, 64, [x, x, 100], backend="cpu")
    np.testing.assert_array_equal(x, np.arange(100, dtype=np.float32) + 1.0)


def test_a_write_through_one_parameter_is_seen_through_the_other() -> None:
    base = np.zeros(9, np.float32)
    # One thread walks the overlap in order, as a single CUDA thread would.
    add_one.launch(1, 1, [base[1:], base[:-1], 1], backend="cpu")
    add_one.launch(1, 1, [base[2:], base[1:-1], 1], backend="cpu")
    np.testing.assert_array_equal(base[:3], [0.0, 1.0, 2.0])

"""The noalias variant: chosen per launch when no two array arguments overlap, never otherwise.

A kernel with two or more arrays is built twice on the cpu: as written, and
with its arrays ``noalias`` (LLVM then vectorizes without run-time overlap
checks).  The launch wrapper compares the arguments' byte ranges and runs the
variant only for distinct arrays, so overlapping arguments keep the
sequential answer.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.compiler import compile_module
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cpu import CpuBackend
from ringkernel.runtime.cpu.jit import jit_kernel


@rk.kernel
def carry(dst: Array[f32], src: Array[f32], n: i32):
    """One work-item: dst[i] = src[i - 1] + 1 in order; with dst and src one array, a ramp."""
    if rk.global_id(0) == 0:
        for i in range(1, n):
            dst[i] = src[i - 1] + 1.0


def _sequential(dst: np.ndarray, src: np.ndarray, n: int) -> None:
    for i in range(1, n):
        dst[i] = src[i - 1] + 1.0


@pytest.mark.parametrize("checked", [False, True])
def test_the_same_array_twice_gets_the_sequential_answer(checked) -> None:
    x = np.zeros(256, np.float32)
    carry.launch(1, 1, (x, x, 256), backend="cpu", checked=checked)
    expected = np.zeros(256, np.float32)
    _sequential(expected, expected, 256)
    np.testing.assert_array_equal(x, expected)  # 0, 1, 2, ... (no vectorized miscompile)


def test_overlapping_views_get_the_sequential_answer() -> None:
    base = np.zeros(257, np.float32)
    carry.launch(1, 1, (base[1:], base[:-1], 256), backend="cpu")
    expected = np.zeros(257, np.float32)
    _sequential(expected[1:], expected[:-1], 256)
    np.testing.assert_array_equal(base, expected)


def test_distinct_arrays_get_the_plain_answer() -> None:
    src = np.arange(256, dtype=np.float32)
    dst = np.zeros(256, np.float32)
    carry.launch(1, 1, (dst, src, 256), backend="cpu")
    np.testing.assert_array_equal(dst[1:], src[:-1] + 1.0)


def _run_native(x: np.ndarray, lengths: tuple[int, int]) -> None:
    """``carry(x, x, n)`` through the cpu JIT, with the lengths table the wrapper reads."""
    options = CpuBackend().kernel_options("carry", False)
    text = compile_module(carry.ir, "host", **options)
    compiled = jit_kernel(KernelBuild(carry.ir, "carry", "host", options, text))
    n = ctypes.c_int32(x.size)
    table = (ctypes.c_int64 * 3)(*lengths, 0)
    argv = (ctypes.c_void_p * 5)(x.ctypes.data, x.ctypes.data, ctypes.addressof(n),
                                 ctypes.addressof(table), None)
    dims = (ctypes.c_int32 * 6)(1, 1, 1, 1, 1, 1)
    assert compiled.launch(argv, dims, 0, 1) == 0


def test_the_variant_is_chosen_by_the_overlap_of_the_lengths_table() -> None:
    """The wrapper decides from the byte ranges: lengths that make one array look like two
    distinct ones (a lie only this test tells) run the noalias variant, whose vectorized loop
    reads the old values, so the answer differs from the sequential one."""
    truthful = np.zeros(256, np.float32)
    _run_native(truthful, (256, 256))
    np.testing.assert_array_equal(truthful, np.arange(256, dtype=np.float32))
    lied = np.zeros(256, np.float32)
    _run_native(lied, (0, 0))  # empty ranges overlap nothing: "distinct"
    assert not np.array_equal(lied, np.arange(256, dtype=np.float32))


def test_the_host_text_holds_the_noalias_variant_only_with_two_arrays() -> None:
    options = CpuBackend().kernel_options("carry", False)
    text = compile_module(carry.ir, "host", **options)
    assert "noalias" in text and "carry.noalias" in text

    @rk.kernel
    def one_array(x: Array[f32]):
        x[rk.global_id(0)] += 1.0

    text = compile_module(one_array.ir, "host", **CpuBackend().kernel_options("one_array", False))
    assert ".noalias" not in text

"""Private copies of atomically updated arrays on the host (``lowering.llvm.host_privatize``).

An integer global array that a barrier-free kernel only updates with
``atomic_add``/``sub``/``or``/``xor`` (old values unread) is updated through a
private copy per wrapper call and merged atomically; the results must be
exactly those of hardware atomics, under contention, checked or not, and the
wrapper must fall back to atomics for large or aliased arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, i64, u32
from ringkernel.lowering.llvm.host_privatize import PRIVATE_LIMIT, privatizable_arrays
from ringkernel.ringir.passes import run_default_pipeline
from ringkernel.runtime.cpu import CpuBackend


@rk.kernel
def histogram(values: Array[i32], bins: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        rk.atomic_add(bins, values[i], 1)


@rk.kernel
def mixed(values: Array[i32], down: Array[i64], bits: Array[u32], flips: Array[u32], n: i32):
    i = rk.global_id(0)
    if i < n:
        v = values[i]
        rk.atomic_sub(down, v, i64(2))
        rk.atomic_add(down, v, i64(1))
        rk.atomic_or(bits, v, u32(1) << u32(i % 32))
        rk.atomic_xor(flips, v, u32(i))


@rk.kernel
def reads_old(values: Array[i32], bins: Array[i32], seen: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        seen[i] = rk.atomic_add(bins, values[i], 1)


@rk.kernel
def loads_too(values: Array[i32], bins: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        rk.atomic_add(bins, values[i], bins[0] * 0 + 1)


@rk.kernel
def add_then_xor(values: Array[i32], bins: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        rk.atomic_add(bins, values[i], 1)
        rk.atomic_xor(bins, values[i], 1)


@rk.kernel
def float_sum(values: Array[f32], total: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        rk.atomic_add(total, 0, values[i])


@rk.kernel
def sees_own_update(bins: Array[i32], view: Array[i32], out: Array[i32]):
    i = rk.global_id(0)
    rk.atomic_add(bins, 0, 1)
    out[i] = view[0]


def _private(kernel: rk.Kernel) -> dict[int, str]:
    module = run_default_pipeline(kernel.ir)
    return privatizable_arrays(module.get(kernel.__name__))


def test_the_analysis_takes_only_arrays_nobody_reads() -> None:
    assert _private(histogram) == {1: "add"}
    assert _private(mixed) == {1: "add", 2: "or", 3: "xor"}
    assert _private(reads_old) == {}
    assert _private(loads_too) == {}
    assert _private(add_then_xor) == {}
    assert _private(float_sum) == {}  # float sums depend on the order: not exact


def _backends() -> list[CpuBackend]:
    return [CpuBackend(threads=t, inline_below=0) for t in (1, 2, 5)]


@pytest.mark.parametrize("checked", [False, True])
@pytest.mark.parametrize("bins_count", [1, 7, 256, PRIVATE_LIMIT + 3])
def test_histograms_are_exact_under_contention(bins_count, checked) -> None:
    n = 200_003
    values = np.random.default_rng(bins_count).integers(0, bins_count, n).astype(np.int32)
    expected = np.bincount(values, minlength=bins_count).astype(np.int32)
    for backend in _backends():
        bins = np.zeros(bins_count, np.int32)
        histogram.launch((n + 255) // 256, 256, (values, bins, n), backend=backend, checked=checked)
        np.testing.assert_array_equal(bins, expected)


def test_sub_or_and_xor_merge_exactly() -> None:
    n, width = 50_000, 40
    values = np.random.default_rng(3).integers(0, width, n).astype(np.int32)
    idx = np.arange(n)
    want_down = np.zeros(width, np.int64)
    np.add.at(want_down, values, -1)
    want_bits = np.zeros(width, np.uint32)
    np.bitwise_or.at(want_bits, values, (np.uint32(1) << (idx % 32)).astype(np.uint32))
    want_flips = np.zeros(width, np.uint32)
    np.bitwise_xor.at(want_flips, values, idx.astype(np.uint32))
    for backend in _backends():
        down, bits, flips = np.zeros(width, np.int64), np.zeros(width, np.uint32), np.zeros(width, np.uint32)
        mixed.launch((n + 127) // 128, 128, (values, down, bits, flips, n), backend=backend)
        np.testing.assert_array_equal(down, want_down)
        np.testing.assert_array_equal(bits, want_bits)
        np.testing.assert_array_equal(flips, want_flips)


def test_an_out_of_bounds_update_is_still_reported() -> None:
    values = np.array([0, 1, 9], np.int32)
    bins = np.zeros(4, np.int32)
    with pytest.raises(rk.BoundsError, match="index 9 out of bounds for array 'bins' of length 4"):
        histogram.launch(1, 4, (values, bins, 3), backend="cpu")
    np.testing.assert_array_equal(bins, [1, 1, 0, 0])


def test_an_aliased_array_is_updated_in_place_so_its_own_updates_are_visible() -> None:
    bins = np.zeros(1, np.int32)
    out = np.zeros(1, np.int32)
    sees_own_update.launch(1, 1, (bins, bins, out), backend=CpuBackend(inline_below=0))
    assert bins[0] == 1
    assert out[0] == 1  # a private copy would have left bins[0] at 0 until the merge

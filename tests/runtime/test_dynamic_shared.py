"""rk.dynamic_shared_array(T), sized per launch (issue 15): histograms with a per-launch bin count."""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, u32
from ringkernel.lowering.cuda import check_ptx, find_ptxas
from ringkernel.lowering.msl.check import check_msl, find_clang
from ringkernel.lowering.wgsl import check_wgsl
from ringkernel.lowering.wgsl.naga import WgpuUnavailable, get_device
from ringkernel.ringir import parse
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.runtime.arguments import LaunchError


@rk.kernel
def histogram(x: Array[i32], out: Array[u32], n: i32, bins: i32):
    h = rk.dynamic_shared_array(u32)
    b = rk.thread_id(0)
    while b < bins:
        h[b] = u32(0)
        b += rk.block_dim(0)
    rk.barrier()
    i = rk.global_id(0)
    while i < n:
        rk.atomic_add(h, x[i] % bins, u32(1))
        i += rk.block_dim(0) * rk.grid_dim(0)
    rk.barrier()
    b = rk.thread_id(0)
    while b < bins:
        rk.atomic_add(out, b, h[b])
        b += rk.block_dim(0)


@rk.kernel
def reverse(x: Array[f32], n: i32):
    s = rk.dynamic_shared_array(f32)
    t = rk.thread_id(0)
    if t < n:
        s[t] = x[t]
    rk.barrier()
    if t < n:
        x[t] = s[n - 1 - t]


@pytest.mark.parametrize("bins", [16, 100, 256])
def test_histogram_bins_per_launch(backend: str, bins: int) -> None:
    x = np.random.default_rng(bins).integers(0, 10_000, 3000).astype(np.int32)
    out = np.zeros(bins, np.uint32)
    histogram[4, 64, bins, backend](x, out, x.size, bins)
    np.testing.assert_array_equal(out, np.bincount(x % bins, minlength=bins))


def test_launch_keyword_sizes_the_array(backend: str) -> None:
    x = np.arange(48, dtype=np.float32)
    reverse.launch(1, 64, (x, 48), backend=backend, dynamic_shared=48)
    np.testing.assert_array_equal(x, np.arange(48, dtype=np.float32)[::-1])


def test_missing_or_bad_size_is_a_launch_error() -> None:
    x = np.zeros(4, np.float32)
    with pytest.raises(LaunchError, match="dynamic_shared must be an element count from 1 to"):
        reverse[1, 4](x, 4)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(LaunchError, match=f"got {bad!r}"):
            reverse.launch(1, 4, (x, 4), backend="cpu", dynamic_shared=bad)


def test_size_for_a_kernel_without_one_is_a_launch_error() -> None:
    @rk.kernel
    def plain(x: Array[f32]):
        x[0] = 1.0

    with pytest.raises(LaunchError, match="has no rk.dynamic_shared_array"):
        plain.launch(1, 1, (np.zeros(1, np.float32),), backend="cpu", dynamic_shared=8)


def test_too_large_for_the_device_is_a_launch_error() -> None:
    try:
        get_device()
    except WgpuUnavailable as exc:
        pytest.skip(f"no wgpu device: {exc}")
    x = np.zeros(4, np.float32)
    with pytest.raises(LaunchError, match="bytes of shared memory"):
        reverse.launch(1, 4, (x, 4), backend="wgpu", dynamic_shared=100_000)


def test_compile_needs_a_size_except_for_the_ir() -> None:
    text = reverse.compile("rir")
    assert "array<f32, shared> = shared_array" in text
    assert parse(text) == reverse.ir
    with pytest.raises(CompileError, match=r"dynamic_shared=N") as info:
        reverse.compile("ptx")
    assert info.value.line is not None
    assert "array<f32, shared, 32>" in reverse.compile("rir", dynamic_shared=32)


def test_each_target_accepts_the_sized_kernel() -> None:
    if find_ptxas() is not None:
        check_ptx(histogram.compile("ptx", dynamic_shared=512))
    try:
        get_device()
        check_wgsl(histogram.compile("wgsl", dynamic_shared=512))
    except WgpuUnavailable:
        pass
    try:
        find_clang()
        check_msl(histogram.compile("msl", dynamic_shared=512))
    except CompileError:
        pass


def test_dynamic_shared_array_needs_a_type_and_a_kernel() -> None:
    @rk.kernel
    def k(x: Array[f32]):
        s = rk.dynamic_shared_array(f32, 4)
        x[0] = s[0]

    with pytest.raises(CompileError, match="takes the element type"):
        k.ir

"""The cpu backend's own promises: real barriers, real atomics, parallel blocks, caching."""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.kernels import launch_module
from ringkernel.runtime import get_backend
from ringkernel.runtime.arguments import LaunchError, bind_arguments
from ringkernel.runtime.cpu import CpuBackend
from ringkernel.runtime.cpu.jit import _cache


@rk.kernel
def rotate(x: Array[i32], out: Array[i32]):
    buf = rk.shared_array(i32, 256)
    t = rk.thread_id(0) + rk.thread_id(1) * rk.block_dim(0)
    size = rk.block_dim(0) * rk.block_dim(1)
    base = rk.block_id(0) * size
    for _ in range(3):
        buf[t] = x[base + t]
        rk.barrier()
        x[base + t] = buf[(t + 1) % size]
        rk.barrier()
    out[base + t] = x[base + t]


def test_barrier_orders_every_work_item_of_a_2d_block() -> None:
    x = np.arange(3 * 64, dtype=np.int32)
    out = np.zeros_like(x)
    rotate.launch(grid=3, block=(16, 4), args=(x, out), backend="cpu")
    want = np.roll(np.arange(3 * 64).reshape(3, 64), -3, axis=1).reshape(-1)
    np.testing.assert_array_equal(out, want)


@rk.kernel
def early_exit(out: Array[i32]):
    t = rk.thread_id(0)
    if t >= 10:
        return  # undefined on GPUs; the cpu backend must not deadlock
    rk.barrier()
    rk.atomic_add(out, 0, 1)


def test_work_items_that_return_before_a_barrier_do_not_deadlock() -> None:
    out = np.zeros(1, np.int32)
    early_exit.launch(grid=2, block=32, args=(out,), backend="cpu")
    assert out[0] == 20


@rk.kernel
def count_and_sum(out: Array[i32], fsum: Array[f32]):
    rk.atomic_add(out, rk.global_id(0) % 4, 1)
    rk.atomic_add(fsum, 0, 1.0)


def test_atomics_are_atomic_across_parallel_blocks() -> None:
    out = np.zeros(4, np.int32)
    fsum = np.zeros(1, np.float32)
    count_and_sum.launch(grid=512, block=256, args=(out, fsum), backend="cpu")
    np.testing.assert_array_equal(out, [32768] * 4)
    assert fsum[0] == 131072.0


@rk.kernel
def fill(out: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = i * 2


def test_direct_backend_protocol_and_engine_cache() -> None:
    backend = get_backend("cpu")
    assert isinstance(backend, CpuBackend) and CpuBackend.available()
    n = 100_000
    out = np.zeros(n, np.int32)
    fn = fill.ir.get("fill")
    before = len(_cache)
    for _ in range(2):
        launch_module(fill.ir, "fill", (400, 1, 1), (256, 1, 1), bind_arguments(fn, (out, n)), backend)
    assert len(_cache) - before <= 1
    np.testing.assert_array_equal(out, np.arange(n) * 2)


def test_block_larger_than_1024_threads_is_a_launch_error() -> None:
    out = np.zeros(4, np.int32)
    with pytest.raises(LaunchError, match="1024"):
        fill.launch(grid=1, block=(64, 32), args=(out, 4), backend="cpu")


def test_arrays_are_updated_in_place_through_the_subscript_launcher() -> None:
    out = np.zeros(10, np.int32)
    fill[1, 16, "cpu"](out, 10)
    np.testing.assert_array_equal(out, np.arange(10) * 2)

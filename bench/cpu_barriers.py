"""Launch timings of the cpu backend's ways to run kernels with barriers.

``time_barrier_paths`` is what the benchmarks call; ``python -m
bench.cpu_barriers`` prints the numbers for the corpus-style
``block_reduce`` (256 blocks of 64 work-items); :func:`rows` gives the cpu
suite its "barriers" rows: numba's documentation reduction, whose barrier
sits inside ``if tid < size`` (coroutines), against the same reduction with
uniform barriers (work-item loops).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import ringkernel as rk
from bench.report import Row
from bench.settings import Settings
from bench.timing import measure_pair
from ringkernel import Array, f32, i32
from ringkernel.kernels import launch_module
from ringkernel.ringir import Module
from ringkernel.runtime.arguments import bind_arguments, launch_dims
from ringkernel.runtime.cpu import CpuBackend


def time_barrier_paths(module: Module, kernel_name: str, grid: Any, block: Any,
                       args: Sequence[Any], repeats: int = 5) -> dict[str, float]:
    """Seconds per launch (best of ``repeats``, after one warm-up that also compiles).

    Keys: ``"loops"`` (work-item loops, or the thread path if the kernel
    falls back: see ``CpuBackend.barrier_strategy``) and ``"threads"``.
    ``args`` are updated in place by every launch.
    """
    grid3, block3 = launch_dims(grid, block)
    bound = bind_arguments(module.get(kernel_name), list(args))
    times = {}
    for name, loops in (("loops", True), ("threads", False)):
        backend = CpuBackend(workitem_loops=loops)
        launch_module(module, kernel_name, grid3, block3, bound, backend)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            launch_module(module, kernel_name, grid3, block3, bound, backend)
            best = min(best, time.perf_counter() - start)
        times[name] = best
    return times


@rk.kernel
def block_reduce(x: Array[f32], sums: Array[f32]):
    buf = rk.shared_array(f32, 1024)
    t = rk.thread_id(0)
    buf[t] = x[rk.global_id(0)]
    rk.barrier()
    stride = rk.block_dim(0) // 2
    while stride > 0:
        if t < stride:
            buf[t] += buf[t + stride]
        rk.barrier()
        stride //= 2
    if t == 0:
        sums[rk.block_id(0)] = buf[0]


def block_reduce_timings(blocks: int = 256, block: int = 64, repeats: int = 5) -> dict[str, float]:
    """:func:`time_barrier_paths` for a shared-memory tree reduction with 7 barriers per block."""
    x = np.random.default_rng(0).uniform(-1, 1, blocks * block).astype(np.float32)
    sums = np.zeros(blocks, np.float32)
    times = time_barrier_paths(block_reduce.ir, "block_reduce", blocks, block, [x, sums], repeats)
    np.testing.assert_allclose(sums, x.reshape(blocks, block).sum(axis=1), rtol=1e-4, atol=1e-4)
    return times


@rk.kernel
def doc_reduce(data: Array[f32], size: i32):
    """numba's documentation reduction: the barrier inside ``if tid < size`` varies."""
    tid = rk.thread_id(0)
    if tid < size:
        i = rk.global_id(0)
        s = 1
        while s < rk.block_dim(0):
            if tid % (2 * s) == 0 and i + s < size:
                data[i] += data[i + s]
            s *= 2
            rk.barrier()


@rk.kernel
def doc_reduce_uniform(data: Array[f32], size: i32):
    """The same reduction with the condition moved inside: every barrier is uniform."""
    tid = rk.thread_id(0)
    i = rk.global_id(0)
    s = 1
    while s < rk.block_dim(0):
        if tid < size and tid % (2 * s) == 0 and i + s < size:
            data[i] += data[i + s]
        s *= 2
        rk.barrier()


def rows(settings: Settings) -> list[Row]:
    """One 1024-work-item block of the doc reduction: coroutines against work-item loops."""
    backend = CpuBackend()
    assert backend.barrier_strategy(doc_reduce.ir, "doc_reduce")[0] == "coroutines"
    assert backend.barrier_strategy(doc_reduce_uniform.ir, "doc_reduce_uniform")[0] == "loops"
    data = np.random.default_rng(0).random(1024, dtype=np.float32)
    want = data.sum(dtype=np.float64)
    for kernel in (doc_reduce, doc_reduce_uniform):
        check = data.copy()
        kernel.launch(1, 1024, (check, 1024), backend=backend)
        np.testing.assert_allclose(check[0], want, rtol=1e-4)
    ours, base = measure_pair(
        lambda: doc_reduce.launch(1, 1024, (data, 1024), backend=backend, checked=False),
        lambda: doc_reduce_uniform.launch(1, 1024, (data, 1024), backend=backend, checked=False),
        settings.repeats, settings.min_time,
    )
    return [Row("cpu barriers", "doc reduction, barrier in 'if tid < size' (coroutines)", ours.median,
                "uniform barriers (work-item loops)", base.median)]


if __name__ == "__main__":
    for path, seconds in block_reduce_timings().items():
        print(f"block_reduce 256 x 64, {path}: {seconds * 1e3:.3f} ms per launch")

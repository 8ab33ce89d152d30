"""Barriers under varying control flow run as coroutines, not as a thread per work-item.

The kernels here used to take the thread-per-work-item fallback; they must
now run on the coroutine path (asserted), match numpy, and agree with the
thread path wherever it gives an answer, on any number of pool threads.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.runtime.cpu import CpuBackend

THREADS = [1, 2, 5]


@rk.kernel
def array_sum(data: Array[f32], size: i32):
    """numba's documentation reduction: the barrier sits inside ``if tid < size``."""
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
def early_exit(x: Array[i32], out: Array[i32]):
    buf = rk.shared_array(i32, 64)
    t = rk.thread_id(0)
    k = 0
    while k < 4:
        if x[rk.global_id(0)] < k:
            break  # a varying break out of a loop with barriers
        buf[t] = x[rk.global_id(0)] * 10 + k
        rk.barrier()
        out[rk.global_id(0)] = buf[(t + 1) % rk.block_dim(0)]
        rk.barrier()
        k += 1


@rk.kernel
def loaded_rounds(rounds: Array[i32], out: Array[i32]):
    buf = rk.shared_array(i32, 64)
    t = rk.thread_id(0)
    acc = 0
    for _r in range(rounds[rk.block_id(0)]):
        buf[t] = acc + t
        rk.barrier()
        acc += buf[rk.block_dim(0) - 1 - t]
        rk.barrier()
    out[rk.global_id(0)] = acc


def _mode(kernel: rk.Kernel) -> str:
    return CpuBackend().barrier_strategy(kernel.ir, kernel.__name__)[0]


@pytest.mark.parametrize("checked", [False, True])
@pytest.mark.parametrize("threads", THREADS)
def test_the_numba_doc_reduction_runs_as_coroutines(threads, checked) -> None:
    assert _mode(array_sum) == "coroutines"
    blocks, block = 6, 1024
    data = np.random.default_rng(0).random(blocks * block, dtype=np.float32)
    want = data.reshape(blocks, block).sum(axis=1, dtype=np.float64)
    backend = CpuBackend(threads=threads, inline_below=0)
    array_sum.launch(blocks, block, (data, blocks * block), backend=backend, checked=checked)
    np.testing.assert_allclose(data[::block], want, rtol=1e-4)


def test_a_size_smaller_than_the_block_leaves_work_items_out_of_the_barriers() -> None:
    data = np.arange(100, dtype=np.float32)
    array_sum.launch(1, 128, (data, 100), backend="cpu")  # 28 work-items skip every barrier
    assert data[0] == np.arange(100, dtype=np.float32).sum()


@pytest.mark.parametrize("threads", THREADS)
def test_work_items_that_break_early_leave_the_barriers(threads) -> None:
    assert _mode(early_exit) == "coroutines"
    x = np.random.default_rng(1).integers(-1, 5, 4 * 64).astype(np.int32)
    results = []
    for backend in (CpuBackend(threads=threads, inline_below=0), CpuBackend(workitem_loops=False)):
        out = np.full(4 * 64, -7, np.int32)
        early_exit.launch(4, 64, (x, out), backend=backend)
        results.append(out)
    rows = x.reshape(4, 64)
    got, threads_got = (r.reshape(4, 64) for r in results)
    for b in range(4):
        for t in range(64):
            nxt = rows[b, (t + 1) % 64]
            if rows[b, t] >= 3 and nxt >= 3:  # both ran all four rounds: a defined answer
                assert got[b, t] == threads_got[b, t] == nxt * 10 + 3
            if rows[b, t] < 0:  # broke out before writing anything
                assert got[b, t] == threads_got[b, t] == -7


@pytest.mark.parametrize("threads", THREADS)
def test_a_barrier_loop_with_a_loaded_trip_count(threads) -> None:
    assert _mode(loaded_rounds) == "coroutines"
    rounds = np.array([0, 1, 4, 7], np.int32)
    out = np.zeros(4 * 64, np.int32)
    loaded_rounds.launch(4, 64, (rounds, out), backend=CpuBackend(threads=threads, inline_below=0))
    t = np.arange(64)
    for b, count in enumerate(rounds):
        acc = np.zeros(64, np.int64)
        for _ in range(count):
            buf = acc + t
            acc = acc + buf[63 - t]
        np.testing.assert_array_equal(out[b * 64:(b + 1) * 64], acc.astype(np.int32))


def test_forcing_the_thread_path_still_works(monkeypatch) -> None:
    monkeypatch.setenv("RINGKERNEL_CPU_BARRIERS", "threads")
    backend = CpuBackend()
    assert backend.barrier_strategy(array_sum.ir, "array_sum")[0] == "threads"
    data = np.ones(64, np.float32)
    array_sum.launch(1, 64, (data, 64), backend=backend)
    assert data[0] == 64

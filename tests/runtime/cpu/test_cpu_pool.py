"""The cpu backend's persistent worker pool and thread count.

Every corpus kernel must give numpy's answer whether its blocks run on 1, 2
or more threads than cores; launches must start no threads once the pool
exists; the thread count is validated where it is set.
"""

from __future__ import annotations

import os
import threading
import time

import kernel_corpus
import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, i32
from ringkernel.runtime.cpu import CpuBackend
from ringkernel.runtime.cpu.pool import ENV_THREADS, MAX_THREADS, WorkerPool, worker_count

THREAD_COUNTS = [1, 2, (os.cpu_count() or 1) + 2]


@pytest.mark.parametrize("threads", THREAD_COUNTS)
@pytest.mark.parametrize("case", kernel_corpus.CASES, ids=lambda c: c.name)
def test_corpus_kernels_match_numpy_on_any_number_of_pool_threads(case, threads) -> None:
    backend = CpuBackend(threads=threads, inline_below=0)  # every launch goes through the pool
    kernel_corpus.run_case(case, backend)


@rk.kernel
def block_ids(out: Array[i32]):
    if rk.thread_id(0) == 0:
        out[rk.block_id(0)] = rk.block_id(0) + 1


@pytest.mark.parametrize("threads", THREAD_COUNTS)
def test_every_block_runs_exactly_once_whatever_the_split(threads) -> None:
    backend = CpuBackend(threads=threads, inline_below=0)
    for blocks in (1, 2, 3, 7, 64, 1001):
        out = np.zeros(blocks, np.int32)
        block_ids.launch(blocks, 4, (out,), backend=backend)
        np.testing.assert_array_equal(out, np.arange(1, blocks + 1))


def test_parallel_launches_start_no_threads(monkeypatch) -> None:
    backend = CpuBackend(threads=2, inline_below=0)
    out = np.zeros(64, np.int32)
    block_ids.launch(64, 4, (out,), backend=backend)  # the pool exists from here on
    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda t: (started.append(t), real_start(t)))
    for _ in range(20):
        block_ids.launch(64, 4, (out,), backend=backend)
    assert started == []


def test_launches_from_several_python_threads_share_the_pool() -> None:
    backend = CpuBackend(threads=2, inline_below=0)
    errors: list[BaseException] = []

    def launch(seed: int) -> None:
        try:
            for blocks in range(1 + seed, 40, 4):
                out = np.zeros(blocks, np.int32)
                block_ids.launch(blocks, 2, (out,), backend=backend)
                np.testing.assert_array_equal(out, np.arange(1, blocks + 1))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=launch, args=(s,)) for s in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    assert not errors, errors


def test_thread_count_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(ENV_THREADS, "3")
    assert worker_count() == 3
    assert CpuBackend().threads == 3
    monkeypatch.delenv(ENV_THREADS)
    assert worker_count() == min(os.cpu_count() or 1, MAX_THREADS)
    assert worker_count(5) == 5


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5", str(MAX_THREADS + 1)])
def test_a_bad_thread_count_in_the_environment_names_the_range(monkeypatch, text) -> None:
    monkeypatch.setenv(ENV_THREADS, text)
    with pytest.raises(ValueError, match=f"{ENV_THREADS}.*1 to {MAX_THREADS}"):
        CpuBackend()


@pytest.mark.parametrize("value", [0, -1, MAX_THREADS + 1, 2.0, True, "2"])
def test_a_bad_thread_count_argument_names_the_range(value) -> None:
    with pytest.raises(ValueError, match=f"1 to {MAX_THREADS}"):
        CpuBackend(threads=value)


@pytest.mark.parametrize("value", [-1, 1.5, None])
def test_a_bad_inline_threshold_is_a_value_error(value) -> None:
    with pytest.raises(ValueError, match="inline_below"):
        CpuBackend(inline_below=value)


def test_a_closed_pool_refuses_work_instead_of_hanging() -> None:
    pool = WorkerPool(2)
    pool.close()
    pool.close()  # twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        pool.run(0, None, None, 1, 1)


@rk.kernel
def long_work_items(out: Array[i32], rounds: i32):
    acc = i32(0)
    for k in range(rounds):
        acc = acc * 1103515245 + k
    out[rk.global_id(0)] = acc


def test_a_launch_of_few_but_long_work_items_moves_to_the_pool() -> None:
    backend = CpuBackend(threads=2)
    out = np.zeros(64, np.int32)
    long_work_items.launch(8, 8, (out, 1), backend=backend)
    long_work_items.launch(8, 8, (out, 1), backend=backend)  # the fast path exists now
    launcher = long_work_items._launchers[(8, 8, backend, None, None)][1]  # checked, dynamic_shared: None
    assert launcher.inline  # 64 short work-items: the calling thread runs them
    long_work_items.launch(8, 8, (out, 3_000_000), backend=backend)
    assert not launcher.inline
    again = np.zeros(64, np.int32)
    long_work_items.launch(8, 8, (again, 3_000_000), backend=backend)  # now on the pool
    np.testing.assert_array_equal(again, out)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_pool_instead_of_hanging() -> None:
    backend = CpuBackend(threads=2, inline_below=0)
    out = np.zeros(64, np.int32)
    block_ids.launch(64, 4, (out,), backend=backend)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: its launch must not wait for the parent's threads
        code = 1
        try:
            child_out = np.zeros(64, np.int32)
            block_ids.launch(64, 4, (child_out,), backend=backend)
            code = 0 if (child_out == np.arange(1, 65)).all() else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child's launch hung")

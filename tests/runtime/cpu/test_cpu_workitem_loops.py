"""Work-item loops: every kernel with barriers runs through both cpu paths and matches numpy.

Each kernel is launched once on the default path and once with one OS thread
per work-item; both must equal the numpy reference, and the test asserts
which path the backend took (the loops path where the rewrite is provable,
work-items as coroutines where barriers sit under varying control flow, the
thread path only for kernels that idle with backoff).
"""

from __future__ import annotations

import importlib.util
import pathlib
from collections.abc import Callable
from typing import Any

import kernel_corpus
import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f64, i32
from ringkernel.kernels import launch_module
from ringkernel.ringir import Module, parse, verify
from ringkernel.ringir.passes.workitem_loops import (
    NotTransformable,
    region_functions,
    to_workitem_loops,
)
from ringkernel.runtime.arguments import bind_arguments, normalize_dims
from ringkernel.runtime.cpu import CpuBackend

LOOPS = CpuBackend(workitem_loops=True)
THREADS = CpuBackend(workitem_loops=False)


def _module(kernel: Any) -> Module:
    return kernel if isinstance(kernel, Module) else kernel.ir


def _name(kernel: Any) -> str:
    return _module(kernel).kernels[-1].name


def run_both(kernel: Any, grid: Any, block: Any, make_args: Callable[[], list[Any]],
             expect: str = "loops") -> list[list[Any]]:
    """Launches on both paths (fresh arguments each); returns both argument lists."""
    module, name = _module(kernel), _name(kernel)
    mode, reason = LOOPS.barrier_strategy(module, name)
    assert mode == expect, reason
    assert THREADS.barrier_strategy(module, name)[0] == "threads"
    results = []
    for backend in (LOOPS, THREADS):
        args = bind_arguments(module.get(name), make_args())
        launch_module(module, name, normalize_dims(grid, "grid"), normalize_dims(block, "block"),
                      args, backend)
        results.append(args)
    return results


def check_both(kernel: Any, grid: Any, block: Any, make_args: Callable[[], list[Any]],
               want: dict[int, np.ndarray], expect: str = "loops", rtol: float = 0.0,
               atol: float = 0.0) -> None:
    for args in run_both(kernel, grid, block, make_args, expect):
        for pos, expected in want.items():
            np.testing.assert_allclose(args[pos], expected, rtol=rtol, atol=atol)


# --- the corpus and the end-to-end suite ----------------------------------------------------

BARRIER_CASES = [
    c for c in kernel_corpus.CASES
    if any(isinstance(s, rk.ringir.Barrier) for s in rk.ringir.walk(c.kernel.ir.kernels[-1].body))
]


def test_the_corpus_has_barrier_kernels() -> None:
    assert {"block_reduce", "block_scan"} <= {c.name for c in BARRIER_CASES}


@pytest.mark.parametrize("case", BARRIER_CASES, ids=lambda c: c.name)
def test_corpus_barrier_kernel_on_both_paths(case: kernel_corpus.KernelCase) -> None:
    originals = case.make_args(np.random.default_rng(0))
    expected = case.reference([a.copy() if isinstance(a, np.ndarray) else a for a in originals])
    want = {i: w for i, w in enumerate(expected) if w is not None}

    def make_args() -> list[Any]:
        return [a.copy() if isinstance(a, np.ndarray) else a for a in originals]

    check_both(case.kernel, case.grid, case.block, make_args, want, rtol=case.rtol, atol=case.atol)


def _e2e() -> Any:
    path = pathlib.Path(__file__).parents[1] / "test_kernels_e2e.py"
    spec = importlib.util.spec_from_file_location("rk_e2e_kernels_for_workitem_loops", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


E2E = _e2e()


def test_e2e_tree_sum() -> None:
    n, tb = 1000, E2E.TB
    x = np.random.default_rng(1).uniform(-1, 1, n).astype(np.float32)
    blocks = (n + tb - 1) // tb
    padded = np.zeros(blocks * tb, np.float32)
    padded[:n] = x
    check_both(E2E.tree_sum, blocks, tb, lambda: [x, np.zeros(blocks, np.float32), n],
               {1: padded.reshape(blocks, tb).sum(axis=1)}, rtol=1e-5, atol=1e-5)


def test_e2e_exclusive_scan() -> None:
    sb = E2E.SB
    x = np.random.default_rng(2).integers(-50, 50, 3 * sb).astype(np.int32)
    rows = x.reshape(3, sb)
    check_both(E2E.exclusive_scan, 3, sb, lambda: [x, np.zeros_like(x)],
               {1: (np.cumsum(rows, axis=1) - rows).reshape(-1)})


def test_e2e_shared_histogram() -> None:
    n = 5000
    values = np.random.default_rng(3).integers(-10_000, 10_000, n).astype(np.int32)
    check_both(E2E.shared_histogram, 4, 64, lambda: [values, np.zeros(E2E.NBINS, np.int32), n],
               {1: np.bincount(values % E2E.NBINS, minlength=E2E.NBINS)})


# --- 3-D blocks -------------------------------------------------------------------------------


@rk.kernel
def reverse_3d(x: Array[i32], out: Array[i32]):
    buf = rk.shared_array(i32, 64)
    size = rk.block_dim(0) * rk.block_dim(1) * rk.block_dim(2)
    t = (rk.thread_id(2) * rk.block_dim(1) + rk.thread_id(1)) * rk.block_dim(0) + rk.thread_id(0)
    block = (rk.block_id(1) * rk.grid_dim(0) + rk.block_id(0)) * size
    buf[t] = x[block + t]
    rk.barrier()
    out[block + t] = buf[size - 1 - t] * 1000 + rk.global_id(2) * 100 + rk.global_id(1) * 10 \
        + rk.thread_id(0)


def test_three_dimensional_block() -> None:
    block, grid = (5, 3, 2), (2, 3)
    size, blocks = 30, 6
    x = np.arange(size * blocks, dtype=np.int32)
    want = np.zeros_like(x)
    for by in range(3):
        for bx in range(2):
            base = (by * 2 + bx) * size
            for tz in range(2):
                for ty in range(3):
                    for tx in range(5):
                        t = (tz * 3 + ty) * 5 + tx
                        want[base + t] = (x[base + size - 1 - t] * 1000 + tz * 100
                                          + (by * 3 + ty) * 10 + tx)
    check_both(reverse_3d, grid, block, lambda: [x, np.zeros_like(x)], {1: want})


# --- barriers in nested uniform loops, locals live across barriers ----------------------------


@rk.kernel
def nested_rounds(x: Array[f64], out: Array[f64], rounds: i32):
    buf = rk.shared_array(f64, 32)
    t = rk.thread_id(0)
    acc = f64(0.0)
    odd = False
    for r in range(rounds):
        for half in range(2):
            buf[t] = x[rk.global_id(0)] * f64(r + 1) + f64(half)
            rk.barrier()
            acc += buf[(t + 1 + r) % 32]
            odd = not odd
            rk.barrier()
    out[rk.global_id(0)] = acc + (f64(1000.0) if odd else f64(0.0))


def test_barriers_in_nested_uniform_loops_with_locals_across_them() -> None:
    rounds = 3
    x = np.random.default_rng(5).uniform(-1, 1, 64)
    want = np.zeros(64)
    for b in range(2):
        row = x[b * 32:(b + 1) * 32]
        for t in range(32):
            acc = 0.0
            for r in range(rounds):
                for half in range(2):
                    acc += row[(t + 1 + r) % 32] * (r + 1) + half
            want[b * 32 + t] = acc + (0.0 if (2 * rounds) % 2 == 0 else 1000.0)
    check_both(nested_rounds, 2, 32, lambda: [x, np.zeros(64), rounds], {1: want}, rtol=1e-12)


@rk.kernel
def countdown(x: Array[i32], out: Array[i32], n: i32):
    buf = rk.shared_array(i32, 16)
    t = rk.thread_id(0)
    total = 0
    for k in range(n, 0, -2):
        if k == 3:
            continue
        if k < 2:
            break
        buf[t] = x[rk.global_id(0)] + k
        rk.barrier()
        total += buf[15 - t]
        rk.barrier()
    out[rk.global_id(0)] = total


def test_break_and_continue_under_uniform_conditions() -> None:
    n = 9
    x = np.arange(32, dtype=np.int32)
    want = np.zeros(32, np.int32)
    for b in range(2):
        for t in range(16):
            total = 0
            for k in range(n, 0, -2):
                if k == 3:
                    continue
                if k < 2:
                    break
                total += x[b * 16 + 15 - t] + k
            want[b * 16 + t] = total
    check_both(countdown, 2, 16, lambda: [x, np.zeros(32, np.int32), n], {1: want})


# --- SSA values and locals crossing a barrier, in the text form -----------------------------

CROSSING = """ringir 1

kernel @crossing(%x: array<i32, global>, %out: array<i32, global>, %flags: array<bool, global>) -> void {
  var $late: i32
  var $seen: bool
  %g: i32 = global_id 0
  %v: i32 = load %x[%g]
  %t: i32 = thread_id 0
  %three: i32 = const 3
  %is3: bool = eq %t, %three
  if %is3 {
    %five: i32 = const 5
    store_var $late, %five
    %yes: bool = const true
    store_var $seen, %yes
  }
  %big: bool = gt %v, %three
  barrier
  %sum: i32 = add %v, %t
  %late1: i32 = load_var $late
  %r: i32 = add %sum, %late1
  store %out[%g], %r
  barrier
  %seen1: bool = load_var $seen
  %both: bool = or %seen1, %big
  store %flags[%g], %both
}
"""


def test_values_and_locals_live_across_barriers_zero_initialized() -> None:
    module = verify(parse(CROSSING))
    x = np.random.default_rng(6).integers(0, 8, 40).astype(np.int32)
    t = np.tile(np.arange(20), 2)
    late = np.where(t == 3, 5, 0)
    check_both(module, 2, 20, lambda: [x, np.zeros(40, np.int32), np.zeros(40, bool)],
               {1: x + t + late, 2: (t == 3) | (x > 3)})


# --- early returns --------------------------------------------------------------------------


@rk.kernel
def early_return(out: Array[i32], hits: Array[i32], n: i32):
    t = rk.thread_id(0)
    if rk.block_id(0) == n:
        return  # a whole block leaves before its first barrier
    if t >= 10:
        return  # undefined on GPUs; the cpu backend lets the others pass the barrier
    rk.barrier()
    rk.atomic_add(hits, rk.block_id(0), 1)
    out[rk.global_id(0)] = t + 1


def test_early_return_before_a_barrier() -> None:
    want_out = np.tile(np.where(np.arange(32) < 10, np.arange(32) + 1, 0), 3).astype(np.int32)
    want_out[32:64] = 0
    check_both(early_return, 3, 32, lambda: [np.zeros(96, np.int32), np.zeros(3, np.int32), 1],
               {0: want_out, 1: np.array([10, 0, 10], np.int32)})


@rk.kernel
def staggered_exit(out: Array[i32]):
    buf = rk.shared_array(i32, 16)
    t = rk.thread_id(0)
    buf[t] = 0
    rk.barrier()
    k = 0
    while k < 16:
        if t == k:
            left = 0
            if t > 0:
                left = buf[t - 1]
            out[rk.global_id(0)] = buf[t] * 100 + left
            return
        buf[t] += 1
        rk.barrier()
        k += 1


def test_work_items_return_one_by_one_inside_a_loop_with_a_barrier() -> None:
    t = np.arange(16)
    want = np.tile(t * 100 + np.maximum(t - 1, 0), 2).astype(np.int32)
    check_both(staggered_exit, 2, 16, lambda: [np.zeros(32, np.int32)], {0: want})


# --- shared memory atomics ------------------------------------------------------------------


@rk.kernel
def shared_counter(values: Array[i32], out: Array[i32]):
    count = rk.shared_array(i32, 2)
    t = rk.thread_id(0) + rk.thread_id(1) * rk.block_dim(0)
    if t < 2:
        count[t] = 0
    rk.barrier()
    v = values[rk.block_id(0) * 48 + t]
    if v % 2 == 0:
        rk.atomic_add(count, 0, 1)
    rk.atomic_max(count, 1, v)
    rk.barrier()
    if t == 0:
        out[rk.block_id(0) * 2] = count[0]
        out[rk.block_id(0) * 2 + 1] = count[1]


def test_atomics_on_shared_memory() -> None:
    values = np.random.default_rng(7).integers(0, 1000, 4 * 48).astype(np.int32)
    rows = values.reshape(4, 48)
    want = np.stack([(rows % 2 == 0).sum(axis=1), rows.max(axis=1)], axis=1).reshape(-1)
    check_both(shared_counter, 4, (16, 3), lambda: [values, np.zeros(8, np.int32)],
               {1: want.astype(np.int32)})


# --- barriers under varying control flow: work-items as coroutines ---------------------------


@rk.kernel
def loaded_trip_count(counts: Array[i32], out: Array[i32]):
    buf = rk.shared_array(i32, 16)
    t = rk.thread_id(0)
    total = 0
    for r in range(counts[rk.block_id(0)]):  # uniform in fact, but a load: not provable
        buf[t] = r * t
        rk.barrier()
        total += buf[15 - t]
        rk.barrier()
    out[rk.global_id(0)] = total


def test_loop_with_barrier_and_loaded_trip_count_runs_as_coroutines() -> None:
    counts = np.array([3, 0, 5], np.int32)
    want = np.zeros(48, np.int32)
    for b, c in enumerate(counts):
        t = np.arange(16)
        want[b * 16:(b + 1) * 16] = sum(r * (15 - t) for r in range(c))
    check_both(loaded_trip_count, 3, 16, lambda: [counts, np.zeros(48, np.int32)], {1: want},
               expect="coroutines")
    _, reason = LOOPS.barrier_strategy(loaded_trip_count.ir, "loaded_trip_count")
    assert "range" in reason


@rk.kernel
def divergent_barrier(out: Array[i32]):
    t = rk.thread_id(0)
    if t < 8:
        rk.barrier()  # undefined on GPUs: only some work-items reach it
    out[rk.global_id(0)] = t


def test_barrier_under_a_varying_condition_runs_as_coroutines() -> None:
    check_both(divergent_barrier, 2, 16, lambda: [np.zeros(32, np.int32)],
               {0: np.tile(np.arange(16), 2)}, expect="coroutines")
    with pytest.raises(NotTransformable, match="condition of an 'if'"):
        to_workitem_loops(divergent_barrier.ir, "divergent_barrier")


@rk.kernel
def varying_break(x: Array[i32], out: Array[i32]):
    t = rk.thread_id(0)
    k = 0
    while True:
        rk.barrier()
        k += 1
        if x[t] < k:  # varying: some work-items leave the loop earlier
            break
    out[rk.global_id(0)] = k


def test_break_under_a_varying_condition_runs_as_coroutines() -> None:
    x = np.array([0, 3, 1, 2], np.int32)
    check_both(varying_break, 1, 4, lambda: [x, np.zeros(4, np.int32)], {1: x + 1},
               expect="coroutines")


# --- the rewrite itself -----------------------------------------------------------------------


def test_rewrite_verifies_and_is_deterministic() -> None:
    for case in BARRIER_CASES:
        module = case.kernel.ir
        first = verify(to_workitem_loops(module, case.name))
        assert str(first) == str(to_workitem_loops(module, case.name))
        kernel = first.get(case.name)
        kinds = {s.kind for s in rk.ringir.walk(kernel.body) if isinstance(s, rk.ringir.ThreadIndex)}
        assert not kinds & {"thread_id", "global_id"}
        assert not any(isinstance(s, rk.ringir.Barrier) for s in rk.ringir.walk(kernel.body))
        assert region_functions(first, case.name)


def test_barrier_free_kernels_are_not_rewritten() -> None:
    saxpy = next(c for c in kernel_corpus.CASES if c.name == "saxpy")
    assert LOOPS.barrier_strategy(saxpy.kernel.ir, "saxpy") == ("plain", "")
    with pytest.raises(NotTransformable):
        to_workitem_loops(saxpy.kernel.ir, "saxpy")


BACKOFF = """ringir 1

kernel @idles(%out: array<i32, global>) -> void {
  %t: i32 = thread_id 0
  %ns: u32 = const 1000
  backoff %ns
  barrier
  store %out[%t], %t
}
"""


def test_kernels_that_idle_with_backoff_keep_their_threads() -> None:
    module = verify(parse(BACKOFF))
    check_both(module, 1, 4, lambda: [np.zeros(4, np.int32)], {0: np.arange(4)},
               expect="threads")
    assert "backoff" in LOOPS.barrier_strategy(module, "idles")[1]


def test_timing_helper_runs_both_paths() -> None:
    from bench.cpu_barriers import block_reduce_timings

    times = block_reduce_timings(blocks=4, block=64, repeats=1)
    assert set(times) == {"loops", "threads"} and all(t > 0 for t in times.values())


@rk.kernel
def branchy(x: Array[i32], out: Array[i32], mode: i32):
    buf = rk.shared_array(i32, 32)
    t = rk.thread_id(0)
    acc = 0
    if mode > 0:
        for i in range(mode):
            buf[t] = x[rk.global_id(0)] + i
            rk.barrier()
            acc += buf[(t + i) % rk.block_dim(0)]
            rk.barrier()
    else:
        buf[t] = -x[rk.global_id(0)]
        rk.barrier()
        acc = buf[rk.block_dim(0) - 1 - t]
    out[rk.global_id(0)] = acc


@pytest.mark.parametrize("mode", [3, 0])
def test_uniform_if_else_with_barriers_in_both_branches(mode: int) -> None:
    x = np.random.default_rng(8).integers(-100, 100, 48).astype(np.int32)
    rows = x.reshape(2, 24)
    want = np.zeros((2, 24), np.int32)
    t = np.arange(24)
    for b in range(2):
        if mode > 0:
            want[b] = sum(rows[b][(t + i) % 24] + i for i in range(mode))
        else:
            want[b] = -rows[b][23 - t]
    check_both(branchy, 2, 24, lambda: [x, np.zeros(48, np.int32), mode], {1: want.reshape(-1)})


@rk.kernel
def demoted_counter(out: Array[i32]):
    t = rk.thread_id(0)
    s = 3
    if t == 0:
        s = 1  # s now differs between work-items: the loop below is not uniform
    while s > 0:
        rk.barrier()
        s -= 1
    out[rk.global_id(0)] = s + t


def test_local_assigned_under_a_varying_condition_is_not_uniform() -> None:
    check_both(demoted_counter, 1, 8, lambda: [np.zeros(8, np.int32)], {0: np.arange(8)},
               expect="coroutines")

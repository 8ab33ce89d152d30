"""Interchange, narrowing and grid-stride versioning in the cpu work-item loops.

The rewrite (``ringkernel.ringir.passes.workitem_interchange``) must move a
uniform ``range`` loop of a region to block level exactly when that is legal,
and leave it inside the region (per work-item) otherwise.  A loop at block
level shows up as a ``for`` statement of the rewritten kernel itself; a loop
left alone stays in a region func.  Each kernel also runs on the cpu against
numpy, so a wrong schedule cannot pass.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.ringir import ForRange, Function, Module, walk
from ringkernel.ringir.passes.workitem_loops import LOOPS, plan_block, to_workitem_loops
from ringkernel.runtime.cpu import CpuBackend

N = 16  # work-items per block in these kernels


def _block_loops(module: Module, name: str) -> set[str]:
    """Variables of the ``range`` loops the rewritten kernel runs at block level (not work-item axes)."""
    kernel = module.get(name)
    return {s.var.name for s in walk(kernel.body)
            if isinstance(s, ForRange) and not s.var.name.startswith("wi.")}


def _region_loops(module: Module, name: str) -> set[str]:
    """Variables of the ``range`` loops left inside region funcs (run per work-item)."""
    regions: list[Function] = [f for f in module.functions if f.name.startswith(f"{name}.wi")]
    return {s.var.name for f in regions for s in walk(f.body) if isinstance(s, ForRange)}


def _rewrite(kernel: rk.Kernel) -> Module:
    name = kernel.ir.kernels[-1].name
    plan = plan_block(kernel.ir, name)
    assert plan.mode == LOOPS, plan.reason
    return plan.module


def _user_loop(kernel: rk.Kernel) -> str:
    """The variable of the kernel's one loop without a barrier (the candidate)."""
    fn = kernel.ir.kernels[-1]
    barrier_loops = {s.var.name for s in walk(fn.body) if isinstance(s, ForRange)
                     and any(type(t).__name__ == "Barrier" for t in walk(s.body))}
    (var,) = {s.var.name for s in walk(fn.body) if isinstance(s, ForRange)} - barrier_loops
    return var


@rk.kernel
def weighted(x: Array[f32], w: Array[f32], out: Array[f32], k_count: i32):
    buf = rk.shared_array(f32, N)
    t = rk.thread_id(0)
    g = rk.global_id(0)
    buf[t] = x[g]
    rk.barrier()
    acc = f32(0.0)
    for k in range(k_count):
        acc += buf[(t + k) % N] * w[k]
    out[g] = acc


def _weighted_expected(x: np.ndarray, w: np.ndarray, blocks: int) -> np.ndarray:
    out = np.zeros_like(x)
    for b in range(blocks):
        tile = x[b * N:(b + 1) * N]
        for t in range(N):
            out[b * N + t] = sum(tile[(t + k) % N] * w[k] for k in range(len(w)))
    return out


def _run_weighted(kernel: rk.Kernel) -> None:
    rng = np.random.default_rng(7)
    blocks, k_count = 3, 5
    x = rng.random(blocks * N, dtype=np.float32)
    w = rng.random(k_count, dtype=np.float32)
    out = np.zeros_like(x)
    kernel.launch(blocks, N, (x, w, out, k_count), backend="cpu")
    np.testing.assert_allclose(out, _weighted_expected(x, w, blocks), rtol=1e-5)


def test_uniform_loop_after_a_barrier_runs_at_block_level() -> None:
    module = _rewrite(weighted)
    loop = _user_loop(weighted)
    assert loop in _block_loops(module, "weighted")
    assert loop not in _region_loops(module, "weighted")
    without = to_workitem_loops(weighted.ir, "weighted", interchange=False)
    assert loop in _region_loops(without, "weighted")  # what the option changes
    _run_weighted(weighted)


@rk.kernel
def varying_bound(x: Array[f32], out: Array[f32]):
    buf = rk.shared_array(f32, N)
    t = rk.thread_id(0)
    buf[t] = x[rk.global_id(0)]
    rk.barrier()
    acc = f32(0.0)
    for k in range(t):
        acc += buf[k]
    out[rk.global_id(0)] = acc


def test_loop_whose_bound_varies_stays_per_work_item() -> None:
    module = _rewrite(varying_bound)
    loop = _user_loop(varying_bound)
    assert loop in _region_loops(module, "varying_bound")
    assert loop not in _block_loops(module, "varying_bound")
    x = np.arange(2 * N, dtype=np.float32)
    out = np.zeros_like(x)
    varying_bound.launch(2, N, (x, out), backend="cpu")
    tiles = x.reshape(2, N)
    expected = np.concatenate([np.concatenate(([0], np.cumsum(tile)[:-1])) for tile in tiles])
    np.testing.assert_allclose(out, expected)


@rk.kernel
def early_break(x: Array[f32], out: Array[f32]):
    buf = rk.shared_array(f32, N)
    t = rk.thread_id(0)
    buf[t] = x[t]
    rk.barrier()
    count = 0
    for k in range(N):
        if buf[(t + k) % N] < 0.0:
            break
        count += 1
    out[t] = f32(count)


def test_work_item_dependent_break_stays_per_work_item() -> None:
    module = _rewrite(early_break)
    loop = _user_loop(early_break)
    assert loop in _region_loops(module, "early_break")
    x = np.ones(N, np.float32)
    x[[3, 9]] = -1.0
    out = np.zeros_like(x)
    early_break.launch(1, N, (x, out), backend="cpu")
    expected = [next(k for k in range(N) if x[(t + k) % N] < 0) for t in range(N)]
    np.testing.assert_array_equal(out, np.array(expected, np.float32))


@rk.kernel
def neighbour_read(x: Array[f32], out: Array[f32]):
    buf = rk.shared_array(f32, N)
    t = rk.thread_id(0)
    buf[t] = x[t]
    rk.barrier()
    for _k in range(3):
        buf[t] = buf[t] + 1.0
        out[t] = buf[(t + 1) % N]  # another work-item's element, written in this same region


def test_loop_reading_another_work_items_write_stays_per_work_item() -> None:
    module = _rewrite(neighbour_read)
    loop = _user_loop(neighbour_read)
    assert loop in _region_loops(module, "neighbour_read")
    x = np.zeros(N, np.float32)
    out = np.zeros_like(x)
    neighbour_read.launch(1, N, (x, out), backend="cpu")
    # one work-item after another (the schedule kept): each reads its right neighbour
    # before that one ran, except the last, which reads work-item 0's finished value
    expected = np.zeros(N, np.float32)
    expected[-1] = 3.0
    np.testing.assert_array_equal(out, expected)


@rk.kernel
def loop_with_barrier(x: Array[f32], out: Array[f32]):
    buf = rk.shared_array(f32, N)
    t = rk.thread_id(0)
    buf[t] = x[t]
    for _k in range(3):
        rk.barrier()
        v = buf[(t + 1) % N]
        rk.barrier()
        buf[t] = v
    out[t] = buf[t]


def test_loop_holding_a_barrier_still_splits_at_the_barrier() -> None:
    module = _rewrite(loop_with_barrier)
    assert len([f for f in module.functions if f.name.startswith("loop_with_barrier.wi")]) >= 3
    x = np.arange(N, dtype=np.float32)
    out = np.zeros_like(x)
    loop_with_barrier.launch(1, N, (x, out), backend="cpu")
    np.testing.assert_array_equal(out, np.roll(x, -3))


@rk.kernel
def tree_sum(x: Array[f32], total: Array[f32], n: i32):
    buf = rk.shared_array(f32, 64)
    t = rk.thread_id(0)
    acc = f32(0.0)
    for i in range(rk.global_id(0), n, rk.grid_dim(0) * rk.block_dim(0)):
        acc += x[i]
    buf[t] = acc
    rk.barrier()
    s = rk.block_dim(0) // 2
    while s > 0:
        if t < s:
            buf[t] += buf[t + s]
        rk.barrier()
        s //= 2
    if t == 0:
        rk.atomic_add(total, 0, buf[0])


def _axis_stops(module: Module, name: str) -> list[str]:
    """The stop value names of the kernel's x work-item loops, in order."""
    return [s.stop.name for s in walk(module.get(name).body)
            if isinstance(s, ForRange) and s.var.name.startswith("wi.tx")]


@pytest.mark.parametrize("block, n", [(64, 1000), (32, 1 << 12), (16, 7)])
def test_tree_reduction_narrows_its_guarded_regions_and_sums(block: int, n: int) -> None:
    module = _rewrite(tree_sum)
    stops = _axis_stops(module, "tree_sum")
    block_dim = [s for s in stops if s.startswith("wi.block_dim")]
    assert len(stops) - len(block_dim) >= 2, stops  # 'if t < s' and 'if t == 0' narrowed
    assert any(s.var.name.startswith("gs.j") for s in walk(module.get("tree_sum").body)
               if isinstance(s, ForRange)), "the grid-stride loop was not versioned"
    x = np.random.default_rng(block).random(n, dtype=np.float32)
    total = np.zeros(1, np.float32)
    tree_sum.launch(3, block, (x, total, n), backend="cpu")
    np.testing.assert_allclose(total[0], x.sum(dtype=np.float64), rtol=1e-4)


@rk.kernel
def negative_stride(x: Array[f32], out: Array[f32], n: i32, step: i32):
    buf = rk.shared_array(f32, N)
    t = rk.thread_id(0)
    acc = f32(0.0)
    for i in range(rk.global_id(0), n, step):
        acc += x[i]
    buf[t] = acc
    rk.barrier()
    out[rk.global_id(0)] = buf[(t + 1) % N]


@pytest.mark.parametrize("step", [N, 3, -1, 0])
def test_grid_stride_versioning_keeps_any_step_right(step: int) -> None:
    """A positive step takes the interchanged copy, any other the original loop."""
    x = np.arange(2 * N, dtype=np.float32)
    out = np.zeros_like(x)
    stop = 2 if step < 0 else 2 * N
    negative_stride.launch(2, N, (x, out, stop, step), backend="cpu")
    sums = np.zeros(2 * N, np.float32)
    for g in range(2 * N):
        sums[g] = sum(x[i] for i in range(g, stop, step)) if step else 0.0
    expected = np.array([sums[(g // N) * N + (g % N + 1) % N] for g in range(2 * N)], np.float32)
    np.testing.assert_allclose(out, expected)


@rk.kernel
def local_array_loop(x: Array[f32], out: Array[f32]):
    buf = rk.shared_array(f32, N)
    t = rk.thread_id(0)
    buf[t] = x[t]
    rk.barrier()
    tmp = rk.local_array(f32, 4)
    for k in range(4):
        tmp[k] = buf[(t + k) % N]
    out[t] = tmp[0] + tmp[3]


def test_loop_using_a_local_array_made_before_it_stays_per_work_item() -> None:
    """A work-item's own array cannot cross into a region of its own: the loop stays put."""
    module = _rewrite(local_array_loop)
    assert _user_loop(local_array_loop) in _region_loops(module, "local_array_loop")
    x = np.arange(N, dtype=np.float32)
    out = np.zeros_like(x)
    local_array_loop.launch(1, N, (x, out), backend="cpu")
    np.testing.assert_array_equal(out, x + np.roll(x, -3))


def test_interchange_is_a_host_decision_only() -> None:
    """GPU targets compile the kernel as written: the work-item loop rewrite is the cpu's."""
    for target in ("wgsl", "msl"):
        text = weighted.compile(target)
        assert "gs.j" not in text and "wi.tx" not in text
    assert CpuBackend().barrier_strategy(weighted.ir, "weighted")[0] == LOOPS


def test_plan_retries_without_interchange_when_the_interchanged_rewrite_fails(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ringkernel.ringir.passes import workitem_loops

    real = workitem_loops.to_workitem_loops

    def failing(module: Module, name: str, interchange: bool = True) -> Module:
        if interchange:
            raise workitem_loops.NotTransformable("forced")
        return real(module, name, interchange)

    monkeypatch.setattr(workitem_loops, "to_workitem_loops", failing)
    plan = plan_block(weighted.ir, "weighted")
    assert plan.mode == LOOPS
    assert _user_loop(weighted) in _region_loops(plan.module, "weighted")


@rk.kernel
def early_return(x: Array[f32], out: Array[f32], n: i32):
    buf = rk.shared_array(f32, N)
    t = rk.thread_id(0)
    s = 3  # uniform, carried across the barriers as one value
    if t >= n:
        return
    buf[t] = x[t]
    rk.barrier()
    acc = f32(0.0)
    for k in range(s):
        acc += buf[(t + k) % n]
    s = s + 1
    rk.barrier()
    out[t] = acc + f32(s)


@pytest.mark.parametrize("n", [N, 5, 1])
def test_work_items_that_returned_do_not_disturb_interchanged_loops(n: int) -> None:
    module = _rewrite(early_return)
    assert _user_loop(early_return) in _block_loops(module, "early_return")
    x = np.arange(N, dtype=np.float32) + 1.0
    out = np.full(N, -1.0, np.float32)
    early_return.launch(1, N, (x, out, n), backend="cpu")
    expected = np.full(N, -1.0, np.float32)
    for t in range(n):
        expected[t] = sum(x[(t + k) % n] for k in range(3)) + 4.0
    np.testing.assert_allclose(out, expected)


@rk.kernel
def block_stride_fill(x: Array[f32], out: Array[f32], n: i32):
    tile = rk.shared_array(f32, 4 * N)
    t = rk.thread_id(0)
    for j in range(t, 4 * N, rk.block_dim(0)):  # start: the local holding thread_id
        v = f32(0.0)
        if j < n:
            v = x[j]
        tile[j] = v
    rk.barrier()
    out[t] = tile[4 * N - 1 - t]


def test_block_stride_loop_from_a_thread_id_local_is_versioned_and_interchanged() -> None:
    module = _rewrite(block_stride_fill)
    assert any(v.startswith("gs.j") for v in _block_loops(module, "block_stride_fill"))
    x = np.arange(4 * N, dtype=np.float32)
    out = np.zeros(N, np.float32)
    block_stride_fill.launch(1, N, (x, out, 3 * N + 5), backend="cpu")
    tile = np.where(np.arange(4 * N) < 3 * N + 5, x, 0.0)
    np.testing.assert_array_equal(out, tile[::-1][:N])

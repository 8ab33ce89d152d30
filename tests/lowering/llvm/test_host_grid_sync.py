"""The host lowering of rk.grid_sync: a cooperative launch wrapper, and nothing of it elsewhere."""

from __future__ import annotations

import re

import ringkernel as rk
from ringkernel import Array, f32
from ringkernel.lowering.llvm.host import build_host_module
from ringkernel.ringir.passes.workitem_loops import GRID, THREADS, plan_block


@rk.kernel
def synced(x: Array[f32]):
    i = rk.global_id(0)
    x[i] += 1.0
    rk.grid_sync()
    x[i] *= 2.0


@rk.kernel
def blockwise(x: Array[f32]):
    buf = rk.shared_array(f32, 64)
    t = rk.thread_id(0)
    buf[t] = x[rk.global_id(0)]
    rk.barrier()
    x[rk.global_id(0)] = buf[63 - t]


def _thread_function(text: str, name: str) -> str:
    match = re.search(rf'define internal ptr @"rk_thread_{name}"\(.*?\n}}', text, re.S)
    assert match, f"no thread function for {name}"
    return match.group(0)


def test_a_grid_sync_kernel_gets_the_cooperative_wrapper_and_leaves_both_barriers() -> None:
    assert plan_block(synced.ir, "synced").mode == GRID
    text = str(build_host_module(synced.ir, "synced", True, False)[0])
    assert 'call i32 @"rk_cpu_run_grid"(' in text and 'define internal i32 @"rk_cpu_grid_sync"(' in text
    thread = _thread_function(text, "synced")
    assert thread.count('@"rk_cpu_barrier_leave"(') == 2  # the block's barrier, then the grid's


def test_a_thread_per_work_item_kernel_keeps_one_barrier_and_no_grid() -> None:
    """Regression: the cooperative flag was shadowed by the grid dims, so every thread
    function also read a grid-barrier pointer (uninitialized memory before the fix nulled it)."""
    assert plan_block(blockwise.ir, "blockwise", workitem_loops=False).mode == THREADS
    text = str(build_host_module(blockwise.ir, "blockwise", False, False)[0])
    assert "rk_cpu_run_grid" not in text and "rk_cpu_grid_sync" not in text
    assert _thread_function(text, "blockwise").count('@"rk_cpu_barrier_leave"(') == 1

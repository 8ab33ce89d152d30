"""The cpu's one-lane subgroup rewrite: plain statements, so work-item loops can carry them."""

from __future__ import annotations

import numpy as np

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.ringir import Subgroup, SyncWarp, verify, walk
from ringkernel.ringir.passes.one_lane_subgroups import one_lane_subgroups
from ringkernel.ringir.passes.workitem_loops import LOOPS, plan_block


@rk.kernel
def reduce_in_shared(x: Array[f32], out: Array[f32]):
    partial = rk.shared_array(f32, 64)
    v = x[rk.global_id(0)]
    d = rk.warp_size() // 2
    while d > 0:
        v += rk.shfl_down(v, d)
        d //= 2
    rk.syncwarp()
    if rk.lane_id() == 0:
        partial[rk.thread_id(0) // rk.warp_size()] = v
    rk.barrier()
    if rk.thread_id(0) == 0:
        total = 0.0
        for w in range(rk.block_dim(0) // rk.warp_size()):
            total += partial[w]
        out[rk.block_id(0)] = total + f32(rk.ballot(v > 0.0)) * 0.0


def test_rewrite_leaves_no_subgroup_statement_and_verifies() -> None:
    module = one_lane_subgroups(reduce_in_shared.ir)
    assert not any(isinstance(s, (Subgroup, SyncWarp)) for fn in module.functions for s in walk(fn.body))
    verify(module)


def test_kernel_with_subgroups_and_barriers_takes_the_work_item_loops() -> None:
    plan = plan_block(reduce_in_shared.ir, "reduce_in_shared")
    assert plan.mode == LOOPS, plan.reason
    x = np.arange(128, dtype=np.float32)
    out = np.zeros(2, np.float32)
    reduce_in_shared.launch(2, 64, (x, out), backend="cpu")
    np.testing.assert_array_equal(out, x.reshape(2, 64).sum(axis=1))


def test_module_without_subgroups_is_returned_as_is() -> None:
    @rk.kernel
    def plain(x: Array[i32]):
        x[0] = 1

    assert one_lane_subgroups(plain.ir) is plain.ir

"""Shared-array atomics of blocks that run on one thread are plain read-modify-writes.

The rule (``ringkernel.lowering.llvm.host_atomics``): in the "plain" and
"loops" block modes a block's shared arrays belong to one OS thread, so their
atomics need no lock; global arrays, and every atomic of the thread-per-work-
item mode, keep hardware atomics.  Results must not change either way.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, u32
from ringkernel.lowering.llvm.host import build_host_module
from ringkernel.lowering.llvm.lower import build_ir_module
from ringkernel.lowering.llvm.targets import HostTarget
from ringkernel.ringir.passes import run_default_pipeline
from ringkernel.runtime.cpu import CpuBackend

BINS = 16
BLOCK = 64


@rk.kernel
def shared_histogram(values: Array[i32], bins: Array[i32], n: i32):
    local = rk.shared_array(i32, BINS)
    t = rk.thread_id(0)
    if t < BINS:
        local[t] = 0
    rk.barrier()
    i = rk.global_id(0)
    if i < n:
        rk.atomic_add(local, values[i] % BINS, 1)
    rk.barrier()
    if t < BINS:
        rk.atomic_add(bins, t, local[t])


@rk.kernel
def shared_family(x: Array[i32], out: Array[i32], fout: Array[f32], n: i32):
    s = rk.shared_array(i32, 8)
    u = rk.shared_array(u32, 2)
    f = rk.shared_array(f32, 2)
    t = rk.thread_id(0)
    if t == 0:
        s[0] = 0
        s[1] = -1000000
        s[2] = 1000000
        s[3] = 0
        s[4] = -1
        s[5] = 0
        s[6] = 0
        s[7] = 0
        u[0] = u32(0)
        f[0] = f32(0.0)
        f[1] = f32(-1.0e30)
    rk.barrier()
    i = rk.global_id(0)
    if i < n:
        v = x[i]
        rk.atomic_add(s, 0, v)
        rk.atomic_max(s, 1, v)
        rk.atomic_min(s, 2, v)
        rk.atomic_xor(s, 3, v)
        rk.atomic_and(s, 4, v | 1)
        rk.atomic_or(s, 5, v & 7)
        rk.atomic_cas(s, 6, t, t + 1)   # counts 0, 1, 2... only in work-item order
        rk.atomic_max(u, 0, u32(v))
        rk.atomic_add(f, 0, f32(v))
        rk.atomic_max(f, 1, f32(v))
        rk.atomic_sub(s, 7, 1)
    rk.barrier()
    if t == 0:
        b = rk.block_id(0) * 10
        for k in range(8):
            out[b + k] = s[k]
        out[b + 8] = i32(u[0])
        fout[rk.block_id(0) * 2] = f[0]
        fout[rk.block_id(0) * 2 + 1] = f[1]


def _atomics(kernel: rk.Kernel, loops: bool) -> int:
    """``atomicrmw`` instructions in the host build before LLVM's optimizer copies any."""
    module = run_default_pipeline(kernel.ir)
    llmod, _ = build_host_module(module, kernel.__name__, loops, False)
    return len(re.findall(r"atomicrmw add", str(llmod)))


def test_shared_atomics_are_plain_and_global_ones_stay_atomic_in_work_item_loops() -> None:
    assert CpuBackend().barrier_strategy(shared_histogram.ir, "shared_histogram")[0] == "loops"
    assert _atomics(shared_histogram, loops=True) == 1  # the global bins only


def test_the_thread_per_work_item_mode_keeps_hardware_atomics_on_shared_arrays() -> None:
    assert _atomics(shared_histogram, loops=False) == 2


def test_compile_llvm_is_unchanged_by_the_host_rule() -> None:
    llmod = build_ir_module(run_default_pipeline(shared_histogram.ir), HostTarget(), name="m")
    assert len(re.findall(r"atomicrmw add", str(llmod))) == 2


@pytest.mark.parametrize("loops", [True, False])
@pytest.mark.parametrize("threads", [1, 2, 5])
def test_shared_histogram_is_exact_under_contention(loops, threads) -> None:
    n = 64 * BLOCK - 7
    values = np.random.default_rng(0).integers(0, 1000, n).astype(np.int32)
    bins = np.zeros(BINS, np.int32)
    backend = CpuBackend(workitem_loops=loops, threads=threads, inline_below=0)
    shared_histogram.launch(64, BLOCK, (values, bins, n), backend=backend)
    np.testing.assert_array_equal(bins, np.bincount(values % BINS, minlength=BINS))


@pytest.mark.parametrize("loops", [True, False])
def test_every_shared_atomic_gives_the_atomic_result(loops) -> None:
    blocks, n = 3, 3 * BLOCK - 5
    x = np.random.default_rng(1).integers(-500, 500, n).astype(np.int32)
    out = np.zeros(blocks * 10, np.int32)
    fout = np.zeros(blocks * 2, np.float32)
    backend = CpuBackend(workitem_loops=loops)
    shared_family.launch(blocks, BLOCK, (x, out, fout, n), backend=backend)
    for blk in range(blocks):
        v = x[blk * BLOCK:(blk + 1) * BLOCK]
        got = out[blk * 10: blk * 10 + 9]
        assert got[0] == v.sum()
        assert got[1] == v.max()
        assert got[2] == v.min()
        assert got[3] == np.bitwise_xor.reduce(v)
        assert got[4] == np.bitwise_and.reduce(v | 1) & -1
        assert got[5] == np.bitwise_or.reduce(v & 7)
        assert got[7] == -len(v)
        assert got[8] == (v.astype(np.uint32)).max().astype(np.int32)
        np.testing.assert_allclose(fout[blk * 2], v.astype(np.float32).sum(), rtol=1e-5)
        assert fout[blk * 2 + 1] == v.astype(np.float32).max()
        if loops:  # work-items run in order: each CAS finds its own index
            assert got[6] == len(v)

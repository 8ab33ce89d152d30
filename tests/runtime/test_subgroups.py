"""Subgroup (warp) operations and block votes (issue 15) against a numpy model of the subgroup.

The model takes the backend's own ``rk.warp_size()`` (1 on cpu, the adapter's
on wgpu, 32 on cuda) with subgroups of consecutive thread ids, and CUDA's
rules for a source lane outside the subgroup (the own value).
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.lowering.cuda import check_ptx, find_ptxas
from ringkernel.lowering.msl.check import check_msl, find_clang
from ringkernel.lowering.wgsl import check_wgsl, naga
from ringkernel.lowering.wgsl.naga import WgpuUnavailable, get_device
from ringkernel.ringir import Subgroup, SyncWarp, parse, verify, walk
from ringkernel.ringir.diagnostics import CompileError

BLOCK = 64
COLUMNS = 10


@rk.kernel
def lanes(x: Array[i32], y: Array[f32], out: Array[i32], fout: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        v = x[i]
        lane = rk.lane_id()
        out[COLUMNS * i] = lane
        out[COLUMNS * i + 1] = rk.warp_size()
        out[COLUMNS * i + 2] = rk.shfl(v, lane * 3 + 1)
        out[COLUMNS * i + 3] = rk.shfl_up(v, 3)
        out[COLUMNS * i + 4] = rk.shfl_down(v, 2)
        out[COLUMNS * i + 5] = rk.shfl_xor(v, 5)
        out[COLUMNS * i + 6] = i32(rk.ballot(v % 3 == 0))
        out[COLUMNS * i + 7] = i32(rk.vote_any(v % 7 == 0))
        out[COLUMNS * i + 8] = i32(rk.vote_all(v % 2 == 0))
        rk.syncwarp()
        out[COLUMNS * i + 9] = rk.shfl_down(v, 40)
        fout[i] = rk.shfl_xor(y[i], 1)


def _model(x: np.ndarray, y: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    out = np.zeros((x.size, COLUMNS), np.int64)
    fout = np.zeros(x.size, np.float32)
    for i in range(x.size):
        base, lane = i - i % width, i % width
        group = x[base:base + width]

        def at(src: int, own: int = i, base: int = base) -> int:
            return int(x[base + src]) if 0 <= src < width else int(x[own])

        out[i, :2] = lane, width
        out[i, 2] = at((lane * 3 + 1) % width)
        out[i, 3] = at(lane - 3)
        out[i, 4] = at(lane + 2)
        out[i, 5] = at(lane ^ 5)
        out[i, 6] = sum(1 << k for k, v in enumerate(group[:32]) if v % 3 == 0)
        out[i, 7] = any(v % 7 == 0 for v in group)
        out[i, 8] = all(v % 2 == 0 for v in group)
        out[i, 9] = at(lane + 40)
        fout[i] = y[base + (lane ^ 1)] if (lane ^ 1) < width else y[i]
    return out.astype(np.uint32).view(np.int32), fout


def test_shuffles_and_votes_follow_cuda_rules(backend: str) -> None:
    rng = np.random.default_rng(15)
    x = rng.integers(0, 1000, BLOCK).astype(np.int32)
    x[:8] = 14  # one subgroup where every vote holds, whatever the width
    y = rng.random(BLOCK).astype(np.float32)
    out = np.zeros(COLUMNS * BLOCK, np.int32)
    fout = np.zeros(BLOCK, np.float32)
    lanes.launch(grid=1, block=BLOCK, args=(x, y, out, fout, BLOCK), backend=backend)
    width = int(out[1])
    assert width == (1 if backend == "cpu" else width) and width & (width - 1) == 0
    want, fwant = _model(x, y, width)
    np.testing.assert_array_equal(out.reshape(BLOCK, COLUMNS), want)
    np.testing.assert_array_equal(fout, fwant)


@rk.kernel
def warp_reduce(x: Array[f32], out: Array[f32], n: i32):
    """Shuffle reduction written with rk.warp_size(): the same sum on every backend."""
    i = rk.global_id(0)
    v = x[i] if i < n else 0.0
    d = rk.warp_size() // 2
    while d > 0:
        v += rk.shfl_xor(v, d)
        d //= 2
    if rk.lane_id() == 0:
        rk.atomic_add(out, 0, v)


def test_reduction_written_with_warp_size_is_portable(backend: str) -> None:
    x = (np.arange(200) % 17).astype(np.float32)  # integers: every summation order is exact
    out = np.zeros(1, np.float32)
    warp_reduce.launch(grid=4, block=BLOCK, args=(x, out, x.size), backend=backend)
    assert out[0] == x.sum()


@rk.kernel
def votes(x: Array[i32], out: Array[i32], n: i32):
    i = rk.global_id(0)
    t = rk.thread_id(0)
    for r in range(3):
        c = rk.barrier_count(x[i] > r)
        a = rk.barrier_and(x[i] >= r)
        o = rk.barrier_or(x[i] == r + 5)
        if t == 0:
            out[rk.block_id(0) * 9 + 3 * r] = c
            out[rk.block_id(0) * 9 + 3 * r + 1] = i32(a)
            out[rk.block_id(0) * 9 + 3 * r + 2] = i32(o)


def test_barrier_count_and_or(backend: str) -> None:
    x = np.random.default_rng(3).integers(0, 6, 2 * BLOCK).astype(np.int32)
    x[BLOCK:] = np.maximum(x[BLOCK:], 1)
    out = np.zeros(18, np.int32)
    votes.launch(grid=2, block=BLOCK, args=(x, out, x.size), backend=backend)
    want = []
    for blk in (x[:BLOCK], x[BLOCK:]):
        for r in range(3):
            want += [int((blk > r).sum()), int((blk >= r).all()), int((blk == r + 5).any())]
    np.testing.assert_array_equal(out, want)


def test_ir_round_trips_and_is_checked() -> None:
    module = lanes.ir
    kinds = {s.op for fn in module.functions for s in walk(fn.body) if isinstance(s, Subgroup)}
    assert kinds == {"lane_id", "size", "shfl", "shfl_up", "shfl_down", "shfl_xor", "ballot", "any", "all"}
    assert any(isinstance(s, SyncWarp) for fn in module.functions for s in walk(fn.body))
    assert parse(str(module)) == module
    text = str(module)
    bad = text.replace("i32 = subgroup_lane_id", "u32 = subgroup_lane_id", 1)
    with pytest.raises(CompileError, match="yields i32"):
        verify(parse(bad))


def test_subgroup_ops_are_kernel_only_and_shuffle_numbers() -> None:
    @rk.func
    def helper(v: i32) -> i32:
        return rk.shfl(v, 0)

    @rk.kernel
    def k(o: Array[i32]):
        o[0] = helper(o[0])

    with pytest.raises(CompileError, match=r"rk.shfl\(\) is only available in kernels"):
        k.ir

    @rk.kernel
    def k2(o: Array[i32], b: Array[bool]):
        o[0] = rk.shfl(b[0], 1)

    with pytest.raises(CompileError, match="shuffles numbers, not bool"):
        k2.ir


@pytest.mark.skipif(find_ptxas() is None, reason="ptxas not installed")
def test_ptx_uses_sync_warp_instructions() -> None:
    for kernel in (lanes, warp_reduce, votes):
        check_ptx(kernel.compile("ptx"))
    ptx = lanes.compile("ptx")
    for instruction in ("shfl.sync.idx.b32", "shfl.sync.up.b32", "shfl.sync.down.b32",
                        "shfl.sync.bfly.b32", "vote.sync.ballot.b32", "vote.sync.any.pred",
                        "vote.sync.all.pred", "bar.warp.sync", "%laneid"):
        assert instruction in ptx, instruction


@rk.kernel
def wide(x: Array[rk.f64], y: Array[rk.i64]):
    i = rk.global_id(0)
    x[i] = rk.shfl_down(x[i], 1)
    y[i] = rk.shfl_xor(y[i], 1)


@pytest.mark.skipif(find_ptxas() is None, reason="ptxas not installed")
def test_ptx_shuffles_64_bit_values_in_halves() -> None:
    ptx = wide.compile("ptx")
    check_ptx(ptx)
    assert ptx.count("shfl.sync.down.b32") == 2 and ptx.count("shfl.sync.bfly.b32") == 2


def test_cpu_subgroups_have_one_lane_so_64_bit_shuffles_keep_the_value() -> None:
    x = np.arange(8, dtype=np.float64) + 0.5
    y = (np.arange(8, dtype=np.int64) << 40) - 3
    gx, gy = x.copy(), y.copy()
    wide.launch(grid=1, block=8, args=(gx, gy), backend="cpu")
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)


def test_wgsl_is_accepted_by_naga_with_the_subgroup_feature() -> None:
    try:
        device = get_device()
    except WgpuUnavailable as exc:
        pytest.skip(f"no wgpu device to run naga: {exc}")
    if "subgroup" not in device.features:
        pytest.skip("this wgpu adapter has no subgroup feature")
    for kernel in (lanes, warp_reduce, votes):
        text = kernel.compile("wgsl")
        check_wgsl(text)
    assert "subgroupShuffleXor" in warp_reduce.compile("wgsl")


def test_wgsl_without_the_subgroup_feature_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Adapter:
        info = {"device": "no-subgroups", "backend_type": "Test"}

    class Device:
        features: frozenset[str] = frozenset()

        def create_shader_module(self, **_: object) -> None:
            raise AssertionError("the feature check must come first")

    fake = Device()
    monkeypatch.setattr(naga, "_device", fake)
    monkeypatch.setattr(naga, "_adapter", Adapter())
    with pytest.raises(CompileError, match=r"lacks the feature\(s\) 'subgroup', 'subgroup-barrier'") as info:
        naga.create_shader_module(fake, lanes.compile("wgsl"), "<wgsl:lanes>")
    assert "no-subgroups" in str(info.value)
    assert naga.missing_subgroup_features(votes.compile("wgsl")) == []  # votes need no subgroups


def test_msl_is_accepted_by_clang() -> None:
    try:
        find_clang()
    except CompileError as exc:
        pytest.skip(str(exc))
    for kernel in (lanes, warp_reduce, votes):
        check_msl(kernel.compile("msl"))
    text = lanes.compile("msl")
    assert "[[thread_index_in_simdgroup]]" in text and "simd_shuffle_xor" in text

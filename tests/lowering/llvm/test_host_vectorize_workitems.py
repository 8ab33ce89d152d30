"""Kernels with barriers vectorize across work-items on the host, and stay right at odd sizes.

The work-item loop interchange (``ringkernel.ringir.passes.workitem_interchange``)
makes the x work-item loop innermost so LLVM vectorizes it: the optimized
host IR of a tiled matmul must hold vector float arithmetic.  The results
must equal numpy for block sizes that are not multiples of any vector width,
partial tiles and grids that do not divide the data.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.compiler import compile_module
from ringkernel.runtime.cpu import CpuBackend

TILE = 16
ODD = 7  # a tile that no vector width divides
RADIUS = 2


@rk.kernel
def tiled_matmul(a: Array[f32], b: Array[f32], c: Array[f32], n: i32):
    ta = rk.shared_array(f32, TILE * TILE)
    tb = rk.shared_array(f32, TILE * TILE)
    tx = rk.thread_id(0)
    ty = rk.thread_id(1)
    col = rk.block_id(0) * TILE + tx
    row = rk.block_id(1) * TILE + ty
    acc = f32(0.0)
    for t in range(0, n, TILE):
        ta[ty * TILE + tx] = a[row * n + t + tx]
        tb[ty * TILE + tx] = b[(t + ty) * n + col]
        rk.barrier()
        for k in range(TILE):
            acc += ta[ty * TILE + k] * tb[k * TILE + tx]
        rk.barrier()
    c[row * n + col] = acc


@rk.kernel
def guarded_matmul(a: Array[f32], b: Array[f32], c: Array[f32], n: i32):
    """Any ``n``: partial tiles load zeros; the tile is ``block_dim`` (at most ODD)."""
    ta = rk.shared_array(f32, ODD * ODD)
    tb = rk.shared_array(f32, ODD * ODD)
    tile = rk.block_dim(0)
    tx = rk.thread_id(0)
    ty = rk.thread_id(1)
    col = rk.block_id(0) * tile + tx
    row = rk.block_id(1) * tile + ty
    acc = f32(0.0)
    for t in range(0, n, tile):
        va = f32(0.0)
        if row < n and t + tx < n:
            va = a[row * n + t + tx]
        ta[ty * tile + tx] = va
        vb = f32(0.0)
        if t + ty < n and col < n:
            vb = b[(t + ty) * n + col]
        tb[ty * tile + tx] = vb
        rk.barrier()
        for k in range(tile):
            acc += ta[ty * tile + k] * tb[k * tile + tx]
        rk.barrier()
    if row < n and col < n:
        c[row * n + col] = acc


@rk.kernel
def block_sums(x: Array[f32], sums: Array[f32], n: i32):
    """One partial sum per block: grid-stride loads, then a tree over any block size."""
    buf = rk.shared_array(f32, 128)
    t = rk.thread_id(0)
    acc = f32(0.0)
    for i in range(rk.global_id(0), n, rk.grid_dim(0) * rk.block_dim(0)):
        acc += x[i]
    buf[t] = acc
    rk.barrier()
    width = rk.block_dim(0)
    while width > 1:
        half = (width + 1) // 2
        if t + half < width:
            buf[t] += buf[t + half]
        rk.barrier()
        width = half
    if t == 0:
        sums[rk.block_id(0)] = buf[0]


@rk.kernel
def stencil(x: Array[f32], w: Array[f32], out: Array[f32], n: i32):
    """A 1-D stencil over a shared tile with halos; the tap loop is uniform."""
    tile = rk.shared_array(f32, 64 + 2 * RADIUS)
    t = rk.thread_id(0)
    g = rk.global_id(0)
    size = rk.block_dim(0)
    for j in range(t, size + 2 * RADIUS, size):
        src = rk.block_id(0) * size + j - RADIUS
        v = f32(0.0)
        if src >= 0 and src < n:
            v = x[src]
        tile[j] = v
    rk.barrier()
    acc = f32(0.0)
    for r in range(2 * RADIUS + 1):
        acc += tile[t + r] * w[r]
    if g < n:
        out[g] = acc


def _host_text(kernel: rk.Kernel) -> str:
    name = kernel.ir.kernels[-1].name
    return compile_module(kernel.ir, "host", **CpuBackend().kernel_options(name, False))


def test_tiled_matmul_inner_product_is_vector_code() -> None:
    text = _host_text(tiled_matmul)
    assert CpuBackend().barrier_strategy(tiled_matmul.ir, "tiled_matmul")[0] == "loops"
    assert re.search(r"(fmul|fadd|fma)[^\n]*<(4|8|16) x float>|fma\.v(4|8|16)f32", text), (
        "no vector float arithmetic in the tiled matmul"
    )


def test_block_reduction_loads_are_vector_code() -> None:
    text = _host_text(block_sums)
    assert re.search(r"load <(4|8|16) x float>|masked\.load\.v(4|8|16)f32", text)


@pytest.mark.parametrize("n", [16, 48])
def test_tiled_matmul_matches_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
    c = np.zeros((n, n), np.float32)
    tiled_matmul.launch((n // TILE, n // TILE), (TILE, TILE), (a.ravel(), b.ravel(), c.ravel(), n),
                        backend="cpu")
    np.testing.assert_allclose(c, a @ b, rtol=1e-4)


@pytest.mark.parametrize("n, tile", [(37, ODD), (5, 3), (20, 5)])
def test_guarded_matmul_with_partial_tiles_matches_numpy(n: int, tile: int) -> None:
    rng = np.random.default_rng(n)
    a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
    c = np.zeros((n, n), np.float32)
    blocks = -(-n // tile)
    guarded_matmul.launch((blocks, blocks), (tile, tile), (a.ravel(), b.ravel(), c.ravel(), n),
                          backend="cpu")
    np.testing.assert_allclose(c, a @ b, rtol=1e-4)


@pytest.mark.parametrize("n, grid, block", [(1000, 3, 100), (17, 2, 5), (4096, 4, 128), (3, 2, 1)])
def test_block_sums_with_odd_blocks_match_numpy(n: int, grid: int, block: int) -> None:
    x = np.random.default_rng(n).random(n, dtype=np.float32)
    sums = np.zeros(grid, np.float32)
    block_sums.launch(grid, block, (x, sums, n), backend="cpu")
    expected = [sum(x[i] for t in range(block) for i in range(g * block + t, n, grid * block))
                for g in range(grid)]
    np.testing.assert_allclose(sums, np.array(expected, np.float32), rtol=1e-4)


@pytest.mark.parametrize("n, block", [(100, 13), (64, 64), (5, 3)])
def test_stencil_with_halos_matches_numpy(n: int, block: int) -> None:
    rng = np.random.default_rng(block)
    x = rng.random(n, dtype=np.float32)
    w = rng.random(2 * RADIUS + 1, dtype=np.float32)
    out = np.zeros(n, np.float32)
    stencil.launch(-(-n // block), block, (x, w, out, n), backend="cpu")
    padded = np.concatenate([np.zeros(RADIUS, np.float32), x, np.zeros(RADIUS, np.float32)])
    expected = np.array([padded[i:i + 2 * RADIUS + 1] @ w for i in range(n)], np.float32)
    np.testing.assert_allclose(out, expected, rtol=1e-5)

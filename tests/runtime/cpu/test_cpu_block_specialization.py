"""Work-item-loop kernels are compiled per launch block shape on the cpu (constant trip counts).

The tiled matmul's 16 x 16 work-item loops read their trip counts from the
launch's dims, so LLVM could neither unroll nor fully vectorize them; with the
block shape known at compile time (cached per shape) the bench's tiled matmul
512 went from ~80 ms to ~28 ms here.  Each shape must get its own build.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.lowering.llvm.host import lower_module_to_host
from ringkernel.runtime import get_backend


@rk.kernel
def block_sums(x: Array[f32], out: Array[f32]):
    buf = rk.shared_array(f32, 256)
    t = rk.thread_id(0)
    buf[t] = x[rk.global_id(0)]
    rk.barrier()
    step = rk.block_dim(0) // 2
    while step > 0:
        if t < step:
            buf[t] += buf[t + step]
        rk.barrier()
        step //= 2
    if t == 0:
        out[rk.block_id(0)] = buf[0]


@rk.kernel
def tile_transpose(src: Array[f32], dst: Array[f32], n: i32):
    tile = rk.shared_array(f32, 256)
    tx, ty = rk.thread_id(0), rk.thread_id(1)
    bw, bh = rk.block_dim(0), rk.block_dim(1)
    x, y = rk.block_id(0) * bw + tx, rk.block_id(1) * bh + ty
    tile[ty * bw + tx] = src[y * n + x]
    rk.barrier()
    dst[x * n + y] = tile[ty * bw + tx]


@rk.kernel
def plain_add(x: Array[f32]):
    x[rk.global_id(0)] += 1.0


def test_a_work_item_loop_kernel_is_built_for_its_block_shape() -> None:
    cpu = get_backend("cpu")
    x = np.zeros(64, np.float32)
    options = cpu.compile_options(block_sums.ir, "block_sums", (2, 1, 1), (32, 1, 1), [x, x])
    assert options["block"] == (32, 1, 1)
    plain = cpu.compile_options(plain_add.ir, "plain_add", (2, 1, 1), (32, 1, 1), [x])
    assert "block" not in plain  # no work-item loops: one build serves every block shape


def test_the_block_shape_becomes_a_constant_in_the_host_text() -> None:
    generic = lower_module_to_host(block_sums.ir, kernel="block_sums")
    special = lower_module_to_host(block_sums.ir, kernel="block_sums", block=(64, 1, 1))
    assert special != generic
    plain = lower_module_to_host(plain_add.ir, kernel="plain_add")
    assert lower_module_to_host(plain_add.ir, kernel="plain_add", block=(64, 1, 1)) == plain


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_each_block_shape_gets_its_own_build(threads) -> None:
    cpu = type(get_backend("cpu"))(threads=threads, inline_below=0)
    rng = np.random.default_rng(3)
    x = rng.random(1024, dtype=np.float32)
    for block in (256, 32, 128, 32, 64):  # back and forth: no stale specialization
        out = np.zeros(1024 // block, np.float32)
        block_sums.launch(1024 // block, block, (x, out), backend=cpu)
        np.testing.assert_allclose(out, x.reshape(-1, block).sum(axis=1), rtol=1e-5)


@pytest.mark.parametrize("block", [(16, 16), (8, 4), (4, 8), (16, 8)])
def test_two_d_tiles_of_every_shape_stay_correct(block) -> None:
    n = 32
    src = np.arange(n * n, dtype=np.float32)
    dst = np.zeros_like(src)
    tile_transpose.launch((n // block[0], n // block[1]), block, (src, dst, n), backend="cpu")
    np.testing.assert_array_equal(dst.reshape(n, n), src.reshape(n, n).T)


def test_specializations_per_kernel_are_capped_and_later_shapes_run_generic() -> None:
    from ringkernel.runtime.cpu import MAX_BLOCK_SHAPES

    cpu = type(get_backend("cpu"))(threads=2, inline_below=0)
    n = 32
    src = np.arange(n * n, dtype=np.float32)
    shapes = [(16, 16), (8, 4), (4, 8), (16, 8), (8, 16), (4, 4), (2, 2), (16, 2), (2, 16), (8, 8),
              (4, 16), (16, 4)]
    assert len(shapes) > MAX_BLOCK_SHAPES
    for block in [*shapes, *shapes[:3]]:  # and back to specialized ones
        dst = np.zeros_like(src)
        tile_transpose.launch((n // block[0], n // block[1]), block, (src, dst, n), backend=cpu)
        np.testing.assert_array_equal(dst.reshape(n, n), src.reshape(n, n).T)
    built = [key for key in cpu._options if key[0] == "tile_transpose"]
    assert len([key for key in built if key[2] is not None]) == MAX_BLOCK_SHAPES
    assert any(key[2] is None for key in built)  # the generic build took the rest

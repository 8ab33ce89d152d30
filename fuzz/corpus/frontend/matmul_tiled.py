import math

import numpy as np

import ringkernel as rk
from ringkernel import Array, f32, i32, u32

BLOCK = 64
THRESHOLD = 0.5
N = 1000
RED = 64
BINS = 16
TILE = 8
HEAT_STEPS = 5
SORT_N = 64
POLY = np.array([0.5, -1.0, 0.25, 2.0], dtype=np.float32)
WEIGHTS = np.array([[1, 2], [3, 4]], dtype=np.int32)


@rk.func
def clamp01(v: f32) -> f32:
    if v < 0.0:
        return 0.0
    return min(v, 1.0)


@rk.func
def smooth(v: f32, k: f32) -> f32:
    c = clamp01(v * k)
    return c * c * (3.0 - 2.0 * c)


@rk.func
def add_into(out: Array[f32], i: i32, v: f32):
    out[i] = out[i] + v


@rk.func
def compare_swap(s: Array[f32], i: i32, j: i32, ascending: bool):
    """The bitonic comparator, over whatever memory ``s`` lives in."""
    a, b = s[i], s[j]
    if (a > b and ascending) or (a < b and not ascending):
        s[i] = b
        s[j] = a


@rk.kernel
def matmul_tiled(a: Array[f32, 2], b: Array[f32, 2], c: Array[f32, 2]):
    """C = A @ B through two TILE x TILE shared tiles (rows padded against bank conflicts)."""
    ta = rk.shared_array(f32, (TILE, TILE + 1))
    tb = rk.shared_array(f32, (TILE, TILE + 1))
    tx, ty = rk.thread_id(0), rk.thread_id(1)
    row = rk.block_id(1) * TILE + ty
    col = rk.block_id(0) * TILE + tx
    acc = f32(0.0)
    for t in range(a.shape[1] // TILE):
        ta[ty, tx] = a[row, t * TILE + tx]
        tb[ty, tx] = b[t * TILE + ty, col]
        rk.barrier()
        for k in range(TILE):
            acc += ta[ty, k] * tb[k, tx]
        rk.barrier()
    c[row, col] = acc

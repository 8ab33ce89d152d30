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
def heat_swap(u: Array[f32, 2], v: Array[f32, 2], out: Array[f32, 2], steps: i32):
    """Explicit heat steps in one block: read u, write v, then swap the two buffers."""
    r, c = rk.thread_id(1), rk.thread_id(0)
    rows, cols = u.shape[0], u.shape[1]
    v[r, c] = u[r, c]
    rk.barrier()
    for _ in range(steps):
        if r > 0 and c > 0 and r < rows - 1 and c < cols - 1:
            lap = u[r - 1, c] + u[r + 1, c] + u[r, c - 1] + u[r, c + 1] - 4.0 * u[r, c]
            v[r, c] = u[r, c] + 0.2 * lap
        rk.barrier()
        u, v = v, u
    out[r, c] = u[r, c]

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
def stencil_2d(src: Array[f32, 2], out: Array[f32, 2]):
    """A 5-point Laplacian; edge cells are copied."""
    r, c = rk.global_id(1), rk.global_id(0)
    rows, cols = src.shape[0], src.shape[1]
    if r < rows and c < cols:
        if r == 0 or c == 0 or r == rows - 1 or c == cols - 1:
            out[r, c] = src[r, c]
        else:
            around = src[r - 1, c] + src[r + 1, c] + src[r, c - 1] + src[r, c + 1]
            out[r, c] = around - 4.0 * src[r, c]

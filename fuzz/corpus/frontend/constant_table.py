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
def constant_table(x: Array[f32], out: Array[f32], picked: Array[i32], n: i32):
    """Horner's rule over a module-level coefficient table, and a 2-D integer table."""
    i = rk.global_id(0)
    if i < n:
        acc = f32(0.0)
        for k in range(len(POLY) - 1, -1, -1):
            acc = acc * x[i] + POLY[k]
        out[i] = acc
        picked[i] = WEIGHTS[(i % 4) // 2, i % 2]

import math

import numpy as np

import ringkernel as rk
from ringkernel import Array, f32, i32, u32

BLOCK = 64
THRESHOLD = 0.5
N = 1000
RED = 64
BINS = 16


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


@rk.kernel
def thread_indices(out: Array[i32]):
    gx = rk.global_id(0)
    gy = rk.global_id(1)
    base = (gy * rk.grid_dim(0) * rk.block_dim(0) + gx) * 8
    out[base] = rk.thread_id(0)
    out[base + 1] = rk.thread_id(1)
    out[base + 2] = rk.block_id(0)
    out[base + 3] = rk.block_id(1)
    out[base + 4] = rk.block_dim(0)
    out[base + 5] = rk.block_dim(1)
    out[base + 6] = rk.grid_dim(0)
    out[base + 7] = rk.grid_dim(1)

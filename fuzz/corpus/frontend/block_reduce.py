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
def block_reduce(x: Array[f32], sums: Array[f32]):
    buf = rk.shared_array(f32, RED)
    t = rk.thread_id(0)
    buf[t] = x[rk.global_id(0)]
    rk.barrier()
    stride = RED // 2
    while stride > 0:
        if t < stride:
            buf[t] += buf[t + stride]
        rk.barrier()
        stride //= 2
    if t == 0:
        sums[rk.block_id(0)] = buf[0]

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
def control_flow(x: Array[i32], out: Array[i32], n: i32):
    i = rk.global_id(0)
    if i >= n:
        return
    v = x[i]
    count = 0
    k = 0
    while k < v:
        k += 1
        if k % 2 == 0:
            continue
        if count >= 20:
            break
        count += 1
    down = 0
    for j in range(v, 0, -3):
        down += j
    sign = 1 if v > 10 else -1
    both = 1 if (v > 5 and v < 40) or v == 0 else 0
    chain = 1 if 3 < v <= 30 else 0
    out[i] = count * 10000 + down * 10 + sign * 3 + both + chain * 7

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
def floor_division(
    x: Array[i32], y: Array[i32], fx: Array[f32], fy: Array[f32], out: Array[i32], fout: Array[f32], n: i32
):
    i = rk.global_id(0)
    if i < n:
        a = x[i]
        b = y[i]
        out[4 * i] = a // b
        out[4 * i + 1] = a % b
        q = i32(f32(a) / f32(b))
        out[4 * i + 2] = q
        out[4 * i + 3] = a - q * b
        fout[2 * i] = fx[i] // fy[i]
        fout[2 * i + 1] = fx[i] % fy[i]

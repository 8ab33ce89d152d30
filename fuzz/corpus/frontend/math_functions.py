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
def math_functions(x: Array[f32], out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i >= n:
        return
    v = x[i]
    o = i * 16
    out[o + 0] = math.sqrt(v + 2.0)
    out[o + 1] = math.exp(v)
    out[o + 2] = math.log(v + 2.0)
    out[o + 3] = math.sin(v)
    out[o + 4] = math.cos(v)
    out[o + 5] = math.tan(v)
    out[o + 6] = math.tanh(v)
    out[o + 7] = math.pow(v + 2.0, 1.5)
    out[o + 8] = math.floor(v * 4.0)
    out[o + 9] = math.ceil(v * 4.0)
    out[o + 10] = math.fabs(v)
    out[o + 11] = abs(v)
    out[o + 12] = rk.rsqrt(v + 2.0)
    out[o + 13] = rk.fma(v, 2.0, 1.0)
    out[o + 14] = min(v, 0.25)
    out[o + 15] = max(v, 0.25)

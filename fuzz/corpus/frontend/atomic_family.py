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
def atomic_family(v: Array[i32], acc: Array[i32], fsum: Array[f32], old: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        x = v[i]
        rk.atomic_add(acc, 0, x)
        rk.atomic_sub(acc, 1, x)
        rk.atomic_min(acc, 2, x)
        rk.atomic_max(acc, 3, x)
        rk.atomic_or(acc, 4, x & 0xFF)
        rk.atomic_and(acc, 5, x)
        rk.atomic_xor(acc, 6, x)
        # a CAS loop that increments acc[7]: exercises atomic_cas returning the old value
        done = False
        while not done:
            seen = acc[7]
            done = rk.atomic_cas(acc, 7, seen, seen + 1) == seen
        rk.atomic_add(fsum, 0, 0.5)
        old[i] = rk.atomic_exchange(old, i, x)

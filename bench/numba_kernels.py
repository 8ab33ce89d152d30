"""The numba equivalents of the cpu-vs-numba problems: what a Python user would write instead.

Each problem gets a ``@njit(parallel=True)`` version (``prange``) and a serial
``@njit`` one, both compiled here (imported only when numba is installed).
The histogram has no parallel version: ``bins[v] += 1`` under ``prange``
races, and the issue's goal for it is the serial loop.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=False)
def saxpy_par(a, x, y):  # type: ignore[no-untyped-def]
    for i in prange(x.size):
        y[i] = a * x[i] + y[i]


@njit(cache=False)
def saxpy_ser(a, x, y):  # type: ignore[no-untyped-def]
    for i in range(x.size):
        y[i] = a * x[i] + y[i]


@njit(parallel=True, cache=False)
def sqrt_exp_par(x, out):  # type: ignore[no-untyped-def]
    for i in prange(x.size):
        out[i] = math.sqrt(x[i]) + math.exp(x[i])


@njit(cache=False)
def sqrt_exp_ser(x, out):  # type: ignore[no-untyped-def]
    for i in range(x.size):
        out[i] = math.sqrt(x[i]) + math.exp(x[i])


@njit(cache=False)
def histogram_ser(values, bins):  # type: ignore[no-untyped-def]
    for i in range(values.size):
        bins[values[i]] += 1


@njit(parallel=True, cache=False)
def sum_par(x):  # type: ignore[no-untyped-def]
    total = np.float32(0.0)
    for i in prange(x.size):
        total += x[i]
    return total


@njit(cache=False)
def sum_ser(x):  # type: ignore[no-untyped-def]
    total = np.float32(0.0)
    for i in range(x.size):
        total += x[i]
    return total


@njit(parallel=True, cache=False)
def transpose_par(src, dst):  # type: ignore[no-untyped-def]
    height, width = src.shape
    for r in prange(height):
        for c in range(width):
            dst[c, r] = src[r, c]


@njit(cache=False)
def transpose_ser(src, dst):  # type: ignore[no-untyped-def]
    height, width = src.shape
    for r in range(height):
        for c in range(width):
            dst[c, r] = src[r, c]


@njit(parallel=True, cache=False)
def matmul_par(a, b, c):  # type: ignore[no-untyped-def]
    n = a.shape[0]
    for i in prange(n):
        for j in range(n):
            c[i, j] = 0.0
        for k in range(n):
            aik = a[i, k]
            for j in range(n):
                c[i, j] += aik * b[k, j]


@njit(cache=False)
def matmul_ser(a, b, c):  # type: ignore[no-untyped-def]
    n = a.shape[0]
    for i in range(n):
        for j in range(n):
            c[i, j] = 0.0
        for k in range(n):
            aik = a[i, k]
            for j in range(n):
                c[i, j] += aik * b[k, j]


@njit(cache=False)
def trivial(x):  # type: ignore[no-untyped-def]
    x[0] = x[0] + 1.0

"""Every test kernel, launched on every available backend and compared with numpy.

The corpus (tests/kernel_corpus.py) is shared with the emitters' tests; the
kernels below add the classic GPU patterns end to end: a shared-memory tree
reduction with barriers inside a loop, a prefix scan, an atomic histogram in
shared memory, a 2-D grid, device functions taking arrays, Python floor
division on negative numbers, and math functions.
"""

from __future__ import annotations

import math

import kernel_corpus
import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32


@pytest.mark.parametrize("case", kernel_corpus.CASES, ids=lambda c: c.name)
def test_corpus_kernel(case: kernel_corpus.KernelCase, backend: str) -> None:
    kernel_corpus.run_case(case, backend)


TB = 128


@rk.kernel
def tree_sum(x: Array[f32], out: Array[f32], n: i32):
    buf = rk.shared_array(f32, TB)
    t = rk.thread_id(0)
    i = rk.global_id(0)
    buf[t] = x[i] if i < n else 0.0
    rk.barrier()
    for level in range(7):
        step = 1 << level
        if t % (2 * step) == 0:
            buf[t] += buf[t + step]
        rk.barrier()
    if t == 0:
        out[rk.block_id(0)] = buf[0]


def test_tree_reduction_with_barriers_in_a_loop(backend: str) -> None:
    n = 1000
    x = np.random.default_rng(1).uniform(-1, 1, n).astype(np.float32)
    blocks = (n + TB - 1) // TB
    out = np.zeros(blocks, np.float32)
    tree_sum.launch(grid=blocks, block=TB, args=(x, out, n), backend=backend)
    padded = np.zeros(blocks * TB, np.float32)
    padded[:n] = x
    np.testing.assert_allclose(out, padded.reshape(blocks, TB).sum(axis=1), rtol=1e-5, atol=1e-5)


SB = 64


@rk.kernel
def exclusive_scan(x: Array[i32], out: Array[i32]):
    a = rk.shared_array(i32, SB)
    b = rk.shared_array(i32, SB)
    t = rk.thread_id(0)
    g = rk.global_id(0)
    a[t] = x[g]
    rk.barrier()
    offset = 1
    src_is_a = True
    while offset < SB:
        if src_is_a:
            b[t] = a[t] + a[t - offset] if t >= offset else a[t]
        else:
            a[t] = b[t] + b[t - offset] if t >= offset else b[t]
        rk.barrier()
        src_is_a = not src_is_a
        offset *= 2
    inclusive = a[t] if src_is_a else b[t]
    out[g] = inclusive - x[g]


def test_prefix_scan_double_buffered(backend: str) -> None:
    x = np.random.default_rng(2).integers(-50, 50, 3 * SB).astype(np.int32)
    out = np.zeros_like(x)
    exclusive_scan.launch(grid=3, block=SB, args=(x, out), backend=backend)
    rows = x.reshape(3, SB)
    want = (np.cumsum(rows, axis=1) - rows).reshape(-1)
    np.testing.assert_array_equal(out, want)


NBINS = 32


@rk.kernel
def shared_histogram(values: Array[i32], bins: Array[i32], n: i32):
    local = rk.shared_array(i32, NBINS)
    t = rk.thread_id(0)
    if t < NBINS:
        local[t] = 0
    rk.barrier()
    i = rk.global_id(0)
    stride = rk.grid_dim(0) * rk.block_dim(0)
    while i < n:
        rk.atomic_add(local, values[i] % NBINS, 1)
        i += stride
    rk.barrier()
    if t < NBINS:
        rk.atomic_add(bins, t, local[t])


def test_atomic_histogram_through_shared_memory(backend: str) -> None:
    n = 5000
    values = np.random.default_rng(3).integers(-10_000, 10_000, n).astype(np.int32)
    bins = np.zeros(NBINS, np.int32)
    shared_histogram.launch(grid=4, block=64, args=(values, bins, n), backend=backend)
    np.testing.assert_array_equal(bins, np.bincount(values % NBINS, minlength=NBINS))


@rk.kernel
def blur_2d(src: Array[f32], dst: Array[f32], w: i32, h: i32):
    x = rk.global_id(0)
    y = rk.global_id(1)
    if x >= w or y >= h:
        return
    total = 0.0
    for dy in range(-1, 2):
        for dx in range(-1, 2):
            xx = min(max(x + dx, 0), w - 1)
            yy = min(max(y + dy, 0), h - 1)
            total += src[yy * w + xx]
    dst[y * w + x] = total / 9.0


def test_two_dimensional_grid(backend: str) -> None:
    w, h = 37, 21
    src = np.random.default_rng(4).uniform(0, 1, w * h).astype(np.float32)
    dst = np.zeros_like(src)
    blur_2d.launch(grid=((w + 7) // 8, (h + 7) // 8), block=(8, 8), args=(src, dst, w, h),
                   backend=backend)
    img = np.pad(src.reshape(h, w), 1, mode="edge")
    want = sum(img[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    np.testing.assert_allclose(dst.reshape(h, w), want / 9.0, rtol=1e-5, atol=1e-6)


@rk.func
def dot3(a: Array[f32], b: Array[f32], base: i32) -> f32:
    return a[base] * b[base] + a[base + 1] * b[base + 1] + a[base + 2] * b[base + 2]


@rk.func
def store_scaled(out: Array[f32], i: i32, v: f32, k: f32):
    out[i] = v * k


@rk.kernel
def dots(a: Array[f32], b: Array[f32], out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        store_scaled(out, i, dot3(a, b, 3 * i), 2.0)


def test_device_functions_with_array_arguments(backend: str) -> None:
    n = 50
    rng = np.random.default_rng(5)
    a = rng.uniform(-1, 1, 3 * n).astype(np.float32)
    b = rng.uniform(-1, 1, 3 * n).astype(np.float32)
    out = np.zeros(n, np.float32)
    dots.launch(grid=1, block=64, args=(a, b, out, n), backend=backend)
    np.testing.assert_allclose(out, 2 * (a * b).reshape(n, 3).sum(axis=1), rtol=1e-5, atol=1e-6)


@rk.kernel
def floor_ops(a: Array[i32], b: Array[i32], fa: Array[f32], fb: Array[f32],
              q: Array[i32], r: Array[i32], fq: Array[f32], fr: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        q[i] = a[i] // b[i]
        r[i] = a[i] % b[i]
        fq[i] = fa[i] // fb[i]
        fr[i] = fa[i] % fb[i]


def test_floor_division_and_modulo_with_negatives(backend: str) -> None:
    a = np.array([7, -7, 7, -7, 0, 1, -1, 13, -13, 6], np.int32)
    b = np.array([2, 2, -2, -2, 3, -5, 5, 4, 4, -3], np.int32)
    fa = np.array([7.5, -7.5, 7.5, -7.5, 0.0, 1.25, -1.25, 5.0, -5.0, 6.0], np.float32)
    fb = np.array([2.0, 2.0, -2.0, -2.0, 3.0, -0.5, 0.5, 2.5, 2.5, -4.0], np.float32)
    n = len(a)
    q, r = np.zeros(n, np.int32), np.zeros(n, np.int32)
    fq, fr = np.zeros(n, np.float32), np.zeros(n, np.float32)
    floor_ops.launch(grid=1, block=32, args=(a, b, fa, fb, q, r, fq, fr, n), backend=backend)
    np.testing.assert_array_equal(q, a // b)
    np.testing.assert_array_equal(r, a % b)
    np.testing.assert_allclose(fq, fa // fb)
    np.testing.assert_allclose(fr, fa % fb, atol=1e-6)


@rk.kernel
def math_zoo(x: Array[f32], out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        v = x[i]
        base = 12 * i
        out[base] = math.sqrt(v)
        out[base + 1] = math.exp(-v)
        out[base + 2] = math.log(v)
        out[base + 3] = math.sin(v)
        out[base + 4] = math.cos(v)
        out[base + 5] = math.tan(v * 0.5)
        out[base + 6] = math.tanh(v - 1.0)
        out[base + 7] = math.pow(v, 1.5)
        out[base + 8] = math.floor(v * 3.0) + math.ceil(-v)
        out[base + 9] = math.fabs(1.0 - v)
        out[base + 10] = rk.rsqrt(v)
        out[base + 11] = rk.fma(v, 2.0, -1.0)


def test_math_functions(backend: str) -> None:
    n = 64
    x = np.random.default_rng(6).uniform(0.1, 2.5, n).astype(np.float32)
    out = np.zeros(12 * n, np.float32)
    math_zoo.launch(grid=1, block=64, args=(x, out, n), backend=backend)
    xd = x.astype(np.float64)
    want = np.stack([
        np.sqrt(xd), np.exp(-xd), np.log(xd), np.sin(xd), np.cos(xd), np.tan(xd * 0.5),
        np.tanh(xd - 1), xd ** 1.5, np.floor(x * np.float32(3)) + np.ceil(-xd),
        np.abs(1 - xd), 1 / np.sqrt(xd), xd * 2 - 1,
    ], axis=1).reshape(-1)
    np.testing.assert_allclose(out, want, rtol=2e-5, atol=2e-6)

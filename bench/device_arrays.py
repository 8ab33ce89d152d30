"""Suite: a loop of launches on device arrays against the same loop on numpy arguments.

100 saxpy launches on 4M float32 elements (``--quick``: 1M), timed as one
operation that ends with ``rk.synchronize()``.  The device arrays are made
once, outside the timed loop; with numpy arguments every launch copies both
arrays in and ``y`` back, as launches always have.  The ratio is the price of
those copies (and, on wgpu, of one submission and wait per launch).

A second row is the fixed cost of one launch on cpu device arrays (saxpy on
one element) against calling the same function compiled by numba's
``@njit`` (its dispatch: type the arguments, find the compiled version,
call it); the goal is to be within 10 us of it.  Without numba the row
says so (``pip install numba``) instead of a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

import ringkernel as rk
from bench.report import Row, format_rate
from bench.settings import Settings
from bench.timing import measure, measure_pair
from ringkernel import Array, f32, i32

LAUNCHES = 100


@rk.kernel
def saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


def _loop(backend: str, x: object, y: object, n: int) -> None:
    grid = (n + 255) // 256
    for _ in range(LAUNCHES):
        saxpy[grid, 256, backend](np.float32(1e-3), x, y, n)
    rk.synchronize(backend)


def _rows(backend: str, n: int, settings: Settings) -> list[Row]:
    x = np.random.default_rng(0).random(n, dtype=np.float32)
    y = np.zeros(n, np.float32)
    dx, dy = rk.to_device(x, backend), rk.to_device(y, backend)
    # the two loops compute the same thing
    _loop(backend, dx, dy, n)
    _loop(backend, x, y, n)
    np.testing.assert_allclose(dy.numpy(), y, rtol=1e-5)
    ours, baseline = measure_pair(
        lambda: _loop(backend, dx, dy, n), lambda: _loop(backend, x, y, n), min(settings.repeats, 3)
    )
    name = f"{LAUNCHES} saxpy launches, {n >> 20}M f32, device arrays"
    rate = format_rate(LAUNCHES * 3 * 4 * n, ours.median, "B")
    suite = f"device arrays [{backend}]"
    return [Row(suite, name, ours.median, "numpy arguments", baseline.median, rate=rate)]


def _numba_saxpy() -> tuple[Callable[..., None] | None, str]:
    """saxpy compiled by numba's ``@njit``, or None and why not."""
    try:
        import numba
    except ImportError as exc:
        return None, f"numba is not installed ({exc}): pip install numba"

    @numba.njit(cache=False)
    def saxpy_njit(a, x, y, n):  # type: ignore[no-untyped-def]
        for i in range(n):
            y[i] = a * x[i] + y[i]

    return saxpy_njit, ""


def _overhead_row(settings: Settings) -> Row:
    x, y = np.ones(1, np.float32), np.zeros(1, np.float32)
    dx, dy = rk.to_device(x, "cpu"), rk.to_device(y, "cpu")
    a = np.float32(1e-3)
    launch = saxpy[1, 1, "cpu"]
    launch(a, dx, dy, 1)  # compiled and cached before timing
    suite, name = "device arrays [cpu]", "launch overhead, saxpy on 1 element, device arrays"
    njit, why_not = _numba_saxpy()
    if njit is None:
        ours = measure(lambda: launch(a, dx, dy, 1), settings.repeats, settings.min_time)
        return Row(suite, name, ours.median, "numba @njit call", math.nan, note=f"skipped: {why_not}")
    njit(a, x, y, 1)  # compiled before timing
    ours, baseline = measure_pair(
        lambda: launch(a, dx, dy, 1), lambda: njit(a, x, y, 1), settings.repeats, settings.min_time
    )
    gap = (ours.median - baseline.median) * 1e6
    note = f"{gap:+.1f} us per launch against numba (goal: within 10 us)"
    return Row(suite, name, ours.median, "numba @njit call", baseline.median, note=note)


def run(settings: Settings) -> list[Row]:
    n = (1 << 20) if settings.quick else (4 << 20)
    rows = []
    for backend in ("cpu", "wgpu"):
        if backend in rk.backends():
            rows += _rows(backend, n, settings)
    rows.append(_overhead_row(settings))
    return rows

"""Suite ``numba``: the cpu backend against numba on the same data, in the same process.

Every problem of :mod:`bench.kernels` (plus a tiled matmul) is timed against
``@njit(parallel=True)`` and against serial ``@njit``; launch overhead is a
trivial kernel against calling a trivial ``@njit`` function (numba's
dispatch).  Our launches are unchecked (``checked=False``): numba does not
bounds-check either.  numba is an optional bench dependency (``pip install
-e .[bench]``); without it the suite is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.kernels import (
    BINS,
    Problem,
    histogram_problem,
    matmul_problem,
    noop,
    reduce_problem,
    saxpy_problem,
    shared_histogram_problem,
    sqrt_exp_problem,
    transpose_problem,
)
from bench.report import Row, Skipped, format_rate
from bench.settings import Settings
from bench.timing import measure_pair

SUITE = "cpu vs numba"
_Op = Callable[[], object] | None


def run(settings: Settings) -> list[Row]:
    try:
        from bench import numba_kernels as nk
    except ImportError as exc:
        raise Skipped(f"numba is not installed ({exc}); pip install -e .[bench]") from None
    rows: list[Row] = []
    for problem, parallel, serial in _pairs(nk, settings.quick):
        problem.check("cpu")
        for label, op in (("@njit(parallel=True)", parallel), ("serial @njit", serial)):
            if op is None:
                continue
            op()  # compiles outside the timing
            ours, theirs = measure_pair(
                lambda p=problem: p.launch("cpu", checked=False), op, settings.repeats, settings.min_time
            )
            rate = format_rate(problem.amount, ours.median, problem.unit)
            rows.append(Row(SUITE, problem.name, ours.median, f"numba {label}", theirs.median, rate=rate))
    x = np.zeros(1, np.float32)
    nk.trivial(x)
    ours, theirs = measure_pair(
        lambda: noop.launch(1, 1, (x,), backend="cpu", checked=False),
        lambda: nk.trivial(x),
        settings.repeats,
        settings.min_time,
    )
    rows.append(Row(SUITE, "launch overhead, trivial kernel", ours.median, "numba dispatch", theirs.median))
    return rows


def _pairs(nk: Any, quick: bool) -> list[tuple[Problem, _Op, _Op]]:
    """(problem, numba parallel op, numba serial op) on the problem's own arrays."""
    out: list[tuple[Problem, _Op, _Op]] = []
    for n in [1 << 20] if quick else [1 << 20, 1 << 22]:
        p = saxpy_problem(n)
        a, x, y, _ = p.args
        out.append((
            p, lambda a=a, x=x, y=y: nk.saxpy_par(a, x, y), lambda a=a, x=x, y=y: nk.saxpy_ser(a, x, y)
        ))
    p = sqrt_exp_problem(1 << 20)
    x, o, _ = p.args
    out.append((p, lambda: nk.sqrt_exp_par(x, o), lambda: nk.sqrt_exp_ser(x, o)))
    p = histogram_problem(1 << 20)
    v = p.args[0]
    h = np.zeros(BINS, np.int32)
    out.append((p, None, lambda: nk.histogram_ser(v, h)))
    p = shared_histogram_problem(1 << 20)
    sv = p.args[0]
    out.append((p, None, lambda: nk.histogram_ser(sv, h)))
    p = reduce_problem(1 << 20)
    r = p.args[0]
    out.append((p, lambda: nk.sum_par(r), lambda: nk.sum_ser(r)))
    side = 1024 if quick else 2048
    p = transpose_problem(side, side)
    src, dst = p.args[0].reshape(side, side), np.zeros((side, side), np.float32)
    out.append((p, lambda: nk.transpose_par(src, dst), lambda: nk.transpose_ser(src, dst)))
    n = 256 if quick else 512
    p = matmul_problem(n)
    ma, mb = (arg.reshape(n, n) for arg in p.args[:2])
    mc = np.zeros((n, n), np.float32)
    out.append((p, lambda: nk.matmul_par(ma, mb, mc), lambda: nk.matmul_ser(ma, mb, mc)))
    return out


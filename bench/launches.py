"""Rows for one kernel problem: warm launches against a baseline, and the first (cold) launch."""

from __future__ import annotations

from collections.abc import Callable

import ringkernel as rk
from bench.caches import cold_start
from bench.kernels import Problem
from bench.report import Row, format_rate
from bench.settings import Settings
from bench.timing import measure, measure_pair


def problem_rows(
    suite: str,
    problem: Problem,
    backend: str,
    baseline_name: str,
    baseline_op: Callable[[], object],
    settings: Settings,
    first_launch: bool,
) -> list[Row]:
    """Checks ``problem`` on ``backend``, then times it warm (and cold if ``first_launch``)."""
    problem.check(backend)
    warm, baseline = measure_pair(
        lambda: problem.launch(backend), baseline_op, settings.repeats, settings.min_time
    )
    rate = format_rate(problem.amount, warm.median, problem.unit)
    rows = [Row(suite, problem.name, warm.median, baseline_name, baseline.median, rate=rate)]
    if first_launch:
        cold = first_launch_time(problem, backend, settings)
        name = f"{problem.kernel.__name__} first launch"
        rows.append(Row(suite, name, cold, f"warm launch, {backend}", warm.median, note="(cold caches)"))
    return rows


def first_launch_time(problem: Problem, backend: str, settings: Settings) -> float:
    """What a fresh process pays on its first launch: frontend, compile, load, then the run."""
    fresh: list[rk.Kernel] = []

    def setup() -> None:
        cold_start()
        fresh[:] = [rk.kernel(problem.kernel.py_func)]  # a new decorator object: no IR yet

    return measure(
        lambda: problem.launch(backend, fresh[0]), settings.cold_repeats, warmup=0, setup=setup
    ).median

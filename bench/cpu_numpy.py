"""Suite 1: kernels on the cpu backend against numpy on the same data, then bounds-check costs."""

from __future__ import annotations

from bench import bounds_checks, cpu_barriers
from bench.kernels import problems
from bench.launches import problem_rows
from bench.report import Row
from bench.settings import Settings

SUITE = "cpu vs numpy"


def run(settings: Settings) -> list[Row]:
    rows = []
    seen: set[str] = set()
    for problem in problems(settings.quick):
        first = problem.kernel.__name__ not in seen
        seen.add(problem.kernel.__name__)
        rows += problem_rows(SUITE, problem, "cpu", problem.numpy_name, problem.numpy_op, settings, first)
    return rows + bounds_checks.rows(settings) + cpu_barriers.rows(settings)

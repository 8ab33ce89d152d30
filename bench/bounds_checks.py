"""The cost of the cpu backend's bounds checks: checked launches against unchecked ones.

cpu launches are bounds-checked by default (``checked=None``); every row
times that default against ``checked=False`` on the same kernel and data,
interleaved in the same run.  The kernels: saxpy (two loads, one store),
transpose (strided 2-D indexing) and histogram (an atomic per element).
"""

from __future__ import annotations

from bench.kernels import Problem, histogram_problem, saxpy_problem, transpose_problem
from bench.report import Row
from bench.settings import Settings
from bench.timing import measure_pair

SUITE = "cpu bounds checks"
BASELINE = "checked=False, cpu"


def problems(quick: bool) -> list[Problem]:
    side = 1024 if quick else 2048
    return [saxpy_problem(1 << 20), transpose_problem(side, side), histogram_problem(1 << 20)]


def rows(settings: Settings) -> list[Row]:
    result = []
    for problem in problems(settings.quick):
        problem.check("cpu")
        checked, unchecked = measure_pair(
            lambda p=problem: p.launch("cpu", checked=True),
            lambda p=problem: p.launch("cpu", checked=False),
            settings.repeats,
            settings.min_time,
        )
        result.append(Row(SUITE, f"{problem.name}, checked", checked.median, BASELINE,
                          unchecked.median))
    return result

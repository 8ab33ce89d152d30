"""Suite 3: compile time per target for every kernel of tests/kernel_corpus.py.

Cold: every compile cache emptied and ``RINGKERNEL_CACHE_DIR`` on an empty
folder before each compile; disk cache hit: the in-memory cache emptied but
the disk entry present (a new process); memory cache hit: the same compile
again in the same process.  The
baseline is the frontend alone (Python source -> ast -> verified RingIR) for
the same kernels, so a ratio of 3 reads "three frontends' worth".
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import ringkernel as rk
from bench.caches import clear_memory_caches, cold_start
from bench.report import Row
from bench.settings import Settings
from bench.timing import measure
from ringkernel.compiler import TARGETS

SUITE = "compile"
_UNCACHED = {"rir"}  # the text form is printed from the IR, no cache involved
_TESTS = Path(__file__).resolve().parent.parent / "tests"


def corpus_kernels() -> list[rk.Kernel]:
    """The corpus kernels (importing ``kernel_corpus`` from tests/ like the tests do)."""
    if str(_TESTS) not in sys.path:
        sys.path.insert(0, str(_TESTS))
    import kernel_corpus

    return [case.kernel for case in kernel_corpus.CASES]


def run(settings: Settings) -> list[Row]:
    kernels = corpus_kernels()
    frontend = sum(measure(lambda k=k: rk.kernel(k.py_func).ir, settings.repeats).median for k in kernels)
    label = f"frontend ({len(kernels)} kernels)"
    rows = []
    for target in TARGETS:
        usable = [k for k in kernels if _compiles(k, target)]  # also imports the emitter, untimed
        note = "" if len(usable) == len(kernels) else f"{len(kernels) - len(usable)} kernels lack the target"
        cold = _total(usable, target, settings.cold_repeats, cold_start, warmup=0)
        per_kernel = f"{cold / len(usable) * 1e3:.3g} ms/kernel"
        if target in _UNCACHED:
            rows.append(
                Row(
                    SUITE,
                    f"{target}, {len(usable)} kernels (never cached)",
                    cold,
                    label,
                    frontend,
                    per_kernel,
                    note,
                )
            )
            continue
        disk = _total(usable, target, settings.cold_repeats, clear_memory_caches, warmup=1)
        warm = _total(usable, target, settings.repeats, None, warmup=1)
        rows += [
            Row(SUITE, f"{target} cold, {len(usable)} kernels", cold, label, frontend, per_kernel, note),
            Row(SUITE, f"{target} disk cache hit", disk, label, frontend, note=note),
            Row(SUITE, f"{target} memory cache hit", warm, label, frontend, note=note),
        ]
    return rows


def _total(
    kernels: list[rk.Kernel], target: str, repeats: int, setup: Callable[[], None] | None, warmup: int
) -> float:
    """Sum over ``kernels`` of the median time of ``compile(target)``, ``setup`` before each."""
    return sum(
        measure(lambda k=k: k.compile(target), repeats, warmup=warmup, setup=setup).median for k in kernels
    )


def _compiles(kernel: rk.Kernel, target: str) -> bool:
    try:
        kernel.compile(target)
    except rk.CompileError:
        return False
    return True

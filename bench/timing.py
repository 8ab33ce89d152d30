"""The one timing helper every benchmark uses: medians of repeats, never a single run.

A repeat calls the function ``inner`` times back to back and records the mean
per call, so calls far shorter than the clock's noise (a one-element numpy add)
are still timed meaningfully; ``inner`` is calibrated once per benchmark so a
repeat lasts about ``min_time`` seconds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Seconds per call, one entry per repeat."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100), nearest-rank, so p99 is a real sample."""
        ordered = sorted(self.samples)
        rank = max(1, -(-len(ordered) * q // 100))
        return ordered[int(rank) - 1]


def measure(
    fn: Callable[[], object],
    repeats: int,
    min_time: float = 0.0,
    warmup: int = 1,
    setup: Callable[[], object] | None = None,
) -> Timing:
    """Times ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed repeats.

    ``setup`` (untimed) runs before every repeat, e.g. to clear a cache for a
    cold measurement; with a ``setup`` each repeat is a single call.
    """
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    inner = 1 if setup is not None else _calibrate(fn, min_time)
    samples = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return Timing(tuple(samples))


def _calibrate(fn: Callable[[], object], min_time: float) -> int:
    """How many calls make one repeat last at least ``min_time`` seconds."""
    if min_time <= 0:
        return 1
    inner = 1
    while True:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time or inner >= 1_000_000:
            return inner
        inner = max(inner * 2, int(inner * min_time / max(elapsed, 1e-9) * 1.1))

"""The one timing helper every benchmark uses: medians of repeats, never a single run.

A repeat calls the function ``inner`` times back to back and records the mean
per call, so calls far shorter than the clock's noise (a one-element numpy add)
are still timed meaningfully; ``inner`` is calibrated once per benchmark so a
repeat lasts about ``min_time`` seconds.  ``measure_pair`` interleaves the
repeats of ours and a baseline so both see the same background load.
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
    return Timing(tuple(_repeat(fn, inner, setup) for _ in range(repeats)))


def measure_pair(
    ours: Callable[[], object], baseline: Callable[[], object], repeats: int, min_time: float = 0.0
) -> tuple[Timing, Timing]:
    """Times two functions with their repeats interleaved (ours, baseline, ours, ...).

    Load from other processes then drifts over both alike, which keeps the
    ratio of the medians meaningful on a shared machine.
    """
    ours()
    baseline()
    inner = (_calibrate(ours, min_time), _calibrate(baseline, min_time))
    pairs = [(_repeat(ours, inner[0], None), _repeat(baseline, inner[1], None)) for _ in range(repeats)]
    return Timing(tuple(p[0] for p in pairs)), Timing(tuple(p[1] for p in pairs))


def _repeat(fn: Callable[[], object], inner: int, setup: Callable[[], object] | None) -> float:
    """Seconds per call over one repeat of ``inner`` back-to-back calls."""
    if setup is not None:
        setup()
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner


def _calibrate(fn: Callable[[], object], min_time: float) -> int:
    """How many calls make one repeat last at least ``min_time`` seconds."""
    if min_time <= 0:
        return 1
    inner = 1
    while True:
        elapsed = _repeat(fn, inner, None) * inner
        if elapsed >= min_time or inner >= 1_000_000:
            return inner
        inner = max(inner * 2, int(inner * min_time / max(elapsed, 1e-9) * 1.1))

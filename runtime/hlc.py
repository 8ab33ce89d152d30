"""Hybrid logical clock (Kulkarni et al.), packed into 64 bits as in RingKernel.

A timestamp is ``physical << 16 | logical``: 48 bits of microseconds since
:data:`~ringkernel.ringir.layout.HLC_EPOCH_US` and a 16-bit logical counter.  On the
packed value both HLC rules collapse to one ``max``:

- local or send event: ``t = max(t + 1, now << 16)``
- receive of ``m``:    ``t = max(t + 1, m + 1, now << 16)``

which gives exactly the textbook rules (a new physical time resets the
counter; equal physical times bump the larger counter), keeps ``t`` strictly
increasing when the wall clock steps back, and lets a full logical counter
carry into the physical part (the clock runs 1 µs ahead instead of wrapping).
The device loop (``ringkernel.ringir.passes.actor_lowering``) applies the
same two formulas on two 32-bit words, with the drift bound of
:data:`~ringkernel.ringir.layout.MAX_CLOCK_DRIFT_US` and saturating at 2**64 - 1
(``docs/layout.md``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from ringkernel.ringir.layout import HLC_EPOCH_US, HLC_LOGICAL_BITS, HLC_PHYSICAL_MASK

LOGICAL_MASK = (1 << HLC_LOGICAL_BITS) - 1
MAX_TIMESTAMP = (1 << 64) - 1


class HlcTimestamp(NamedTuple):
    """A decoded timestamp: microseconds since the HLC epoch and the logical counter."""

    physical: int
    logical: int

    @property
    def packed(self) -> int:
        return pack(self.physical, self.logical)


def pack(physical: int, logical: int) -> int:
    if not 0 <= physical <= HLC_PHYSICAL_MASK or not 0 <= logical <= LOGICAL_MASK:
        raise ValueError(f"HLC parts out of range: physical={physical}, logical={logical}")
    return physical << HLC_LOGICAL_BITS | logical


def unpack(ts: int) -> HlcTimestamp:
    return HlcTimestamp(ts >> HLC_LOGICAL_BITS, ts & LOGICAL_MASK)


def wall_clock_us() -> int:
    """Microseconds since the Unix epoch (the clock the cpu actor loop reads too)."""
    return time.time_ns() // 1000


def physical_now(clock: Callable[[], int] = wall_clock_us) -> int:
    """``clock()`` as an HLC value with logical 0 (clamped into 48 bits)."""
    us = min(max(clock() - HLC_EPOCH_US, 0), HLC_PHYSICAL_MASK)
    return us << HLC_LOGICAL_BITS


class HlcDriftError(ValueError):
    """A received timestamp is further ahead of this clock's wall time than allowed."""


class Hlc:
    """A thread-safe hybrid logical clock; ``clock`` returns Unix microseconds.

    ``max_drift_us`` bounds how far a received timestamp's physical part may run
    ahead of the local wall clock (Kulkarni et al.'s epsilon).  Without it one
    corrupt timestamp near 2**64 would exhaust the clock for good; with it such a
    timestamp is refused (:class:`HlcDriftError`) and the clock is unchanged.
    """

    def __init__(
        self, clock: Callable[[], int] = wall_clock_us, start: int = 0, max_drift_us: int | None = None
    ) -> None:
        self._clock = clock
        self._last = start
        self._lock = threading.Lock()
        self.max_drift_us = max_drift_us

    @property
    def last(self) -> int:
        """The most recent timestamp issued or merged."""
        return self._last

    def tick(self) -> int:
        """A timestamp for a local or send event, greater than every earlier one."""
        with self._lock:
            self._last = self._advance(self._last + 1)
            return self._last

    def tick_many(self, count: int) -> int:
        """The first of ``count`` consecutive timestamps for a batch of sends (``first + i``).

        One lock round trip for the batch; every stamp is greater than every
        earlier one and the clock ends at the last.
        """
        with self._lock:
            first = self._advance(self._last + 1)
            self._last = self._advance(first + max(count, 1) - 1)
            return first

    def receive(self, remote: int) -> int:
        """Merges a received timestamp; the result is greater than it and than ``last``.

        Any 64-bit timestamp is accepted unless ``max_drift_us`` refuses it, since
        ``tick`` may issue the largest one; merging that one exhausts this clock
        too (``OverflowError``).
        """
        if not 0 <= remote <= MAX_TIMESTAMP:
            raise ValueError(f"HLC timestamp out of range: {remote}")
        now = physical_now(self._clock)  # one clock read per message: this runs per reply
        if self.max_drift_us is not None:
            ahead = (remote >> HLC_LOGICAL_BITS) - (now >> HLC_LOGICAL_BITS)
            if ahead > self.max_drift_us:
                raise HlcDriftError(
                    f"HLC timestamp {remote} is {ahead} µs ahead of the wall clock "
                    f"(allowed: {self.max_drift_us} µs)"
                )
        with self._lock:
            candidate = max(self._last, remote) + 1
            if candidate > MAX_TIMESTAMP:
                raise OverflowError("hybrid logical clock exhausted its 64 bits")
            self._last = max(candidate, now)
            return self._last

    def _advance(self, candidate: int) -> int:
        if candidate > MAX_TIMESTAMP:
            raise OverflowError("hybrid logical clock exhausted its 64 bits")
        return max(candidate, physical_now(self._clock))


__all__ = ["Hlc", "HlcDriftError", "HlcTimestamp", "pack", "unpack", "physical_now", "wall_clock_us"]

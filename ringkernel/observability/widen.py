"""64-bit counters from the loops' 32-bit words: each read is widened against the last one.

A loop counts in u32 words (``processed``, ``sequence``, queue ``enqueued`` ...), which
wrap after 2**32 messages: at ten million messages a second, in seven minutes.  A
:class:`Widener` remembers the last raw value it saw per counter and adds 2**32 each
time a read comes out smaller, so ``system.metrics()`` and ``/metrics`` report counters
that only go up, as long as something reads them at least once per 2**32 increments
(every scrape does).  Group counters are widened per instance before they are summed.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

import numpy as np

_WRAP = 1 << 32


class Widener:
    """Per-key memory of the last raw u32 counter values and the wraps seen so far."""

    def __init__(self) -> None:
        self._last: dict[Hashable, np.ndarray] = {}
        self._high: dict[Hashable, np.ndarray] = {}
        self._lock = threading.Lock()

    def value(self, key: Hashable, raw: int) -> int:
        """The widened value of the single counter ``key`` now reading ``raw``."""
        return int(self.values(key, np.array([raw], dtype=np.uint64))[0])

    def values(self, key: Hashable, raw: np.ndarray) -> np.ndarray:
        """The widened values (u64) of the counters ``key`` (one per element) now reading ``raw``."""
        raw = raw.astype(np.uint64)
        with self._lock:
            last, high = self._last.get(key), self._high.get(key)
            if last is None or high is None or last.shape != raw.shape:
                high = np.zeros(raw.shape, dtype=np.uint64)
            else:
                high = high + (raw < last).astype(np.uint64) * np.uint64(_WRAP)
            self._last[key], self._high[key] = raw, high
        return high + raw


__all__ = ["Widener"]

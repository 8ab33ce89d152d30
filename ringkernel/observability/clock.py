"""The one time base of metrics and traces: the HLC's physical microseconds.

Actor clocks (control words, envelope stamps) are HLC values, ``physical <<
16 | logical``; the host's wall clock is read the same way, so device stamps
and host observations subtract directly.
"""

from __future__ import annotations

from ringkernel.ringir import layout as L
from ringkernel.runtime.hlc import physical_now


def wall_us() -> int:
    """The host's wall clock in the HLC's physical unit: microseconds since ``HLC_EPOCH_US``."""
    return physical_now() >> L.HLC_LOGICAL_BITS


def physical_us(hlc: int) -> int:
    """The physical microseconds of a packed HLC value."""
    return hlc >> L.HLC_LOGICAL_BITS

"""Issue 18's cooperative histogram over a ``Vec`` message, and DESIGN.md's Histogrammer
verbatim (module level: the frontend reads their source)."""

from __future__ import annotations

import ringkernel as rk
from ringkernel import Vec, f32, u32


@rk.message
class Values:
    values: Vec[u32, 64]


@rk.message
class Binned:
    messages: u32


@rk.actor(threads=64)
class VecHistogram:
    """64 lanes, one value each, binned into the state's 256 bins with atomics."""

    bins: Vec[u32, 256]
    messages: u32 = 0

    def add(self, msg: Values) -> Binned:
        t = rk.thread_id(0)
        rk.atomic_add(self.bins, msg.values[t] % u32(256), u32(1))
        rk.barrier()
        if t == 0:
            self.messages += u32(1)
        return Binned(messages=self.messages)


@rk.message
class Samples:
    values: Vec[f32, 16]               # fixed-length array field

@rk.actor(threads=128, budget=1_000_000)
class Histogrammer:
    bins: Vec[u32, 256]                # array state, per instance
    def add(self, msg: Samples) -> None:
        t = rk.thread_id(0)            # handlers run on all 128 lanes
        if t < 16:
            rk.atomic_add(self.bins, u32(msg.values[t]) % 256, u32(1))

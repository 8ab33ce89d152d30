"""Actors and messages for the actor-group tests (module level, so the frontend reads them)."""

from __future__ import annotations

import ringkernel as rk
from ringkernel import f32, u32

LANES = 64


def cooperative(threads: int):
    """``@rk.actor(threads=threads)``."""
    return rk.actor(threads=threads)


@rk.message
class Add:
    value: f32


@rk.message
class Total:
    total: f32
    count: u32


@rk.actor
class Accumulator:
    total: f32 = 0.0
    count: u32 = 0

    def add(self, msg: Add) -> Total:
        self.total += msg.value
        self.count += 1
        return Total(total=self.total, count=self.count)


@rk.message
class Sample:
    seed: u32


@rk.message
class Peak:
    bin: u32
    count: u32


@cooperative(LANES)
class Histogram:
    """Each lane makes one value from the seed; the block bins them (256 bins) and lane 0
    replies with the fullest bin."""

    messages: u32 = 0

    def sample(self, msg: Sample) -> Peak:
        bins = rk.shared_array(u32, 256)
        t = rk.thread_id(0)
        for k in range(4):
            bins[t + k * 64] = u32(0)
        rk.barrier()
        value = (msg.seed * u32(t) + u32(7)) % u32(256)
        rk.atomic_add(bins, value, u32(1))
        rk.barrier()
        best = u32(0)
        most = u32(0)
        if t == 0:
            for b in range(256):
                if bins[b] > most:
                    most = bins[b]
                    best = u32(b)
            self.messages += 1
        rk.barrier()
        return Peak(bin=best, count=most)


@rk.message
class Seek:
    target: u32


@rk.message
class Found:
    at: u32


@cooperative(8)
class Seeker:
    """Returns from inside loops of a cooperative handler (every lane takes the same path)."""

    seen: u32 = 0

    def seek(self, msg: Seek) -> Found:
        marks = rk.shared_array(u32, 8)
        t = rk.thread_id(0)
        marks[t] = u32(t) * u32(3)
        rk.barrier()
        for i in range(8):
            for j in range(2):
                if marks[i] + u32(j) == msg.target:
                    if t == 0:
                        self.seen += 1
                    return Found(at=u32(i * 10 + j))
        return Found(at=u32(999))


@cooperative(16)
class BlockSum:
    """A helper method with a barrier (inlined into the handler, then into the kernel)."""

    last: u32 = 0

    def block_sum(self, x: u32) -> u32:
        parts = rk.shared_array(u32, 16)
        t = rk.thread_id(0)
        parts[t] = x + u32(t)
        rk.barrier()
        total = u32(0)
        for i in range(16):
            total += parts[i]
        rk.barrier()
        return total

    def seek(self, msg: Seek) -> Found:
        total = self.block_sum(msg.target)
        if rk.thread_id(0) == 0:
            self.last = total
        return Found(at=total)

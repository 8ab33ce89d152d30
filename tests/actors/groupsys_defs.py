"""Actors the group tests and the ``groups`` bench spawn (module level: the frontend reads their source)."""

from __future__ import annotations

import ringkernel as rk
from ringkernel import u32


@rk.message
class Put:
    value: u32


@rk.message
class Got:
    count: u32  # the instance's own count: 1, 2, 3 ... in the order it handled its messages
    value: u32


@rk.message
class Spin:
    rounds: u32  # xorshift rounds: a handler whose cost the test chooses


@rk.message
class Done:
    count: u32
    mix: u32


@rk.actor
class Counter:
    """Counts its messages; the reply says which one this was."""

    count: u32 = 0
    total: u32 = 0

    def put(self, msg: Put) -> Got:
        self.count += u32(1)
        self.total += msg.value
        return Got(count=self.count, value=msg.value)


@rk.actor
class Spinner:
    """A handler as slow as its message asks (a loop LLVM cannot fold away)."""

    count: u32 = 0
    mix: u32 = 1

    def spin(self, msg: Spin) -> Done:
        x = self.mix
        for _ in range(msg.rounds):
            x ^= x << u32(13)
            x ^= x >> u32(17)
            x ^= x << u32(5)
        self.mix = x
        self.count += u32(1)
        return Done(count=self.count, mix=x)


@rk.actor
class Relay:
    """Takes a Counter's replies (K2K) and answers with them, shifted."""

    seen: u32 = 0

    def got(self, msg: Got) -> Put:
        self.seen += u32(1)
        return Put(value=msg.value + u32(1_000_000))

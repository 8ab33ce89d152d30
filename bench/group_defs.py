"""The actor the ``groups`` suite floods: slow work or a quick echo, by message."""

from __future__ import annotations

import ringkernel as rk
from bench.actor_defs import Ping, Pong
from ringkernel import u32


@rk.message
class Work:
    rounds: u32  # xorshift rounds: as slow as the sender asks


@rk.actor
class Ticker:
    count: u32 = 0
    mix: u32 = 1

    def work(self, msg: Work) -> Pong:
        x = self.mix
        for _ in range(msg.rounds):
            x ^= x << u32(13)
            x ^= x >> u32(17)
            x ^= x << u32(5)
        self.mix = x
        self.count += u32(1)
        return Pong(value=1.0, count=self.count)

    def ping(self, msg: Ping) -> Pong:
        self.count += u32(1)
        return Pong(value=msg.value, count=self.count)

"""The echo actor the actor benchmarks time; imported only once ``rk.ActorSystem`` exists."""

from __future__ import annotations

import ringkernel as rk
from ringkernel import f32, u32


@rk.message
class Ping:
    value: f32


@rk.message
class Pong:
    value: f32
    count: u32


@rk.actor
class Echo:
    count: u32 = 0

    def ping(self, msg: Ping) -> Pong:
        self.count += 1
        return Pong(value=msg.value, count=self.count)

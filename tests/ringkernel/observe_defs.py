"""Actors for the observability tests: an echo and a three-stage pipeline."""

import ringkernel as rk
from ringkernel import f32, u32


@rk.message
class Ping:
    value: f32


@rk.message
class Tally:
    count: u32


@rk.actor
class Echo:
    def ping(self, msg: Ping) -> Ping:
        return Ping(value=msg.value + 1.0)


@rk.actor
class Stage:
    seen: u32 = 0

    def ping(self, msg: Ping) -> Ping:
        self.seen += 1
        return Ping(value=msg.value * 2.0)


@rk.actor
class Sink:
    count: u32 = 0

    def ping(self, msg: Ping) -> Tally:
        self.count += 1
        return Tally(count=self.count)

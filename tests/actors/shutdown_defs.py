"""Actors for the shutdown tests: a handler that does not return soon, and a cycle that goes quiet."""

import ringkernel as rk
from ringkernel import f32, u32


@rk.message
class Spin:
    rounds: u32


@rk.message
class Spun:
    x: f32
    count: u32


@rk.message
class Hop:
    value: f32


@rk.actor
class Spinner:
    """Its handler runs ``rounds`` x 60,000 dependent float steps (about 0.1 ms per round on cpu)."""

    x: f32 = 0.0
    count: u32 = 0

    def spin(self, msg: Spin) -> Spun:
        for _i in range(msg.rounds):
            for _j in range(u32(60000)):
                self.x = self.x * 0.5 + 1.0
        self.count += 1
        return Spun(x=self.x, count=self.count)


@rk.actor
class Relay:
    """Passes a Hop on, one higher, until it reaches 10: a cycle of Relays goes quiet."""

    hops: u32 = 0

    def hop(self, msg: Hop) -> Hop:
        self.hops += 1
        if msg.value >= 10.0:
            return None
        return Hop(value=msg.value + 1.0)


@rk.actor
class Echo:
    """Always answers: a cycle of Echos never goes quiet."""

    def echo(self, msg: Hop) -> Hop:
        return Hop(value=msg.value + 1.0)

"""Actors for the supervision tests: handlers that loop for as long as a message says (n < 0: forever)."""

import ringkernel as rk
from ringkernel import i32


@rk.message
class Spin:
    n: i32


@rk.message
class Spun:
    total: i32
    calls: i32


@rk.func
def count_up(n: i32) -> i32:
    """A device function that loops: its loop is budget-checked too."""
    i = 0
    while i < n or n < 0:
        i += 1
    return i


@rk.actor(budget=10_000)
class Bounded:
    """Loops ``n`` times in the handler itself; 10,000 iterations at most per message."""

    total: i32 = 0
    calls: i32 = 0

    def spin(self, msg: Spin) -> Spun:
        self.calls += 1
        i = 0
        while i < msg.n or msg.n < 0:
            self.total += 1
            i += 1
        return Spun(total=self.total, calls=self.calls)


@rk.actor(budget=10_000)
class Nested:
    """Loops inside a device function it calls."""

    total: i32 = 0
    calls: i32 = 0

    def spin(self, msg: Spin) -> Spun:
        self.calls += 1
        self.total += count_up(msg.n)
        return Spun(total=self.total, calls=self.calls)


@rk.actor
class Unbounded:
    """No budget: only a stop or the watchdog can end a runaway message (on cpu)."""

    total: i32 = 0
    calls: i32 = 0

    def spin(self, msg: Spin) -> Spun:
        self.calls += 1
        i = 0
        while i < msg.n or msg.n < 0:
            self.total += 1
            i += 1
        return Spun(total=self.total, calls=self.calls)


@rk.actor
class Plain:
    """No loop anywhere: no budget checks, no shadow state, the loop kernel as before."""

    total: i32 = 0

    def add(self, msg: Spin) -> Spun:
        self.total += msg.n
        return Spun(total=self.total, calls=msg.n)


@rk.actor
class Relay:
    """Takes the replies of a connected actor (K2K) and passes their total on to the host."""

    seen: i32 = 0

    def spun(self, msg: Spun) -> Spun:
        self.seen += 1
        return Spun(total=msg.total, calls=self.seen)


@rk.actor(budget=100_000)
class Generous:
    """A budget past lavapipe's shader loop limit (65,535 iterations per invocation)."""

    total: i32 = 0

    def spin(self, msg: Spin) -> Spun:
        i = 0
        while i < msg.n:
            i += 1
        self.total += i
        return Spun(total=self.total, calls=0)

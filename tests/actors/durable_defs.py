"""Actors for the checkpoint tests: a counter whose handler can be made slow, so messages queue."""

import ringkernel as rk
from ringkernel import i32


@rk.message
class Add:
    n: i32
    work: i32


@rk.message
class Total:
    count: i32
    sum: i32


@rk.actor
class Counter:
    """Counts and sums what it is sent; ``work`` idle iterations per message keep it busy."""

    count: i32 = 0
    sum: i32 = 0

    def add(self, msg: Add) -> Total:
        i = 0
        spin = 0
        while i < msg.work:
            spin += i
            i += 1
        self.count += 1
        self.count += spin - spin
        self.sum += msg.n
        return Total(count=self.count, sum=self.sum)


@rk.actor
class CounterV2:
    """Counter with another handler body but the same state layout: a compatible change."""

    count: i32 = 0
    sum: i32 = 0

    def add(self, msg: Add) -> Total:
        self.count += 1
        self.sum += msg.n
        return Total(count=self.count, sum=self.sum)


@rk.actor
class Reordered:
    """The same fields in another order: an incompatible state layout."""

    sum: i32 = 0
    count: i32 = 0

    def add(self, msg: Add) -> Total:
        self.count += 1
        self.sum += msg.n
        return Total(count=self.count, sum=self.sum)


@rk.actor
class Sink:
    """Takes Counter's replies, for a connected pair."""

    seen: i32 = 0

    def total(self, msg: Total) -> None:
        self.seen += 1

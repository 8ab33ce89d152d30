"""Actors of the native-routing tests (tests/actors/test_actor_routing_cpu.py)."""

from __future__ import annotations

import ringkernel as rk
from ringkernel import u32
from tests.actors.messaging_defs import Order


@rk.message
class Beat:
    n: u32


@rk.actor
class Metronome:
    """Re-schedules itself every 2 ms forever: a drain must not wait for it."""

    beats: u32 = 0

    def on_beat(self, msg: Beat) -> None:
        self.beats += 1
        self.schedule(2000, Beat(n=msg.n + 1))


@rk.actor
class Later:
    """Schedules one beat ``delay`` µs ahead and replies when it comes back."""

    def on_order(self, msg: Order) -> None:
        self.schedule(msg.seq, Beat(n=msg.symbol))

    def on_beat(self, msg: Beat) -> Beat:
        return Beat(n=msg.n)


@rk.actor
class Echo:
    """Replies with the order it got (a reply link's far end)."""

    def on_order(self, msg: Order) -> Order:
        return Order(symbol=msg.symbol, seq=msg.seq + 1)


@rk.actor
class Flood:
    """Schedules ``seq`` timers due at once per order: more than the router's timer inbox holds."""

    beats: u32 = 0

    def on_order(self, msg: Order) -> None:
        i = u32(0)
        while i < msg.seq:
            self.schedule(0, Beat(n=i))
            i += 1

    def on_beat(self, msg: Beat) -> None:
        self.beats += 1

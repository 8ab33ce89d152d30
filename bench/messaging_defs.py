"""The actors the ``messaging`` suite runs: handler sends against replies, send_to against the host."""

from __future__ import annotations

import ringkernel as rk
from ringkernel import u32


@rk.message
class Burst:
    n: u32  # items to send


@rk.message
class Item:
    value: u32


@rk.actor
class Spray:
    """Sends ``n`` items on its port per burst."""

    out: rk.Port[Item]

    def burst(self, msg: Burst) -> None:
        for i in range(msg.n):
            self.out.send(Item(value=u32(i)))


@rk.actor
class Sink:
    count: u32 = 0

    def item(self, msg: Item) -> None:
        self.count += u32(1)


@rk.actor
class Echo:
    """The baseline of handler sends: one reply per item, to the host."""

    def item(self, msg: Item) -> Item:
        return Item(value=msg.value)


@rk.message
class Relay:
    hops: u32  # deliveries left


@rk.actor
class Ring:
    """Passes each relay to the next instance of its group with ``send_to`` until its hops run out."""

    seen: u32 = 0

    def relay(self, msg: Relay) -> None:
        self.seen += u32(1)
        if msg.hops > 0:
            self.send_to((self.index + 1) % self.group_size, Relay(hops=msg.hops - 1))


@rk.actor
class RoutedRing:
    """``Ring`` with the v1 path: a send on an unconnected port first, so the handler's sends
    cannot go device-side and the router moves each hop (and discards the port send)."""

    seen: u32 = 0

    tap: rk.Port[Relay]

    def relay(self, msg: Relay) -> None:
        self.seen += u32(1)
        if msg.hops > 0:
            self.tap.send(Relay(hops=0))
            self.send_to((self.index + 1) % self.group_size, Relay(hops=msg.hops - 1))


@rk.actor
class HostRing:
    """The baseline of ``send_to``: the relay goes back to the host, which sends it on."""

    seen: u32 = 0

    def relay(self, msg: Relay) -> Relay:
        self.seen += u32(1)
        return Relay(hops=msg.hops)



@rk.message
class Token:
    stamp: u32  # the host's label, echoed back


@rk.actor
class Hop:
    """One link of the latency chain: passes the token on its port (one routed hop)."""

    out: rk.Port[Token]

    def token(self, msg: Token) -> None:
        self.out.send(Token(stamp=msg.stamp))


@rk.actor
class ChainEnd:
    """The end of the latency chain: replies to the host."""

    def token(self, msg: Token) -> Token:
        return Token(stamp=msg.stamp)

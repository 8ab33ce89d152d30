"""Actors for the migration and device-loss tests: each reply names its sender's message and
how many messages the actor has handled, so a lost, duplicated or reordered message shows."""

import ringkernel as rk
from ringkernel import i32


@rk.message
class Tick:
    sender: i32
    n: i32


@rk.message
class Seen:
    sender: i32
    n: i32
    count: i32


@rk.actor
class Recorder:
    """Counts what it handles and echoes each message with the count."""

    count: i32 = 0

    def tick(self, msg: Tick) -> Seen:
        self.count += 1
        return Seen(sender=msg.sender, n=msg.n, count=self.count)


@rk.actor
class Relay:
    """Passes each message on (connected to a Recorder: a chain that migrates together)."""

    passed: i32 = 0

    def tick(self, msg: Tick) -> Tick:
        self.passed += 1
        return Tick(sender=msg.sender, n=msg.n)


@rk.actor
class Forward:
    """Sends each message on through its port (connected with ``connect(port="out")``)."""

    out: rk.Port[Tick]
    forwarded: i32 = 0

    def tick(self, msg: Tick) -> None:
        self.forwarded += 1
        self.out.send(Tick(sender=msg.sender, n=msg.n))

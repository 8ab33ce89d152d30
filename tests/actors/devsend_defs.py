"""Actors of the device-side send_to tests (issue 23, direct delivery through ``routed``)."""

import ringkernel as rk
from ringkernel import u32


@rk.message
class Go:
    count: u32


@rk.message
class Num:
    seq: u32


@rk.actor
class Mixer:
    """Instance 0 sends numbers 0, 1, 2, ... to instance 1, every third one on its port (wired
    back to instance 1), the others with send_to; instance 1 counts what arrives out of order."""

    next: u32 = 0
    expected: u32 = 0
    got: u32 = 0
    bad: u32 = 0
    spin: u32 = 0

    out: rk.Port[Num]

    def on_go(self, msg: Go) -> None:
        k = u32(0)
        while k < msg.count:
            if self.next % 3 == 2:
                self.out.send(Num(seq=self.next))
            else:
                self.send_to(1, Num(seq=self.next))
            self.next += 1
            k += 1

    def on_num(self, msg: Num) -> None:
        if msg.seq != self.expected:
            self.bad += 1
        self.expected = msg.seq + 1
        self.got += 1
        k = u32(0)
        while k < self.spin:  # a slow receiver: its routed queue fills up
            k += 1


@rk.actor(budget=2000)
class Quitter:
    """``Go(count=0)`` sends one number to instance 1 and finishes; any other count sends one and
    then spins past its budget, so the handler is aborted and its send must not arrive."""

    got: u32 = 0
    last: u32 = 0
    spin: u32 = 0

    def on_go(self, msg: Go) -> None:
        self.send_to(1, Num(seq=msg.count + 100))
        while self.spin < msg.count:
            self.spin += 1

    def on_num(self, msg: Num) -> None:
        self.got += 1
        self.last = msg.seq


@rk.actor
class Wild:
    """Sends to instances past both ends of its group, then to the next one."""

    got: u32 = 0

    def on_go(self, msg: Go) -> None:
        self.send_to(self.group_size, Num(seq=1))
        self.send_to(-1, Num(seq=2))
        self.send_to((self.index + 1) % self.group_size, Num(seq=3))

    def on_num(self, msg: Num) -> None:
        self.got += msg.seq


@rk.actor(threads=32)
class Scatter:
    """Cooperative: every lane below ``count`` sends a number to the instance after its own."""

    got: u32 = 0

    def on_go(self, msg: Go) -> None:
        t = u32(rk.thread_id(0))
        if t < msg.count:
            self.send_to((self.index + 1) % self.group_size, Num(seq=t))

    def on_num(self, msg: Num) -> None:
        if rk.thread_id(0) == 0:
            self.got += 1


@rk.message
class Tagged:
    src: u32
    seq: u32


@rk.actor
class Weave:
    """Numbers 0, 1, 2, ... per instance: even ones to the next instance with send_to, odd ones
    on its port (wired back to itself through the router); receivers count gaps per sender."""

    next: u32 = 0
    from_left: u32 = 0
    from_self: u32 = 1
    got: u32 = 0
    bad: u32 = 0

    out: rk.Port[Tagged]

    def on_go(self, msg: Go) -> None:
        k = u32(0)
        while k < msg.count:
            if self.next % 2 == 0:
                self.send_to((self.index + 1) % self.group_size, Tagged(src=u32(self.index), seq=self.next))
            else:
                self.out.send(Tagged(src=u32(self.index), seq=self.next))
            self.next += 1
            k += 1

    def on_tagged(self, msg: Tagged) -> None:
        if msg.src == u32(self.index):
            if msg.seq != self.from_self:
                self.bad += 1
            self.from_self = msg.seq + 2
        else:
            if msg.seq != self.from_left:
                self.bad += 1
            self.from_left = msg.seq + 2
        self.got += 1

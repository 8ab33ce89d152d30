"""Messages and actors of the messaging tests (issue 23): ports, fan-out, send_to, timers."""

import ringkernel as rk
from ringkernel import u32


@rk.message
class Order:
    symbol: u32
    seq: u32


@rk.message
class Fill:
    symbol: u32
    seq: u32
    hlc_lo: u32
    hlc_hi: u32


@rk.actor
class Dispatcher:
    """Sends each order to the book of its symbol: one port per book (8 ports)."""

    book0: rk.Port[Order]
    book1: rk.Port[Order]
    book2: rk.Port[Order]
    book3: rk.Port[Order]
    book4: rk.Port[Order]
    book5: rk.Port[Order]
    book6: rk.Port[Order]
    book7: rk.Port[Order]

    def on_order(self, msg: Order) -> None:
        k = msg.symbol % 8
        if k == 0:
            self.book0.send(Order(symbol=msg.symbol, seq=msg.seq))
        elif k == 1:
            self.book1.send(Order(symbol=msg.symbol, seq=msg.seq))
        elif k == 2:
            self.book2.send(Order(symbol=msg.symbol, seq=msg.seq))
        elif k == 3:
            self.book3.send(Order(symbol=msg.symbol, seq=msg.seq))
        elif k == 4:
            self.book4.send(Order(symbol=msg.symbol, seq=msg.seq))
        elif k == 5:
            self.book5.send(Order(symbol=msg.symbol, seq=msg.seq))
        elif k == 6:
            self.book6.send(Order(symbol=msg.symbol, seq=msg.seq))
        else:
            self.book7.send(Order(symbol=msg.symbol, seq=msg.seq))


@rk.actor
class Book:
    """Replies to the host with each order it got, so the host sees what arrived in which order."""

    count: u32 = 0

    def on_order(self, msg: Order) -> Order:
        self.count += 1
        return Order(symbol=msg.symbol, seq=msg.seq)


@rk.actor
class Tee:
    """Forwards every order on one port (fan-out when the port has several connections)."""

    out: rk.Port[Order]

    def on_order(self, msg: Order) -> None:
        self.out.send(Order(symbol=msg.symbol, seq=msg.seq))


@rk.message
class Burst:
    n: u32
    base: u32


@rk.actor
class Splitter:
    """Sends ``n`` orders per input (0, 1, 5, ...)."""

    out: rk.Port[Order]

    def on_burst(self, msg: Burst) -> None:
        for i in range(msg.n):
            self.out.send(Order(symbol=msg.base, seq=i))


@rk.actor
class Doubler:
    """Sends two orders per order: two of them connected in a ring fill every queue (a deadlock)."""

    out: rk.Port[Order]

    def on_order(self, msg: Order) -> None:
        self.out.send(Order(symbol=msg.symbol, seq=msg.seq + 1))
        self.out.send(Order(symbol=msg.symbol, seq=msg.seq + 1))


@rk.actor
class Hop:
    """One hop of a chain: forwards on its port (the last hop replies to the host instead)."""

    out: rk.Port[Order]
    last: u32 = 0

    def on_order(self, msg: Order) -> None:
        self.last = msg.seq
        self.out.send(Order(symbol=msg.symbol, seq=msg.seq + 1))


@rk.message
class Tick:
    n: u32


@rk.actor
class Ticker:
    """Fires every ``delay_us``: each Tick is answered to the host and schedules the next, 20 in all."""

    fired: u32 = 0

    def on_tick(self, msg: Tick) -> Tick:
        self.fired += 1
        if msg.n + 1 < 20:
            self.schedule(2000, Tick(n=msg.n + 1))
        return Tick(n=msg.n)


@rk.message
class Start:
    steps: u32
    seed: u32


@rk.message
class Edge:
    side: u32  # 0: from the left neighbour, 1: from the right
    value: u32
    step: u32


@rk.actor
class Cell:
    """One cell of a ring of cells running rule 30: each step it sends its value to both
    neighbours (send_to) and moves on once it has both of theirs for that step.  A neighbour is
    at most one step ahead, so two slots per side (by step parity) suffice."""

    v: u32 = 0
    step: u32 = 0
    steps: u32 = 0
    l0: u32 = 0
    l1: u32 = 0
    r0: u32 = 0
    r1: u32 = 0
    have0: u32 = 0
    have1: u32 = 0

    def tell(self) -> None:
        n = self.group_size
        left = (self.index + n - 1) % n
        right = (self.index + 1) % n
        self.send_to(left, Edge(side=u32(1), value=self.v, step=self.step))
        self.send_to(right, Edge(side=u32(0), value=self.v, step=self.step))

    def on_start(self, msg: Start) -> None:
        self.steps = msg.steps
        self.v = ((u32(self.index) * u32(1103515245) + msg.seed) >> u32(16)) & u32(1)
        if self.steps > 0:
            self.tell()

    def on_edge(self, msg: Edge) -> None:
        if msg.step % 2 == 0:
            if msg.side == 0:
                self.l0 = msg.value
            else:
                self.r0 = msg.value
            self.have0 = self.have0 | (msg.side + 1)
        else:
            if msg.side == 0:
                self.l1 = msg.value
            else:
                self.r1 = msg.value
            self.have1 = self.have1 | (msg.side + 1)
        more = True
        while more and self.step < self.steps:
            more = False
            if self.step % 2 == 0:
                if self.have0 == 3:
                    self.v = self.l0 ^ (self.v | self.r0)
                    self.have0 = 0
                    more = True
            else:
                if self.have1 == 3:
                    self.v = self.l1 ^ (self.v | self.r1)
                    self.have1 = 0
                    more = True
            if more:
                self.step += 1
                if self.step < self.steps:
                    self.tell()


@rk.actor
class Stray:
    """Sends past the end of its group, and on a port that may be left unconnected."""

    out: rk.Port[Order]

    def on_order(self, msg: Order) -> None:
        self.send_to(self.group_size + 1, Order(symbol=msg.symbol, seq=msg.seq))
        self.out.send(Order(symbol=msg.symbol, seq=msg.seq))

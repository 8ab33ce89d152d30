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

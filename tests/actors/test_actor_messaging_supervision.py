"""A sender held back by a full receiver is waiting (backpressure), not hung: the watchdog leaves it alone."""

from __future__ import annotations

import time

import ringkernel as rk
from tests.actors.messaging_defs import Doubler, Order


def test_the_watchdog_does_not_take_backpressure_for_a_hang():
    system = rk.ActorSystem(backend="cpu", watchdog_timeout=0.3)
    a, b = system.spawn(Doubler, queue_capacity=4), system.spawn(Doubler, queue_capacity=4)
    system.connect(a, b, port="out")
    system.connect(b, a, port="out")
    a.send(Order(symbol=0, seq=0))
    deadline = time.monotonic() + 30
    while "send_cycle" not in system.health() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(1.2)  # four watchdog timeouts
    try:
        assert not a.hung and not b.hung and not a.failed and not b.failed
        assert a.status == b.status == "blocked"
        assert a.handler_aborted == b.handler_aborted == 0
    finally:
        try:
            system.shutdown()
        except rk.SendCycleError:
            pass

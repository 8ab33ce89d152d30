"""A wait-for cycle through a connect() reply link is reported on a pump backend (wgpu) too, as
the cpu's native router reports it: the Python router looks at reply links as well."""

from __future__ import annotations

import time

import pytest

import ringkernel as rk
from tests.actors.messaging_defs import Doubler, Order
from tests.actors.routing_cpu_defs import Echo


def test_a_cycle_through_a_reply_link_is_reported_on_wgpu():
    from ringkernel.runtime import backend_status

    ok, reason = backend_status("wgpu")
    if not ok:
        pytest.skip(reason)
    system = rk.ActorSystem(backend="wgpu", drain_timeout=60)
    doubler, echo = system.spawn(Doubler, queue_capacity=4), system.spawn(Echo, queue_capacity=4)
    system.connect(doubler, echo, port="out")  # doubler -> echo through the router
    system.connect(echo, doubler)  # echo's replies -> doubler's k2k (a reply link)
    started = time.monotonic()
    doubler.send(Order(symbol=0, seq=0))  # every order makes two, every one comes back: it fills up
    deadline = time.monotonic() + 60
    while "send_cycle" not in system.health() and time.monotonic() < deadline:
        time.sleep(0.01)
    report = system.health()
    assert sorted(report.get("send_cycle", [])) == sorted([doubler.name, echo.name])
    assert doubler.status == echo.status == "blocked"
    with pytest.raises(rk.SendCycleError):
        system.shutdown()
    assert time.monotonic() - started < 70  # not drain_timeout after the report

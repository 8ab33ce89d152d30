"""Drain and timers on every actor backend (issue 23): a drain waits for the timers due by its
start, not for one a periodic actor keeps scheduling ahead (docs/actors.md, "Timers")."""

from __future__ import annotations

import time

import ringkernel as rk
from tests.actors.messaging_defs import Order
from tests.actors.routing_cpu_defs import Beat, Later, Metronome


def test_a_drain_does_not_wait_for_a_periodic_timer(actor_backend):
    system = rk.ActorSystem(backend=actor_backend, drain_timeout=30)
    metronome = system.spawn(Metronome)
    metronome.send(Beat(n=0))
    deadline = time.monotonic() + 20
    while metronome.state["beats"] < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert metronome.state["beats"] >= 5
    started = time.monotonic()
    assert system.shutdown() == []
    assert time.monotonic() - started < 5  # not drain_timeout


def test_a_drain_delivers_the_timers_due_before_it(actor_backend):
    system = rk.ActorSystem(backend=actor_backend)
    later = system.spawn(Later)
    later.send_many([Order(symbol=7, seq=0), Order(symbol=8, seq=0)])  # due at once: in flight
    system.shutdown()
    assert sorted(m.n for m in later.receive_many(max_count=2, timeout=0)) == [7, 8]

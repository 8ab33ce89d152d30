"""Siblings found while wiring the router into supervision and metrics."""

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


def test_queue_utilization_counts_the_routed_queue_too():
    system = rk.ActorSystem(backend="cpu")
    a, b = system.spawn(Doubler, queue_capacity=4), system.spawn(Doubler, queue_capacity=4)
    system.connect(a, b, port="out")
    system.connect(b, a, port="out")
    a.send(Order(symbol=0, seq=0))
    deadline = time.monotonic() + 30
    while "send_cycle" not in system.health() and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in range(3):
        a.send(Order(symbol=1, seq=0))  # its loop takes nothing now: they wait in h2k
    try:
        row = system.metrics()["actors"][a.name]
        assert row["queue_depth"] == 4 + 3  # routed full, three host messages
        assert row["queue_capacity"] == 4 + 4
        assert 0 <= row["queue_utilization"] <= 1
    finally:
        try:
            system.shutdown()
        except rk.SendCycleError:
            pass


def test_a_group_deadlocked_on_itself_is_reported_and_its_depth_counts_routed():
    system = rk.ActorSystem(backend="cpu")
    group = system.spawn(Doubler, count=2, queue_capacity=4)
    system.connect(group, group, port="out")  # instance i feeds itself: a cycle of one
    group[1].send(Order(symbol=0, seq=0))
    deadline = time.monotonic() + 30
    while "send_cycle" not in system.health() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert system.health()["send_cycle"] == [group[1].name]
        assert group.status == "blocked" and group[1].status == "blocked" and group[0].status == "idle"
        assert system.metrics()["groups"][group.name]["queue_depth"] == 4  # instance 1's full routed
    finally:
        try:
            system.shutdown()
        except rk.SendCycleError:
            pass


def test_a_system_collected_without_shutdown_stops_its_router_thread():
    import gc

    from tests.actors.messaging_defs import Book, Tee

    def forget():
        system = rk.ActorSystem(backend="cpu")
        tee, book = system.spawn(Tee), system.spawn(Book)
        system.connect(tee, book, port="out")
        return system.routing.thread.thread

    thread = forget()
    gc.collect()
    thread.join(10)
    assert not thread.is_alive(), "the router thread of a collected ActorSystem kept running"


def test_sends_past_the_free_slots_are_counted_per_actor_and_per_group():
    from tests.actors.messaging_defs import Book, Burst, Splitter

    with rk.ActorSystem(backend="cpu") as system:
        splitter, book = system.spawn(Splitter, queue_capacity=4), system.spawn(Book, queue_capacity=64)
        system.connect(splitter, book, port="out")
        splitter.send(Burst(n=10, base=1))  # four free slots in sends: six sends are refused
        assert [o.seq for o in book.receive_many(max_count=10, timeout=5)] == [0, 1, 2, 3]
        assert splitter.sends_rejected == 6
        assert system.metrics()["actors"][splitter.name]["sends_rejected"] == 6
        assert system.metrics()["routing"]["rejected"] == 6
        group = system.spawn(Splitter, count=2, queue_capacity=4)
        system.connect(group, book, port="out")
        group[1].send(Burst(n=7, base=2))
        assert len(book.receive_many(max_count=10, timeout=5)) == 4
        assert system.metrics()["groups"][group.name]["sends_rejected"] == 3
        assert group[1].sends_rejected == 3 and group[0].sends_rejected == 0

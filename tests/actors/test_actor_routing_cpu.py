"""Native routing on the cpu (issue 23): what the Python router did, without its polling thread;
a cycle through a reply link reported; a drain that does not wait for a periodic timer."""

from __future__ import annotations

import threading
import time

import pytest

import ringkernel as rk
from tests.actors.messaging_defs import Book, Burst, Doubler, Order, Splitter, Tee
from tests.actors.routing_cpu_defs import Beat, Echo, Later, Metronome


def test_the_cpu_routes_natively_without_a_polling_router_thread():
    with rk.ActorSystem(backend="cpu") as system:
        tee, book = system.spawn(Tee), system.spawn(Book)
        system.connect(tee, book, port="out")
        tee.send(Order(symbol=1, seq=1))
        assert book.receive(timeout=10).seq == 1
        names = {t.name for t in threading.enumerate()}
        assert "ringkernel-router" not in names  # the 2 ms polling thread of runtime/router.py
        assert "ringkernel-timers" in names


def test_a_cycle_through_a_reply_link_is_reported_not_hung():
    system = rk.ActorSystem(backend="cpu", drain_timeout=60)
    doubler, echo = system.spawn(Doubler, queue_capacity=4), system.spawn(Echo, queue_capacity=4)
    system.connect(doubler, echo, port="out")  # doubler -> echo through the router
    system.connect(echo, doubler)  # echo's replies -> doubler's k2k (a reply link)
    started = time.monotonic()
    doubler.send(Order(symbol=0, seq=0))  # every order makes two, every one comes back: it fills up
    deadline = time.monotonic() + 30
    while "send_cycle" not in system.health() and time.monotonic() < deadline:
        time.sleep(0.01)
    report = system.health()
    assert sorted(report["send_cycle"]) == sorted([doubler.name, echo.name])
    assert report["live"] is False
    assert doubler.status == echo.status == "blocked"
    assert sorted(system.metrics()["routing"]["cycle"]) == sorted([doubler.name, echo.name])
    with pytest.raises(rk.SendCycleError):
        system.shutdown()
    assert system.stopped and not system.abandoned
    assert time.monotonic() - started < 40  # far less than drain_timeout


def test_a_full_reply_link_that_drains_is_no_cycle():
    with rk.ActorSystem(backend="cpu") as system:
        tee, echo = system.spawn(Tee, queue_capacity=4), system.spawn(Echo, queue_capacity=4)
        book = system.spawn(Book, queue_capacity=512)
        system.connect(tee, echo, port="out")
        system.connect(echo, book)  # a reply link out of the way: it fills, and empties
        tee.send_many([Order(symbol=0, seq=i) for i in range(300)], timeout=30)
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 300 and time.monotonic() < deadline:
            got += book.receive_many(max_count=300, timeout=0.5)
        assert [o.seq for o in got] == [i + 1 for i in range(300)]  # Echo adds one
        assert system.metrics()["routing"]["cycle"] is None


def test_a_drain_does_not_wait_for_a_timer_that_reschedules_itself():
    system = rk.ActorSystem(backend="cpu", drain_timeout=30)
    metronome = system.spawn(Metronome)
    metronome.send(Beat(n=0))
    deadline = time.monotonic() + 10
    while metronome.state["beats"] < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.monotonic()
    assert system.shutdown() == []
    took = time.monotonic() - started
    assert took < 5, f"the drain waited {took:.1f} s for a periodic timer"  # not drain_timeout (30 s)
    assert metronome.status == "stopped"


def test_a_drain_waits_for_a_timer_due_before_it_started():
    system = rk.ActorSystem(backend="cpu")
    later = system.spawn(Later)
    later.send_many([Order(symbol=7, seq=0), Order(symbol=8, seq=0)])  # due at once: in flight
    system.shutdown()
    assert sorted(m.n for m in later.receive_many(max_count=2, timeout=0)) == [7, 8]


def test_a_timer_comes_back_after_its_delay_from_a_sleeping_router():
    with rk.ActorSystem(backend="cpu") as system:
        later = system.spawn(Later)
        time.sleep(0.2)  # everything asleep
        started = time.monotonic()
        later.send(Order(symbol=3, seq=50_000))  # 50 ms
        assert later.receive(timeout=10).n == 3
        took = time.monotonic() - started
        assert 0.05 <= took < 2.0, took


def test_many_senders_into_one_small_receiver_keep_each_senders_order():
    """MPSC pushes from two workers at once into one two-slot-wide routed queue."""
    with rk.ActorSystem(backend="cpu", workers=2) as system:
        group = system.spawn(Splitter, count=8, queue_capacity=16)
        book = system.spawn(Book, queue_capacity=8)
        system.connect(group, book, port="out")
        for _ in range(10):
            for i in range(8):
                group[i].send(Burst(n=6, base=i))  # its orders carry its index as the symbol
        got = []
        deadline = time.monotonic() + 60
        while len(got) < 480 and time.monotonic() < deadline:
            got += book.receive_many(max_count=480 - len(got), timeout=0.5)
        per_sender: dict[int, list[int]] = {}
        for o in got:
            per_sender.setdefault(int(o.symbol), []).append(int(o.seq))
        assert per_sender == {i: list(range(6)) * 10 for i in range(8)}  # each once, in order


def test_an_actor_that_never_sends_is_blocked_in_a_cycle_through_its_reply_link():
    system = rk.ActorSystem(backend="cpu", drain_timeout=60)
    doubler = system.spawn(Doubler, queue_capacity=4)
    echo, relay = system.spawn(Echo, queue_capacity=4), system.spawn(Echo, queue_capacity=4)
    system.connect(doubler, echo, port="out")
    system.connect(echo, relay)  # relay neither sends nor receives from the router
    system.connect(relay, doubler)
    doubler.send(Order(symbol=0, seq=0))
    deadline = time.monotonic() + 30
    while "send_cycle" not in system.health() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(system.health()["send_cycle"]) == sorted([doubler.name, echo.name, relay.name])
    assert relay.status == "blocked"
    with pytest.raises(rk.SendCycleError):
        system.shutdown()


def test_more_timers_than_the_inbox_holds_all_come_back():
    from ringkernel.runtime.cpu.routing import INBOX_CAPACITY
    from tests.actors.routing_cpu_defs import Flood

    with rk.ActorSystem(backend="cpu") as system:
        flood = system.spawn(Flood, queue_capacity=8192)
        flood.send(Order(symbol=0, seq=3 * INBOX_CAPACITY))
        deadline = time.monotonic() + 30
        while flood.state["beats"] < 3 * INBOX_CAPACITY and time.monotonic() < deadline:
            time.sleep(0.01)
        assert flood.state["beats"] == 3 * INBOX_CAPACITY
        assert system.metrics()["routing"]["timers_fired"] == 3 * INBOX_CAPACITY

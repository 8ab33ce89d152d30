"""Actors that talk (issue 23), end to end on every actor backend: ports and fan-out, send_to
inside a group, timers, HLC causality and a reported deadlock."""

from __future__ import annotations

import time

import numpy as np
import pytest

import ringkernel as rk
from tests.actors.messaging_defs import (
    Book,
    Burst,
    Cell,
    Dispatcher,
    Doubler,
    Hop,
    Order,
    Splitter,
    Start,
    Tee,
    Tick,
    Ticker,
)


def receive_all(ref, count: int, timeout: float = 20.0) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        got += ref.receive_many(max_count=count - len(got), timeout=max(0.01, deadline - time.monotonic()))
    return got


def test_a_dispatcher_routes_each_order_to_the_book_of_its_symbol(actor_backend):
    rng = np.random.default_rng(7)
    symbols = rng.integers(0, 1000, 400)
    with rk.ActorSystem(backend=actor_backend) as system:
        dispatcher = system.spawn(Dispatcher, queue_capacity=64)
        books = [system.spawn(Book, queue_capacity=64) for _ in range(8)]
        for k, book in enumerate(books):
            system.connect(dispatcher, book, port=f"book{k}")
        dispatcher.send_many([Order(symbol=int(s), seq=i) for i, s in enumerate(symbols)], timeout=30)
        for k, book in enumerate(books):
            wanted = [i for i, s in enumerate(symbols) if s % 8 == k]
            got = receive_all(book, len(wanted))
            assert [o.seq for o in got] == wanted  # each once, in the dispatcher's order
            assert all(o.symbol % 8 == k for o in got)
        assert system.metrics()["routing"]["routed"] == len(symbols)
        assert all(book.pending() == 0 for book in books)


def test_one_port_fans_out_to_three_actors(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        tee = system.spawn(Tee)
        books = [system.spawn(Book) for _ in range(3)]
        for book in books:
            system.connect(tee, book, port="out")
        for i in range(50):
            tee.send(Order(symbol=3, seq=i))
        for book in books:
            assert [o.seq for o in receive_all(book, 50)] == list(range(50))
        assert system.metrics()["routing"]["routed"] == 150


def test_a_splitter_sends_zero_one_or_five_messages_per_input(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        splitter, book = system.spawn(Splitter), system.spawn(Book)
        system.connect(splitter, book, port="out")
        for base, n in ((10, 0), (11, 1), (12, 5), (13, 0), (14, 5)):
            splitter.send(Burst(n=n, base=base))
        got = [(o.symbol, o.seq) for o in receive_all(book, 11)]
        assert got == [(11, 0)] + [(12, i) for i in range(5)] + [(14, i) for i in range(5)]
        with pytest.raises(rk.ReceiveTimeout):
            book.receive(timeout=0.3)  # the zero-message inputs sent nothing


def test_a_ring_of_1000_cells_runs_rule_30_over_send_to_like_numpy(actor_backend):
    n, steps, seed = 1000, 50, 12345
    with rk.ActorSystem(backend=actor_backend) as system:
        cells = system.spawn(Cell, count=n, queue_capacity=8)
        cells.broadcast(Start(steps=steps, seed=seed))
        deadline = time.monotonic() + 120
        while not (cells.state["step"] == steps).all() and time.monotonic() < deadline:
            time.sleep(0.01)
        v = (((np.arange(n, dtype=np.uint64) * 1103515245 + seed) & 0xFFFFFFFF) >> 16 & 1).astype(np.uint32)
        for _ in range(steps):
            v = np.roll(v, 1) ^ (v | np.roll(v, -1))
        assert (cells.state["step"] == steps).all()
        assert np.array_equal(cells.state["v"], v)
        routing = system.metrics()["routing"]
        assert routing["routed"] == 2 * n * steps and routing["invalid"] == 0


def test_a_timer_driven_actor_fires_20_times_at_least_its_delay_apart(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        ticker = system.spawn(Ticker)
        start = time.monotonic()
        ticker.send(Tick(n=0))
        got = [t.n for t in receive_all(ticker, 20, timeout=30)]
        took = time.monotonic() - start
        assert got == list(range(20))
        assert took >= 19 * 0.002  # 19 scheduled gaps of 2000 µs each
        assert ticker.state["fired"] == 20
        with pytest.raises(rk.ReceiveTimeout):
            ticker.receive(timeout=0.1)  # the 20th did not schedule another
        routing = system.metrics()["routing"]
        assert routing["timers_fired"] == 19 and routing["timers_pending"] == 0


def test_clocks_follow_causality_along_a_4_hop_chain(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        hops = [system.spawn(Hop) for _ in range(4)]
        book = system.spawn(Book)
        for a, b in zip(hops, [*hops[1:], book]):
            system.connect(a, b, port="out")
        sent = system.hlc.last
        hops[0].send(Order(symbol=1, seq=0))
        (reply,) = receive_all(book, 1)
        assert reply.seq == 4
        clocks = [ref.stats["hlc"] for ref in (*hops, book)]
        assert clocks[0] > sent  # the first hop merged the host's stamp
        assert all(a < b for a, b in zip(clocks, clocks[1:])), clocks  # each hop after its sender
        assert system.hlc.last > clocks[-1]  # the host merged the last reply


def test_a_cycle_of_full_queues_is_reported_not_hung(actor_backend):
    system = rk.ActorSystem(backend=actor_backend, drain_timeout=60)
    a, b = system.spawn(Doubler, queue_capacity=4), system.spawn(Doubler, queue_capacity=4)
    system.connect(a, b, port="out")
    system.connect(b, a, port="out")
    started = time.monotonic()
    a.send(Order(symbol=0, seq=0))  # every handled order sends two: the ring fills up
    deadline = time.monotonic() + 30
    while "send_cycle" not in system.health() and time.monotonic() < deadline:
        time.sleep(0.01)
    report = system.health()
    assert sorted(report["send_cycle"]) == sorted([a.name, b.name])
    assert report["live"] is False
    assert a.status == b.status == "blocked"
    assert sorted(system.metrics()["routing"]["cycle"]) == sorted([a.name, b.name])
    with pytest.raises(rk.SendCycleError, match=a.name) as caught:
        a.receive(timeout=None)  # its reply would never come
    assert set(caught.value.cycle) == {a.name, b.name}
    with pytest.raises(rk.SendCycleError):
        system.shutdown()  # drain gives up on the deadlock at once, stops every loop, then raises
    assert system.stopped and not system.abandoned
    assert time.monotonic() - started < 40  # far less than drain_timeout


def test_shutdown_drains_what_is_still_on_its_way_through_the_router(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        tee, book = system.spawn(Tee, queue_capacity=256), system.spawn(Book, queue_capacity=256)
        system.connect(tee, book, port="out")
        tee.send_many([Order(symbol=0, seq=i) for i in range(200)])
    # the with block drained: every order crossed the router and was handled before the stop
    assert book.stats["processed"] == 200
    assert [o.seq for o in book.receive_many(max_count=500, timeout=0)] == list(range(200))


def test_connect_checks_the_port_type_against_the_receivers_handlers():
    with rk.ActorSystem(backend="cpu") as system:
        tee, ticker = system.spawn(Tee), system.spawn(Ticker)
        with pytest.raises(TypeError, match=r"the port sends Order, and Ticker has no handler for it "
                                            r"\(it handles Tick\)"):
            system.connect(tee, ticker, port="out")
        with pytest.raises(ValueError, match=r"Tee has no port 'in' \(its ports: out\)"):
            system.connect(tee, system.spawn(Book), port="in")


def test_a_group_port_feeds_one_actor_or_a_group_of_its_size_and_refuses_another_size():
    with rk.ActorSystem(backend="cpu") as system:
        tees = system.spawn(Tee, count=4)
        book = system.spawn(Book, queue_capacity=64)
        system.connect(tees, book, port="out")  # every instance feeds the one book
        for i in range(4):
            tees[i].send(Order(symbol=i, seq=i))
        assert sorted(o.seq for o in receive_all(book, 4)) == [0, 1, 2, 3]
        books = system.spawn(Book, count=4)
        system.connect(tees, books, port="out")  # and instance by instance: tees[i] -> books[i] too
        tees[2].send(Order(symbol=2, seq=9))
        assert [o.seq for o in receive_all(books[2], 1)] == [9]
        assert [o.seq for o in receive_all(book, 1)] == [9]  # fan-out: the first connection still gets it
        with pytest.raises(ValueError, match="a group receives instance by instance"):
            system.connect(tees, system.spawn(Book, count=3), port="out")
        with pytest.raises(ValueError, match="Book has no port 'out'"):
            system.connect(book, books[1], port="out")


def test_unconnected_ports_and_targets_outside_the_group_are_counted_not_hung(actor_backend):
    from tests.actors.messaging_defs import Stray

    with rk.ActorSystem(backend=actor_backend) as system:
        group = system.spawn(Stray, count=3)
        group.broadcast(Order(symbol=1, seq=1))
        deadline = time.monotonic() + 30
        while int(group.processed.sum()) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        deadline = time.monotonic() + 30
        while system.metrics()["routing"]["unrouted"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        routing = system.metrics()["routing"]
        assert routing["unrouted"] == 3 and routing["invalid"] == 3 and routing["routed"] == 0

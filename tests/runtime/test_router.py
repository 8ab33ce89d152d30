"""The router (runtime/router.py) on hand-made queues: word arrays with the documented envelope,
filled and emptied here the way an actor's loop would (producer of ``sends``, consumer of
``routed``)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ringkernel.ringir import layout as L
from ringkernel.runtime.router import (
    Q_BAD_TARGET,
    Q_SENT,
    SEND_PORT,
    SEND_TIMER,
    SEND_TO,
    Member,
    Router,
    RouterThread,
)

H = L.QUEUE_HEADER_WORDS
SLOT = 8  # envelope (6 words) + 2 payload words


def queues(count: int, capacity: int, slot: int = SLOT) -> np.ndarray:
    words = H + capacity * slot
    array = np.zeros(count * words, dtype=np.uint32)
    regions = array.reshape(count, words)
    regions[:, L.Q_CAPACITY], regions[:, L.Q_MASK], regions[:, L.Q_SLOT_WORDS] = capacity, capacity - 1, slot
    return array


def member(name: str, count: int = 1, sends: int = 8, routed: int = 8, first_id: int = 1) -> Member:
    return Member(name, queues(count, sends), queues(count, routed), np.arange(first_id, first_id + count))


def send(m: Member, instance: int, kind: int, index: int, payload: int, hlc: int = 0,
         sequence: int = 0) -> None:
    """What a loop's send publishes: one slot, then the tail."""
    q = m.sq
    tail = int(q.header[instance, L.Q_TAIL])
    assert tail - int(q.header[instance, L.Q_HEAD]) < q.capacity, "test sends into a full queue"
    words = np.zeros(q.slot_words, dtype=np.uint32)
    words[L.ENV_TYPE_ID], words[L.ENV_SOURCE] = 77, m.actor_ids[instance]
    words[L.ENV_TARGET] = kind << 24 | index
    words[L.ENV_SEQUENCE] = sequence
    words[L.ENV_HLC_LO], words[L.ENV_HLC_HI] = hlc & 0xFFFFFFFF, hlc >> 32
    words[L.ENVELOPE_WORDS] = payload
    q.slots[instance, tail % q.capacity] = words
    q.header[instance, L.Q_TAIL] = tail + 1
    q.header[0, Q_SENT] = 1  # as the loop does after publishing (instance 0's header)


def take(m: Member, instance: int = 0) -> list[np.ndarray]:
    """Everything in one instance's ``routed``, as its loop would take it."""
    q = m.rq
    head, tail = int(q.header[instance, L.Q_HEAD]), int(q.header[instance, L.Q_TAIL])
    rows = [q.slots[instance, i % q.capacity].copy() for i in range(head, tail)]
    q.header[instance, L.Q_HEAD] = tail
    return rows


def payloads(rows: list[np.ndarray]) -> list[int]:
    return [int(r[L.ENVELOPE_WORDS]) for r in rows]


def routed_fill(m: Member, instance: int = 0) -> int:
    return int(m.rq.header[instance, L.Q_TAIL]) - int(m.rq.header[instance, L.Q_HEAD])


def test_send_to_keeps_each_senders_order_and_names_the_receiver():
    router = Router()
    g = member("Cell", count=4, sends=16, routed=16, first_id=10)
    router.add(g)
    for n in range(12):
        send(g, 0, SEND_TO, 1 + n % 3, n)
        send(g, 2, SEND_TO, 1 + n % 3, 100 + n)
    assert router.route() == 24
    for i in (1, 2, 3):
        rows = take(g, i)
        got = payloads(rows)
        assert [p for p in got if p < 100] == [n for n in range(12) if 1 + n % 3 == i]
        assert [p for p in got if p >= 100] == [100 + n for n in range(12) if 1 + n % 3 == i]
        assert {int(r[L.ENV_TARGET]) for r in rows} == {10 + i}  # delivered: target = the receiver's id
        assert {int(r[L.ENV_SOURCE]) for r in rows} == {10, 12}
    assert router.stats()["routed"] == 24
    assert router.pending() == 0
    assert all(g.sq.header[:, L.Q_HEAD] == g.sq.header[:, L.Q_TAIL])


def test_a_port_fans_out_to_every_connected_target_in_order_and_an_unconnected_port_is_counted():
    router = Router()
    a, b, c, d = (member(n, first_id=k) for k, n in enumerate("ABCD", 1))
    for m in (a, b, c, d):
        router.add(m)
    for target in (b, c, d):
        router.connect(a, 0, target)
    for n in range(5):
        send(a, 0, SEND_PORT, 0, n)
    send(a, 0, SEND_PORT, 1, 99)  # port 1: nobody connected
    router.route()
    for target in (b, c, d):
        assert payloads(take(target)) == [0, 1, 2, 3, 4]
    assert router.stats()["unrouted"] == 1
    assert router.stats()["routed"] == 15


def test_a_full_target_holds_its_sender_back_head_of_line_and_nothing_is_lost():
    router = Router()
    a, b, c = member("A", sends=8, first_id=1), member("B", routed=2, first_id=2), member("C", first_id=3)
    for m in (a, b, c):
        router.add(m)
    router.connect(a, 0, b)
    router.connect(a, 1, c)
    for n, port in enumerate((0, 0, 0, 1, 0)):
        send(a, 0, SEND_PORT, port, n)
    router.route()
    assert payloads(take(b)) == [0, 1]
    assert routed_fill(c) == 0  # message 3 waits behind message 2 (B was full)
    assert router.blocked == {0: 1}
    assert len(a.sq.fill().nonzero()[0]) == 1 and int(a.sq.fill()[0]) == 3
    router.route()
    assert payloads(take(b)) == [2, 4] and payloads(take(c)) == [3]
    assert router.pending() == 0


def test_a_partly_delivered_fan_out_message_is_never_delivered_twice():
    router = Router()
    a, b, c = member("A", first_id=1), member("B", routed=2, first_id=2), member("C", routed=8, first_id=3)
    for m in (a, b, c):
        router.add(m)
    router.connect(a, 0, c)  # C first: it gets its copy while B is full
    router.connect(a, 0, b)
    for n in range(4):
        send(a, 0, SEND_PORT, 0, n)
    router.route()
    assert payloads(take(c)) == [0, 1, 2]  # message 2's copy for C went; B holds 0 and 1
    assert payloads(take(b)) == [0, 1]
    assert router.skip[0] == 1
    router.route()
    assert payloads(take(b)) == [2, 3] and payloads(take(c)) == [3]
    assert router.pending() == 0 and router.skip[0] == 0


def test_a_blocked_sender_does_not_keep_room_from_another_sender():
    """S1's head waits for a full X; its later message to T must not take T's only slot from S2."""
    router = Router()
    s1, s2 = member("S1", first_id=1), member("S2", first_id=2)
    x, t = member("X", routed=2, first_id=3), member("T", routed=2, first_id=4)
    for m in (s1, s2, x, t):
        router.add(m)
    router.connect(s1, 0, x)
    router.connect(s1, 1, t)
    router.connect(s2, 0, t)
    x.rq.header[0, L.Q_TAIL] = 2  # X is full
    t.rq.header[0, L.Q_TAIL] = 1  # T has one free slot
    send(s1, 0, SEND_PORT, 0, 1)
    send(s1, 0, SEND_PORT, 1, 2)
    send(s2, 0, SEND_PORT, 0, 3)
    assert router.route() == 1
    t.rq.header[0, L.Q_HEAD] = 1
    assert payloads(take(t)) == [3]


def test_send_to_outside_the_group_and_unknown_kinds_are_counted_never_written():
    router = Router()
    g = member("G", count=2, first_id=1)
    router.add(g)
    send(g, 0, SEND_TO, 2, 1)  # group of 2: index 2 does not exist
    send(g, 0, 9, 0, 2)  # no such kind
    g.sq.header[1, Q_BAD_TARGET] = 3  # what the loop itself refused
    router.route()
    assert router.stats()["invalid"] == 5
    assert routed_fill(g, 0) == routed_fill(g, 1) == 0
    assert router.pending() == 0


class Clock:
    """A settable wall clock as an HLC value (µs << 16)."""

    def __init__(self, us: int) -> None:
        self.us = us

    def __call__(self) -> int:
        return self.us << L.HLC_LOGICAL_BITS


def test_a_timer_comes_back_after_at_least_its_delay_stamped_at_delivery():
    clock = Clock(1_000_000)
    router = Router(clock)
    a = member("A", first_id=5)
    router.add(a)
    stamp = (1_000_000 << 16) | 7
    send(a, 0, SEND_TIMER, 0, 42, hlc=stamp, sequence=1500)
    router.route()
    assert router.timers_pending == 1 and routed_fill(a) == 0
    clock.us = 1_001_499
    router.route()
    assert routed_fill(a) == 0
    assert router.next_due_us() == 1_001_500
    clock.us = 1_001_500
    router.route()
    (row,) = take(a)
    assert int(row[L.ENVELOPE_WORDS]) == 42 and int(row[L.ENV_TARGET]) == 5
    delivered = int(row[L.ENV_HLC_LO]) | int(row[L.ENV_HLC_HI]) << 32
    assert delivered == 1_001_500 << 16
    assert router.timers_pending == 0 and router.stats()["timers_fired"] == 1


def test_a_timer_is_never_stamped_before_its_send_and_waits_for_room():
    clock = Clock(2_000_000)
    router = Router(clock)
    a = member("A", routed=2, first_id=5)
    router.add(a)
    ahead = (2_000_000 << 16) | 0xFFF0  # the sender's clock ran ahead of the wall clock (logical part)
    send(a, 0, SEND_TIMER, 0, 1, hlc=ahead, sequence=0)
    a.rq.header[0, L.Q_TAIL] = 2  # its routed is full
    router.route()
    assert router.timers_pending == 1
    a.rq.header[0, L.Q_HEAD] = 2
    router.route()
    (row,) = take(a)
    assert int(row[L.ENV_HLC_LO]) | int(row[L.ENV_HLC_HI]) << 32 == ahead


def test_timers_of_one_actor_fire_in_due_order():
    clock = Clock(10_000)
    router = Router(clock)
    a = member("A", first_id=1)
    router.add(a)
    for n, delay in enumerate((300, 100, 200)):
        send(a, 0, SEND_TIMER, 0, n, hlc=10_000 << 16, sequence=delay)
    router.route()
    clock.us = 10_400
    router.route()
    assert payloads(take(a)) == [1, 2, 0]


def full_cycle(over_half: bool) -> tuple[Router, Member, Member]:
    router = Router()
    a, b = member("A", sends=4, routed=2, first_id=1), member("B", sends=4, routed=2, first_id=2)
    router.add(a)
    router.add(b)
    router.connect(a, 0, b)
    router.connect(b, 0, a)
    for m in (a, b):
        m.rq.header[0, L.Q_TAIL] = 2  # routed full: the loop cannot take it while its sends are over half
        for n in range(3 if over_half else 2):
            send(m, 0, SEND_PORT, 0, n)
    return router, a, b


def test_a_cycle_of_full_queues_is_reported_after_two_idle_rounds():
    router, a, b = full_cycle(over_half=True)
    assert router.route() == 0
    assert router.cycle is None  # one idle round is not proof yet
    assert router.route() == 0
    assert router.cycle == ("A", "B")
    assert router.blocked_names() == {"A", "B"}
    a.rq.header[0, L.Q_HEAD] = 1  # A took one: the cycle moves again
    assert router.route() == 1
    assert router.cycle is None


def test_full_queues_whose_loops_can_still_run_are_not_a_cycle():
    router, _, _ = full_cycle(over_half=False)  # sends only half full: the loops still take messages
    for _ in range(3):
        router.route()
    assert router.cycle is None
    assert router.blocked_names() == {"A", "B"}


def test_a_group_connected_to_a_group_of_another_size_is_refused():
    router = Router()
    a, b = member("A", count=3), member("B", count=2, first_id=4)
    router.add(a)
    router.add(b)
    with pytest.raises(ValueError, match="instance by instance"):
        router.connect(a, 0, b)
    router.connect(a, 0, b, dst_index=1)  # every instance of A to B[1]
    for i in range(3):
        send(a, i, SEND_PORT, 0, i)
    router.route()
    assert payloads(take(b, 1)) == [0, 1, 2] and routed_fill(b, 0) == 0


@pytest.mark.parametrize("watch_sent", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_random_traffic_is_delivered_once_in_per_sender_order(seed, watch_sent):
    """Many senders, small queues, fan-out and send_to mixed; receivers drain between rounds."""
    rng = np.random.default_rng(seed)
    router = Router(watch_sent=watch_sent)
    g = member("G", count=6, sends=8, routed=4, first_id=1)
    solo = member("S", sends=8, routed=2, first_id=7)
    router.add(g)
    router.add(solo)
    router.connect(g, 0, solo)
    router.connect(solo, 0, g, dst_index=3)
    router.connect(solo, 0, g, dst_index=5)
    expected: dict[tuple[int, int], list[int]] = {}
    got: dict[tuple[int, int], list[int]] = {}
    endpoints = [(g, i) for i in range(6)] + [(solo, 0)]
    serial = 0
    for _ in range(60):
        for e, (m, i) in enumerate(endpoints):
            for _ in range(int(rng.integers(0, 3))):
                if m.sq.fill()[i] >= m.sq.capacity:
                    break
                serial += 1
                if m is solo:
                    send(m, i, SEND_PORT, 0, serial)
                    for r in (3, 5):
                        expected.setdefault((e, r), []).append(serial)
                elif rng.random() < 0.5:
                    send(m, i, SEND_PORT, 0, serial)
                    expected.setdefault((e, 6), []).append(serial)
                else:
                    r = int(rng.integers(0, 6))
                    send(m, i, SEND_TO, r, serial)
                    expected.setdefault((e, r), []).append(serial)
        router.route()
        for r, (m, i) in enumerate(endpoints):
            if rng.random() < 0.7:
                for row in take(m, i):
                    got.setdefault((int(row[L.ENV_SOURCE]) - 1, r), []).append(int(row[L.ENVELOPE_WORDS]))
    for _ in range(200):
        router.route()
        for r, (m, i) in enumerate(endpoints):
            for row in take(m, i):
                got.setdefault((int(row[L.ENV_SOURCE]) - 1, r), []).append(int(row[L.ENVELOPE_WORDS]))
        if router.pending() == 0:
            break
    assert router.pending() == 0
    assert got == expected


def test_the_router_thread_delivers_and_wakes_the_receiver():
    router = Router()
    woke = []
    a = member("A", first_id=1)
    b = Member("B", queues(1, 8), queues(1, 8), [2], wake=lambda: woke.append(1))
    router.add(a)
    router.add(b)
    router.connect(a, 0, b)
    thread = RouterThread(router, idle=0.001)
    try:
        send(a, 0, SEND_PORT, 0, 5)
        thread.wake()
        deadline = time.monotonic() + 5
        while not routed_fill(b) and time.monotonic() < deadline:
            time.sleep(0.001)
        assert payloads(take(b)) == [5]
        assert woke
    finally:
        assert thread.close()
    assert thread.failure is None


def test_watching_sent_skips_members_whose_loops_did_not_send():
    router = Router(watch_sent=True)
    a, b = member("A", first_id=1), member("B", first_id=2)
    router.add(a)
    router.add(b)
    router.connect(a, 0, b)
    router.route()  # A is looked at once (it may have sent before it was added), then left alone
    send(a, 0, SEND_PORT, 0, 1)
    a.sq.header[0, Q_SENT] = 0  # as if the loop had not raised it yet
    assert router.route() == 0 and routed_fill(b) == 0
    a.sq.header[0, Q_SENT] = 1  # the loop's atomic or, after its publish
    assert router.route() == 1 and payloads(take(b)) == [1]
    assert a.sq.header[0, Q_SENT] == 0  # cleared by the router before it read the tails

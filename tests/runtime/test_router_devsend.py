"""The Python router on an MPSC ``routed`` queue (issue 23, device-side send_to): entries a loop
already delivered (kind 0) are freed uncounted, and room the loops took between the router's
look and its reservation never loses, doubles or reorders a message (leftover reserved slots are
published as skipped)."""

from __future__ import annotations

import numpy as np

from ringkernel.ringir import layout as L
from ringkernel.runtime.router import Member, Router

SLOT = 8
MSG = 0x1234


def queues(count: int, capacity: int) -> np.ndarray:
    words = L.queue_words(capacity, SLOT)
    array = np.zeros(count * words, dtype=np.uint32)
    for region in array.reshape(count, words):
        region[L.Q_CAPACITY], region[L.Q_MASK], region[L.Q_SLOT_WORDS] = capacity, capacity - 1, SLOT
    return array


def region(array: np.ndarray, count: int, i: int) -> np.ndarray:
    return array.reshape(count, -1)[i]


def publish(q: np.ndarray, rows: list[tuple[int, int, int]]) -> None:
    """Messages (type id, target word, payload word) appended to queue region ``q``."""
    slots = q[L.QUEUE_HEADER_WORDS :].reshape(-1, SLOT)
    for type_id, target, value in rows:
        tail = int(q[L.Q_TAIL])
        slot = slots[tail & int(q[L.Q_MASK])]
        slot[L.ENV_TYPE_ID], slot[L.ENV_TARGET], slot[L.ENVELOPE_WORDS] = type_id, target, value
        q[L.Q_TAIL] = tail + 1


def queued(q: np.ndarray) -> list[tuple[int, int]]:
    slots = q[L.QUEUE_HEADER_WORDS :].reshape(-1, SLOT)
    rows = [slots[p & int(q[L.Q_MASK])] for p in range(int(q[L.Q_HEAD]), int(q[L.Q_TAIL]))]
    return [(int(r[L.ENV_TYPE_ID]), int(r[L.ENVELOPE_WORDS])) for r in rows]


def group(n: int = 3, routed_capacity: int = 2):
    sends, routed = queues(n, 8), queues(n, routed_capacity)
    router = Router()
    router.add(Member("g", sends, routed, np.arange(1, n + 1)))
    return router, sends, routed


def test_entries_the_loop_delivered_are_freed_and_not_counted():
    router, sends, routed = group()
    to1 = L.send_target(L.SEND_TO, 1)
    publish(region(sends, 3, 0), [(MSG, L.send_target(L.SEND_DELIVERED, 0), 5), (MSG, to1, 6)])
    router.route()
    assert queued(region(routed, 3, 1)) == [(MSG, 6)]  # only the routed one
    q = region(sends, 3, 0)
    assert int(q[L.Q_HEAD]) == int(q[L.Q_TAIL]) == 2
    stats = router.stats()
    assert stats["routed"] == 1 and stats["invalid"] == stats["unrouted"] == 0


def test_room_taken_by_the_loops_meanwhile_loses_and_reorders_nothing(monkeypatch):
    router, sends, routed = group()
    full = region(routed, 3, 1)
    publish(full, [(MSG, 2, 100), (MSG, 2, 101)])  # instance 1's routed: full, as loops filled it
    to1, to2 = L.send_target(L.SEND_TO, 1), L.send_target(L.SEND_TO, 2)
    publish(region(sends, 3, 0), [(MSG, to1, 1), (MSG, to2, 2)])
    real_room = router._room
    monkeypatch.setattr(router, "_room", lambda: np.full(3, 2, dtype=np.int64))  # a look from before they did
    router.route()
    # instance 0's first send cannot go: neither may its second, though instance 2 had room
    assert queued(region(sends, 3, 0)) == [(MSG, 1), (MSG, 2)]
    assert queued(region(routed, 3, 2)) == [(L.SKIP_TYPE_ID, 0)]  # the slot it had reserved: skipped
    assert router.stats()["routed"] == 0
    monkeypatch.setattr(router, "_room", real_room)
    full[L.Q_HEAD] = 2  # instance 1's loop took its two messages
    region(routed, 3, 2)[L.Q_HEAD] = 1  # and instance 2's freed the skipped slot
    router.route()
    assert queued(region(routed, 3, 1)) == [(MSG, 1)]
    assert queued(region(routed, 3, 2)) == [(MSG, 2)]
    assert router.stats()["routed"] == 2

"""RingQueue batches (issue 17): one copy per run of slots, wrap-around, policies, drops."""

from __future__ import annotations

import numpy as np
import pytest

from ringkernel.ringir import layout as L
from ringkernel.runtime.hlc import Hlc
from ringkernel.runtime.queues import QueueFull, RingQueue


def _rows(first: int, count: int, words: int = 8) -> np.ndarray:
    rows = np.zeros((count, words), dtype=np.uint32)
    rows[:, 0] = np.arange(first, first + count)
    return rows


def test_batches_wrap_around_the_ring_in_order():
    q = RingQueue(8, 8)
    assert q.try_push_many(_rows(0, 5)) == 5
    assert list(q.pop_many(5)[:, 0]) == [0, 1, 2, 3, 4]
    assert q.try_push_many(_rows(5, 10)) == 8  # only 8 fit; they wrap past the end
    assert list(q.pop_many(3)[:, 0]) == [5, 6, 7]
    assert list(q.pop_many(100)[:, 0]) == [8, 9, 10, 11, 12]
    assert len(q.pop_many(4)) == 0
    assert q.stats() == {"enqueued": 13, "dequeued": 13, "rejected": 0, "dropped": 0}


def test_reject_sends_the_prefix_that_fits():
    q = RingQueue(4, 8, policy="reject")
    with pytest.raises(QueueFull) as info:
        q.push_many(_rows(0, 6))
    assert info.value.sent == 4 and q.stats()["rejected"] == 2
    assert list(q.pop_many(10)[:, 0]) == [0, 1, 2, 3]


def test_pop_many_honours_drop_requests_first():
    q = RingQueue(4, 8, policy="drop_oldest")
    q.try_push_many(_rows(0, 4))
    q.buffer[L.Q_DROP_REQUESTS] = 2
    assert list(q.pop_many(10)[:, 0]) == [2, 3]
    assert q.stats()["dropped"] == 2


def test_tick_many_gives_consecutive_stamps_after_every_earlier_one():
    clock = Hlc()
    before = clock.tick()
    first = clock.tick_many(1000)
    assert first > before and clock.last >= first + 999
    assert clock.tick() > first + 999

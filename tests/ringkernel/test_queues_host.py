"""Host-side SPSC ring queues: capacity rules, FIFO across wrap-around, policies."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ringkernel.ringir import layout as L
from ringkernel.runtime.queues import QueueFull, ReceiveTimeout, RingQueue


def msg(i: int, words: int = 8) -> np.ndarray:
    out = np.zeros(words, dtype=np.uint32)
    out[0], out[6] = 1, i
    return out


@pytest.mark.parametrize("capacity", [0, 1, 3, 10, 1000, -4, 2.0, True])
def test_capacity_must_be_a_power_of_two(capacity):
    with pytest.raises(ValueError, match="power of two"):
        RingQueue(capacity, 8)


def test_header_follows_the_layout():
    q = RingQueue(16, 8)
    header = q.buffer[: L.QUEUE_HEADER_WORDS].view(L.QUEUE_HEADER_DTYPE)[0]
    assert (header["capacity"], header["mask"], header["slot_words"]) == (16, 15, 8)
    assert q.buffer.size == L.QUEUE_HEADER_WORDS + 16 * 8


def test_fifo_across_many_wrap_arounds():
    q = RingQueue(4, 8)
    got = []
    for i in range(1000):
        assert q.try_push(msg(i))
        if i % 3 == 2:
            while (m := q.try_pop()) is not None:
                got.append(int(m[6]))
    while (m := q.try_pop()) is not None:
        got.append(int(m[6]))
    assert got == list(range(1000))
    assert q.stats() == {"enqueued": 1000, "dequeued": 1000, "rejected": 0, "dropped": 0}


def test_indices_wrap_at_32_bits():
    q = RingQueue(4, 8)
    q.buffer[L.Q_HEAD] = q.buffer[L.Q_TAIL] = 2**32 - 2
    for i in range(4):
        assert q.try_push(msg(i))
    assert not q.try_push(msg(9)) and len(q) == 4
    assert [int(q.try_pop()[6]) for _ in range(4)] == [0, 1, 2, 3]


def test_reject_policy_counts():
    q = RingQueue(2, 8, policy="reject")
    q.push(msg(0))
    q.push(msg(1))
    with pytest.raises(QueueFull, match="rejected"):
        q.push(msg(2))
    assert q.stats()["rejected"] == 1 and len(q) == 2


def test_block_policy_times_out_then_raises():
    q = RingQueue(2, 8)
    q.push(msg(0))
    q.push(msg(1))
    start = time.monotonic()
    with pytest.raises(QueueFull, match="stayed full"):
        q.push(msg(2), timeout=0.05)
    assert time.monotonic() - start >= 0.045


def test_drop_oldest_drops_one_and_counts_it():
    q = RingQueue(2, 8, policy="drop_oldest")
    q.push(msg(0))
    q.push(msg(1))
    got = []
    consumer = threading.Thread(target=lambda: (time.sleep(0.05), got.append(int(q.pop(1.0)[6]))))
    consumer.start()
    q.push(msg(2), timeout=2.0)
    consumer.join()
    got.append(int(q.pop(1.0)[6]))
    assert got == [1, 2]
    assert q.stats()["dropped"] == 1


def test_pop_timeout():
    with pytest.raises(ReceiveTimeout):
        RingQueue(2, 8).pop(0.01)


def test_concurrent_producer_and_consumer_lose_nothing():
    q = RingQueue(8, 8)
    n = 20_000

    def produce() -> None:
        for i in range(n):
            q.push(msg(i), timeout=10.0)

    t = threading.Thread(target=produce)
    t.start()
    got = [int(q.pop(10.0)[6]) for _ in range(n)]
    t.join()
    assert got == list(range(n))

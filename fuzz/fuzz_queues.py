"""SPSC ring queues against a Python model: nothing lost, duplicated or reordered; counters exact.

One input is one queue (capacity, slot size, policy, and the starting value of
head = tail, often just below 2**32 so the indices wrap) and a sequence of
producer and consumer operations, interleaved as one thread would run them:
``try_push``, ``push`` (never waiting: timeout 0), ``try_pop``, ``pop``
(timeout 0), and reads of ``len`` and ``stats``.  The model is a deque plus
the counters the docstring of ``ringkernel.runtime.queues`` promises:

- a push that fits is enqueued (``enqueued`` + 1);
- ``reject`` on a full queue raises ``QueueFull`` (``rejected`` + 1);
- ``block`` and ``drop_oldest`` on a full queue wait; with timeout 0 they raise
  ``QueueFull`` (``rejected`` + 1); ``drop_oldest`` first files a drop request,
  which the consumer serves by discarding the oldest message (``dropped`` + 1)
  before it hands out the next one;
- a pop returns the oldest message (``dequeued`` + 1), or nothing when empty.

Every message carries a unique sequence number, so a loss, duplicate or
reordering shows as a mismatch with the model.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from fuzz.harness import Finding
from ringkernel.ringir import layout as L
from ringkernel.runtime.queues import POLICIES, QueueFull, ReceiveTimeout, RingQueue

SMOKE_RUNS = 2000
_MASK32 = 0xFFFFFFFF


def test_one_input(data: bytes) -> None:
    import atheris

    fdp = atheris.FuzzedDataProvider(data)
    capacity = 1 << fdp.ConsumeIntInRange(1, 6)
    slot_words = 1 << fdp.ConsumeIntInRange(3, 5)
    policy = POLICIES[fdp.ConsumeIntInRange(0, len(POLICIES) - 1)]
    queue = RingQueue(capacity, slot_words, policy, name="fuzzq")
    start = (_MASK32 - fdp.ConsumeIntInRange(0, 2 * capacity)) if fdp.ConsumeBool() else 0
    queue.buffer[L.Q_HEAD] = queue.buffer[L.Q_TAIL] = start

    model: deque[np.ndarray] = deque()
    counts = {"enqueued": 0, "dequeued": 0, "rejected": 0, "dropped": 0}
    pending_drops = 0
    sequence = 0

    def serve_drops() -> None:
        """The consumer discards one oldest message per pending request, before popping."""
        nonlocal pending_drops
        while pending_drops and model:
            model.popleft()
            pending_drops -= 1
            counts["dropped"] += 1

    def expect_pop(got: np.ndarray | None, where: str) -> None:
        serve_drops()
        want = model.popleft() if model else None
        if want is None:
            if got is not None:
                raise Finding(f"{where}: popped {got[:2]} from an empty queue")
            return
        counts["dequeued"] += 1
        if got is None:
            raise Finding(f"{where}: queue said empty, model holds {len(model) + 1} message(s)")
        if not np.array_equal(got[: len(want)], want):
            raise Finding(f"{where}: popped message {got[:2]}, expected {want[:2]} (lost or reordered)")

    for _ in range(fdp.ConsumeIntInRange(0, 200)):
        op = fdp.ConsumeIntInRange(0, 5)
        if op <= 1:
            sequence += 1
            length = fdp.ConsumeIntInRange(1, slot_words)
            words = np.array(
                [sequence, *(fdp.ConsumeIntInRange(0, _MASK32) for _ in range(length - 1))],
                dtype=np.uint32,
            )
            full = len(model) >= capacity
            if op == 0:
                pushed = queue.try_push(words)
                if pushed == full:
                    raise Finding(f"try_push returned {pushed} with {len(model)}/{capacity} in the model")
            else:
                try:
                    queue.push(words, timeout=0)
                    pushed = True
                except QueueFull:
                    pushed = False
                if pushed == full:
                    raise Finding(f"push {'succeeded' if pushed else 'failed'} with {len(model)}/{capacity}")
                if not pushed:
                    counts["rejected"] += 1
                    if policy == "drop_oldest":
                        pending_drops += 1
            if pushed:
                model.append(words)
                counts["enqueued"] += 1
        elif op == 2:
            expect_pop(queue.try_pop(), "try_pop")
        elif op == 3:
            try:
                got = queue.pop(timeout=0)
            except ReceiveTimeout:
                got = None
            expect_pop(got, "pop")
        elif op == 4:
            if len(queue) != len(model):
                raise Finding(f"len(queue) = {len(queue)}, model holds {len(model)}")
        else:
            stats = queue.stats()
            want = {k: v & _MASK32 for k, v in counts.items()}
            if stats != want:
                raise Finding(f"counters {stats}, expected {want}")
    # Drain: every message still queued comes out, in order, after the pending drops.
    while True:
        got = queue.try_pop()
        expect_pop(got, "drain")
        if got is None:
            break
    if queue.stats() != {k: v & _MASK32 for k, v in counts.items()}:
        raise Finding(f"counters after draining {queue.stats()}, expected {counts}")

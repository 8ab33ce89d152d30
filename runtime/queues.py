"""The host side of RingKernel's single-producer single-consumer ring queues.

A queue is one ``uint32`` numpy array laid out as ``ringkernel.ringir.layout`` says:
a header (head, tail, capacity, mask, slot size, counters) and
``capacity`` slots.  ``head`` is written only by the consumer, ``tail`` only
by the producer; both only grow (mod 2**32), so ``tail - head`` is the fill.

Memory order (C11 terms).  The producer writes a slot, then publishes it
with a *release* store of ``tail``; the consumer *acquire*-loads ``tail``
before reading the slot, and releases the slot with a release store of
``head``.  On the device side the actor loop uses atomic read-modify-writes
(sequentially consistent on the host JIT) plus ``fence``.  On the Python side
each numpy element access is one aligned 32-bit load or store, and
:func:`fence` (a lock round trip, i.e. a full barrier on every CPU) sits
between the slot access and the index update, so the protocol holds without
relying on x86's strong ordering.

Batches.  :meth:`RingQueue.try_push_many` and :meth:`RingQueue.pop_many` move
many messages with one vectorised numpy copy (at most two, where the ring
wraps) and *one* fence pair per batch: the acquire before the copy covers
every slot of the batch, the release after it publishes them all with one
store of ``tail`` (or frees them all with one store of ``head``).  The
per-message protocol is the special case of a batch of one.

Policies for a full queue (nothing is lost silently):

- ``"block"`` (default): wait up to the timeout, then raise :class:`QueueFull`.
- ``"reject"``: raise :class:`QueueFull` at once; the ``rejected`` counter grows.
- ``"drop_oldest"``: ask the consumer to discard the oldest message (it bumps
  ``dropped``), then enqueue; the consumer side does the discarding, so the
  single-writer rule of ``head`` holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from ringkernel.ringir import layout as L

POLICIES = ("block", "reject", "drop_oldest")
_MASK32 = 0xFFFFFFFF
_barrier_lock = threading.Lock()


class QueueFull(Exception):
    """A message could not be enqueued: the queue stayed full (see the queue's policy).

    ``sent``: for a batch, how many of its leading messages were enqueued before it.
    """

    sent = 0


class ReceiveTimeout(TimeoutError):
    """No message arrived before the timeout."""


def fence() -> None:
    """A full memory barrier from Python: taking and releasing a lock fences on every CPU."""
    with _barrier_lock:
        pass


class Waiter:
    """Polls politely: a few yields, then sleeps growing to 1 ms, until a deadline."""

    def __init__(self, timeout: float | None) -> None:
        self.deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        self.rounds = 0

    def wait(self) -> bool:
        """Sleeps a little; False once the deadline has passed."""
        if self.expired():
            return False
        time.sleep(self.pause())
        return True

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def pause(self) -> float:
        """The next sleep, in seconds (for callers that sleep themselves, e.g. in asyncio)."""
        self.rounds += 1
        return 0 if self.rounds < 50 else min(1e-3, 20e-6 * (self.rounds - 49))


class RingQueue:
    """An SPSC ring over a ``uint32`` buffer shared with a device or a native thread."""

    def __init__(self, capacity: int, slot_words: int, policy: str = "block", name: str = "queue") -> None:
        L.check_capacity(capacity)
        if slot_words < L.ENVELOPE_WORDS or slot_words & (slot_words - 1):
            raise ValueError(f"slot size must be a power of two of at least {L.ENVELOPE_WORDS} words")
        if policy not in POLICIES:
            raise ValueError(f"unknown queue policy {policy!r}; choose one of {', '.join(POLICIES)}")
        self.capacity = capacity
        self.slot_words = slot_words
        self.policy = policy
        self.name = name
        self.buffer = np.zeros(L.queue_words(capacity, slot_words), dtype=np.uint32)
        h = self.buffer
        h[L.Q_CAPACITY], h[L.Q_MASK], h[L.Q_SLOT_WORDS] = capacity, capacity - 1, slot_words
        self.slots = self.buffer[L.QUEUE_HEADER_WORDS :].reshape(capacity, slot_words)

    # --- indices ---

    def __len__(self) -> int:
        return (int(self.buffer[L.Q_TAIL]) - int(self.buffer[L.Q_HEAD])) & _MASK32

    def stats(self) -> dict[str, int]:
        """The queue's counters: enqueued, dequeued, rejected, dropped."""
        b = self.buffer
        return {k: int(b[L.Q[k]]) for k in ("enqueued", "dequeued", "rejected", "dropped")}

    # --- producer side ---

    def try_push(self, words: np.ndarray) -> bool:
        """Publishes one message (its words) if a slot is free; False when full."""
        b = self.buffer
        tail = int(b[L.Q_TAIL])
        if (tail - int(b[L.Q_HEAD])) & _MASK32 >= self.capacity:
            return False
        fence()  # acquire: the consumer is done with the slot we are about to overwrite
        self.slots[tail & (self.capacity - 1), : len(words)] = words
        fence()  # release: the slot's words before the new tail
        b[L.Q_TAIL] = (tail + 1) & _MASK32
        b[L.Q_ENQUEUED] = (int(b[L.Q_ENQUEUED]) + 1) & _MASK32
        return True

    def push(
        self, words: np.ndarray, timeout: float | None = 1.0, interrupt: Callable[[], None] | None = None
    ) -> None:
        """Enqueues ``words`` following the queue's policy; raises :class:`QueueFull`.

        ``interrupt`` is called between attempts and raises to give up early
        (the actor system stops): a blocked producer never outlives its consumer.
        """
        if self.try_push(words):
            return
        b = self.buffer
        if self.policy == "reject":
            b[L.Q_REJECTED] = (int(b[L.Q_REJECTED]) + 1) & _MASK32
            raise QueueFull(f"{self.name} is full ({self.capacity} messages); the message was rejected")
        if self.policy == "drop_oldest":
            b[L.Q_DROP_REQUESTS] = (int(b[L.Q_DROP_REQUESTS]) + 1) & _MASK32
        waiter = Waiter(timeout)
        while not self.try_push(words):
            if interrupt is not None:
                interrupt()
            if not waiter.wait():
                b[L.Q_REJECTED] = (int(b[L.Q_REJECTED]) + 1) & _MASK32
                raise QueueFull(
                    f"{self.name} stayed full ({self.capacity} messages) for {timeout} s; "
                    "the consumer is not keeping up (raise queue_capacity or the timeout)"
                )

    def try_push_many(self, rows: np.ndarray) -> int:
        """Publishes the first k rows of ``rows`` (``(n, slot_words)`` u32) that fit; returns k.

        One acquire fence, one copy per contiguous run of slots, one release
        fence and one store of ``tail`` for the whole batch.
        """
        b = self.buffer
        tail = int(b[L.Q_TAIL])
        free = self.capacity - ((tail - int(b[L.Q_HEAD])) & _MASK32)
        count = min(free, len(rows))
        if count <= 0:
            return 0
        fence()  # acquire: the consumer is done with every slot we are about to overwrite
        done = 0
        for first, run in _runs(tail & (self.capacity - 1), count, self.capacity):
            self.slots[first : first + run, : rows.shape[1]] = rows[done : done + run]
            done += run
        fence()  # release: every slot's words before the new tail
        b[L.Q_TAIL] = (tail + count) & _MASK32
        b[L.Q_ENQUEUED] = (int(b[L.Q_ENQUEUED]) + count) & _MASK32
        return count

    def push_many(
        self, rows: np.ndarray, timeout: float | None = 1.0, interrupt: Callable[[], None] | None = None
    ) -> int:
        """Enqueues every row of ``rows`` in order, as room appears, following the policy.

        Returns how many were enqueued (all of them, unless it raises).  On
        :class:`QueueFull` the exception's ``sent`` attribute says how many
        leading rows were enqueued before it; the rest were not.
        ``"drop_oldest"`` requests one drop per row that finds the queue full.
        """
        sent = self.try_push_many(rows)
        waiter = Waiter(timeout)
        while sent < len(rows):
            if self.policy == "reject":
                self._count(L.Q_REJECTED, len(rows) - sent)
                raise _full(
                    f"{self.name} is full ({self.capacity} messages); "
                    f"{len(rows) - sent} of {len(rows)} messages were rejected",
                    sent,
                )
            if self.policy == "drop_oldest":
                self._count(L.Q_DROP_REQUESTS, 1)
            while (pushed := self.try_push_many(rows[sent:])) == 0:
                if interrupt is not None:
                    interrupt()
                if not waiter.wait():
                    self._count(L.Q_REJECTED, len(rows) - sent)
                    raise _full(
                        f"{self.name} stayed full ({self.capacity} messages) for {timeout} s; "
                        f"{len(rows) - sent} of {len(rows)} messages were not sent",
                        sent,
                    )
            sent += pushed
            waiter = Waiter(timeout)  # progress: the timeout is for one stretch without room
        return sent

    def _count(self, word: int, n: int) -> None:
        self.buffer[word] = (int(self.buffer[word]) + n) & _MASK32

    # --- consumer side ---

    def pop_many(self, max_count: int) -> np.ndarray:
        """Up to ``max_count`` of the oldest messages as a ``(k, slot_words)`` copy (k may be 0).

        Honours pending drop-oldest requests first (as :meth:`try_pop` does),
        then copies the batch with one acquire fence, one copy per contiguous
        run and one release store of ``head``.
        """
        b = self.buffer
        empty = np.zeros((0, self.slot_words), dtype=np.uint32)
        while int(b[L.Q_DROP_REQUESTS]) != int(b[L.Q_DROPS_DONE]):
            if self.try_pop_dropping_only():
                continue
            return empty
        head = int(b[L.Q_HEAD])
        count = min((int(b[L.Q_TAIL]) - head) & _MASK32, max_count)
        if count <= 0:
            return empty
        fence()  # acquire: the slots' words after the tail that published them
        runs = _runs(head & (self.capacity - 1), count, self.capacity)
        parts = [self.slots[first : first + run] for first, run in runs]
        rows = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
        fence()  # release: done reading before the producer may reuse the slots
        b[L.Q_HEAD] = (head + count) & _MASK32
        self._count(L.Q_DEQUEUED, count)
        return rows

    def try_pop_dropping_only(self) -> bool:
        """Honours one pending drop-oldest request if a message is queued; True if it did."""
        b = self.buffer
        head = int(b[L.Q_HEAD])
        if int(b[L.Q_TAIL]) == head:
            return False
        fence()
        self._count(L.Q_DROPS_DONE, 1)
        self._count(L.Q_DROPPED, 1)
        b[L.Q_HEAD] = (head + 1) & _MASK32
        return True

    def try_pop(self) -> np.ndarray | None:
        """A copy of the oldest message's words, or None when the queue is empty."""
        b = self.buffer
        while True:
            head = int(b[L.Q_HEAD])
            if int(b[L.Q_TAIL]) == head:
                return None
            fence()  # acquire: the slot's words after the tail that published them
            if int(b[L.Q_DROP_REQUESTS]) != int(b[L.Q_DROPS_DONE]):
                b[L.Q_DROPS_DONE] = (int(b[L.Q_DROPS_DONE]) + 1) & _MASK32
                b[L.Q_DROPPED] = (int(b[L.Q_DROPPED]) + 1) & _MASK32
                b[L.Q_HEAD] = (head + 1) & _MASK32
                continue
            words = self.slots[head & (self.capacity - 1)].copy()
            fence()  # release: done reading before the producer may reuse the slot
            b[L.Q_HEAD] = (head + 1) & _MASK32
            b[L.Q_DEQUEUED] = (int(b[L.Q_DEQUEUED]) + 1) & _MASK32
            return words

    def pop(self, timeout: float | None = None) -> np.ndarray:
        """Waits up to ``timeout`` seconds for a message; raises :class:`ReceiveTimeout`."""
        waiter = Waiter(timeout)
        while True:
            words = self.try_pop()
            if words is not None:
                return words
            if not waiter.wait():
                raise ReceiveTimeout(f"no message on {self.name} within {timeout} s")


def _runs(first: int, count: int, capacity: int) -> list[tuple[int, int]]:
    """Slots ``first, first + 1, ...`` (``count`` of them) of a ring as at most two runs."""
    head = min(count, capacity - first)
    return [(first, head), (0, count - head)] if count > head else [(first, head)]


def _full(text: str, sent: int) -> QueueFull:
    error = QueueFull(text)
    error.sent = sent
    return error


__all__ = ["RingQueue", "QueueFull", "ReceiveTimeout", "POLICIES", "fence", "Waiter"]

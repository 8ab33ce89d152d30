"""The host side of RingKernel's single-producer single-consumer ring queues.

A queue is one ``uint32`` numpy array laid out as ``ringkernel.ringir.layout`` says:
a header (head, tail, capacity, mask, slot size, counters) and
``capacity`` slots.  ``head`` is written only by the consumer, ``tail`` only
by the producer; both only grow (mod 2**32), so ``tail - head`` is the fill.

Memory order (C11 terms).  The producer writes a slot, then publishes it
with a *release* store of ``tail``; the consumer *acquire*-loads ``tail``
before reading the slot, and releases the slot with a release store of
``head``.  The device side is the actor loop; the host side is
:mod:`ringkernel.runtime.native_queue`: the same protocol as RingIR kernels
JIT-compiled for this CPU, one ctypes call per batch (atomic index reads
and writes, a seq_cst ``fence`` between the slot copy and the index
update).  :func:`fence` remains for the host's control flags.

Batches.  :meth:`RingQueue.try_push_many` and :meth:`RingQueue.pop_many` move
many messages in one native call: one acquire of the other side's index,
one copy of every slot, one release fence and one store of ``tail`` (or
``head``).  The per-message protocol is the special case of a batch of one.

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
from ringkernel.runtime import native_queue

POLICIES = ("block", "reject", "drop_oldest")
_MASK32 = 0xFFFFFFFF
SMALL_POP = 64  # pops of up to this many messages copy through a buffer bound once
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
        self._push_args = np.zeros(4, dtype=np.uint32)
        self._one_args = np.zeros(4, dtype=np.uint32)
        self._one_args[0] = 1
        self._pop_args = np.zeros(4, dtype=np.uint32)
        self.stage = np.zeros((1, slot_words), dtype=np.uint32)  # the producer's next single message
        self.stage_bytes = self.stage.data.cast("B")  # the same bytes, for struct.pack_into
        self._small = np.zeros((min(capacity, SMALL_POP), slot_words), dtype=np.uint32)  # small pops
        self.doorbell = np.zeros(L.CONTROL_WORDS, dtype=np.uint32)  # no loop parks on it: never rings
        self.bell = np.zeros(L.QUEUE_HEADER_WORDS, dtype=np.uint32)
        self.rings = False
        self.attach(np.zeros(L.queue_words(capacity, slot_words), dtype=np.uint32))

    def attach(self, buffer: np.ndarray) -> None:
        """Makes ``buffer`` (zeroed ``uint32`` words, e.g. memory a device shares) the queue's memory."""
        words = L.queue_words(self.capacity, self.slot_words)
        if buffer.dtype != np.uint32 or buffer.size != words:
            raise ValueError(f"{self.name}: a queue needs {words} u32 words")
        if not buffer.flags.c_contiguous:
            raise ValueError(f"{self.name}: queue memory must be contiguous")
        buffer[L.Q_CAPACITY], buffer[L.Q_MASK] = self.capacity, self.capacity - 1
        buffer[L.Q_SLOT_WORDS] = self.slot_words
        self.buffer = buffer
        self.slots = buffer[L.QUEUE_HEADER_WORDS :].reshape(self.capacity, self.slot_words)
        self._bind()

    def ring_on_push(self, ctrl: np.ndarray, bell: np.ndarray) -> None:
        """Every push also rings the loop whose control block is ``ctrl`` if it is parked
        (one native call publishes and wakes); its doorbell is the ``bell`` word of
        ``bell``, the words of its K2K queue."""
        self.doorbell, self.bell, self.rings = ctrl, bell, True
        self._bind()

    def _bind(self) -> None:
        buffer = self.buffer
        ring = (self.doorbell, self.bell)
        self._push = native_queue.Call("rk_queue_push", buffer, None, self._push_args, *ring)
        self._push_one = native_queue.Call("rk_queue_push", buffer, self.stage, self._one_args, *ring)
        self._pop = native_queue.Call("rk_queue_pop", buffer, None, self._pop_args)
        self._pop_small = native_queue.Call("rk_queue_pop", buffer, self._small, self._pop_args)

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
        if len(words) > self.slot_words:
            raise ValueError(f"a message of {len(words)} words does not fit a {self.slot_words}-word slot")
        self.stage[0, : len(words)] = words
        return self.try_push_staged(len(words))

    def try_push_staged(self, words: int) -> bool:
        """Publishes the first ``words`` words of :attr:`stage` as one message if a slot is free."""
        args = self._one_args
        args[1] = words
        self._push_one.run()
        return bool(args[2])

    def push(
        self, words: np.ndarray, timeout: float | None = 1.0, interrupt: Callable[[], None] | None = None
    ) -> None:
        """Enqueues ``words`` following the queue's policy; raises :class:`QueueFull`.

        ``interrupt`` is called between attempts and raises to give up early
        (the actor system stops): a blocked producer never outlives its consumer.
        """
        if len(words) > self.slot_words:
            raise ValueError(f"a message of {len(words)} words does not fit a {self.slot_words}-word slot")
        self.stage[0, : len(words)] = words
        self.push_staged(len(words), timeout, interrupt)

    def push_staged(
        self, words: int, timeout: float | None = 1.0, interrupt: Callable[[], None] | None = None
    ) -> None:
        """:meth:`push` of the first ``words`` words of :attr:`stage` (the caller packed them there)."""
        if self.try_push_staged(words):
            return
        b = self.buffer
        if self.policy == "reject":
            b[L.Q_REJECTED] = (int(b[L.Q_REJECTED]) + 1) & _MASK32
            raise QueueFull(f"{self.name} is full ({self.capacity} messages); the message was rejected")
        if self.policy == "drop_oldest":
            b[L.Q_DROP_REQUESTS] = (int(b[L.Q_DROP_REQUESTS]) + 1) & _MASK32
        waiter = Waiter(timeout)
        while not self.try_push_staged(words):
            if interrupt is not None:
                interrupt()
            if not waiter.wait():
                b[L.Q_REJECTED] = (int(b[L.Q_REJECTED]) + 1) & _MASK32
                raise QueueFull(
                    f"{self.name} stayed full ({self.capacity} messages) for {timeout} s; "
                    "the consumer is not keeping up (raise queue_capacity or the timeout)"
                )

    def try_push_many(self, rows: np.ndarray) -> int:
        """Publishes the first k rows of ``rows`` (``(n, words)`` u32, words <= slot size) that fit;
        returns k.

        One native call: one acquire of ``head``, one copy, one release fence
        and one store of ``tail`` for the whole batch.
        """
        if rows.dtype != np.uint32 or rows.ndim != 2 or not rows.flags.c_contiguous:
            rows = np.ascontiguousarray(rows, dtype=np.uint32).reshape(len(rows), -1)
        if rows.shape[1] > self.slot_words:
            raise ValueError(f"a row of {rows.shape[1]} words does not fit a {self.slot_words}-word slot")
        if len(rows) == 0:
            return 0
        args = self._push_args
        args[0], args[1] = len(rows), rows.shape[1]
        self._push.set(1, rows)
        self._push.run()
        return int(args[2])

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

        One native call: honours pending drop-oldest requests first (each
        discards the oldest message), then one acquire of ``tail``, one copy
        and one release store of ``head``.
        """
        args = self._pop_args
        small = self._small
        if max_count <= len(small) or len(self) <= len(small):  # via the bound buffer: no pointer to look up
            args[0] = min(max_count, len(small))
            self._pop_small.run()
            return small[: int(args[1])].copy()
        count = min(len(self), max_count)
        args[0] = count
        rows = np.empty((count, self.slot_words), dtype=np.uint32)
        self._pop.set(1, rows)
        self._pop.run()
        taken = int(args[1])
        return rows if taken == count else rows[:taken].copy()

    def try_pop(self) -> np.ndarray | None:
        """A copy of the oldest message's words, or None when the queue is empty."""
        rows = self.pop_many(1)
        return rows[0] if len(rows) else None

    def pop(self, timeout: float | None = None) -> np.ndarray:
        """Waits up to ``timeout`` seconds for a message; raises :class:`ReceiveTimeout`."""
        waiter = Waiter(timeout)
        while True:
            words = self.try_pop()
            if words is not None:
                return words
            if not waiter.wait():
                raise ReceiveTimeout(f"no message on {self.name} within {timeout} s")


def _full(text: str, sent: int) -> QueueFull:
    error = QueueFull(text)
    error.sent = sent
    return error


__all__ = ["RingQueue", "QueueFull", "ReceiveTimeout", "POLICIES", "fence", "Waiter"]

"""The pump's side of actor messaging (wgpu, metal): mirrors of the ``sends`` and ``routed``
queues, so the system's :class:`~ringkernel.runtime.router.Router` runs on host arrays between
dispatches (``runtime/actor_pump.py`` calls these; they import its helpers when called, as it
imports this module).

``routed`` is produced by the host (the router) and consumed by the loop, like ``h2k``: a round
uploads the slots published since the last upload and the producer words, and reads back the
consumer words.  ``sends`` is produced by the loop and consumed by the router, like an output
queue the host reads: a round uploads its consumer words (the router's ``head``) and reads
back its header and the slots the dispatch could have filled (from ``tail``, as many as were
free).

A loop that delivers ``send_to`` sends directly (``docs/layout.md``, "Direct sends") is a
second producer of ``routed`` on the device, and may wake instances the round did not expect
to run.  Once a round sees an actor's ``direct`` counters move, the actor is *direct*
(:func:`note_direct`): that round reads back everything once more, and from then on each
round reads back every instance's queues and takes ``routed`` whole (slots and producer
words too), so the mirror is exact before the router pushes into it and an upload never
writes back a slot or a ``tail`` older than the device's.  (The device is idle between a
round's read-back and the next upload, so exact is possible.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ringkernel.ringir import layout as L
from ringkernel.runtime.queues import fence

TALK_QUEUES = ("sends", "routed")
H = L.QUEUE_HEADER_WORDS
PRODUCER_LINE = slice(16, H)
CONSUMER_LINE = slice(0, 16)
_CONSUMER_WORDS = [L.Q_DEQUEUED, L.Q_DROPS_DONE, L.Q_DROPPED]
_MASK32 = 0xFFFFFFFF


def talks(memory: Any) -> bool:
    """Whether ``memory`` has the two messaging queues (every actor does once they are bound)."""
    return getattr(memory, "sends", None) is not None and getattr(memory, "routed", None) is not None


def fill(queue: np.ndarray) -> int:
    return (int(queue[L.Q_TAIL]) - int(queue[L.Q_HEAD])) & _MASK32


# --- one actor ---


def upload(runtime: Any, actor: Any) -> None:
    """The host's words of one actor's ``routed`` (new slots, producer words) and ``sends``
    (consumer words) to the device."""
    from ringkernel.runtime.actor_pump import ring_ranges

    m = actor.memory
    routed, buf = m.routed, actor.buffer("routed")
    entry = runtime.shared[id(routed)]
    tail = int(routed[L.Q_TAIL])
    fence()  # acquire: the slots up to ``tail`` are written
    capacity, slot_words = int(routed[L.Q_CAPACITY]), int(routed[L.Q_SLOT_WORDS])
    fresh = (tail - entry.sent_tail) & _MASK32
    for first, count in ring_ranges(entry.sent_tail & (capacity - 1), fresh, capacity):
        lo = H + first * slot_words
        runtime.device.write(buf, lo, routed[lo : lo + count * slot_words].copy())
    line = routed[PRODUCER_LINE].copy()
    line[L.Q_TAIL - PRODUCER_LINE.start] = tail
    runtime.device.write(buf, PRODUCER_LINE.start, line)
    entry.sent_tail = tail
    runtime.device.write(actor.buffer("sends"), CONSUMER_LINE.start, m.sends[CONSUMER_LINE].copy())


def direct_total(memory: Any) -> int:
    """Sends the loops of ``memory`` delivered directly so far (their ``direct`` words), per the mirror."""
    if not talks(memory):
        return 0
    n = memory.ctrl.size // L.CONTROL_WORDS
    return int(memory.sends.reshape(n, -1)[:, L.Q_DIRECT].astype(np.int64).sum())


def note_direct(actor: Any, before: int) -> bool:
    """After a merge: True when ``actor``'s loops delivered directly for the first time (its
    ``direct`` counters moved past ``before``); the caller then reads everything back again."""
    if getattr(actor, "direct", False) or actor.memory is None or direct_total(actor.memory) == before:
        return False
    actor.direct = True
    return True


def reads(plan: Any, actor: Any) -> list[tuple[int, int]]:
    """Adds one actor's ``sends`` header, the slots its dispatch may fill, and ``routed``'s
    header to ``plan``'s reads; returns the slot runs (first, count) read."""
    from ringkernel.runtime.actor_pump import ring_ranges

    m = actor.memory
    sends = m.sends
    plan.add(actor.buffer("sends"), 0, H)
    capacity, slot_words = int(sends[L.Q_CAPACITY]), int(sends[L.Q_SLOT_WORDS])
    runs = ring_ranges(int(sends[L.Q_TAIL]) & (capacity - 1), capacity - fill(sends), capacity)
    for first, count in runs:
        plan.add(actor.buffer("sends"), H + first * slot_words, count * slot_words)
    plan.add(actor.buffer("routed"), 0, m.routed.size if getattr(actor, "direct", False) else H)
    return runs


def merge(memory: Any, parts: list[np.ndarray], runs: list[tuple[int, int]]) -> None:
    """One actor's read-back: ``sends`` slots before its producer words (``tail`` last),
    ``routed``'s consumer words before its ``head``."""
    sends = memory.sends
    header, slot_parts, routed_header = parts[0], parts[1 : 1 + len(runs)], parts[1 + len(runs)]
    capacity, slot_words = int(sends[L.Q_CAPACITY]), int(sends[L.Q_SLOT_WORDS])
    slots = sends[H:].reshape(capacity, slot_words)
    for (first, count), run in zip(runs, slot_parts, strict=True):
        slots[first : first + count] = run.reshape(count, slot_words)
    fence()  # release: the slots before the tail that publishes them
    producer = [w for w in range(PRODUCER_LINE.start, H) if w != L.Q_TAIL]
    sends[producer] = header[producer]
    sends[L.Q_TAIL] = header[L.Q_TAIL]
    if len(routed_header) > H:  # a direct actor's whole routed queue: the device's is the truth
        take_producer_words(memory.routed[None, :], routed_header[None, :])
    take_consumer_words(memory.routed, routed_header[:H])


def take_producer_words(q: np.ndarray, d: np.ndarray) -> None:
    """Rows ``q`` of ``routed`` regions take the device's slots and producer words ``d`` (``tail`` last)."""
    q[:, H:] = d[:, H:]
    fence()  # release: the slots before the tails that publish them
    producer = [w for w in range(PRODUCER_LINE.start, H) if w != L.Q_TAIL]
    q[:, producer] = d[:, producer]
    q[:, L.Q_TAIL] = d[:, L.Q_TAIL]


def after_direct_merge(runtime: Any, actor: Any) -> None:
    """What the host remembers having uploaded, set to the merged device words of a direct actor."""
    m = actor.memory
    if actor.count is None:
        runtime.shared[id(m.routed)].sent_tail = int(m.routed[L.Q_TAIL])
    elif actor.sent_routed is not None:
        actor.sent_routed = m.routed.reshape(actor.count, -1)[:, PRODUCER_LINE].copy()


def take_consumer_words(queue: np.ndarray, header: np.ndarray) -> None:
    for w in _CONSUMER_WORDS:
        queue[w] = header[w]
    fence()  # release: the slot is free only after the consumer is done with it
    queue[L.Q_HEAD] = header[L.Q_HEAD]


# --- a group ---


def upload_group(runtime: Any, actor: Any) -> np.ndarray:
    """A group's ``routed`` producer words and new slots, and ``sends`` consumer words, in one
    write per run of instances whose words changed; returns which instances have routed input."""
    from ringkernel.runtime.actor_pump import runs_of

    m = actor.memory
    n = actor.count
    routed = m.routed.reshape(n, -1)
    tails = routed[:, L.Q_TAIL].copy()
    fence()  # acquire: every slot up to each tail is written
    producer = routed[:, PRODUCER_LINE].copy()
    producer[:, L.Q_TAIL - PRODUCER_LINE.start] = tails
    sent = getattr(actor, "sent_routed", None)
    changed = np.ones(n, dtype=bool) if sent is None else (producer != sent).any(axis=1)
    for first, end in runs_of(changed):
        data = routed[first:end].copy()
        data[:, L.Q_TAIL] = tails[first:end]
        runtime.device.write(actor.buffer("routed"), first * routed.shape[1], data.ravel())
    actor.sent_routed = producer
    sends = m.sends.reshape(n, -1)
    consumer = sends[:, CONSUMER_LINE].copy()
    sent = getattr(actor, "sent_sends", None)
    changed = np.ones(n, dtype=bool) if sent is None else (consumer != sent).any(axis=1)
    for first, end in runs_of(changed):
        runtime.device.write(actor.buffer("sends"), first * sends.shape[1], sends[first:end].ravel().copy())
    actor.sent_sends = consumer
    return tails != routed[:, L.Q_HEAD]


def merge_group_queue(name: str, q: np.ndarray, d: np.ndarray, direct: bool = False) -> None:
    """A run of instances' ``sends`` or ``routed`` regions read back (``q`` the mirror's rows);
    a ``direct`` group's ``routed`` whole (its loops produce into it too)."""
    if name == "routed":
        if direct:
            take_producer_words(q, d)
        q[:, _CONSUMER_WORDS] = d[:, _CONSUMER_WORDS]
        fence()
        q[:, L.Q_HEAD] = d[:, L.Q_HEAD]
        return
    q[:, H:] = d[:, H:]
    fence()  # release: the slots before the tails that publish them
    producer = [w for w in range(PRODUCER_LINE.start, H) if w != L.Q_TAIL]
    q[:, producer] = d[:, producer]
    q[:, L.Q_TAIL] = d[:, L.Q_TAIL]


def routed_input(memory: Any) -> bool:
    """Whether any instance has a message waiting in ``routed``."""
    if not talks(memory):
        return False
    n = memory.ctrl.size // L.CONTROL_WORDS
    q = memory.routed.reshape(n, -1)
    return bool(np.any(q[:, L.Q_TAIL] != q[:, L.Q_HEAD]))


__all__ = ["TALK_QUEUES", "talks", "upload", "reads", "merge", "upload_group", "merge_group_queue",
           "routed_input", "direct_total", "note_direct", "after_direct_merge", "take_producer_words"]

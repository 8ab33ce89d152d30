"""Checkpoints of an MPSC ``routed`` queue: a slot the router reserved but published as skipped
(``SKIP_TYPE_ID``) holds no message, so a checkpoint must not carry it (a restore would refuse
its type id)."""

from __future__ import annotations

import numpy as np

from ringkernel.durability import queued
from ringkernel.ringir import layout as L


def test_skipped_routed_slots_are_not_checkpointed():
    capacity, slot_words = 4, 8
    q = np.zeros(L.queue_words(capacity, slot_words), dtype=np.uint32)
    q[L.Q_CAPACITY], q[L.Q_MASK], q[L.Q_SLOT_WORDS] = capacity, capacity - 1, slot_words
    slots = q[L.QUEUE_HEADER_WORDS :].reshape(capacity, slot_words)
    slots[:3, L.ENV_TYPE_ID] = (7, L.SKIP_TYPE_ID, 9)
    slots[:3, L.ENVELOPE_WORDS] = (70, 0, 90)
    q[L.Q_TAIL] = 3
    rows = queued(q)
    assert rows[:, L.ENV_TYPE_ID].tolist() == [7, 9]
    assert rows[:, L.ENVELOPE_WORDS].tolist() == [70, 90]

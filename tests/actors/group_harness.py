"""A group's seven word arrays built by hand (docs/layout.md, "Actor groups"), for tests that
drive the turn kernel without the facade: numpy memory, sends, replies."""

from __future__ import annotations

import numpy as np

from ringkernel.ringir import layout as L


class GroupMemory:
    """N instances: control blocks, state regions and three queues each, laid out as the kernel reads them."""

    def __init__(self, n: int, state_words: int, capacity: int, slot_words: int, quantum: int,
                 alloc=None, shadow: bool = False, sends: tuple[int, int] = (2, 8), routed: int = 2) -> None:
        alloc = alloc or (lambda words: np.zeros(words, dtype=np.uint32))
        self.n, self.capacity, self.slot_words = n, capacity, slot_words
        self.state_stride = max(state_words, 1) * (2 if shadow else 1)
        self.ctrl = alloc(n * L.CONTROL_WORDS)
        self.state = alloc(n * self.state_stride)
        self.h2k = alloc(n * L.queue_words(capacity, slot_words))
        self.k2k = alloc(n * L.queue_words(2, 8))
        self.out = alloc(n * L.queue_words(capacity, slot_words))
        self.sends_shape, self.routed_capacity = sends, routed
        self.sends = alloc(n * L.queue_words(*sends))
        self.routed = alloc(n * L.queue_words(routed, slot_words))
        blocks = self.ctrl.reshape(n, L.CONTROL_WORDS)
        blocks[:, L.C["actor_id"]] = np.arange(1, n + 1)
        blocks[:, L.C["state_words"]] = state_words if shadow else 0
        blocks[0, L.C["instances"]] = n
        blocks[0, L.C["quantum"]] = quantum
        blocks[0, L.C["state_stride"]] = self.state_stride
        blocks[0, L.C["batch"]] = quantum
        kinds = ((self.h2k, capacity, slot_words), (self.k2k, 2, 8), (self.out, capacity, slot_words),
                 (self.sends, *sends), (self.routed, routed, slot_words))
        for q, cap, words in kinds:
            headers = q.reshape(n, -1)
            headers[:, L.Q_CAPACITY] = cap
            headers[:, L.Q_MASK] = cap - 1
            headers[:, L.Q_SLOT_WORDS] = words

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.ctrl, self.state, self.h2k, self.k2k, self.out, self.sends, self.routed

    def queue(self, q: np.ndarray, i: int) -> np.ndarray:
        return q.reshape(self.n, -1)[i]

    def send(self, i: int, type_id: int, payload: list[int], sequence: int) -> bool:
        """One message into instance i's h2k queue (False if full)."""
        q = self.queue(self.h2k, i)
        head, tail = int(q[L.Q_HEAD]), int(q[L.Q_TAIL])
        if tail - head >= self.capacity:
            return False
        at = L.QUEUE_HEADER_WORDS + (tail & (self.capacity - 1)) * self.slot_words
        q[at : at + self.slot_words] = 0
        q[at + L.ENV_TYPE_ID] = type_id
        q[at + L.ENV_SEQUENCE] = sequence
        q[at + L.ENVELOPE_WORDS : at + L.ENVELOPE_WORDS + len(payload)] = payload
        q[L.Q_TAIL] = tail + 1
        return True

    def replies(self, i: int) -> list[np.ndarray]:
        """Takes instance i's replies off its output queue (each a slot's words)."""
        q = self.queue(self.out, i)
        found = []
        while int(q[L.Q_HEAD]) != int(q[L.Q_TAIL]):
            head = int(q[L.Q_HEAD])
            at = L.QUEUE_HEADER_WORDS + (head & (self.capacity - 1)) * self.slot_words
            found.append(q[at : at + self.slot_words].copy())
            q[L.Q_HEAD] = head + 1
        return found

    def word(self, i: int, name: str) -> int:
        return int(self.ctrl[i * L.CONTROL_WORDS + L.C[name]])

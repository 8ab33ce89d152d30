"""Checkpoint files: any bytes restore cleanly or fail with ``CheckpointError``, changing nothing.

One input is a would-be checkpoint file (``docs/layout.md``, "Checkpoint
file").  It is read twice: as it is, and *resealed* (its last 32 bytes
replaced by the sha256 of the rest), so mutations reach the header and
section parser behind the checksum.  Each read must either raise
:class:`~ringkernel.durability.CheckpointError` or give images; images of
the target's own actor (``Tally``) that pass the compatibility check are
restored into a fresh cpu ``ActorSystem``, which must then hold exactly the
file's state (when no queued message can change it) and unreceived replies.  Anything else
(another exception, a half-restored system, a state that differs) is a
finding.  Restores of queues over ``RESTORE_CAPACITY_MAX`` slots are skipped:
they are valid but would allocate up to a gigabyte per input.
"""

from __future__ import annotations

import hashlib

import ringkernel as rk
from fuzz.harness import Finding
from ringkernel import durability, i32

SMOKE_RUNS = 300
RESTORE_CAPACITY_MAX = 1024


@rk.message
class Bump:
    n: i32


@rk.message
class Tallied:
    count: i32


@rk.actor
class Tally:
    """The actor the corpus checkpoints hold."""

    count: i32 = 0
    sum: i32 = 0

    def bump(self, msg: Bump) -> Tallied:
        self.count += 1
        self.sum += msg.n
        return Tallied(count=self.count)


@rk.actor
class Pass:
    """Passes each Bump on: two of them joined by connect() make the linked seed."""

    passed: i32 = 0

    def bump(self, msg: Bump) -> Bump:
        self.passed += 1
        return Bump(n=msg.n)


def known(image: durability.Image) -> rk.ActorType:
    """The target's class for ``image``: ``Pass`` for a file's Pass actors, else ``Tally``."""
    return Pass if image.actor == durability.actor_key(Pass) else Tally


def test_one_input(data: bytes) -> None:
    check(data)
    if len(data) >= durability.DIGEST_BYTES:
        body = data[: -durability.DIGEST_BYTES]
        check(body + hashlib.sha256(body).digest())


def check(data: bytes) -> None:
    try:
        images, _ = durability.decode(data)
    except durability.CheckpointError:
        return
    for image in images:
        try:
            durability.check_compatible(image, durability.resolve(image, {image.actor: known(image)}))
        except durability.CheckpointError:
            return
        if image.capacity > RESTORE_CAPACITY_MAX:
            return
    restore(data, images)


def restore(data: bytes, images: list[durability.Image]) -> None:
    """Restores ``images`` (from ``data``) and checks the actors hold what the file says."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp, rk.ActorSystem(idle_ns=0) as system:
        path = Path(tmp) / "fuzz.rkc"
        path.write_bytes(data)
        try:
            refs = system.restore(path, types={image.actor: known(image) for image in images})
        except durability.CheckpointError as exc:
            if system.actors:
                raise Finding(f"a refused restore left {len(system.actors)} actors spawned: {exc}") from exc
            return
        if len(refs) != len(images):
            raise Finding(f"{len(images)} images restored as {len(refs)} actors")
        for ref, image in zip(refs, images, strict=True):
            state = ref.state_words[: len(image.state)].copy()
            if ref.pending() < len(image.outputs):
                raise Finding(
                    f"{ref.name}: {len(image.outputs)} replies in the file, {ref.pending()} restored"
                )
            fed = len(image.inputs) or len(image.k2k) or len(image.timers) or ref.upstream is not None
            if not fed and (state != image.state).any():  # nothing to handle: no change
                raise Finding(f"{ref.name}: restored state {state.tolist()} is not {image.state.tolist()}")
        system.shutdown(drain=False)


def seed_files() -> dict[str, bytes]:
    """Valid checkpoints of ``Tally`` for the corpus: none, one and two instances, queued
    messages and unreceived replies (``fuzz/seeds.py`` writes them)."""
    import numpy as np

    from ringkernel.actors import message_info

    bump, tallied = message_info(Bump), message_info(Tallied)

    def image(name: str, state: list[int], inputs: int, outputs: int, cls: rk.ActorType = Tally,
              k2k: int = 0) -> durability.Image:
        rows_in = np.zeros((inputs, bump.slot_words), np.uint32)
        rows_in[:, 0], rows_in[:, 3], rows_in[:, 6] = bump.type_id, np.arange(inputs) + 1, 7
        rows_out = np.zeros((outputs, tallied.slot_words), np.uint32)
        rows_out[:, 0], rows_out[:, 6] = tallied.type_id, np.arange(outputs) + 1
        rows_k2k = np.zeros((k2k, bump.slot_words), np.uint32)
        rows_k2k[:, 0], rows_k2k[:, 6] = bump.type_id, 5
        if cls is Pass:
            rows_out = rows_out[:0]
        return durability.Image(
            actor=durability.actor_key(cls),
            name=name,
            fingerprint=durability.actor_fingerprint(cls),
            state_fields=durability.state_fields(cls),
            capacity=8,
            policy="block",
            lanes=1,
            sequence=inputs,
            ctrl=dict.fromkeys(durability.CTRL_WORDS, 0),
            state=np.array(state, np.uint32),
            inputs=rows_in,
            outputs=rows_out,
            k2k=rows_k2k,
        )

    linked = [image("Pass#1", [0], 2, 0, Pass), image("Pass#2", [4], 0, 0, Pass, k2k=3)]
    timed = image("Tally#1", [1, 1], 0, 0)
    timed.timers = np.zeros((2, bump.slot_words), np.uint32)  # a Bump due long ago, one far ahead
    timed.timers[:, 0], timed.timers[:, 6] = bump.type_id, 3
    timed.timer_due = np.array([[1, 0], [0xFFFFFFFF, 0xFFFF]], np.uint32)

    return {
        "empty.rkc": durability.encode([], 0),
        "one.rkc": durability.encode([image("Tally#1", [3, 9], 2, 1)], 1 << 40),
        "two.rkc": durability.encode([image("Tally#1", [0, 0], 0, 0), image("Tally#2", [1, 2], 5, 0)], 0),
        # version 3: a connect() link whose K2K queue holds messages
        "linked.rkc": durability.encode(linked, 0, wiring=durability.Wiring([["Pass#1", "Pass#2"]])),
        # version 4: two held self.schedule timers
        "timers.rkc": durability.encode([timed], 0),
    }

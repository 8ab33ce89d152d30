"""Checkpoints keep an actor's routed and sends queues (format version 2) and still read version 1."""

from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import durability
from ringkernel.ringir import layout as L

sys.path.insert(0, os.path.dirname(__file__))
from msg_defs import Piece, Split, Splitter  # noqa: E402


def row(queue, type_id: int, payload: list[int], sequence: int) -> np.ndarray:
    words = np.zeros((1, queue.slot_words), np.uint32)
    words[0, L.ENV_TYPE_ID], words[0, L.ENV_SEQUENCE] = type_id, sequence
    words[0, L.ENVELOPE_WORDS : L.ENVELOPE_WORDS + len(payload)] = payload
    return words


def as_version_1(data: bytes) -> bytes:
    """The same checkpoint as a version 1 writer made it: no routed and sends sections."""
    _, _, header_bytes = durability.PREFIX.unpack_from(data)
    at = durability.PREFIX.size
    header = json.loads(data[at : at + header_bytes])
    for entry in header["instances"]:
        del entry["sections"]["routed"], entry["sections"]["sends"]
    text = json.dumps(header, sort_keys=True).encode()
    body = data[at + header_bytes : -durability.DIGEST_BYTES]
    out = durability.PREFIX.pack(durability.MAGIC, 1, len(text)) + text + body
    return out + hashlib.sha256(out).digest()


def test_routed_and_sent_messages_survive_a_checkpoint(tmp_path):
    path = tmp_path / "splitter.rkckpt"
    split, piece = Split.__rk_message__.type_id, Piece.__rk_message__.type_id
    with rk.ActorSystem(backend="cpu") as system:
        ref = system.spawn(Splitter, queue_capacity=8)

        def fill_and_take() -> durability.Image:
            with system.routing.router.lock:  # (the router would take the send at once)
                ref.routed.try_push_many(np.concatenate([row(ref.routed, split, [1, t], 1) for t in (7, 9)]))
                ref.sends.try_push_many(row(ref.sends, piece, [3, 0], 0))
                return durability.image(ref)

        im = durability.paused(system, ref, fill_and_take)
        assert im.routed[:, L.ENVELOPE_WORDS + 1].tolist() == [7, 9] and len(im.sends) == 1
        durability.write(path, durability.encode([im], 0))
    [back], _ = durability.read(path)
    assert np.array_equal(back.routed, im.routed) and np.array_equal(back.sends, im.sends)
    with rk.ActorSystem(backend="cpu") as system:
        [copy] = system.restore(path)
        system.shutdown(drain=True, drain_timeout=5.0)
        assert copy.state["seen"] == 2  # both routed splits were handled after the restore
        assert int(copy.sends.buffer[L.Q_TAIL]) == 1 + 2  # the restored send, then one piece per split


def test_a_version_1_file_still_restores(tmp_path):
    path = tmp_path / "old.rkckpt"
    split = Split.__rk_message__.type_id
    with rk.ActorSystem(backend="cpu") as system:
        ref = system.spawn(Splitter, queue_capacity=8)
        ref.send(Split(count=2, tag=5))
        system.shutdown(drain=True, drain_timeout=5.0)
        ref.h2k.try_push_many(row(ref.h2k, split, [1, 6], 2))
        im = durability.image(ref)
    path.write_bytes(as_version_1(durability.encode([im], 0)))
    [old], _ = durability.read(path)
    assert old.routed.shape[0] == 0 and old.sends.shape[0] == 0 and len(old.inputs) == 1
    with rk.ActorSystem(backend="cpu") as system:
        [copy] = system.restore(path)
        system.shutdown(drain=True, drain_timeout=5.0)
        assert copy.state["seen"] == 2


def test_an_unknown_version_names_the_readable_ones(tmp_path):
    data = bytearray(durability.encode([], 0))
    data[8:12] = (7).to_bytes(4, "little")
    data[-durability.DIGEST_BYTES :] = hashlib.sha256(bytes(data[: -durability.DIGEST_BYTES])).digest()
    readable = "version 7; this ringkernel reads versions 1, 2, 3 and 4"
    with pytest.raises(durability.CheckpointError, match=readable):
        durability.decode(bytes(data))


def test_a_sent_message_of_a_type_the_actor_cannot_send_is_refused(tmp_path):
    with rk.ActorSystem(backend="cpu") as system:
        ref = system.spawn(Splitter, queue_capacity=8)
        system.shutdown(drain=True, drain_timeout=5.0)
        ref.sends.try_push_many(row(ref.sends, Split.__rk_message__.type_id, [1, 1], 0))
        im = durability.image(ref)
    with pytest.raises(durability.CheckpointError, match="sent message .* not one Splitter sends"):
        durability.check_compatible(im, Splitter)
    assert Piece.__rk_message__.type_id in {m.type_id for m in Splitter.info.sendable}


def test_a_group_with_routed_messages_is_checkpointed_with_them(tmp_path):
    # (format version 3 saves a group's routed queues; they used to be refused)
    from msg_defs import Cell, Ring

    with rk.ActorSystem(backend="cpu") as system:
        group = system.spawn(Ring, count=4, queue_capacity=8)
        routed = group[1].routed

        def take_with_a_routed_message():
            routed.try_push_many(row(routed, Cell.__rk_message__.type_id, [0], 0))  # turns are paused
            try:
                return durability.group_image(group)
            finally:  # take it back: a Ring message multiplies without end
                routed.buffer[L.Q_HEAD] = routed.buffer[L.Q_TAIL]

        image = durability.paused(system, group, take_with_a_routed_message)
        assert list(image.routed_counts) == [0, 1, 0, 0]
        assert image.routed[0, L.ENV_TYPE_ID] == Cell.__rk_message__.type_id
        data = durability.encode([], 0, [image])
        again = durability.decode_all(data)[1][0]
        assert np.array_equal(again.routed, image.routed) and again.routed_capacity == image.routed_capacity

"""Checkpoints of whole actor groups (format version 2), and group metrics for Prometheus."""

from __future__ import annotations

import hashlib
import os
import sys
import time
import urllib.request

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import durability
from ringkernel.ringir import layout as L

sys.path.insert(0, os.path.dirname(__file__))
from groupsys_defs import Counter, Put  # noqa: E402

STOP = L.C["stop"]


def test_a_group_checkpoint_restores_state_queued_messages_replies_and_clocks(tmp_path):
    path = tmp_path / "group.rkc"
    count = 50
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        group = system.spawn(Counter, count=count, queue_capacity=8)
        group.send_many(np.arange(count), [Put(value=i) for i in range(count)], timeout=10.0)
        indices, _ = group.receive_many(count, timeout=10.0)
        while len(indices) < count:
            indices = np.r_[indices, group.receive_many(count, timeout=10.0)[0]]
        assert group[3].ask(Put(value=100), timeout=10.0).count == 2  # instance 3 has a ref
        group.ctrl[STOP] = 1  # hold the turns: these stay queued in the checkpoint
        group.send_many(np.array([0, 0, 3, 49]), [Put(value=v) for v in (1, 2, 3, 4)], timeout=10.0)
        group[7].send(Put(value=9))
        group.ctrl[STOP] = 0
        group.wake()
        assert group[7].receive(timeout=10.0).count == 2  # instance 7's reply was handled ...
        group.ctrl[STOP] = 1
        group.send_many(np.array([7]), [Put(value=5)], timeout=10.0)
        group.ctrl[STOP] = 0
        deadline = time.monotonic() + 10
        while group.processed.sum() < count + 2 + 4 + 1:  # ... and this one's stays unreceived
            assert time.monotonic() < deadline
            time.sleep(0.001)
        state, hlc = group.state, group.counter("hlc_lo")
        group.ctrl[STOP] = 1
        group.send_many(np.array([0, 49]), [Put(value=6), Put(value=7)], timeout=10.0)
        group.checkpoint(path)
    _, [image], _ = durability.read_all(path)
    assert image.count == count and image.input_counts.sum() == 2 and image.output_counts[7] == 1

    with rk.ActorSystem(backend="cpu", workers=1) as system:
        [restored] = system.restore(path, [Counter])
        assert isinstance(restored, rk.ActorGroup) and len(restored) == count
        quiet = np.ones(count, dtype=bool)
        quiet[[0, 49]] = False  # (these two handle their queued messages at once)
        np.testing.assert_array_equal(restored.counter("hlc_lo")[quiet], hlc[quiet])
        assert restored[7].receive(timeout=10.0).count == 3  # the unreceived reply came along
        got: list[tuple[int, int, int]] = []
        while len(got) < 6:  # every reply nobody had received, then those of the queued messages
            indices, replies = restored.receive_many(10, timeout=10.0)
            got += [(int(i), int(m["count"]), int(m["value"])) for i, m in zip(indices, replies, strict=True)]
        # instance 0's and 49's queued messages ran on the restored state: counts go on
        assert sorted(got) == [(0, 2, 1), (0, 3, 2), (0, 4, 6), (3, 3, 3), (49, 2, 4), (49, 3, 7)]
        assert int(state["count"][0]) == 3 and int(state["count"][49]) == 2
        np.testing.assert_array_equal(restored.state["total"][1:49], state["total"][1:49])
        assert restored[3].ask(Put(value=1), timeout=10.0).count == int(state["count"][3]) + 1


def test_system_checkpoint_takes_single_actors_and_groups_together(tmp_path):
    path = tmp_path / "all.rkc"
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        single = system.spawn(Counter)
        group = system.spawn(Counter, count=4)
        single.ask(Put(value=4), timeout=10.0)
        group.broadcast(Put(value=2))
        assert len(group.receive_many(4, timeout=10.0)[0]) >= 1
        system.checkpoint(path)
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        ref, restored = system.restore(path, [Counter])
        assert ref.state == {"count": 1, "total": 4}
        np.testing.assert_array_equal(restored.state["total"], 2)


def sealed(data: bytes) -> bytes:
    """``data`` (a file without its digest) with a fresh digest."""
    return data + hashlib.sha256(data).digest()


def test_version_1_files_still_read_and_a_corrupt_group_entry_is_refused(tmp_path, monkeypatch):
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        group = system.spawn(Counter, count=3)
        group.checkpoint(tmp_path / "g.rkc")
        single = system.spawn(Counter)
        single.checkpoint(tmp_path / "s.rkc")
    images, host = durability.read(tmp_path / "s.rkc")
    monkeypatch.setattr(durability, "VERSION", 1)  # as a version 1 writer wrote it
    old = durability.encode(images, host)
    monkeypatch.undo()
    assert old[8:12] == (1).to_bytes(4, "little")
    assert len(durability.decode(old)[0]) == 1
    readable = "version 5; this ringkernel reads versions 1, 2, 3 and 4"
    with pytest.raises(durability.CheckpointError, match=readable):
        durability.decode(sealed(old[:8] + (5).to_bytes(4, "little") + old[12 : -durability.DIGEST_BYTES]))
    good = (tmp_path / "g.rkc").read_bytes()
    bad = good[: -durability.DIGEST_BYTES].replace(b'"count": 3', b'"count": 4')
    with pytest.raises(durability.CheckpointError, match="does not hold 4 words|the wrong shape"):
        durability.decode_all(sealed(bad))


def test_prometheus_has_group_families_and_health_lists_groups():
    pytest.importorskip("prometheus_client")
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        group = system.spawn(Counter, count=5)
        group.broadcast(Put(value=1))
        group.receive_many(5, timeout=10.0)
        server = system.serve(port=0)
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10).read().decode()
        label = f'group="{group.name}",type="Counter"'
        assert f"ringkernel_group_instances{{{label}}} 5.0" in text
        assert f"ringkernel_group_messages_processed_total{{{label}}} 5.0" in text
        assert f'ringkernel_group_status{{group="{group.name}",status="idle",type="Counter"}} 1.0' in text
        assert text.count("ringkernel_group_messages_sent_total{") == 1  # one series per group
        health = system.health()
        assert health["groups"] == {group.name: "idle"} and health["ready"]


def test_a_restore_that_does_not_fit_spawns_nothing(tmp_path):
    """Regression: a restore checked admission spawn by spawn, so a group past max_actors
    failed after the file's single actors were already spawned (half a restore)."""
    path = tmp_path / "both.rkc"
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        system.spawn(Counter)
        system.spawn(Counter, count=4)
        system.checkpoint(path)
    with rk.ActorSystem(backend="cpu", workers=1, max_actors=4) as system:
        with pytest.raises(rk.AdmissionError, match="needs 5 actor"):
            system.restore(path, [Counter])
        assert system.actors == [] and system.groups == [] and system.admitted_actors == 0
        assert system.spawn(Counter, count=4).count == 4  # and the system is usable


def test_a_group_takes_periodic_checkpoints_and_one_restores_it(tmp_path):
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        group = system.spawn(Counter, count=3, checkpoint_every=0.05, checkpoint_dir=tmp_path,
                             checkpoint_keep=2)
        group.broadcast(Put(value=5))
        assert len(collect_all(group, 3)) == 3
        deadline = time.monotonic() + 20
        while len(durability.checkpoints(tmp_path, group.name)) < 2 or \
                durability._number(durability.checkpoints(tmp_path, group.name)[-1], group.name) < 4:
            assert time.monotonic() < deadline, "no periodic checkpoints of the group"
            time.sleep(0.02)
        files = durability.checkpoints(tmp_path, group.name)
        assert len(files) <= 3 and files[0].name.startswith("Counter-3-1-")  # old ones pruned
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        [restored] = system.restore(files[-1], [Counter])
        np.testing.assert_array_equal(restored.state["total"], 5)


def collect_all(group, n: int) -> np.ndarray:
    indices = np.zeros(0, dtype=np.int64)
    while len(indices) < n:
        indices = np.r_[indices, group.receive_many(n, timeout=10.0)[0]]
    return indices

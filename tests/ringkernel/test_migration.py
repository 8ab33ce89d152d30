"""Live migration (``system.migrate``): a steady stream of messages crosses cpu -> wgpu -> cpu and
nothing is lost, duplicated or reordered; refs stay the user's; connected actors move together."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.migration import MigrationError
from ringkernel.ringir import layout as L
from ringkernel.runtime import backend_status

sys.path.insert(0, str(Path(__file__).parent))
from migration_defs import Recorder, Relay, Tick  # noqa: E402

TOTAL = 100_000


@pytest.fixture(autouse=True)
def need_wgpu() -> None:
    ok, reason = backend_status("wgpu")
    if not ok:
        pytest.skip(f"migration between cpu and wgpu needs wgpu: {reason}")


def _send_stream(ref, sender: int, count: int, failures: list) -> None:
    try:
        for n in range(count):
            ref.send(Tick(sender=sender, n=n), timeout=None)
    except BaseException as exc:  # a sender must never see an error: the test fails on it
        failures.append(exc)


def _receive(ref, count: int, out: list, failures: list) -> None:
    try:
        got = 0
        while got < count:
            rows = ref.receive_many(4096, timeout=60.0, as_array=True)
            out.append(rows)
            got += len(rows)
    except BaseException as exc:
        failures.append(exc)


def _stream_through(system, targets, send_refs, receive_refs, path, per_sender):
    """Senders stream into ``send_refs`` while ``targets`` migrate along ``path``; returns the
    replies of each receive ref and the pauses."""
    failures: list = []
    replies = [[] for _ in receive_refs]
    senders = [threading.Thread(target=_send_stream, args=(ref, k, per_sender, failures))
               for k, ref in enumerate(send_refs)]
    receivers = [threading.Thread(target=_receive, args=(ref, per_sender * share, replies[i], failures))
                 for i, (ref, share) in enumerate(receive_refs)]
    for t in [*senders, *receivers]:
        t.start()
    pauses = []
    for backend in path:
        time.sleep(0.3)  # the stream is flowing
        pauses.append(system.migrate(targets, backend).pause_s)
    for t in [*senders, *receivers]:
        t.join(240)
        assert not t.is_alive(), "a stream did not finish"
    assert not failures, failures
    return [np.concatenate(r) for r in replies], pauses


def _check(rows, senders: list[int], per_sender: int) -> None:
    """Each sender's messages came back once each, in order; the actor counted each once."""
    for sender in senders:
        mine = rows[rows["sender"] == sender]
        assert np.array_equal(mine["n"], np.arange(per_sender)), f"sender {sender}: lost/duplicated/reordered"
    assert np.array_equal(rows["count"], np.arange(1, len(rows) + 1)), "a message was handled twice or never"


def test_single_actor_migrates_under_a_stream_of_100k():
    with rk.ActorSystem("cpu") as system:
        ref = system.spawn(Recorder, queue_capacity=1024)
        per = TOTAL // 2
        (rows,), pauses = _stream_through(system, ref, [ref, ref], [(ref, 2)], ["wgpu", "cpu"], per)
        _check(rows, [0, 1], per)
        assert ref.state["count"] == TOTAL
        assert ref.runtime is system.runtime and len(pauses) == 2
        assert system.metrics()["migrations"]["total"] == {"request": 2}


def test_group_migrates_under_a_stream_of_100k():
    with rk.ActorSystem("cpu") as system:
        group = system.spawn(Recorder, count=2, queue_capacity=1024)
        per = TOTAL // 2
        refs = [group[0], group[1]]
        replies, _ = _stream_through(system, group, refs, [(refs[0], 1), (refs[1], 1)], ["wgpu", "cpu"], per)
        for k, rows in enumerate(replies):
            _check(rows, [k], per)
        assert list(group.state["count"]) == [per, per]
        assert group.runtime is system.runtime


def test_group_broadcast_after_migration_keeps_sequence_numbers():
    with rk.ActorSystem("cpu") as system:
        group = system.spawn(Recorder, count=3)
        group.broadcast(Tick(sender=0, n=0))
        system.migrate(group, "wgpu")
        group.broadcast(Tick(sender=0, n=1))
        indices, rows = group.receive_many(6, timeout=10)
        while len(rows) < 6:
            more_i, more = group.receive_many(6 - len(rows), timeout=10)
            indices, rows = np.concatenate([indices, more_i]), np.concatenate([rows, more])
        for i in range(3):
            mine = rows[indices == i]
            assert list(mine["n"]) == [0, 1] and list(mine["count"]) == [1, 2]
        tails = group.h2k.reshape(3, -1)[:, L.Q_TAIL]  # a broadcast numbers messages by the tails
        assert list(tails) == [2, 2, 2]


def test_connected_chain_migrates_together_and_keeps_k2k_messages():
    with rk.ActorSystem("cpu") as system:
        relay = system.spawn(Relay)
        rec = system.spawn(Recorder)
        system.connect(relay, rec)
        for n in range(500):
            relay.send(Tick(sender=0, n=n), timeout=None)
        moved = system.migrate(rec, "wgpu")  # the downstream end: its upstream comes along
        assert moved.actors == [relay.name, rec.name]
        assert relay.runtime is rec.runtime is system.runtimes["wgpu"]
        for n in range(500, 1000):
            relay.send(Tick(sender=0, n=n), timeout=None)
        system.migrate(relay, "cpu")
        got = rec.receive_many(1000, timeout=30, as_array=True)
        while len(got) < 1000:
            got = np.concatenate([got, rec.receive_many(1000 - len(got), timeout=30, as_array=True)])
        _check(got, [0], 1000)
        assert relay.state["passed"] == 1000


def test_port_connected_actors_keep_routing_after_migration():
    from migration_defs import Forward

    with rk.ActorSystem("cpu") as system:
        src = system.spawn(Forward)
        dst = system.spawn(Recorder)
        system.connect(src, dst, port="out")
        for n in range(200):
            src.send(Tick(sender=1, n=n), timeout=None)
        system.migrate(src, "wgpu")
        for n in range(200, 400):
            src.send(Tick(sender=1, n=n), timeout=None)
        system.migrate(dst, "wgpu")
        for n in range(400, 600):
            src.send(Tick(sender=1, n=n), timeout=None)
        system.migrate(src, "cpu")
        got = dst.receive_many(600, timeout=30, as_array=True)
        while len(got) < 600:
            got = np.concatenate([got, dst.receive_many(600 - len(got), timeout=30, as_array=True)])
        _check(got, [1], 600)


def test_migrating_an_instance_or_a_stranger_is_a_clear_error():
    with rk.ActorSystem("cpu") as system, rk.ActorSystem("cpu") as other:
        group = system.spawn(Recorder, count=2)
        with pytest.raises(ValueError, match="instance of .*migrate the whole group"):
            system.migrate(group[0], "wgpu")
        stranger = other.spawn(Recorder)
        with pytest.raises(TypeError, match="spawned by this system"):
            system.migrate(stranger, "wgpu")
        with pytest.raises(ValueError, match="unknown actor backend"):
            system.migrate(group, "tpu")
        ref = system.spawn(Recorder)
        ref.fail()
        with pytest.raises(MigrationError, match="failed"):
            system.migrate(ref, "wgpu")


def test_migrating_to_where_it_runs_is_a_no_op():
    with rk.ActorSystem("cpu") as system:
        ref = system.spawn(Recorder)
        assert system.migrate(ref, "cpu").pause_s == 0.0
        assert ref.ask(Tick(sender=0, n=1), timeout=5).count == 1


def test_connect_across_backends_is_refused_clearly():
    with rk.ActorSystem("cpu") as system:
        relay, rec = system.spawn(Relay), system.spawn(Recorder)
        system.migrate(rec, "wgpu")
        with pytest.raises(ValueError, match="different backends"):
            system.connect(relay, rec)


def test_asks_during_migrations_are_answered_once_each():
    with rk.ActorSystem("cpu") as system:
        ref = system.spawn(Recorder, queue_capacity=4)
        answers, failures = [], []

        def asker() -> None:
            try:
                for n in range(600):
                    answers.append(ref.ask(Tick(sender=3, n=n), timeout=30).n)
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=asker)
        thread.start()
        for backend in ("wgpu", "cpu", "wgpu", "cpu"):
            time.sleep(0.2)
            system.migrate(ref, backend)
        thread.join(120)
        assert not failures, failures
        assert answers == list(range(600))
        assert ref.state["count"] == 600

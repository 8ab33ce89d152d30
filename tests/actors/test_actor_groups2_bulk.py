"""Bulk group I/O (issue 18): ``group.send_many(indices, messages)`` and
``group.receive_many()`` -> ``(indices, replies)``, vectorised over instances."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.runtime import backend_status

sys.path.insert(0, os.path.dirname(__file__))
from groupsys_defs import Counter, Put  # noqa: E402


def collect(group, n: int, timeout: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` replies of ``group`` through its bulk receive."""
    parts_i, parts_r, got = [], [], 0
    while got < n:
        i, r = group.receive_many(n - got, timeout=timeout)
        assert len(i) == len(r) and 0 < len(r) <= n - got
        parts_i.append(i)
        parts_r.append(r)
        got += len(r)
    return np.concatenate(parts_i), np.concatenate(parts_r)


def per_instance(indices: np.ndarray, replies: np.ndarray, count: int, per: int) -> np.ndarray:
    """The replies as rows, one per instance, in the order each instance's came."""
    assert (np.bincount(indices, minlength=count) == per).all()  # none lost, none twice
    return replies[np.argsort(indices, kind="stable")].reshape(count, per)


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_bulk_sends_and_receives_keep_each_instances_order(backend):
    if not backend_status(backend)[0]:
        pytest.skip(f"{backend} unavailable here")
    count, per = 500, 6
    with rk.ActorSystem(backend=backend) as system:
        group = system.spawn(Counter, count=count, queue_capacity=8)
        rng = np.random.default_rng(5)
        targets = rng.permutation(np.repeat(np.arange(count), per))  # interleaved instances
        batch = np.zeros(len(targets), dtype=Put.dtype)
        batch["value"] = np.arange(len(targets))
        stamps = group.send_many(targets, batch, timeout=30.0)
        assert stamps.dtype == np.uint64 and len(stamps) == len(targets)
        assert (np.diff(stamps.astype(np.int64)) > 0).all()
        rows = per_instance(*collect(group, count * per), count, per)
        np.testing.assert_array_equal(rows["count"], np.tile(np.arange(1, per + 1), (count, 1)))
        for i in (0, 17, count - 1):  # each instance's values in the order they were given
            np.testing.assert_array_equal(rows["value"][i], np.flatnonzero(targets == i))
        np.testing.assert_array_equal(group.state["count"], per)


def test_more_messages_than_a_queue_holds_wait_for_room():
    with rk.ActorSystem(backend="cpu", workers=2) as system:
        group = system.spawn(Counter, count=10, queue_capacity=4)
        targets = np.repeat(np.arange(10), 3)
        group.send_many(targets, [Put(value=int(t)) for t in targets], timeout=10.0)
        # replies of 3 per instance fit their output queues; 3 more each need the inputs drained
        group.send_many(targets, [Put(value=int(t)) for t in targets], timeout=10.0)
        rows = per_instance(*collect(group, 60), 10, 6)
        np.testing.assert_array_equal(rows["count"][:, -1], 6)


def test_instances_with_refs_and_without_mix_in_one_call():
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        group = system.spawn(Counter, count=6, queue_capacity=16)
        assert group[2].ask(Put(value=100), timeout=5.0).count == 1  # instance 2 has a ref now
        group.send_many(np.array([2, 3, 2, 3, -1]), [Put(value=v) for v in range(5)], timeout=5.0)
        indices, replies = collect(group, 5)
        got = sorted(zip(indices.tolist(), replies["count"].tolist(), replies["value"].tolist()))
        assert got == [(2, 2, 0), (2, 3, 2), (3, 1, 1), (3, 2, 3), (5, 1, 4)]
        assert group[2].ask(Put(value=7), timeout=5.0).count == 4  # its sequence counter is right


def test_a_reject_queue_says_how_many_went():
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        group = system.spawn(Counter, count=2, queue_capacity=2, policy="reject")
        group.ctrl[rk.actors.L.C["stop"]] = 1  # turns do nothing: the queues stay as filled
        with pytest.raises(rk.QueueFull) as info:
            group.send_many(np.array([0, 0, 0, 1]), [Put(value=v) for v in range(4)], timeout=0.1)
        assert info.value.sent == 3
        group.ctrl[rk.actors.L.C["stop"]] = 0
        group.wake()
        assert sorted(collect(group, 3)[0].tolist()) == [0, 0, 1]
        assert system.metrics()["groups"][group.name]["rejected"] == 1


def test_bad_bulk_arguments_are_clear_errors():
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        group = system.spawn(Counter, count=4)
        with pytest.raises(IndexError, match="instances 0 to 3, not 4"):
            group.send_many(np.array([4]), [Put(value=1)])
        with pytest.raises(ValueError, match="2 indices for 1 messages"):
            group.send_many(np.array([0, 1]), [Put(value=1)])
        with pytest.raises(TypeError, match="integer array"):
            group.send_many(np.array([0.5]), [Put(value=1)])
        with pytest.raises(TypeError, match="structured arrays of Put.dtype"):
            group.send_many(np.array([0]), np.zeros(1, dtype=[("x", "f8")]))
        with pytest.raises(rk.ReceiveTimeout):
            group.receive_many(timeout=0.05)
        with pytest.raises(ValueError, match="max_count"):
            group.receive_many(max_count=0)


def test_a_million_messages_through_ten_thousand_instances_with_the_bulk_api():
    count, per = 10_000, 100
    with rk.ActorSystem(backend="cpu", workers=2) as system:
        group = system.spawn(Counter, count=count, queue_capacity=128)
        targets = np.tile(np.arange(count), per)  # message k of every instance, then k + 1 ...
        batch = np.zeros(count * per, dtype=Put.dtype)
        batch["value"] = np.arange(count * per)
        started = time.monotonic()
        group.send_many(targets, batch, timeout=60.0)
        rows = per_instance(*collect(group, count * per), count, per)
        elapsed = time.monotonic() - started
        np.testing.assert_array_equal(rows["count"], np.tile(np.arange(1, per + 1), (count, 1)))
        np.testing.assert_array_equal(rows["value"], np.arange(count * per).reshape(per, count).T)
        assert int(group.processed.sum()) == count * per
        assert elapsed < 60

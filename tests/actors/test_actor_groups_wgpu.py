"""Actor groups end to end on wgpu (lavapipe here): the facade over the pump's group host.

Sizes: the full 10,000 instances x 1,000,000 messages runs by default (the
replies taken with the bulk ``group.receive_many``); ``RINGKERNEL_GROUP_MESSAGES`` lowers the count
of messages per instance for a quicker run.  A second test crosses the
65,535-workgroup 2-D grid split with few messages per instance.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.runtime import backend_status

sys.path.insert(0, os.path.dirname(__file__))
from group_defs import LANES, Accumulator, Add, Histogram, Sample  # noqa: E402

PER_INSTANCE = int(os.environ.get("RINGKERNEL_GROUP_MESSAGES", "100"))


@pytest.fixture
def system():
    available, reason = backend_status("wgpu")
    if not available:
        pytest.skip(f"wgpu unavailable: {reason}")
    with rk.ActorSystem(backend="wgpu", quantum=64) as made:
        yield made


def counts_of(ref, wanted: int) -> list[int]:
    """Every reply's ``count`` from one instance, oldest first, until ``wanted`` came."""
    got: list[int] = []
    while len(got) < wanted:
        got += ref.receive_many(wanted - len(got), timeout=60, as_array=True)["count"].tolist()
    return got


def check_every_instance(group, per: int) -> None:
    n = len(group)
    indices, counts = [], []
    while sum(map(len, counts)) < n * per:  # the bulk receive: every instance at once
        i, r = group.receive_many(n * per, timeout=60)
        indices.append(i)
        counts.append(r["count"])
    indices = np.concatenate(indices)
    assert (np.bincount(indices, minlength=n) == per).all()  # none lost
    rows = np.concatenate(counts)[np.argsort(indices, kind="stable")].reshape(n, per)
    np.testing.assert_array_equal(rows, np.tile(np.arange(1, per + 1), (n, 1)))  # each in order
    assert (group.processed == per).all()  # none handled twice
    state = group.state
    assert (state["count"] == per).all()
    np.testing.assert_allclose(state["total"], per * (per + 1) / 2)


def test_ten_thousand_instances_take_a_million_messages_in_order(system):
    n, per = 10_000, PER_INSTANCE
    group = system.spawn(Accumulator, count=n, queue_capacity=128)
    started = time.monotonic()
    for k in range(per):
        group.broadcast(Add(value=float(k + 1)), timeout=60)
    check_every_instance(group, per)
    assert time.monotonic() - started < 120


def test_a_group_past_the_2d_grid_split(system):
    n, per = 65_535 + 100, 2
    group = system.spawn(Accumulator, count=n, queue_capacity=2)
    for k in range(per):
        group.broadcast(Add(value=float(k + 1)), timeout=60)
    deadline = time.monotonic() + 60
    while not (group.processed == per).all():  # instances past column 65,535 are served too
        assert time.monotonic() < deadline, f"unserved: {np.flatnonzero(group.processed != per)[:5]}"
        time.sleep(0.01)
    for i in (0, 65_534, 65_535, n - 1):
        assert counts_of(group[i], per) == [1, 2]


def test_a_cooperative_histogram_matches_numpy(system):
    n = 8
    group = system.spawn(Histogram, count=n, queue_capacity=8)
    seeds = np.random.default_rng(11).integers(0, 1 << 20, size=(n, 4))
    for i in range(n):
        group[i].send_many([Sample(seed=int(s)) for s in seeds[i]])
    lane = np.arange(LANES, dtype=np.uint32)
    for i in range(n):
        for k in range(4):
            reply = group[i].receive(timeout=30)
            values = (np.uint32(seeds[i, k]) * lane + np.uint32(7)) % np.uint32(256)
            counts = np.bincount(values, minlength=256)
            assert (reply.bin, reply.count) == (counts.argmax(), counts.max())
    assert (group.state["messages"] == 4).all()  # lane 0 counted each message once


@pytest.fixture
def small_quantum():
    available, reason = backend_status("wgpu")
    if not available:
        pytest.skip(f"wgpu unavailable: {reason}")
    with rk.ActorSystem(backend="wgpu", quantum=4) as made:
        yield made


def test_a_flooded_instance_does_not_starve_the_others(small_quantum):
    system = small_quantum
    n, flood, quantum = 32, 1000, system.quantum
    group = system.spawn(Accumulator, count=n, queue_capacity=1024)
    group[0].send_many([Add(value=1.0)] * flood, timeout=10)
    for i in range(1, n):
        group[i].send(Add(value=1.0))
    deadline = time.monotonic() + 30
    while not (group.processed[1:] == 1).all():
        assert time.monotonic() < deadline
        time.sleep(0.001)
    rounds = system.runtime.rounds
    first = int(group.processed[0])
    assert first < flood  # the light instances were served before the flood was through
    assert first <= quantum * rounds  # at most one quantum of the flood per round
    while group.processed[0] < flood:
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_connected_groups_pass_replies_instance_by_instance_on_the_device(system):
    from actor_defs import Doubler, Incrementer, Num

    doublers = system.spawn(Doubler, count=300)
    incrementers = system.spawn(Incrementer, count=300)
    system.connect(doublers, incrementers)  # doublers' out array is the incrementers' k2k array
    for i in (0, 7, 299):
        doublers[i].send(Num(value=float(i)))
    assert [incrementers[i].receive(timeout=30).value for i in (0, 7, 299)] == [1.0, 15.0, 599.0]


def test_a_runaway_instance_is_aborted_and_rolled_back_alone(system):
    from supervision_defs import Bounded, Spin

    group = system.spawn(Bounded, count=4)
    group[2].send(Spin(n=-1))  # loops forever: its budget stops it
    group[1].send(Spin(n=5))
    with pytest.raises(rk.HandlerAborted, match="budget"):
        group[2].receive(timeout=30)
    assert group[1].receive(timeout=30).total == 5
    assert group.state["total"].tolist() == [0, 5, 0, 0]  # instance 2 rolled back, 1 kept its work

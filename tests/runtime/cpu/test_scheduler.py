"""The cpu actor scheduler (``runtime.cpu.scheduler``) against a small hand-written turn kernel.

The kernel has the group turn kernel's signature and contract (five word
arrays, one block per instance, block 0's ``instances``/``quantum`` words,
``progress`` set after a turn that handled something) but a trivial body:
``h2k[i]`` is how many messages instance ``i`` has waiting; a turn takes up
to ``quantum`` of them, adds them to ``state[i]`` and logs ``(i, taken)`` in
``k2k`` (a log shared by the groups of a test).  So fairness and priority are
checked on counts and order, never on times.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, u32
from ringkernel.compiler import compile_module
from ringkernel.ringir import layout as L
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cpu.actors import host_options
from ringkernel.runtime.cpu.jit import jit_kernel
from ringkernel.runtime.cpu.scheduler import Group, Scheduler, chunk_size

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux")

INSTANCES, QUANTUM, PROGRESS, TAG = 29, 30, 17, 10


@rk.kernel
def fake_turn(ctrl: Array[u32], state: Array[u32], h2k: Array[u32], k2k: Array[u32], out: Array[u32]):
    i = rk.block_id(0)
    if rk.thread_id(0) == 0 and u32(i) < ctrl[29]:
        ctrl[i * 32 + 4] += u32(1)  # heartbeat
        pending = rk.atomic_add(h2k, i, u32(0))
        take = min(pending, ctrl[30])
        if take > u32(0):
            rk.atomic_sub(h2k, i, take)
            state[i] += take
            at = rk.atomic_add(k2k, 0, u32(2))
            k2k[at + u32(1)] = ctrl[10] * u32(65536) + u32(i)
            k2k[at + u32(2)] = take
            rk.atomic_exchange(ctrl, 17, u32(1))


_compiled = {}


def turn_fn():
    if "fn" not in _compiled:
        module = fake_turn.ir
        options = host_options("fake_turn")
        text = compile_module(module, "host", **options)
        _compiled["fn"] = jit_kernel(KernelBuild(module, "fake_turn", "host", options, text))
    return _compiled["fn"]


class FakeGroup:
    """A group of ``count`` fake instances: its arrays and its :class:`Group` record."""

    def __init__(self, count, tag, log, quantum=4, workers=2, priority=0):
        self.ctrl = np.zeros(count * 32, np.uint32)
        self.ctrl[INSTANCES], self.ctrl[QUANTUM], self.ctrl[TAG] = count, quantum, tag
        self.state = np.zeros(count, np.uint32)
        self.pending = np.zeros(count, np.uint32)
        self.out = np.zeros(1, np.uint32)
        arrays = (self.ctrl, self.state, self.pending, log, self.out)
        compiled = turn_fn()
        argv = (ctypes.c_void_p * 7)(*(a.ctypes.data for a in arrays), None, None)
        dims = (ctypes.c_int32 * 6)(count, 1, 1, 1, 1, 1)
        chunk = chunk_size(count, workers)
        locks = np.zeros(-(-count // chunk), np.uint32)
        self.group = Group(compiled.address, argv, dims, count, priority, self.ctrl, locks, chunk,
                           keep=(arrays, compiled))


def entries(log):
    n = int(log[0]) // 2
    pairs = log[1 : 1 + 2 * n].reshape(n, 2)
    return pairs[:, 0] >> 16, pairs[:, 0] & 0xFFFF, pairs[:, 1]


def wait_until(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_every_message_is_handled_once_and_the_workers_then_sleep():
    log = np.zeros(1 << 16, np.uint32)
    sched = Scheduler(2, 1_000_000_000)
    try:
        g = FakeGroup(1000, 1, log)
        g.pending[:] = np.arange(1000) % 7
        sched.add(g.group)
        wait_until(lambda: not g.pending.any())
        np.testing.assert_array_equal(g.state, np.arange(1000) % 7)
        wait_until(lambda: sched.words[L.C["parked"]] == 2)  # nothing to do: both asleep
        rounds = sched.rounds
        time.sleep(0.2)
        assert sched.rounds == rounds  # asleep means no rounds (sleep_ns is 1 s, the ring wakes)
        g.pending[5] = 3  # a host publish, then the ring: served at once
        sched.ring()
        wait_until(lambda: g.state[5] == 8)
    finally:
        assert sched.close(5.0)


def test_a_flooded_instance_does_not_starve_the_others():
    """Deficit round robin: every turn takes at most `quantum`, so the others' few
    messages are served while instance 0 still has most of its flood."""
    log = np.zeros(1 << 20, np.uint32)
    sched = Scheduler(2, 50_000_000)
    try:
        g = FakeGroup(200, 1, log, quantum=4)
        g.pending[0] = 1_000_000
        g.pending[1:] = 10
        sched.add(g.group)
        wait_until(lambda: not g.pending[1:].any())
        flooded = int(g.state[0])
    finally:
        assert sched.close(5.0)
    _, idx, taken = entries(log)
    assert taken.max() <= 4
    last_other = np.flatnonzero(idx != 0)[-1]
    before = int(taken[: last_other + 1][idx[: last_other + 1] == 0].sum())
    assert before <= 4 * 3 * 4  # three turns of each other instance, a few per worker
    assert flooded < 1_000_000


def test_higher_priority_classes_are_served_first():
    log = np.zeros(1 << 18, np.uint32)
    sched = Scheduler(1, 50_000_000)
    try:
        low = FakeGroup(50, 1, log, quantum=1, workers=1, priority=0)
        high = FakeGroup(50, 2, log, quantum=1, workers=1, priority=5)
        low.pending[:] = 20
        high.pending[:] = 20
        sched.add(low.group)  # low starts alone ...
        time.sleep(0.01)
        sched.add(high.group)  # ... and is served only when high has nothing left
        wait_until(lambda: not low.pending.any() and not high.pending.any())
    finally:
        assert sched.close(5.0)
    tags, _, taken = entries(log)
    last_high = np.flatnonzero(tags == 2)[-1]
    first_high = np.flatnonzero(tags == 2)[0]
    low_between = int(taken[first_high:last_high][tags[first_high:last_high] == 1].sum())
    assert low_between <= 50  # at most the round that was under way when high came
    assert int(taken[tags == 2].sum()) == 1000 and int(taken[tags == 1].sum()) == 1000


def test_groups_come_and_go_while_workers_run():
    log = np.zeros(1 << 20, np.uint32)
    sched = Scheduler(2, 1_000_000)
    try:
        keep = FakeGroup(64, 1, log)
        sched.add(keep.group)
        for round_ in range(30):
            g = FakeGroup(32, 2, log)
            g.pending[:] = 1000
            keep.pending[round_ % 64] += 5
            sched.ring()
            sched.add(g.group)
            assert sched.remove(g.group)
            served = g.state.copy()
            time.sleep(0.001)
            np.testing.assert_array_equal(g.state, served)  # removed: nobody runs it any more
            np.testing.assert_array_equal(g.state + g.pending, 1000)
        wait_until(lambda: not keep.pending.any())
        assert int(keep.state.sum()) == 30 * 5
    finally:
        assert sched.close(5.0)


def test_threads_are_bounded_and_close_stops_them():
    log = np.zeros(1 << 10, np.uint32)
    before = len(os.listdir("/proc/self/task"))
    py_before = threading.active_count()
    sched = Scheduler(3, 1_000_000)
    assert sched.threads == 0  # no group, no threads
    groups = [FakeGroup(1000, k, log) for k in range(5)]
    for g in groups:
        sched.add(g.group)
    assert len(os.listdir("/proc/self/task")) - before <= 3
    assert threading.active_count() == py_before  # native threads only
    assert sched.close(5.0)
    assert len(os.listdir("/proc/self/task")) == before
    with pytest.raises(RuntimeError, match="closed"):
        sched.add(FakeGroup(1, 9, log).group)


@pytest.mark.parametrize("workers", [0, 257, True, 1.5])
def test_bad_worker_counts_name_the_range(workers):
    with pytest.raises(ValueError, match="from 1 to 256"):
        Scheduler(workers, 1000)

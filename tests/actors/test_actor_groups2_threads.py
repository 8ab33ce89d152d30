"""Issue 18, the thread bound: on cpu at most ``ActorSystem(workers=)`` native threads serve
every single actor and every group (single actors are groups of one on the scheduler)."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.ringir import layout as L

sys.path.insert(0, os.path.dirname(__file__))
from actor_defs import Doubler, Num  # noqa: E402
from groupsys_defs import Counter, Put  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/task")


def threads_now() -> int:
    return len(os.listdir("/proc/self/task"))


def test_fifty_single_actors_and_two_groups_run_on_the_two_workers_only():
    before, py_before = threads_now(), threading.active_count()
    with rk.ActorSystem(backend="cpu", workers=2) as system:
        singles = [system.spawn(Doubler, queue_capacity=4) for _ in range(50)]
        groups = [system.spawn(Counter, count=100, queue_capacity=4) for _ in range(2)]
        for i, ref in enumerate(singles):
            ref.send(Num(value=float(i)))
        for g in groups:
            g.broadcast(Put(value=5))
        assert [ref.receive(timeout=10.0).value for ref in singles] == [2.0 * i for i in range(50)]
        for g in groups:
            assert g[99].receive(timeout=10.0).value == 5
        assert threads_now() - before <= 2  # the scheduler's workers: nothing per actor or group
        assert threading.active_count() == py_before  # and no Python thread either
        assert system.runtime.threads == 2
    assert threads_now() <= before


def test_a_single_actor_answers_asks_and_keeps_its_order_on_the_scheduler():
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        ref = system.spawn(Counter, queue_capacity=128)
        got = [ref.ask(Put(value=v), timeout=10.0) for v in range(20)]
        assert [(m.count, m.value) for m in got] == [(i + 1, i) for i in range(20)]
        batch = np.zeros(100, dtype=Put.dtype)
        batch["value"] = np.arange(100)
        ref.send_many(batch, timeout=10.0)
        replies = ref.receive_many(100, timeout=10.0, as_array=True)
        while len(replies) < 100:
            replies = np.concatenate([replies, ref.receive_many(100, timeout=10.0, as_array=True)])
        np.testing.assert_array_equal(replies["count"], np.arange(21, 121))
        assert ref.state == {"count": 120, "total": sum(range(20)) + sum(range(100))}


def test_a_left_actor_or_group_says_so_in_its_control_blocks():
    """Regression: a group (and a single actor on the scheduler) that left kept ``state`` at
    running; a loop marks its control block exited when it leaves, so the scheduler's do too."""
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        ref = system.spawn(Doubler)
        group = system.spawn(Counter, count=3)
        assert ref.ask(Num(value=1.0), timeout=5.0).value == 2.0
    assert ref.ctrl[L.C["state"]] == L.ACTOR_EXITED
    np.testing.assert_array_equal(group.counter("state"), L.ACTOR_EXITED)


def test_priority_is_still_refused_for_a_single_actor_with_the_reason():
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        with pytest.raises(ValueError, match="class 0"):
            system.spawn(Doubler, priority=3)


def test_a_group_runs_on_the_cpu_batch_pump(monkeypatch):
    """Regression: ``CpuBatchDevice.bind`` took no ``grid``, so a group on the re-dispatch pump
    over the cpu JIT (what wgpu and Metal run, testable anywhere) failed at its first round."""
    import ringkernel.actors as rk_actors
    from ringkernel.runtime.actor_pump import RedispatchRuntime
    from ringkernel.runtime.cpu.actors import CpuBatchDevice

    monkeypatch.setattr(rk_actors, "open_runtime",
                        lambda backend, idle_ns, **_: RedispatchRuntime(CpuBatchDevice(), idle_ns))
    count, per = 300, 5
    with rk.ActorSystem(backend="cpu") as system:
        group = system.spawn(Counter, count=count, queue_capacity=8)
        for k in range(per):
            group.broadcast(Put(value=k), timeout=10.0)
        for i in (0, 7, count - 1):
            assert [group[i].receive(timeout=20.0).count for _ in range(per)] == list(range(1, per + 1))
    np.testing.assert_array_equal(group.state["count"], per)
    np.testing.assert_array_equal(group.state["total"], sum(range(per)))

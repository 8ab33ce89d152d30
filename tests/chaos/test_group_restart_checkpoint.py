"""A restarted group instance starts from its words in the group's latest checkpoint (explicit
or periodic), not from the initial state (issue 20: restart from checkpoint)."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import durability

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "actors"))
from bounded import within  # noqa: E402
from supervision_defs import Spin, Unbounded  # noqa: E402


def test_a_restart_after_a_group_checkpoint_starts_from_it(chaos_backend, tmp_path):
    with rk.ActorSystem(backend=chaos_backend) as system:
        group = system.spawn(Unbounded, count=3, queue_capacity=8, restart="on_failure")
        for i in range(3):
            within(30, lambda i=i: group[i].ask(Spin(n=i + 1), timeout=20))
        group.checkpoint(tmp_path / "g.rkc")
        within(30, lambda: group[2].ask(Spin(n=100), timeout=20))  # after the checkpoint: lost
        assert within(30, lambda: group.restart_instance(2, grace=20.0))
        assert group.state["total"].tolist() == [1, 2, 3]  # instance 2 as checkpointed
        assert np.array_equal(group.state["calls"], [1, 1, 1])
        assert within(30, lambda: group[2].ask(Spin(n=5), timeout=20)).total == 8


def test_a_hung_instance_restarts_from_the_latest_periodic_group_checkpoint(tmp_path):
    with rk.ActorSystem(backend="cpu", watchdog_timeout=0.2) as system:
        group = system.spawn(Unbounded, count=2, queue_capacity=8, restart="on_failure",
                             checkpoint_every=0.05, checkpoint_dir=tmp_path)
        assert group[1].ask(Spin(n=7), timeout=10).total == 7
        deadline = time.monotonic() + 10
        while not durability.checkpoints(tmp_path, group.name) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert durability.checkpoints(tmp_path, group.name)
        group[1].send(Spin(n=-1))  # hangs: the watchdog aborts it and restarts the instance
        group[1].send(Spin(n=2))
        with pytest.raises(rk.HandlerAborted, match="watchdog"):
            group[1].receive(timeout=10)
        after = group[1].receive(timeout=10)
        assert (after.total, after.calls) == (9, 2)  # the checkpointed (7, 1), then that message


def test_a_restored_group_restarts_from_the_restored_state_after_a_migration(tmp_path):
    from ringkernel.runtime import backend_status

    ok, reason = backend_status("wgpu")
    if not ok:
        pytest.skip(reason)
    with rk.ActorSystem(backend="cpu") as system:
        group = system.spawn(Unbounded, count=2, queue_capacity=8)
        within(30, lambda: group[0].ask(Spin(n=4), timeout=20))
        system.checkpoint(tmp_path / "g.rkc")
    with rk.ActorSystem(backend="cpu") as system:
        (group,) = system.restore(tmp_path / "g.rkc", [Unbounded])
        system.migrate(group, backend="wgpu")
        within(30, lambda: group[0].ask(Spin(n=1), timeout=20))
        assert within(30, lambda: group.restart_instance(0, grace=20.0))
        assert group.state["total"].tolist() == [4, 0]  # the restored state, not the class's

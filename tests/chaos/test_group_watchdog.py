"""Chaos in actor groups: a hung instance is aborted (and restarted) while its group serves on.

On cpu a handler that never returns is found by the watchdog and aborted
through the instance's own ``abort_at``; on wgpu a dispatch cannot be cut
short, so the default budget ends it, and the restart path (pause the
group's kernel, put back one instance's state, start again) is driven
directly.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from prometheus_client import generate_latest

import ringkernel as rk
from ringkernel.observability.prometheus import registry_for
from ringkernel.ringir import layout as L

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "actors"))
from bounded import within  # noqa: E402
from supervision_defs import Spin, Unbounded  # noqa: E402


def _watchdog_for(backend: str) -> float:
    return 0.2 if backend == "cpu" else 3.0


def _reason(backend: str) -> str:
    return "watchdog" if backend == "cpu" else "budget"


def test_a_hung_instance_is_aborted_and_its_group_keeps_serving(chaos_backend, rounds):
    with rk.ActorSystem(backend=chaos_backend, watchdog_timeout=_watchdog_for(chaos_backend)) as system:
        group = system.spawn(Unbounded, count=4, queue_capacity=8)
        for i in range(rounds):
            group[1].send(Spin(n=-1))
            assert within(30, lambda: group[2].ask(Spin(n=3), timeout=20)).calls == i + 1
            with pytest.raises(rk.HandlerAborted) as caught:
                within(30, lambda: group[1].receive(timeout=20))
            assert caught.value.reason == _reason(chaos_backend)
            reply = within(30, lambda: group[1].ask(Spin(n=2), timeout=20))
            assert (reply.total, reply.calls) == (2 * (i + 1), i + 1)  # served on from its state
        within(10, lambda: _until(lambda: group.status == "idle"))  # the watchdog saw the abort
        assert group[1].status == "idle"
        assert system.metrics()["groups"][group.name]["handler_aborted"] == rounds


def test_the_watchdog_restarts_only_the_hung_instance_keeping_its_queue():
    with rk.ActorSystem(backend="cpu", watchdog_timeout=0.2) as system:
        group = system.spawn(Unbounded, count=3, queue_capacity=8, restart="on_failure", max_restarts=2)
        group[1].ask(Spin(n=5), timeout=5)
        group[2].ask(Spin(n=4), timeout=5)
        group[1].send(Spin(n=-1))
        group[1].send(Spin(n=7))  # queued behind the hung message: kept across the restart
        with pytest.raises(rk.HandlerAborted) as caught:
            within(30, lambda: group[1].receive(timeout=20))
        assert caught.value.reason == "watchdog"
        reply = within(30, lambda: group[1].receive(timeout=20))
        assert (reply.total, reply.calls) == (7, 1)  # on the initial state, not the old one
        assert group.state["total"].tolist() == [0, 7, 4]  # the others kept theirs
        assert group[1].restarts == 1 and group[0].restarts == 1  # counted per group
        assert group[1].status == "idle"
        assert system.metrics()["groups"][group.name]["restarts"] == 1
        text = generate_latest(registry_for(system)).decode()
        assert f'ringkernel_group_restarts_total{{group="{group.name}",type="Unbounded"}} 1.0' in text


def test_a_restart_storm_fails_the_instance_and_the_others_serve_on():
    with rk.ActorSystem(backend="cpu", watchdog_timeout=0.2) as system:
        group = system.spawn(Unbounded, count=3, queue_capacity=8, restart="on_failure", max_restarts=0)
        group[0].send(Spin(n=-1))
        with pytest.raises(rk.HandlerAborted):
            within(30, lambda: group[0].receive(timeout=20))
        within(10, lambda: _until(lambda: group[0].status == "failed"))
        with pytest.raises(rk.ActorFailed):
            group[0].send(Spin(n=1))
        assert within(30, lambda: group[2].ask(Spin(n=6), timeout=20)).total == 6
        assert group.status == "idle"  # some instances failed: the group still serves
        assert system.metrics()["groups"][group.name]["failed"] == 1
        assert system.health()["groups"][group.name] == "idle"


def test_a_hung_instance_without_restarts_serves_its_next_message():
    with rk.ActorSystem(backend="cpu", watchdog_timeout=1.0) as system:
        group = system.spawn(Unbounded, count=2, queue_capacity=8)
        group[0].send(Spin(n=-1))
        group[0].send(Spin(n=1))
        # the watchdog marks it hung, aborts the message, and it serves the next one
        with pytest.raises(rk.HandlerAborted):
            within(30, lambda: group[0].receive(timeout=20))
        assert within(30, lambda: group[0].receive(timeout=20)).total == 1
        within(10, lambda: _until(lambda: group[0].status == "idle"))  # the watchdog saw it end
        assert system.health()["ready"]


def test_a_restart_keeps_the_other_instances_and_every_queued_message(chaos_backend):
    with rk.ActorSystem(backend=chaos_backend) as system:
        group = system.spawn(Unbounded, count=3, queue_capacity=8, restart="on_failure")
        for i in range(3):
            within(30, lambda i=i: group[i].ask(Spin(n=i + 1), timeout=20))
        system._pause([group])
        group[1].send(Spin(n=10))  # queued while the kernel is paused: the restart keeps it
        assert within(30, lambda: group.restart_instance(1, grace=20.0))
        reply = within(30, lambda: group[1].receive(timeout=20))
        assert (reply.total, reply.calls) == (10, 1)  # served on the initial state
        assert group.state["total"].tolist() == [1, 10, 3]
        assert np.array_equal(group.state["calls"], [1, 1, 1])
        assert int(group.ctrl.reshape(3, L.CONTROL_WORDS)[1, L.C["aborted"]]) == 0  # nothing ran


def test_restart_puts_back_the_initial_state_of_that_instance_only(chaos_backend):
    with rk.ActorSystem(backend=chaos_backend) as system:
        group = system.spawn(Unbounded, count=3, queue_capacity=8, restart="on_failure")
        for i in range(3):
            within(30, lambda i=i: group[i].ask(Spin(n=i + 1), timeout=20))
        assert within(30, lambda: group.restart_instance(2, grace=20.0))
        assert group.state["total"].tolist() == [1, 2, 0]
        assert np.array_equal(group.state["calls"], [1, 1, 0])
        assert within(30, lambda: group[2].ask(Spin(n=5), timeout=20)).total == 5


def _until(done) -> None:
    import time

    while not done():
        time.sleep(0.01)

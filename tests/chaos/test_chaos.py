"""Chaos: runaway handlers, overflowing queues, skewed clocks, shutdown under all of them.

Each scenario injects one failure and checks that the system reports it and
keeps its promises: the actor keeps serving, nothing is lost without being
counted, and shutdown returns within its timeout.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

import ringkernel as rk
import ringkernel.actors as rk_actors
from ringkernel.actors import encode
from ringkernel.ringir import layout as L
from ringkernel.runtime.hlc import physical_now
from ringkernel.runtime.queues import POLICIES

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "actors"))
from bounded import within  # noqa: E402
from supervision_defs import Plain, Spin, Unbounded  # noqa: E402

HOUR_US = 3600 * 1_000_000


def _watchdog_for(backend: str) -> float:
    """Short on cpu; on wgpu above a first dispatch's pipeline build on lavapipe."""
    return 0.2 if backend == "cpu" else 3.0


def test_an_endless_handler_is_aborted_and_the_actor_keeps_serving(chaos_backend, rounds):
    with rk.ActorSystem(backend=chaos_backend, watchdog_timeout=_watchdog_for(chaos_backend)) as system:
        ref = system.spawn(Unbounded, queue_capacity=8)
        for i in range(rounds):
            ref.send(Spin(n=-1))
            with pytest.raises(rk.HandlerAborted) as caught:
                within(30, lambda: ref.receive(timeout=20))
            # cpu: the watchdog ends it; wgpu: a dispatch cannot be interrupted, the default budget ends it
            assert caught.value.reason == ("watchdog" if chaos_backend == "cpu" else "budget")
            reply = within(30, lambda: ref.ask(Spin(n=3), timeout=20))
            assert (reply.total, reply.calls) == (3 * (i + 1), i + 1)
        assert ref.stats["aborted"] == rounds


@pytest.mark.parametrize("policy", POLICIES)
def test_overflow_loses_nothing_it_does_not_report(policy, rounds):
    sent = 40 * rounds
    with rk.ActorSystem(backend="cpu") as system:
        ref = system.spawn(Plain, queue_capacity=4, policy=policy)
        refused = 0
        for i in range(1, sent + 1):
            try:
                ref.send(Spin(n=i), timeout=0.001)  # nobody receives yet: the queues fill up
            except rk.QueueFull:
                refused += 1
        got = []
        while len(got) + refused + ref.stats["input"]["dropped"] < sent:
            got.append(within(10, lambda: ref.receive(timeout=5)).calls)
        stats = ref.stats["input"]
    assert len(got) + refused + stats["dropped"] == sent  # every message: delivered, refused or dropped
    assert refused == stats["rejected"]  # each refusal counted where the operator sees it
    assert got == sorted(got) and len(set(got)) == len(got)  # in order, none twice
    assert ref.state["total"] == sum(got)  # nothing handled without its reply
    if policy == "drop_oldest":
        assert stats["dropped"] > 0 and refused == 0
    elif policy == "reject":
        assert refused > 0 and stats["dropped"] == 0


def _push_stamped(ref: rk.ActorRef, stamp: int) -> None:
    msg = Spin(n=1)
    ref.h2k.push(encode(msg, ref.type.message_info(msg), ref.h2k.slot_words, (0, ref.id, 0, stamp)))
    ref.system._wake(ref)


def test_a_message_an_hour_ahead_is_refused_and_counted(chaos_backend):
    ahead = physical_now() + (HOUR_US << L.HLC_LOGICAL_BITS)
    with rk.ActorSystem(backend=chaos_backend) as system:
        ref = system.spawn(Plain, queue_capacity=8)
        _push_stamped(ref, ahead)
        reply = within(30, lambda: ref.receive(timeout=20))
        assert reply.total == 1  # handled all the same
        assert reply.envelope.hlc < ahead  # but its clock did not jump an hour
        assert ref.stats["clock_refused"] == 1


def test_a_reply_from_an_actor_an_hour_ahead_is_refused_and_counted(chaos_backend):
    with rk.ActorSystem(backend=chaos_backend) as system:
        ref = system.spawn(Plain, queue_capacity=8)
        system._pause([ref])
        skewed = physical_now() + (HOUR_US << L.HLC_LOGICAL_BITS)
        ref.ctrl[L.C["hlc_lo"]], ref.ctrl[L.C["hlc_hi"]] = skewed & 0xFFFFFFFF, skewed >> 32
        system._launch(ref)
        ref.send(Spin(n=2))
        assert within(30, lambda: ref.receive(timeout=20)).total == 2  # delivered
        assert ref.stats["host_clock_refused"] == 1 and system.clock_drift_refused == 1
        assert system.hlc.tick() < skewed  # the host clock stayed put


def test_shutdown_finishes_within_its_timeout_whatever_the_handlers_do(chaos_backend, monkeypatch):
    monkeypatch.setattr(rk_actors, "STOP_GRACE", 0.5)
    system = rk.ActorSystem(backend=chaos_backend)
    refs = [system.spawn(Unbounded, queue_capacity=4) for _ in range(2)]
    for ref in refs:
        for _ in range(3):
            ref.send(Spin(n=-1))
    time.sleep(0.2)
    start = time.monotonic()
    within(30, lambda: system.shutdown(drain_timeout=0.3))
    assert time.monotonic() - start < 0.3 + 0.5 + 1.5
    assert system.stopped and all(ref.status == "stopped" for ref in refs)

"""Chaos for clocks: each actor's drift against the host clock is measured and reported
(``health()["clock"]``, ``ringkernel_hlc_drift_seconds``), and a stamp an hour ahead sent to
an instance of a group is refused by that instance's merge and counted, on cpu and wgpu."""

from __future__ import annotations

import os
import sys

from prometheus_client import generate_latest

import ringkernel as rk
from ringkernel.actors import encode
from ringkernel.observability.prometheus import registry_for
from ringkernel.ringir import layout as L
from ringkernel.runtime.hlc import physical_now

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "actors"))
from bounded import within  # noqa: E402
from supervision_defs import Plain, Spin  # noqa: E402

HOUR_US = 3600 * 1_000_000


def _push_stamped(ref: rk.ActorRef, stamp: int) -> None:
    msg = Spin(n=1)
    ref.h2k.push(encode(msg, ref.type.message_info(msg), ref.h2k.slot_words, (0, ref.id, 0, stamp)))
    ref.wake()


def test_an_hour_ahead_stamp_to_a_group_instance_is_refused_and_counted(chaos_backend):
    ahead = physical_now() + (HOUR_US << L.HLC_LOGICAL_BITS)
    with rk.ActorSystem(backend=chaos_backend) as system:
        group = system.spawn(Plain, count=3, queue_capacity=8)
        _push_stamped(group[1], ahead)
        reply = within(30, lambda: group[1].receive(timeout=20))
        assert reply.total == 1  # handled all the same
        assert reply.envelope.hlc < ahead  # its clock did not jump an hour
        assert group.counter("clock_refused").tolist() == [0, 1, 0]
        assert system.metrics()["groups"][group.name]["clock_refused"] == 1
        assert system.health()["clock"]["refused"] == 1


def test_each_actors_drift_is_measured_and_reported(chaos_backend):
    with rk.ActorSystem(backend=chaos_backend) as system:
        skewed, fine = system.spawn(Plain, queue_capacity=8), system.spawn(Plain, queue_capacity=8)
        within(30, lambda: fine.ask(Spin(n=1), timeout=20))
        system._pause([skewed])
        clock = physical_now() + (HOUR_US << L.HLC_LOGICAL_BITS)  # an actor an hour ahead
        skewed.ctrl[L.C["hlc_lo"]], skewed.ctrl[L.C["hlc_hi"]] = clock & 0xFFFFFFFF, clock >> 32
        system._launch(skewed)
        report = system.health()["clock"]
        assert 3590 < report["drift_seconds"][skewed.name] < 3610
        assert abs(report["drift_seconds"][fine.name]) < 60
        assert report["max_drift_seconds"] == L.MAX_CLOCK_DRIFT_US / 1e6
        assert within(30, lambda: skewed.ask(Spin(n=2), timeout=20)).total == 2
        assert system.health()["clock"]["refused"] == 1  # the host refused its reply's stamp
        text = generate_latest(registry_for(system)).decode()
        prefix = f'ringkernel_hlc_drift_seconds{{actor="{skewed.name}"'
        line = next(x for x in text.splitlines() if x.startswith(prefix))
        assert 3590 < float(line.split()[-1]) < 3610

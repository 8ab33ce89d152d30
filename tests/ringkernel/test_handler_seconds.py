"""``ringkernel_handler_seconds``: handler durations measured on the device clock (cpu, and PTX
through ``%globaltimer``), counted in the control block; wgpu times each dispatch on the host."""

from __future__ import annotations

import os
import sys

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import ringkernel as rk
import ringkernel.actors as rk_actors
from ringkernel.observability.prometheus import registry_for
from ringkernel.ringir import layout as L
from ringkernel.runtime import backend_status

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "actors"))
from supervision_defs import Spin, Unbounded  # noqa: E402


@pytest.fixture(autouse=True)
def time_every_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every handler timed (the default samples one in 64; see the last test)."""
    monkeypatch.setattr(rk_actors, "HANDLER_TIMING_MASK", 0)


@pytest.fixture(params=["cpu", "wgpu"])
def backend(request: pytest.FixtureRequest) -> str:
    ok, reason = backend_status(request.param)
    if not ok:
        pytest.skip(reason)
    return request.param


def test_the_buckets_count_each_handler_once_by_its_duration(backend):
    with rk.ActorSystem(backend=backend) as system:
        ref = system.spawn(Unbounded, queue_capacity=8)
        for n in (1, 2, 3):
            ref.ask(Spin(n=n), timeout=20)
        taken = system.metrics()["actors"][ref.name]["handler_seconds"]
        assert taken["count"] == 3  # every handled message, once
        bounds = [b for b, _ in taken["buckets"]]
        assert bounds[0] == 1e-6 and bounds[-2] == 2.0**14 * 1e-6 and bounds[-1] == float("inf")
        counts = [n for _, n in taken["buckets"]]
        assert counts == sorted(counts) and counts[-1] == 3  # cumulative
        assert 0 <= taken["sum"] < 5.0


def test_a_long_handler_lands_in_a_long_bucket_on_the_device_clock():
    with rk.ActorSystem(backend="cpu") as system:
        ref = system.spawn(Unbounded, queue_capacity=8)
        ref.ask(Spin(n=1), timeout=20)
        short = int(ref.ctrl[L.C["handler_us_lo"]])
        ref.ask(Spin(n=200_000_000), timeout=60)  # tens of milliseconds at least
        spent = int(ref.ctrl[L.C["handler_us_lo"]]) | int(ref.ctrl[L.C["handler_us_hi"]]) << 32
        assert spent - short > 5_000  # µs: measured in the loop, around the handler
        last = L.HANDLER_BUCKET_0 + L.HANDLER_BUCKETS
        assert int(ref.ctrl[last - 3 : last].sum()) == 1  # 4 ms and longer
        text = generate_latest(registry_for(system)).decode()
        families = text_string_to_metric_families(text)
        family = next(f for f in families if f.name == "ringkernel_handler_seconds")
        count = next(s.value for s in family.samples if s.name.endswith("_count"))
        total = next(s.value for s in family.samples if s.name.endswith("_sum"))
        assert count == 2 and total > 0.005


def test_group_instances_are_timed_and_summed_per_group(backend):
    with rk.ActorSystem(backend=backend) as system:
        group = system.spawn(Unbounded, count=4, queue_capacity=8)
        for i in range(4):
            group[i].ask(Spin(n=i), timeout=20)
        group[2].ask(Spin(n=5), timeout=20)
        taken = system.metrics()["groups"][group.name]["handler_seconds"]
        assert taken["count"] == 5
        if backend == "cpu":  # per instance, in each instance's control block
            per = group.ctrl.reshape(4, L.CONTROL_WORDS)[:, L.HANDLER_BUCKET_0 :][:, : L.HANDLER_BUCKETS]
            assert per.sum(axis=1).tolist() == [1, 1, 2, 1]


def test_by_default_one_handler_in_64_is_timed(monkeypatch):
    monkeypatch.setattr(rk_actors, "HANDLER_TIMING_MASK", L.TIMING_MASK_DEFAULT)
    with rk.ActorSystem(backend="cpu") as system:
        group = system.spawn(Unbounded, count=2, queue_capacity=256)
        group[0].send_many([Spin(n=1)] * 130)
        assert len(group[0].receive_many(max_count=256, timeout=20)) >= 1
        while int(group.processed[0]) < 130:
            group[0].receive_many(max_count=256, timeout=20)
        per = group.ctrl.reshape(2, L.CONTROL_WORDS)[:, L.HANDLER_BUCKET_0 : L.HANDLER_BUCKET_0 + 16]
        assert per.sum(axis=1).tolist() == [3, 0]  # handlers 0, 64 and 128 of instance 0


def test_ptx_reads_the_global_timer_around_each_handler():
    clocks = Unbounded.compile("rir").count("= clock")
    inputs = 3  # h2k, k2k, routed: each step times its handler (start and end), and the HLC reads one
    assert clocks >= 2 * inputs + 1
    assert Unbounded.compile("ptx").count("globaltimer") == clocks  # each is a %globaltimer read
    assert "handler" not in Unbounded.compile("wgsl")  # no clock: the host times dispatches

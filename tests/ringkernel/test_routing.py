"""The facade of actor messaging (ringkernel/routing.py) that needs no talking kernel: connect's
argument errors, the deadlock error's text, and how health and metrics report the router."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import ringkernel as rk
from ringkernel.observability.prometheus import registry_for
from tests.actors.actor_defs import Accumulator


@pytest.fixture
def system():
    with rk.ActorSystem(backend="cpu", workers=1) as s:
        yield s


def test_connect_names_a_port_the_sender_does_not_have(system):
    a, b = system.spawn(Accumulator), system.spawn(Accumulator)
    with pytest.raises(ValueError, match=r"Accumulator has no port 'out' \(its ports: none\)"):
        system.connect(a, b, port="out")


@pytest.mark.parametrize("port", [3, "", "not a name"])
def test_connect_refuses_a_port_that_is_not_a_name(system, port):
    a, b = system.spawn(Accumulator), system.spawn(Accumulator)
    with pytest.raises(TypeError, match="port must be the name of a port attribute"):
        system.connect(a, b, port=port)


def test_connect_with_a_port_refuses_what_is_not_an_actor_of_this_system(system):
    a = system.spawn(Accumulator)
    with pytest.raises(TypeError, match="the second is 'b'"):
        system.connect(a, "b", port="out")
    with rk.ActorSystem(backend="cpu", workers=1) as other:
        stranger = other.spawn(Accumulator)
        with pytest.raises(TypeError, match="the first is"):
            system.connect(stranger, a, port="out")


def test_the_deadlock_error_names_the_cycle_and_is_a_runtime_error():
    error = rk.SendCycleError(("A#1", "B#2"))
    assert isinstance(error, RuntimeError)
    assert error.cycle == ("A#1", "B#2")
    assert "A#1 -> B#2 -> A#1" in str(error)


def test_a_system_without_talking_actors_routes_nothing_and_reports_zeros(system):
    ref = system.spawn(Accumulator)
    assert system.routing.thread is None  # no router thread until an actor talks
    routing = system.metrics()["routing"]
    assert routing["routed"] == routing["unrouted"] == routing["invalid"] == routing["timers_pending"] == 0
    assert routing["cycle"] is None
    assert "send_cycle" not in system.health()
    assert system.metrics()["actors"][ref.name]["sends_rejected"] == 0


def test_prometheus_has_the_router_families(system):
    system.spawn(Accumulator)
    text = generate_latest(registry_for(system)).decode()
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    for name in ("ringkernel_messages_routed_total", "ringkernel_messages_unrouted_total",
                 "ringkernel_send_targets_invalid_total", "ringkernel_timers_pending",
                 "ringkernel_sends_rejected_total"):
        assert name in names, name


def test_a_reported_cycle_makes_the_system_unhealthy_and_names_it(system):
    system.spawn(Accumulator)
    system.routing.router.cycle = ("A#7", "B#8")  # what the router sets after two idle rounds
    try:
        report = system.health()
        assert report["live"] is False and report["ready"] is False
        assert report["send_cycle"] == ["A#7", "B#8"]
        assert system.metrics()["routing"]["cycle"] == ["A#7", "B#8"]
        with pytest.raises(rk.SendCycleError, match="A#7 -> B#8 -> A#7"):
            system.routing.check()
    finally:
        system.routing.router.cycle = None

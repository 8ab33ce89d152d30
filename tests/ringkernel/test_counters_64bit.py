"""Counters do not wrap at 2**32: the loops' u32 words are widened to 64 bits on every read."""

from __future__ import annotations

import numpy as np
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import ringkernel as rk
from ringkernel.observability.prometheus import registry_for
from ringkernel.observability.widen import Widener
from ringkernel.ringir import layout as L

from .observe_defs import Echo, Ping

NEAR = 2**32 - 2


def test_a_widener_adds_a_wrap_each_time_a_counter_comes_out_smaller():
    w = Widener()
    seen = [w.value("a", v) for v in (5, 2**32 - 1, 3, 10, 2)]
    assert seen == [5, 2**32 - 1, 2**32 + 3, 2**32 + 10, 2**33 + 2]
    assert w.values("g", np.array([1, 2**32 - 1])).tolist() == [1, 2**32 - 1]
    assert w.values("g", np.array([2, 1])).tolist() == [2, 2**32 + 1]  # per element


def test_an_actors_processed_counter_passes_2_to_the_32():
    with rk.ActorSystem(backend="cpu") as system:
        echo = system.spawn(Echo)
        system._pause([echo])
        echo.ctrl[L.C["processed"]] = NEAR  # as after four billion messages
        system._launch(echo)
        assert system.metrics()["actors"][echo.name]["processed"] == NEAR
        for i in range(5):
            echo.ask(Ping(value=float(i)), timeout=5)
        assert int(echo.ctrl[L.C["processed"]]) == 3  # the word wrapped
        assert system.metrics()["actors"][echo.name]["processed"] == NEAR + 5
        text = generate_latest(registry_for(system)).decode()
        samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
        processed = next(s for s in samples if s.name == "ringkernel_messages_processed_total")
        assert processed.value == NEAR + 5


def test_a_groups_counters_are_widened_per_instance_before_the_sum():
    with rk.ActorSystem(backend="cpu") as system:
        group = system.spawn(Echo, count=3)
        system._pause([group])
        group.ctrl.reshape(3, L.CONTROL_WORDS)[1, L.C["processed"]] = NEAR
        system._launch(group)
        assert system.metrics()["groups"][group.name]["processed"] == NEAR
        for i in (0, 1, 1, 1, 2):
            group[i].ask(Ping(value=1.0), timeout=5)
        assert system.metrics()["groups"][group.name]["processed"] == NEAR + 5

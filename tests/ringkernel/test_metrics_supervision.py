"""The metrics report what supervision sees: aborted handlers and restarts (issues 19 and 21)."""

from __future__ import annotations

import os
import sys

import pytest

import ringkernel as rk

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "actors"))
from bounded import within  # noqa: E402
from supervision_defs import Bounded, Spin  # noqa: E402


def test_an_aborted_handler_is_counted_by_the_metrics_and_the_ref() -> None:
    with rk.ActorSystem(backend="cpu") as system:
        ref = system.spawn(Bounded, queue_capacity=8)
        assert within(20, lambda: ref.ask(Spin(n=2), timeout=10)).total == 2
        assert ref.handler_aborted == 0 and ref.restarts == 0
        ref.send(Spin(n=-1))  # never ends by itself: the budget aborts it
        with pytest.raises(rk.HandlerAborted):
            within(20, lambda: ref.receive(timeout=10))
        assert ref.handler_aborted == 1
        numbers = system.metrics()["actors"][ref.name]
        assert numbers["handler_aborted"] == 1 and numbers["restarts"] == 0

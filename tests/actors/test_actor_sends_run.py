"""Sends through the facade's own loops (persistent on cpu, batch on wgpu): counted, published once,
and discarded with the state when a handler is aborted."""

from __future__ import annotations

import os
import sys

import pytest

import ringkernel as rk
from ringkernel.ringir import layout as L
from ringkernel.runtime import backend_status

sys.path.insert(0, os.path.dirname(__file__))
from msg_defs import Spinner, Split  # noqa: E402


def system_on(backend: str) -> rk.ActorSystem:
    available, reason = backend_status(backend)
    if not available:
        pytest.skip(f"{backend} unavailable: {reason}")
    return rk.ActorSystem(backend=backend)


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_an_aborted_handler_publishes_none_of_its_sends(backend):
    with system_on(backend) as system:
        ref = system.spawn(Spinner, queue_capacity=64)
        ref.send(Split(count=10, tag=1))
        ref.send(Split(count=1_000_000, tag=2))  # past the budget of 50 iterations: aborted
        ref.send(Split(count=3, tag=3))
        with pytest.raises(rk.HandlerAborted):
            ref.receive(timeout=10.0)
        system.shutdown(drain=True, drain_timeout=10.0)
        assert ref.state["done"] == 2
        assert int(ref.sends.buffer[L.Q_ENQUEUED]) == 13  # 10 + 3: the aborted handler's sends are gone
        assert int(ref.ctrl[L.C["aborted"]]) == 1

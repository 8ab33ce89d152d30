"""Chaos in the host pump (wgpu, and the same pump over the cpu JIT): a round that never
returns is found by the watchdog, the pump is restarted, and no queued message is lost."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import pytest

import ringkernel as rk
import ringkernel.actors as rk_actors
from ringkernel.runtime import backend_status

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "actors"))
from bounded import within  # noqa: E402
from supervision_defs import Plain, Spin  # noqa: E402


class HangOnce:
    """Wraps a device's ``run``: once armed, the next round blocks until released, then fails
    (as a stuck driver call that finally errors out)."""

    def __init__(self, device: Any) -> None:
        self.run = device.run
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()
        device.run = self

    def __call__(self, dispatches: Any, reads: Any) -> Any:
        if self.armed:
            self.armed = False
            self.entered.set()
            self.release.wait(60)
            raise RuntimeError("the stuck round came back too late")
        return self.run(dispatches, reads)


@pytest.fixture(params=["wgpu", "cpu-batch"])
def pump_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "cpu-batch":
        from ringkernel.runtime.actor_pump import RedispatchRuntime
        from ringkernel.runtime.cpu.actors import CpuBatchDevice

        monkeypatch.setattr(rk_actors, "open_runtime", lambda backend, idle_ns, **_: RedispatchRuntime(
            CpuBatchDevice(), idle_ns))
        return "cpu"
    ok, reason = backend_status(request.param)
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{request.param} must run in CI: {reason}")
        pytest.skip(reason)
    return request.param


def test_a_stalled_pump_is_restarted_and_keeps_the_queued_messages(pump_backend, rounds):
    with rk.ActorSystem(backend=pump_backend, watchdog_timeout=2.0) as system:
        runtime = system.runtime
        hang = HangOnce(runtime.device)
        ref = system.spawn(Plain, queue_capacity=16)
        group = system.spawn(Plain, count=3, queue_capacity=16)
        total = 0
        for r in range(rounds):
            assert within(30, lambda: ref.ask(Spin(n=1), timeout=20)).calls == 1  # pipelines built
            total += 1
            hang.armed = True
            for n in (1, 2, 3):
                ref.send(Spin(n=n))
            group[2].send(Spin(n=5))
            assert hang.entered.wait(10)
            totals = [within(30, lambda: ref.receive(timeout=20)).total for _ in range(3)]
            assert totals == [total + 1, total + 3, total + 6]  # each once, in order
            total += 6
            assert within(30, lambda: group[2].receive(timeout=20)).total == 5 * (r + 1)
            assert runtime.pump_restarts == r + 1
            hang.release.set()  # the abandoned round ends in an error nobody sees
            hang.entered.clear()
            hang.release = threading.Event()
        assert within(30, lambda: ref.ask(Spin(n=4), timeout=20)).total == total + 4
        assert ref.status == "idle" and runtime.failure is None
        assert system.metrics()["pump_restarts"] == rounds


def test_a_busy_pump_is_not_called_stalled():
    from ringkernel.runtime.actor_pump import RedispatchRuntime
    from ringkernel.runtime.cpu.actors import CpuBatchDevice

    runtime = RedispatchRuntime(CpuBatchDevice())
    assert not runtime.stalled(0.0)  # no round in progress
    runtime.round_started = 0.0
    assert runtime.stalled(1.0)
    runtime.closing = True
    assert not runtime.stalled(1.0)  # a pump being closed is not restarted


def test_a_round_that_came_back_is_not_restarted():
    from ringkernel.runtime.actor_pump import RedispatchRuntime
    from ringkernel.runtime.cpu.actors import CpuBatchDevice

    runtime = RedispatchRuntime(CpuBatchDevice())
    assert runtime.restart_pump() is False  # no round in progress (it ended before the look)
    assert runtime.generation == 0 and runtime.pump_restarts == 0

"""Device loss (``ActorSystem(fallback="cpu")``): the wgpu runtime's fault hook makes a round's
read-back fail as on a lost device; the actors move to cpu from the pump's host mirror and go on
serving, and no message is lost or handled twice."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.migration import DeviceLostWarning
from ringkernel.runtime import backend_status

sys.path.insert(0, str(Path(__file__).parents[1] / "ringkernel"))
from migration_defs import Recorder, Relay, Tick  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::ringkernel.migration.DeviceLostWarning")
COUNT = 20_000


@pytest.fixture(autouse=True)
def need_wgpu() -> None:
    ok, reason = backend_status("wgpu")
    if not ok:
        pytest.skip(f"device loss is simulated on wgpu: {reason}")


def _collect(ref, count: int, timeout: float = 60.0) -> np.ndarray:
    parts, got = [], 0
    deadline = time.monotonic() + timeout
    while got < count:
        rows = ref.receive_many(count - got, timeout=max(0.0, deadline - time.monotonic()), as_array=True)
        parts.append(rows)
        got += len(rows)
    return np.concatenate(parts)


def _until(done, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_device_loss_falls_back_to_cpu_and_loses_nothing(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger="ringkernel.migration")
    with rk.ActorSystem("wgpu", fallback="cpu") as system:
        ref = system.spawn(Recorder, queue_capacity=1024)
        failures: list = []

        def stream() -> None:
            try:
                for n in range(COUNT):
                    ref.send(Tick(sender=0, n=n), timeout=None)
            except BaseException as exc:
                failures.append(exc)

        sender = threading.Thread(target=stream)
        sender.start()
        deadline = time.monotonic() + 30
        while ref.state["count"] < 1000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert 0 < ref.state["count"] < COUNT  # the loss strikes mid-stream
        system.runtime.inject_device_loss()
        rows = _collect(ref, COUNT)
        sender.join(60)
        assert not failures, failures
        assert np.array_equal(rows["n"], np.arange(COUNT)), "lost, duplicated or reordered"
        assert np.array_equal(rows["count"], np.arange(1, COUNT + 1))
        assert system.migrations.wait(10)
        assert ref.runtime is system.runtimes["cpu"]
        assert ref.ask(Tick(sender=0, n=-1), timeout=5).count == COUNT + 1  # it serves on
        assert system.backend == "cpu"  # and new actors start on the fallback
        assert system.spawn(Recorder).ask(Tick(sender=0, n=0), timeout=5).count == 1
        health = system.health()
        assert health["device_losses"] and health["ready"] and not health["migrating"]
        assert system.metrics()["migrations"]["total"] == {"device_loss": 1}
        assert any("device failed" in r.getMessage() for r in caplog.records)


def test_device_loss_moves_groups_and_connected_chains():
    with rk.ActorSystem("wgpu", fallback="cpu") as system:
        group = system.spawn(Recorder, count=3)
        relay, rec = system.spawn(Relay), system.spawn(Recorder)
        system.connect(relay, rec)
        for n in range(300):
            group.broadcast(Tick(sender=0, n=n), timeout=None)
            relay.send(Tick(sender=1, n=n), timeout=None)
        system.runtime.inject_device_loss()
        for n in range(300, 600):
            group.broadcast(Tick(sender=0, n=n), timeout=None)
            relay.send(Tick(sender=1, n=n), timeout=None)
        chained = _collect(rec, 600)
        assert np.array_equal(chained["n"], np.arange(600))
        assert np.array_equal(chained["count"], np.arange(1, 601))
        assert system.migrations.wait(10)
        for i in range(3):
            mine = _collect(group[i], 600)
            assert np.array_equal(mine["n"], np.arange(600))
            assert np.array_equal(mine["count"], np.arange(1, 601))
        assert group.runtime is relay.runtime is system.runtimes["cpu"]


def test_k2k_messages_held_on_the_lost_device_move_too():
    # the downstream's output fills (nobody receives), so its K2K queue holds messages when
    # the device goes: the fallback reads them from the host mirror, not from the lost device
    with rk.ActorSystem("wgpu", fallback="cpu") as system:
        relay, rec = system.spawn(Relay, queue_capacity=1024), system.spawn(Recorder, queue_capacity=64)
        system.connect(relay, rec)
        for n in range(500):
            relay.send(Tick(sender=1, n=n), timeout=None)
        deadline = time.monotonic() + 30
        while len(rec.k2k) < 32 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(rec.k2k) >= 32  # messages wait in the K2K queue
        system.runtime.inject_device_loss()
        _until(lambda: system.migrations.lost)  # the next round finds the device gone
        assert system.migrations.wait(20) and rec.runtime is system.runtimes["cpu"]
        rows = _collect(rec, 500)
        assert np.array_equal(rows["n"], np.arange(500))
        assert np.array_equal(rows["count"], np.arange(1, 501))


def test_without_fallback_a_device_loss_is_an_error_not_a_hang():
    system = rk.ActorSystem("wgpu")
    ref = system.spawn(Recorder)
    assert ref.ask(Tick(sender=0, n=0), timeout=10).count == 1
    system.runtime.inject_device_loss()
    with pytest.raises(RuntimeError, match="device .*lost"):
        for n in range(1000):
            ref.send(Tick(sender=0, n=n), timeout=5)
            time.sleep(0.001)
    with pytest.raises(RuntimeError, match="device .*lost"):  # shutdown reports it too, and ends
        system.shutdown(drain=False)
    assert system.stopped


def test_fallback_must_name_another_backend():
    with pytest.raises(ValueError, match="own backend"):
        rk.ActorSystem("cpu", fallback="cpu")
    with pytest.raises(ValueError, match="fallback must be a backend name"):
        rk.ActorSystem("cpu", fallback="gpu")
    assert DeviceLostWarning.__mro__[1] is RuntimeWarning

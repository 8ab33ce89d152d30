"""Shutdown never hangs and loses nothing it promised, on every actor backend.

Each risky step runs under ``bounded.within``: a hang fails the test instead of
stalling CI.  A handler that never returns is a real long handler on cpu's
native thread, and a dispatch held back on a gate on the pumped backends
(wgpu, cpu-batch): lavapipe cuts shader loops off after 65,535 iterations, so
a real one cannot be written there.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import ringkernel as rk
import ringkernel.actors as rk_actors

sys.path.insert(0, os.path.dirname(__file__))
from actor_defs import Accumulator, Add, Doubler, Num, Summer  # noqa: E402
from bounded import within  # noqa: E402
from shutdown_defs import Echo, Hop, Relay  # noqa: E402


def test_shutdown_wakes_a_receive_waiting_without_timeout(actor_backend):
    system = rk.ActorSystem(backend=actor_backend)
    acc = system.spawn(Accumulator, queue_capacity=16)
    doubler = system.spawn(Doubler, queue_capacity=16)
    summer = system.spawn(Summer, queue_capacity=16)
    system.connect(doubler, summer)  # doubler's replies never reach the host
    got: list = []
    ends: list[BaseException] = []

    def drain_replies(ref) -> None:
        try:
            while True:
                got.append(ref.receive())  # no timeout
        except BaseException as exc:
            ends.append(exc)

    receivers = [threading.Thread(target=drain_replies, args=(r,), daemon=True) for r in (acc, doubler)]
    for t in receivers:
        t.start()
    for _ in range(5):
        acc.send(Add(value=1.0))
    time.sleep(0.1)
    within(20, system.shutdown)
    for t in receivers:
        t.join(5)
        assert not t.is_alive(), "a receive() waiting without timeout outlived the shutdown"
    assert [m.count for m in got] == [1, 2, 3, 4, 5]  # everything deliverable was delivered
    assert len(ends) == 2 and all(isinstance(e, rk.ActorSystemStopped) for e in ends)
    assert isinstance(ends[0], rk.ReceiveTimeout) and isinstance(ends[0], RuntimeError)


def test_receive_after_shutdown_returns_what_is_left_then_raises(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=16)
        for _ in range(3):
            acc.send(Add(value=1.0))
    assert system.stopped
    assert [within(5, acc.receive).count for _ in range(3)] == [1, 2, 3]
    with pytest.raises(rk.ActorSystemStopped, match="has shut down"):
        within(5, acc.receive)  # no timeout, yet it returns at once


def test_a_cycle_that_goes_quiet_is_drained_completely(actor_backend):
    system = rk.ActorSystem(backend=actor_backend, drain_timeout=20.0)
    a = system.spawn(Relay, queue_capacity=16)
    b = system.spawn(Relay, queue_capacity=16)
    system.connect(a, b)
    system.connect(b, a)  # a ring: no actor is upstream of all others
    for _ in range(4):
        a.send(Hop(value=0.0))
    start = time.monotonic()
    assert within(30, system.shutdown) == []
    # each seed hops 0, 1, ..., 10: eleven handler runs, all done before the loops left
    assert a.state["hops"] + b.state["hops"] == 4 * 11
    assert time.monotonic() - start < 15
    assert a.inputs_pending() == b.inputs_pending() == 0


def test_a_cycle_that_never_goes_quiet_stops_after_the_drain_timeout(actor_backend):
    system = rk.ActorSystem(backend=actor_backend)
    a = system.spawn(Echo, queue_capacity=16)
    b = system.spawn(Echo, queue_capacity=16)
    system.connect(a, b)
    system.connect(b, a)
    a.send(Hop(value=0.0))
    start = time.monotonic()
    assert within(20, lambda: system.shutdown(drain_timeout=0.3)) == []
    elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 0.3 + rk_actors.STOP_GRACE + 2.0, elapsed
    assert all(system.hosts[r.id].join(0) for r in (a, b))


def _hold_the_pump(system: rk.ActorSystem) -> threading.Event:
    """Makes the pump's next dispatch wait for the returned gate: a handler that does not return."""
    device = system.runtime.device
    run, gate = device.run, threading.Event()

    def held_run(dispatches, reads):
        gate.wait(60)
        return run(dispatches, reads)

    device.run = held_run
    return gate


def test_a_handler_that_never_returns_is_abandoned_within_the_timeout(actor_backend, monkeypatch):
    monkeypatch.setattr(rk_actors, "STOP_GRACE", 0.3)
    system = rk.ActorSystem(backend=actor_backend)
    if actor_backend == "cpu":
        pytest.skip("a looping cpu handler is now aborted by the stop (tests/actors/test_supervision.py)")
    elif actor_backend in ("cpu-batch", "wgpu"):
        stuck = system.spawn(Accumulator, queue_capacity=4)
        release = _hold_the_pump(system)
        stuck.send(Add(value=1.0))
    else:
        pytest.skip("a runaway handler is simulated on cpu and the pumped backends only")
    time.sleep(0.2)  # the handler (or the dispatch) has started
    start = time.monotonic()
    with pytest.warns(rk.ActorAbandonedWarning, match=stuck.name):
        abandoned = within(20, lambda: system.shutdown(drain_timeout=0.3))
    elapsed = time.monotonic() - start
    assert abandoned == [stuck] == system.abandoned and stuck.abandoned
    assert elapsed < 0.3 + 0.3 + 2.0, elapsed
    with pytest.raises(rk.ActorSystemStopped):
        stuck.send(Add(value=1.0))
    # the abandoned loop finishes on memory that is still alive, then leaves for good
    release.set()
    system.runtime.thread.join(20)
    assert not system.runtime.thread.is_alive()


def test_a_send_waiting_for_room_gives_up_when_the_system_stops(actor_backend):
    system = rk.ActorSystem(backend=actor_backend)
    acc = system.spawn(Accumulator, queue_capacity=2)  # nobody receives: it fills up and blocks
    sent: list[int] = []
    ends: list[BaseException] = []

    def produce() -> None:
        try:
            while True:
                acc.send(Add(value=1.0), timeout=None)
                sent.append(1)
        except BaseException as exc:
            ends.append(exc)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    deadline = time.monotonic() + 10
    while acc.stats["input"]["enqueued"] < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the producer is blocked on a full queue
    within(20, system.shutdown)
    producer.join(5)
    assert not producer.is_alive(), "send(timeout=None) outlived the shutdown"
    assert len(ends) == 1 and isinstance(ends[0], rk.ActorSystemStopped)
    # every send that returned was handled and its reply kept: nothing lost
    assert acc.stats["processed"] == len(sent) == acc.pending()


def test_shutdown_twice_and_from_two_threads(actor_backend):
    system = rk.ActorSystem(backend=actor_backend)
    acc = system.spawn(Accumulator, queue_capacity=64)
    for _ in range(50):
        acc.send(Add(value=1.0))
    results: list = []
    callers = [
        threading.Thread(target=lambda: results.append(system.shutdown()), daemon=True) for _ in range(3)
    ]
    for t in callers:
        t.start()
    for t in callers:
        t.join(20)
    assert not any(t.is_alive() for t in callers)
    assert results == [[], [], []]
    assert system.stopped and system.hosts[acc.id].join(0)
    assert acc.stats["processed"] == 50  # whichever call ran, it drained
    assert within(5, system.shutdown) == []
    with system:  # leaving a with block after a shutdown is fine
        pass


def test_spawn_connect_and_send_after_shutdown_raise(actor_backend):
    system = rk.ActorSystem(backend=actor_backend)
    a = system.spawn(Doubler, queue_capacity=4)
    b = system.spawn(Summer, queue_capacity=4)
    system.shutdown()
    with pytest.raises(rk.ActorSystemStopped):
        system.spawn(Accumulator, queue_capacity=4)
    with pytest.raises(rk.ActorSystemStopped):
        system.connect(a, b)
    with pytest.raises(rk.ActorSystemStopped):
        a.send(Num(value=1.0))
    with pytest.raises(RuntimeError):  # as before: a stopped system is a RuntimeError
        a.send(Num(value=1.0))


def test_a_system_collected_without_shutdown_stops_its_loops(actor_backend):
    def forget() -> tuple:
        system = rk.ActorSystem(backend=actor_backend)
        acc = system.spawn(Accumulator, queue_capacity=4)
        acc.send(Add(value=1.0))
        return system.hosts[acc.id], getattr(system.runtime, "thread", None)

    host, pump = forget()
    gc.collect()
    assert host.join(10), "the loop of a collected ActorSystem kept running"
    if pump is not None:
        pump.join(10)
        assert not pump.is_alive(), "the pump of a collected ActorSystem kept running"


EXIT_SCRIPT = """
import os, sys, time, warnings
sys.path.insert(0, {tests!r})
import ringkernel as rk
import ringkernel.actors as rk_actors
from actor_defs import Accumulator, Add
from shutdown_defs import Spin, Spinner

if {backend!r} == "cpu-batch":
    from conftest import _cpu_batch_runtime
    rk_actors.open_runtime = _cpu_batch_runtime
kept = rk.ActorSystem(backend={backend!r})
acc = kept.spawn(Accumulator, queue_capacity=4)
for _ in range(3):
    acc.send(Add(value=1.0))
dropped = rk.ActorSystem(backend={backend!r})
dropped.spawn(Accumulator, queue_capacity=4).send(Add(value=1.0))
del dropped
if {runaway!r}:
    spinner = kept.spawn(Spinner, queue_capacity=4)
    spinner.send(Spin(rounds=2**31))  # hours of work: the interpreter must exit anyway
    time.sleep(0.2)
print("leaving", flush=True)
"""


@pytest.mark.parametrize("runaway", [False, True], ids=["idle", "runaway"])
def test_the_interpreter_exits_with_systems_left_running(actor_backend, runaway):
    if runaway and actor_backend != "cpu":
        pytest.skip("a real runaway handler runs on cpu only (see the module docstring)")
    script = EXIT_SCRIPT.format(tests=os.path.dirname(__file__), backend=actor_backend, runaway=runaway)
    start = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the interpreter hung at exit")
    assert done.returncode == 0, done.stderr
    assert "leaving" in done.stdout
    assert time.monotonic() - start < 45
    if runaway:  # its budget checks see the stop: the handler is aborted, nothing is abandoned
        assert "abandoned" not in done.stderr

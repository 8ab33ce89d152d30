"""Budget checks, handler aborts, the watchdog, restart policies and their settings (issue 19)."""

from __future__ import annotations

import os
import sys
import time

import pytest

import ringkernel as rk
from ringkernel.ringir import layout as L
from ringkernel.ringir.passes.budget import CTRL_PARAM
from ringkernel.runtime import backend_status

sys.path.insert(0, os.path.dirname(__file__))
from bounded import within  # noqa: E402
from supervision_defs import Bounded, Generous, Nested, Plain, Relay, Spin, Unbounded  # noqa: E402


def _until(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.mark.parametrize("actor", [Bounded, Nested])
def test_a_handler_past_its_budget_is_aborted_and_rolled_back(actor_backend, actor):
    with rk.ActorSystem(backend=actor_backend) as system:
        ref = system.spawn(actor, queue_capacity=8)
        assert within(20, lambda: ref.ask(Spin(n=5), timeout=10)).total == 5
        ref.send(Spin(n=-1))  # never ends by itself
        with pytest.raises(rk.HandlerAborted, match=r"Spin .*budget") as caught:
            within(20, lambda: ref.receive(timeout=10))
        assert caught.value.reason == "budget" and caught.value.message == "Spin"
        assert caught.value.actor == ref.name and caught.value.sequence == 1
        assert ref.state == {"total": 5, "calls": 1}  # as before the aborted message
        reply = within(20, lambda: ref.ask(Spin(n=3), timeout=10))  # it keeps serving
        assert (reply.total, reply.calls) == (8, 2)
        assert ref.stats["aborted"] == 1 and ref.stats["last_abort"] == "budget"


def test_the_budget_counts_every_iteration_up_to_the_limit(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        ref = system.spawn(Bounded, queue_capacity=8)
        assert within(20, lambda: ref.ask(Spin(n=10_000), timeout=10)).total == 10_000  # exactly the budget
        with pytest.raises(rk.HandlerAborted):
            within(20, lambda: ref.ask(Spin(n=10_001), timeout=10))
        assert ref.state["total"] == 10_000


def test_receive_many_stops_at_an_abort_and_keeps_the_rest(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        ref = system.spawn(Bounded, queue_capacity=8)
        for n in (1, 2, -1, 3):
            ref.send(Spin(n=n))
        assert _until(lambda: ref.pending() + len(ref.backlog) >= 4 or ref.stats["output"]["enqueued"] >= 4)
        first = within(20, lambda: ref.receive_many(max_count=8, timeout=10))
        assert [m.total for m in first] == [1, 3][: len(first)]
        while len(first) < 2:
            first += within(20, lambda: ref.receive_many(max_count=1, timeout=10))
        with pytest.raises(rk.HandlerAborted):
            within(20, lambda: ref.receive_many(max_count=8, timeout=10))
        assert within(20, lambda: ref.receive(timeout=10)).total == 6


def test_only_looping_actors_get_checks():
    assert not any(CTRL_PARAM in (p.name for p in fn.params) for fn in Plain.ir.functions)
    assert "rk.ctrl" in Bounded.compile("rir") and "rk.ctrl" in Nested.compile("rir")
    for target in ("wgsl", "msl", "llvm"):
        assert Bounded.compile(target)


def test_a_stop_aborts_a_runaway_handler_so_shutdown_is_prompt():
    system = rk.ActorSystem(backend="cpu")
    ref = system.spawn(Unbounded, queue_capacity=4)
    ref.send(Spin(n=-1))
    time.sleep(0.1)
    start = time.monotonic()
    assert within(20, lambda: system.shutdown(drain_timeout=0.2)) == []
    assert time.monotonic() - start < 0.2 + 1.0
    assert not ref.abandoned and ref.status == "stopped"
    assert ref.state == {"total": 0, "calls": 0}
    assert ref.stats["last_abort"] == "stopped"
    with pytest.raises(rk.HandlerAborted, match="stopped"):
        ref.receive(timeout=1)


def test_the_watchdog_aborts_a_hung_handler_and_the_actor_serves_on():
    with rk.ActorSystem(backend="cpu", watchdog_timeout=0.2) as system:
        ref = system.spawn(Unbounded, queue_capacity=8)
        assert ref.status == "idle"
        ref.send(Spin(n=-1))
        with pytest.raises(rk.HandlerAborted, match="watchdog"):
            within(20, lambda: ref.receive(timeout=10))
        assert within(20, lambda: ref.ask(Spin(n=4), timeout=10)).total == 4
        assert _until(lambda: ref.status == "idle")
        assert ref.stats["restarts"] == 0


def test_restart_on_failure_starts_again_from_the_initial_state_keeping_queued_messages():
    with rk.ActorSystem(backend="cpu", watchdog_timeout=0.2) as system:
        ref = system.spawn(Unbounded, queue_capacity=8, restart="on_failure", max_restarts=2)
        assert within(20, lambda: ref.ask(Spin(n=7), timeout=10)).total == 7
        ref.send(Spin(n=-1))
        ref.send(Spin(n=2))  # queued behind the hung one: kept across the restart
        with pytest.raises(rk.HandlerAborted, match="watchdog"):
            within(20, lambda: ref.receive(timeout=10))
        after = within(20, lambda: ref.receive(timeout=10))
        assert (after.total, after.calls) == (2, 1)  # the initial state, then that message
        assert ref.stats["restarts"] == 1


def test_a_restart_storm_fails_the_actor():
    with rk.ActorSystem(backend="cpu", watchdog_timeout=0.1) as system:
        ref = system.spawn(
            Unbounded, queue_capacity=8, restart="on_failure", max_restarts=1, restart_window=60
        )
        ref.send(Spin(n=-1))
        ref.send(Spin(n=-1))
        assert _until(lambda: ref.status == "failed", 10)
        assert ref.stats["restarts"] == 1
        with pytest.raises(rk.ActorFailed, match="max_restarts=1"):
            ref.send(Spin(n=1))


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"restart": "always"}, ValueError, "never, on_failure"),
        ({"restart": 1}, ValueError, "restart policy"),
        ({"max_restarts": -1}, ValueError, r"max_restarts must be an integer in \[0, 1000000\]"),
        ({"max_restarts": 1.5}, TypeError, "max_restarts must be an integer"),
        ({"restart_window": 0}, ValueError, r"restart_window must be a number of seconds in \[0.001"),
        ({"restart_window": float("nan")}, ValueError, "restart_window"),
    ],
)
def test_spawn_supervision_settings_are_checked(kwargs, error, text):
    with rk.ActorSystem(backend="cpu") as system, pytest.raises(error, match=text):
        system.spawn(Plain, **kwargs)
    assert system.actors == []


@pytest.mark.parametrize(
    ("value", "error", "text"),
    [
        (0.001, ValueError, r"seconds in \[0.01, 86400.0\] or None"),
        ("1", TypeError, "a number of seconds"),
        (-1, ValueError, "got -1"),
    ],
)
def test_watchdog_timeout_is_checked(value, error, text):
    with pytest.raises(error, match=f"watchdog_timeout must be .*{text}"):
        rk.ActorSystem(backend="cpu", watchdog_timeout=value)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, r"in \[1, 2147483648\]"), (2**31 + 1, r"in \[1, 2147483648\]"), (1.5, "or None"), (True, "or None")],
)
def test_budget_is_checked(value, text):
    with pytest.raises((ValueError, TypeError), match=f"budget must be an integer {text}"):
        rk.actor(budget=value)


def test_an_abort_record_id_is_never_a_message_type_id(monkeypatch):
    layout = L.record_layout("X", ())
    monkeypatch.setattr(L.zlib, "crc32", lambda data: L.ABORT_TYPE_ID)
    assert L.type_id_of(layout) == 1


def test_an_abort_upstream_sends_nothing_downstream(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        up = system.spawn(Bounded, queue_capacity=8)
        down = system.spawn(Relay, queue_capacity=8)
        system.connect(up, down)
        up.send(Spin(n=-1))  # aborted: no record may reach the downstream actor as a message
        up.send(Spin(n=2))
        reply = within(20, lambda: down.receive(timeout=10))
        assert reply.total == 2
        assert up.stats["aborted"] == 1 and down.stats["errors"] == 0
        assert down.stats["processed"] == 1


def test_connect_lets_a_handler_in_progress_finish():
    with rk.ActorSystem(backend="cpu") as system:
        busy = system.spawn(Unbounded, queue_capacity=8)
        relay = system.spawn(Relay, queue_capacity=8)
        busy.send(Spin(n=20_000_000))  # tens of ms of loop iterations
        time.sleep(0.01)
        system.connect(busy, relay)  # pauses busy: its handler must not be aborted
        reply = within(20, lambda: busy.receive(timeout=10))
        assert reply.total == 20_000_000 and busy.stats["aborted"] == 0


def test_a_restart_puts_back_the_initial_state_on_every_backend(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        ref = system.spawn(Plain, queue_capacity=8)
        assert within(20, lambda: ref.ask(Spin(n=5), timeout=10)).total == 5
        assert within(20, lambda: ref.restart_from_initial(5.0))
        assert within(20, lambda: ref.ask(Spin(n=2), timeout=10)).total == 2  # the device state too


def test_ringc_compiles_an_actor_with_a_budget(tmp_path, capsys):
    from ringkernel.cli import main

    out = tmp_path / "bounded.rir"
    assert main([os.path.join(os.path.dirname(__file__), "supervision_defs.py"), "--target", "rir",
                 "--kernel", "Bounded", "-o", str(out)]) == 0  # fmt: skip
    assert out.read_text() == Bounded.compile("rir")  # the same text as the live decorator's


def test_a_budget_past_the_drivers_loop_limit_is_refused_at_spawn():
    ok, reason = backend_status("wgpu")
    if not ok:
        pytest.skip(reason)
    with rk.ActorSystem(backend="wgpu") as system:
        if system.runtime.max_budget is None:
            pytest.skip("this wgpu adapter has no shader loop limit")
        with pytest.raises(ValueError, match=r"budget=100000\) of Generous .* use budget <= 32767"):
            system.spawn(Generous)
        assert system.actors == []

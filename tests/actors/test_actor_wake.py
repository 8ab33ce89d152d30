"""Device-to-host wake-ups and the native host queue (issue 17, second part).

On cpu a receiver (``receive``, ``ask``, the ``ask_async`` waiter) spins a
little, then parks on the control block's ``reply_bell``; the loop bumps it
and futex-wakes after publishing a reply when ``host_waiting`` says someone
parked.  The host half of the queue protocol is RingIR kernels JIT-compiled
once (``ringkernel.runtime.native_queue``).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import threading
import time

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.ringir import Wake, parse, verify, walk
from ringkernel.ringir import layout as L
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.runtime import native_queue
from ringkernel.runtime.cpu import actors as cpu_actors
from ringkernel.runtime.queues import RingQueue

sys.path.insert(0, os.path.dirname(__file__))
from actor_defs import Doubler, Num  # noqa: E402

WAKE_TEXT = """\
ringir 1

kernel @k(%a: array<u32, global>) -> void {
  %i: u32 = const 3
  wake %a[%i]
}
"""


def test_wake_statement_round_trips_and_is_verified():
    module = parse(WAKE_TEXT)
    wakes = [s for fn in module.functions for s in walk(fn.body) if isinstance(s, Wake)]
    assert len(wakes) == 1 and "wake %a[%i]" in str(module)
    assert parse(str(module)) == module
    with pytest.raises(CompileError, match="wake's doorbell is a word of an array<u32, global>"):
        verify(parse(WAKE_TEXT.replace("array<u32, global>", "array<f32, global>")))
    with pytest.raises(CompileError, match="wake %bell\\[%word\\]"):
        parse(WAKE_TEXT.replace("wake %a[%i]", "wake %i"))


@pytest.mark.skipif(not cpu_actors.FUTEX, reason="futex wake-ups are Linux x86-64/aarch64 only")
def test_wake_lowers_to_a_futex_wake_on_the_host():
    from ringkernel.lowering.llvm.host import lower_module_to_host

    text = lower_module_to_host(parse(WAKE_TEXT), kernel="k")
    assert "@syscall(i64 202" in text or "@syscall(i64 98" in text
    assert "i64 129, i64 2147483647" in text  # FUTEX_WAKE_PRIVATE, every waiter


def test_the_persistent_loop_wakes_the_host_after_a_reply_and_the_batch_loop_does_not():
    persistent = Doubler.compile("rir")
    assert f"const {L.C['reply_bell']}" in persistent and "wake %ctrl[" in persistent
    batch = Doubler.module("batch")
    assert not [s for fn in batch.functions for s in walk(fn.body) if isinstance(s, Wake)]
    assert "wake" not in Doubler.compile("wgsl")


def test_the_native_queue_kernels_are_verified_ringir():
    module = native_queue.module()
    assert {fn.name for fn in module.functions} == set(native_queue.KERNELS)
    verify(parse(str(module)))


def test_native_push_refuses_rows_wider_than_a_slot_and_foreign_memory():
    q = RingQueue(4, 8)
    with pytest.raises(ValueError, match="does not fit a 8-word slot"):
        q.try_push_many(np.zeros((1, 16), dtype=np.uint32))
    with pytest.raises(ValueError, match="does not fit a 8-word slot"):
        q.try_push(np.zeros(9, dtype=np.uint32))
    with pytest.raises(ValueError, match="a queue needs 64 u32 words"):
        q.attach(np.zeros(10, dtype=np.uint32))


def test_native_push_and_pop_keep_order_across_the_wrap_and_rings_a_parked_loop():
    q = RingQueue(4, 8)
    ctrl = np.zeros(L.CONTROL_WORDS, dtype=np.uint32)
    k2k = RingQueue(2, 8)
    q.ring_on_push(ctrl, k2k.buffer)
    got = []
    for i in range(10):
        assert q.try_push(np.full(3, i, dtype=np.uint32))
        got += [int(r[0]) for r in q.pop_many(3)]
    assert got == list(range(10)) and k2k.buffer[L.Q_BELL] == 0  # nobody parked: no ring
    ctrl[L.C["parked"]] = 1
    q.try_push(np.ones(2, dtype=np.uint32))
    assert k2k.buffer[L.Q_BELL] == 1


def _wait_for(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.001)
    return False


@pytest.mark.skipif(not cpu_actors.FUTEX, reason="futex wake-ups are Linux x86-64/aarch64 only")
def test_a_waiting_receive_parks_on_the_reply_bell_and_the_loop_wakes_it(monkeypatch):
    monkeypatch.setattr(cpu_actors, "REPLY_PARK_NS", 900_000_000)  # a lost wake-up costs 0.9 s
    with rk.ActorSystem(backend="cpu") as system:
        doubler = system.spawn(Doubler, queue_capacity=16)
        got: list = []
        receiver = threading.Thread(target=lambda: got.append(doubler.receive(timeout=10.0)))
        receiver.start()
        assert _wait_for(lambda: doubler.ctrl[L.C["host_waiting"]] == 1), "the receiver never parked"
        bell = int(doubler.ctrl[L.C["reply_bell"]])
        started = time.monotonic()
        doubler.send(Num(value=4.0))
        receiver.join(5.0)
        assert got and got[0].value == 8.0
        assert time.monotonic() - started < 0.5  # woken, not timed out of its park
        assert doubler.ctrl[L.C["reply_bell"]] == bell + 1
        assert doubler.ctrl[L.C["host_waiting"]] == 0


@pytest.mark.skipif(not cpu_actors.FUTEX, reason="futex wake-ups are Linux x86-64/aarch64 only")
def test_a_receive_parked_without_a_timeout_wakes_when_the_system_stops(monkeypatch):
    monkeypatch.setattr(cpu_actors, "REPLY_PARK_NS", 900_000_000)
    system = rk.ActorSystem(backend="cpu")
    doubler = system.spawn(Doubler, queue_capacity=16)
    errors: list = []

    def receive() -> None:
        try:
            doubler.receive()
        except rk.actors.ActorSystemStopped as error:
            errors.append(error)

    receiver = threading.Thread(target=receive)
    receiver.start()
    assert _wait_for(lambda: doubler.ctrl[L.C["host_waiting"]] == 1)
    started = time.monotonic()
    system.shutdown()
    receiver.join(5.0)
    assert errors and time.monotonic() - started < 2.0


@pytest.mark.skipif(not cpu_actors.FUTEX, reason="futex wake-ups are Linux x86-64/aarch64 only")
def test_no_lost_reply_wake_up_with_random_delays_on_both_sides(monkeypatch):
    """Sender and receiver pause at random (spinning, parked, or just about to park):
    every reply must wake the receiver at once, never after its 0.9 s park."""
    monkeypatch.setattr(cpu_actors, "REPLY_PARK_NS", 900_000_000)
    rng = random.Random(23)
    count = 300
    send_delays = [rng.choice((0.0, 0.0, 1e-5, 4e-5, 6e-5, 2e-4, 2e-3)) for _ in range(count)]
    receive_delays = [rng.choice((0.0, 0.0, 1e-5, 4e-5, 6e-5, 2e-4, 2e-3)) for _ in range(count)]
    with rk.ActorSystem(backend="cpu") as system:
        doubler = system.spawn(Doubler, queue_capacity=16)

        def sender() -> None:
            for i, delay in enumerate(send_delays):
                time.sleep(delay)
                doubler.send(Num(value=float(i)), timeout=10.0)

        thread = threading.Thread(target=sender)
        thread.start()
        slowest, values = 0.0, []
        for delay in receive_delays:
            time.sleep(delay)
            started = time.monotonic()
            values.append(doubler.receive(timeout=10.0).value)
            slowest = max(slowest, time.monotonic() - started)
        thread.join()
    assert values == [2.0 * i for i in range(count)]
    assert slowest < 0.5


@pytest.mark.skipif(not cpu_actors.FUTEX, reason="futex wake-ups are Linux x86-64/aarch64 only")
def test_no_lost_wake_up_when_threads_take_each_others_replies(monkeypatch):
    """Eight threads ask at random moments: a thread that takes another's reply off the
    queue must ring the bell, or that one sleeps through its park."""
    monkeypatch.setattr(cpu_actors, "REPLY_PARK_NS", 900_000_000)
    with rk.ActorSystem(backend="cpu") as system:
        doubler = system.spawn(Doubler, queue_capacity=64)
        slowest: list[float] = []
        wrong: list = []

        def asker(seed: int) -> None:
            rng = random.Random(seed)
            worst = 0.0
            for i in range(60):
                time.sleep(rng.choice((0.0, 1e-5, 6e-5, 5e-4)))
                started = time.monotonic()
                value = float(seed * 1000 + i)
                reply = doubler.ask(Num(value=value), timeout=10.0)
                worst = max(worst, time.monotonic() - started)
                if reply.value != 2.0 * value:
                    wrong.append((value, reply.value))
            slowest.append(worst)

        threads = [threading.Thread(target=asker, args=(seed,)) for seed in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not wrong and len(slowest) == 8
    assert max(slowest) < 0.5


def test_ask_async_is_completed_by_the_waiter_without_polling_the_event_loop(monkeypatch):
    with rk.ActorSystem(backend="cpu") as system:
        doubler = system.spawn(Doubler, queue_capacity=16)
        doubler.ctrl[L.C["stop"]] = 1
        system.hosts[doubler.id].wake()
        assert system.hosts[doubler.id].join(5.0)
        threading.Timer(0.2, lambda: system._launch(doubler)).start()  # the reply comes late

        async def never_sleep(*args, **kwargs):
            raise AssertionError("ask_async polled with asyncio.sleep")

        async def main():
            monkeypatch.setattr(asyncio, "sleep", never_sleep)
            try:
                return await doubler.ask_async(Num(value=3.0), timeout=5.0)
            finally:
                monkeypatch.undo()

        assert asyncio.run(main()).value == 6.0


def test_ask_async_times_out_and_a_late_reply_is_discarded():
    with rk.ActorSystem(backend="cpu") as system:
        doubler = system.spawn(Doubler, queue_capacity=16)
        doubler.ctrl[L.C["stop"]] = 1
        system.hosts[doubler.id].wake()
        assert system.hosts[doubler.id].join(5.0)

        async def main():
            with pytest.raises(rk.ReceiveTimeout):
                await doubler.ask_async(Num(value=3.0), timeout=0.05)

        asyncio.run(main())
        assert doubler._async == {}
        system._launch(doubler)
        doubler.send(Num(value=5.0))
        assert doubler.receive(timeout=5.0).value == 10.0  # the late 6.0 was discarded



@pytest.mark.skipif(not cpu_actors.FUTEX, reason="futex wake-ups are Linux x86-64/aarch64 only")
def test_a_park_of_a_second_or_more_is_a_valid_futex_timeout():
    """A u32 of nanoseconds reaches 4.29 s: a tv_nsec above 999,999,999 made futex fail
    with EINVAL at once, so a long park silently became a busy poll."""
    from ringkernel.lowering.llvm.host import lower_module_to_host

    park = "  %n: u32 = const 3000000007\n  backoff %a[%i], %i, %n\n"
    llvm = lower_module_to_host(parse(WAKE_TEXT.replace("  wake %a[%i]\n", park)), kernel="k")
    assert "store i64 3, ptr" in llvm  # tv_sec
    assert "store i64 7, ptr" in llvm  # tv_nsec
    assert "3000000007" not in llvm


def test_an_idle_pump_dispatches_a_few_times_a_second_not_twenty(monkeypatch):
    """The wgpu/Metal pump's keepalive dispatch cost ~4% of a core at 20 a second."""
    from ringkernel.runtime.actor_pump import RedispatchRuntime
    from ringkernel.runtime.cpu.actors import CpuBatchDevice

    pump = lambda backend, idle_ns: RedispatchRuntime(CpuBatchDevice(), idle_ns)  # noqa: E731
    monkeypatch.setattr(rk.actors, "open_runtime", pump)
    with rk.ActorSystem(backend="cpu") as system:
        doubler = system.spawn(Doubler, queue_capacity=16)
        assert doubler.ask(Num(value=1.0), timeout=5.0).value == 2.0
        time.sleep(0.05)
        rounds = system.runtime.rounds
        time.sleep(1.0)
        idle_rounds = system.runtime.rounds - rounds
        assert doubler.ask(Num(value=2.0), timeout=5.0).value == 4.0  # a send still wakes it at once
    assert 1 <= idle_rounds <= 5, idle_rounds


@pytest.mark.skipif(not cpu_actors.FUTEX, reason="futex wake-ups are Linux x86-64/aarch64 only")
def test_an_idle_pipeline_parks_and_the_upstream_loop_rings_the_downstream(monkeypatch):
    """A loop fed only by an upstream loop used to look every idle_ns (~10% of a core for
    an idle two-actor pipeline); now the upstream rings the bell of its K2K queue."""
    with rk.ActorSystem(backend="cpu") as system:
        a, b = system.spawn(Doubler, queue_capacity=16), system.spawn(Doubler, queue_capacity=16)
        system.connect(a, b)
        assert b.ask(Num(value=0.0), timeout=5.0).value == 0.0  # b parks on its own K2K bell
        rng = random.Random(5)
        for i in range(150):  # no lost wake-up: sends after the downstream spun, parked, or neither
            time.sleep(rng.choice((0.0, 1e-5, 2e-4, 2e-3)))
            a.send(Num(value=float(i)), timeout=5.0)
            started = time.monotonic()
            assert b.receive(timeout=5.0).value == 4.0 * i
            assert time.monotonic() - started < 0.05  # woken, not after a 0.1 s park
        time.sleep(0.3)
        beats = int(b.ctrl[L.C["heartbeat"]])
        cpu = time.process_time()
        time.sleep(1.0)
        used = time.process_time() - cpu
        assert int(b.ctrl[L.C["heartbeat"]]) - beats < 200  # parked: ~10 looks a second, not 20,000
    assert used < 0.05, f"an idle pipeline used {used:.1%} of a core"

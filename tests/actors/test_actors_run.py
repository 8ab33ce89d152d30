"""Actor systems end to end, on every actor backend (``actor_backend`` in conftest.py).

cpu runs the persistent loop on a native thread; wgpu (and cpu-batch, the
same host pump over the cpu JIT) re-dispatch the batch loop.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.ringir import layout as L

sys.path.insert(0, os.path.dirname(__file__))
from actor_defs import (  # noqa: E402
    Accumulator,
    Add,
    Counter,
    Counter32,
    Doubler,
    Incrementer,
    Narrow,
    Num,
    Summer,
    Total,
    Wide,
)


def test_reply_matches_the_design_example(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=1024)
        acc.send(Add(value=1.5))
        assert acc.receive(timeout=5.0) == Total(total=1.5, count=1)
        assert acc.state == {"total": 1.5, "count": 1}


def test_replies_come_in_order(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=64)
        for i in range(50):
            acc.send(Add(value=float(i)))
        replies = [acc.receive(timeout=5.0) for _ in range(50)]
    assert [r.count for r in replies] == list(range(1, 51))
    assert [r.total for r in replies] == [float(sum(range(i + 1))) for i in range(50)]
    assert [r.envelope.sequence for r in replies] == list(range(50))
    assert all(r.envelope.source == acc.id and r.envelope.target == 0 for r in replies)


# wgpu over lavapipe pays a submit and a read-back per round (~0.3 ms), and through
# capacity 16 a round moves at most 16 messages: 5,000 keep the test short there.
MESSAGES = {"cpu": 100_000, "cpu-batch": 20_000, "wgpu": 5_000}


def test_100k_messages_through_capacity_16_none_lost_or_duplicated(actor_backend):
    n = MESSAGES.get(actor_backend, 100_000)
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=16)
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                for _ in range(n):
                    acc.send(Add(value=1.0), timeout=10.0)
            except BaseException as exc:  # surfaced below
                failure.append(exc)

        start = time.monotonic()
        producer = threading.Thread(target=produce)
        producer.start()
        counts = np.empty(n, dtype=np.int64)
        for i in range(n):
            counts[i] = acc.receive(timeout=10.0).count
        producer.join()
        elapsed = time.monotonic() - start
    assert not failure
    assert np.array_equal(counts, np.arange(1, n + 1))  # each exactly once, in order
    assert acc.stats["processed"] == n
    assert acc.stats["input"]["enqueued"] == n and acc.stats["input"]["dropped"] == 0
    assert acc.state["count"] == n
    assert elapsed < 60, elapsed


def test_three_actor_k2k_pipeline(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        doubler = system.spawn(Doubler, queue_capacity=16)
        inc = system.spawn(Incrementer, queue_capacity=16)
        summer = system.spawn(Summer, queue_capacity=16)
        system.connect(doubler, inc)
        system.connect(inc, summer)
        sent = []
        for i in range(200):
            sent.append(doubler.send(Num(value=float(i))))
            if i % 8 == 7:
                for _ in range(8):
                    last = summer.receive(timeout=5.0)
        assert last.count == 200
        assert last.total == sum(2.0 * i + 1.0 for i in range(200))
        assert last.envelope.source == summer.id
        assert last.envelope.hlc > sent[-1]
    assert doubler.stats["processed"] == inc.stats["processed"] == summer.stats["processed"] == 200
    with pytest.raises(rk.ReceiveTimeout):
        doubler.receive(timeout=0.01)  # its replies went to inc, device to device


def test_with_exit_drains_every_queue(actor_backend):
    n = 300
    with rk.ActorSystem(backend=actor_backend) as system:
        a = system.spawn(Doubler, queue_capacity=512)
        b = system.spawn(Summer, queue_capacity=512)
        system.connect(a, b)
        acc = system.spawn(Accumulator, queue_capacity=512)
        for _ in range(n):
            a.send(Num(value=1.0), timeout=10.0)
            acc.send(Add(value=2.0), timeout=10.0)
    # nothing received inside the block: leaving it drained the queues into the host
    assert b.state == {"total": 2.0 * n, "count": n}
    assert acc.state == {"total": 2.0 * n, "count": n}
    assert acc.pending() == n and b.pending() == n
    assert [acc.receive(timeout=0).count for _ in range(n)] == list(range(1, n + 1))
    assert all(system.hosts[r.id].join(0) for r in (a, b, acc))
    assert acc.ctrl[L.C["state"]] == L.ACTOR_EXITED
    with pytest.raises(RuntimeError):
        acc.send(Add(value=1.0))


def test_receive_timeout(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=16)
        start = time.monotonic()
        with pytest.raises(rk.ReceiveTimeout) as info:
            acc.receive(timeout=0.1)
        assert time.monotonic() - start >= 0.09
        assert isinstance(info.value, TimeoutError)


def test_wrong_message_type_is_rejected_clearly(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=16)
        with pytest.raises(TypeError, match="has no handler for message 'Total'; it handles: Add"):
            acc.send(Total(total=1.0, count=1))
        with pytest.raises(TypeError, match="takes messages"):
            acc.send(3.0)
        doubler = system.spawn(Doubler, queue_capacity=16)
        with pytest.raises(TypeError, match="no handler for 'Num'"):
            system.connect(doubler, acc)


def test_unknown_type_id_on_the_device_counts_an_error(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=16)
        words = np.zeros(acc.h2k.slot_words, dtype=np.uint32)
        words[0] = 12345
        acc.h2k.push(words)
        acc.send(Add(value=1.0))
        assert acc.receive(timeout=5.0).count == 1
        assert acc.stats["errors"] == 1 and acc.stats["last_bad_type"] == 12345
        assert acc.stats["processed"] == 2


def test_reply_hlcs_increase_strictly_and_follow_their_send(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=256)
        stamps = [acc.send(Add(value=1.0)) for _ in range(200)]
        replies = [acc.receive(timeout=5.0) for _ in range(200)]
    hlcs = [r.envelope.hlc for r in replies]
    assert all(b > a for a, b in zip(hlcs, hlcs[1:]))
    assert all(h > s for h, s in zip(hlcs, stamps))
    assert system.hlc.last > hlcs[-1]
    assert acc.stats["hlc"] == hlcs[-1]


def test_full_queue_blocks_then_raises_or_rejects(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=2, policy="reject")
        sent = 0
        with pytest.raises(rk.QueueFull, match="rejected"):
            for _ in range(10):
                acc.send(Add(value=1.0))
                sent += 1
                time.sleep(0.01)
        assert acc.stats["input"]["rejected"] == 1
        blocking = system.spawn(Accumulator, queue_capacity=2)
        with pytest.raises(rk.QueueFull, match="stayed full"):
            for _ in range(10):
                blocking.send(Add(value=1.0), timeout=0.05)
        # nothing was lost: every accepted message is answered
        assert [acc.receive(timeout=5.0).count for _ in range(sent)] == list(range(1, sent + 1))


def test_capacity_must_be_a_power_of_two():
    with rk.ActorSystem(backend="cpu") as system:
        with pytest.raises(ValueError, match="power of two"):
            system.spawn(Accumulator, queue_capacity=10)


def test_exactly_one_lane_consumes_each_message(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=128, lanes=4)
        for _ in range(100):
            acc.send(Add(value=1.0))
        counts = [acc.receive(timeout=5.0).count for _ in range(100)]
        with pytest.raises(rk.ReceiveTimeout):
            acc.receive(timeout=0.05)
    assert counts == list(range(1, 101))
    assert acc.stats["processed"] == 100


def test_silent_handlers_64_bit_fields_and_none_replies(actor_backend):
    no_64_bit = actor_backend == "wgpu"  # WGSL has no 64-bit types
    counter, reply_type = (Counter32, Narrow) if no_64_bit else (Counter, Wide)
    with rk.ActorSystem(backend=actor_backend) as system:
        c = system.spawn(counter, queue_capacity=16)
        for i in range(10):
            c.send(Add(value=0.5 * i))
        c.send(Num(value=-1.0))  # replies None: nothing comes back
        c.send(Num(value=1.0))
        reply = c.receive(timeout=5.0)
        assert reply == reply_type(big=sum(0.5 * i for i in range(10)), small=10)
        with pytest.raises(rk.ReceiveTimeout):
            c.receive(timeout=0.05)
    assert c.state == {"seen": 10, "wide": 22.5}


def test_64_bit_state_is_a_compile_error_on_wgpu(actor_backend):
    if actor_backend != "wgpu":
        pytest.skip("only WGSL lacks 64-bit types")
    with rk.ActorSystem(backend=actor_backend) as system:
        with pytest.raises(rk.CompileError, match="WGSL does not support") as info:
            system.spawn(Counter, queue_capacity=16)
        assert "actor_defs.py" in str(info.value)
        assert system.actors == []


def test_an_idle_actor_does_not_burn_a_core(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=16)
        acc.send(Add(value=1.0))
        acc.receive(timeout=5.0)
        beats = acc.stats["heartbeat"]
        cpu, wall = time.process_time(), time.monotonic()
        time.sleep(0.5)
        used = (time.process_time() - cpu) / (time.monotonic() - wall)
        assert acc.stats["heartbeat"] > beats  # still polling
    assert used < 0.3, f"idle actor used {used:.0%} of a core"


def test_with_exit_drains_under_backpressure(actor_backend):
    """Full K2K and K2H queues at exit: the drain still processes every message."""
    n = 12
    with rk.ActorSystem(backend=actor_backend) as system:
        a = system.spawn(Doubler, queue_capacity=4)
        b = system.spawn(Summer, queue_capacity=4)
        system.connect(a, b)
        for _ in range(n):  # 4 in a's input, 4 between a and b, 4 replies of b: all full
            a.send(Num(value=1.0), timeout=10.0)
    assert a.stats["processed"] == b.stats["processed"] == n
    assert b.state == {"total": 2.0 * n, "count": n}
    assert [b.receive(timeout=0).count for _ in range(n)] == list(range(1, n + 1))


def test_drop_oldest_discards_one_message_and_counts_it(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=2, policy="drop_oldest")
        for _ in range(2):  # answered at once: the output queue fills up
            acc.send(Add(value=1.0))
        deadline = time.monotonic() + 5.0
        while acc.stats["processed"] < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        for value in (10.0, 100.0, 1000.0):  # 10 waits, 100 waits, 1000 evicts 10
            acc.send(Add(value=value), timeout=5.0)
        totals = [acc.receive(timeout=5.0).total for _ in range(4)]
    assert totals == [1.0, 2.0, 102.0, 1102.0]
    assert acc.stats["input"]["dropped"] == 1
    assert acc.stats["input"]["enqueued"] == 5

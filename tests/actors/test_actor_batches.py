"""Batches and requests (issue 17): ``send_many``, ``receive_many``, ``ask``, ``ask_async``.

Every test runs on each actor backend (``actor_backend`` in conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import threading
import time

import numpy as np
import pytest

import ringkernel as rk

sys.path.insert(0, os.path.dirname(__file__))
from actor_defs import Accumulator, Add, Counter, Counter32, Doubler, Narrow, Num, Total, Wide  # noqa: E402


@rk.actor
class TwoReplies:
    count: rk.u32 = 0

    def add(self, msg: Add) -> Total:
        self.count += 1
        return Total(total=msg.value, count=self.count)

    def num(self, msg: Num) -> Num:
        return Num(value=msg.value)


def _receive_all(ref, count: int, **kwargs) -> list:
    got: list = []
    while len(got) < count:
        got.extend(ref.receive_many(1024, timeout=10.0, **kwargs))
    return got


def test_send_many_keeps_order_and_delivers_each_message_once(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=64)
        sent = 0
        for size in (1, 7, 64, 150):  # 150 > capacity: the batch is pushed as room appears
            batch = np.zeros(size, dtype=Add.dtype)
            batch["value"] = np.arange(sent, sent + size, dtype=np.float32)
            done = threading.Thread(target=acc.send_many, args=(batch,), kwargs={"timeout": 10.0})
            done.start()
            replies = _receive_all(acc, size)
            done.join()
            sent += size
            assert [r.count for r in replies] == list(range(sent - size + 1, sent + 1))
        assert acc.state["count"] == sent
        assert acc.stats["input"]["enqueued"] == sent
        with pytest.raises(rk.ReceiveTimeout):
            acc.receive_many(10, timeout=0.05)


def test_send_many_returns_increasing_stamps_and_sequences(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=64)
        acc.send(Add(value=1.0))
        stamps = acc.send_many([Add(value=float(i)) for i in range(20)])
        assert stamps.dtype == np.uint64 and len(stamps) == 20
        assert np.all(np.diff(stamps.astype(np.int64)) == 1)
        replies = _receive_all(acc, 21)
        assert [r.envelope.sequence for r in replies] == list(range(21))
        assert all(r.envelope.hlc > int(s) for r, s in zip(replies[1:], stamps))


def test_send_many_takes_a_list_of_several_message_types(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        actor, reply = (Counter32, Narrow) if actor_backend == "wgpu" else (Counter, Wide)  # WGSL: no f64
        counter = system.spawn(actor, queue_capacity=64)
        batch = [Add(value=1.0), Add(value=1.0), Num(value=2.0), Add(value=1.0), Num(value=3.0)]
        counter.send_many(batch)
        replies = _receive_all(counter, 2)
        assert all(isinstance(r, reply) for r in replies)
        assert [r.envelope.sequence for r in replies] == [2, 4]  # the Nums' own sequence numbers
        assert counter.state["seen"] == 3


def test_receive_many_as_array_gives_the_reply_dtype(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=128)
        batch = np.zeros(100, dtype=Add.dtype)
        batch["value"] = 1.0
        acc.send_many(batch)
        parts: list[np.ndarray] = []
        while sum(map(len, parts)) < 100:
            parts.append(acc.receive_many(1024, timeout=10.0, as_array=True))
        assert all(p.dtype == Total.dtype for p in parts)
        arr = np.concatenate(parts)
        assert list(arr["count"]) == list(range(1, 101))
        assert list(arr["total"]) == [float(i) for i in range(1, 101)]


def test_batch_input_errors_are_clear():
    with rk.ActorSystem(backend="cpu") as system:
        acc = system.spawn(Accumulator, queue_capacity=16)
        two = system.spawn(TwoReplies, queue_capacity=16)
        with pytest.raises(TypeError, match="Add.dtype"):
            acc.send_many(np.zeros(3, dtype=np.float32))
        with pytest.raises(TypeError, match="no handler for message 'Num'"):
            acc.send_many([Add(value=1.0), Num(value=1.0)])
        with pytest.raises(TypeError, match="list of messages"):
            acc.send_many(Add(value=1.0))
        with pytest.raises(ValueError, match="one reply type"):
            two.receive_many(4, timeout=0.01, as_array=True)
        with pytest.raises(ValueError, match="max_count"):
            acc.receive_many(0)
        assert acc.stats["input"]["enqueued"] == 0  # a refused batch sends nothing


def test_send_many_under_reject_sends_a_prefix_and_says_how_many():
    with rk.ActorSystem(backend="cpu") as system:
        acc = system.spawn(Accumulator, queue_capacity=4, policy="reject")
        acc.ctrl[rk.actors.L.C["stop"]] = 1  # park the consumer: nothing leaves the queue
        assert system.hosts[acc.id].join(5.0)
        with pytest.raises(rk.QueueFull) as info:
            acc.send_many([Add(value=float(i)) for i in range(10)])
        assert info.value.sent == 4
        assert acc.stats["input"]["rejected"] == 6
        acc.ctrl[rk.actors.L.C["stop"]] = 0
        system._launch(acc)
        replies = _receive_all(acc, 4)
        assert [r.envelope.sequence for r in replies] == [0, 1, 2, 3]
        acc.send(Add(value=1.0))  # the sequence continues after the prefix that was sent
        assert acc.receive(timeout=5.0).envelope.sequence == 4


def test_send_many_under_drop_oldest_loses_nothing_silently(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=8, policy="drop_oldest")
        total = 200
        acc.send_many([Add(value=1.0) for _ in range(total)], timeout=10.0)
        deadline = time.monotonic() + 10
        got: list = []
        while time.monotonic() < deadline:  # receive as we go: a full output queue holds the actor
            stats = acc.stats
            if stats["processed"] + stats["input"]["dropped"] == total:
                break
            with contextlib.suppress(rk.ReceiveTimeout):
                got.extend(acc.receive_many(1024, timeout=0.005))
        while acc.pending():
            got.extend(acc.receive_many(1024, timeout=1.0))
        stats = acc.stats
        assert stats["processed"] + stats["input"]["dropped"] == total
        sequences = [r.envelope.sequence for r in got]
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
        assert len(got) == stats["processed"]


def test_send_many_block_policy_times_out_with_the_prefix_sent():
    with rk.ActorSystem(backend="cpu") as system:
        acc = system.spawn(Accumulator, queue_capacity=4)
        acc.ctrl[rk.actors.L.C["stop"]] = 1
        assert system.hosts[acc.id].join(5.0)
        with pytest.raises(rk.QueueFull) as info:
            acc.send_many([Add(value=1.0)] * 6, timeout=0.05)
        assert info.value.sent == 4
        acc.ctrl[rk.actors.L.C["stop"]] = 0  # run again, so the exit drains the four quickly
        system._launch(acc)


def test_ask_matches_replies_with_eight_threads_asking(actor_backend):
    asks = 40 if actor_backend == "wgpu" else 200
    errors: list[BaseException] = []
    with rk.ActorSystem(backend=actor_backend) as system:
        doubler = system.spawn(Doubler, queue_capacity=16)

        def asker(t: int) -> None:
            try:
                for i in range(asks):
                    value = float(t * 10_000 + i)
                    reply = doubler.ask(Num(value=value), timeout=10.0)
                    assert reply.value == 2 * value, (value, reply)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=asker, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        # plain sends and receives interleaved with the asks never see an asked-for reply
        for i in range(20):
            doubler.send(Num(value=-1.0 - i))
        plain = [doubler.receive(timeout=10.0).value for _ in range(20)]
        for thread in threads:
            thread.join()
    assert not errors, errors[0]
    assert plain == [2 * (-1.0 - i) for i in range(20)]


def test_ask_times_out_when_the_handler_does_not_reply():
    with rk.ActorSystem(backend="cpu") as system:
        counter = system.spawn(Counter, queue_capacity=16)
        with pytest.raises(rk.ReceiveTimeout):
            counter.ask(Add(value=1.0), timeout=0.05)
        assert counter.ask(Num(value=1.0), timeout=5.0).envelope.sequence == 1


def test_ask_on_an_actor_whose_replies_go_downstream_is_an_error():
    with rk.ActorSystem(backend="cpu") as system:
        a, b = system.spawn(Doubler), system.spawn(Doubler)
        system.connect(a, b)
        with pytest.raises(ValueError, match="nothing comes back"):
            a.ask(Num(value=1.0))


def test_ask_async_with_a_thousand_concurrent_requests(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        doubler = system.spawn(Doubler, queue_capacity=1024)

        async def main() -> list:
            return await asyncio.gather(
                *(doubler.ask_async(Num(value=float(i)), timeout=30.0) for i in range(1000))
            )

        replies = asyncio.run(main())
    assert [r.value for r in replies] == [2.0 * i for i in range(1000)]


def test_no_lost_wake_up_when_sending_after_random_delays(actor_backend):
    """An idle actor (spinning, backing off or parked) must see every send, whenever it comes."""
    rounds = 30 if actor_backend == "wgpu" else 120
    rng = random.Random(17)
    with rk.ActorSystem(backend=actor_backend) as system:
        doubler = system.spawn(Doubler, queue_capacity=16)
        for i in range(rounds):
            time.sleep(rng.choice((0.0, 0.0, 1e-5, 1e-4, 1e-3, 5e-3, 0.02)))
            assert doubler.ask(Num(value=float(i)), timeout=5.0).value == 2.0 * i


def test_no_lost_wake_up_with_a_small_full_output_queue(actor_backend):
    """A sender with random pauses and a slower receiver: the loop parks on a full output
    queue and on an empty input, and each receive that frees room must wake it."""
    count = 60 if actor_backend == "wgpu" else 400
    rng = random.Random(4)
    delays = [rng.choice((0.0, 0.0, 2e-5, 2e-4, 2e-3)) for _ in range(2 * count)]
    with rk.ActorSystem(backend=actor_backend) as system:
        doubler = system.spawn(Doubler, queue_capacity=4)

        def sender() -> None:
            for i in range(count):
                time.sleep(delays[i])
                doubler.send(Num(value=float(i)), timeout=10.0)

        thread = threading.Thread(target=sender)
        thread.start()
        values = []
        for i in range(count):
            time.sleep(delays[count + i] / 2)
            values.append(doubler.receive(timeout=10.0).value)
        thread.join()
    assert values == [2.0 * i for i in range(count)]


def test_a_cancelled_ask_async_leaves_no_claim_and_later_replies_reach_receive():
    with rk.ActorSystem(backend="cpu") as system:
        counter = system.spawn(Counter, queue_capacity=16)

        async def cancelled() -> None:
            task = asyncio.ensure_future(counter.ask_async(Add(value=1.0), timeout=None))  # never replied to
            await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(cancelled())
        assert counter._asked == {}
        counter.send(Num(value=1.0))
        assert isinstance(counter.receive(timeout=5.0), Wide)


def test_ask_async_on_a_full_queue_times_out_and_counts_the_refusal():
    with rk.ActorSystem(backend="cpu") as system:
        acc = system.spawn(Accumulator, queue_capacity=2)
        acc.ctrl[rk.actors.L.C["stop"]] = 1
        assert system.hosts[acc.id].join(5.0)
        acc.send_many([Add(value=1.0)] * 2)
        with pytest.raises(rk.QueueFull):
            asyncio.run(acc.ask_async(Add(value=1.0), timeout=0.05))
        assert acc.stats["input"]["rejected"] == 1 and acc._asked == {}
        acc.ctrl[rk.actors.L.C["stop"]] = 0  # run again, so the exit drains the queue quickly
        system._launch(acc)

"""Suite 4: persistent actors against a Python thread echoing through two queue.Queues.

Both sides run the same echo actor: take a ``Ping``, bump a counter, reply
with a ``Pong``.  Rows, all measured in the same run as the baseline:

- round trip p50 / p99: one ``send`` then ``receive`` at a time, and one
  ``ask`` at a time (the baseline: ``put`` then ``get``);
- pipelined, per message: ``CAPACITY`` messages in flight one ``send`` at a
  time, then their replies;
- batched, per message: ``send_many`` of a ``Ping.dtype`` array, then
  ``receive_many(as_array=True)`` (the baseline stays one ``put`` per
  message: it has no batch path);
- idle actor CPU: process CPU time over ``IDLE_SECONDS`` with one idle
  actor, as a fraction of one core (the "baseline" column is one core).

The cpu rows come first, then the same rows on wgpu when it can run here.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import ringkernel as rk
from bench.report import Row, Skipped, format_rate
from bench.settings import Settings
from bench.timing import Timing, measure
from ringkernel.runtime import backend_status

CAPACITY = 1024
BATCH = 4096  # messages per send_many (the actor's queues hold BATCH)
IDLE_SECONDS = 2.0
BASELINE = "queue.Queue + Thread echo"

Send = Callable[[Any], None]
Receive = Callable[[], Any]


def run(settings: Settings) -> list[Row]:
    if not hasattr(rk, "ActorSystem"):
        raise Skipped("rk.ActorSystem is not in this build yet")
    from bench.actor_defs import Pong

    round_trips = 300 if settings.quick else 2000
    batches = 2 if settings.quick else 8
    with _thread_echo(Pong) as (send, receive):
        baseline = _time_echo("baseline", send, receive, send, round_trips, batches)
    rows: list[Row] = []
    for backend in ("cpu", "wgpu"):
        if backend_status(backend)[0]:  # wgpu rows only where wgpu runs
            rows += _backend_rows(backend, baseline, round_trips, batches, settings)
    return rows


def _backend_rows(
    backend: str, baseline: dict[str, Timing], round_trips: int, batches: int, settings: Settings
) -> list[Row]:
    from bench.actor_defs import Echo, Ping

    suite = f"actors ({backend})"
    if backend == "wgpu":  # a pump round is ~0.3 ms on lavapipe: fewer round trips
        round_trips, batches = max(100, round_trips // 10), max(2, batches // 2)
    with rk.ActorSystem(backend=backend) as system:
        echo = system.spawn(Echo, queue_capacity=BATCH)
        ours = _time_echo(
            backend,
            echo.send,
            lambda: echo.receive(timeout=5.0),
            lambda msg: echo.ask(msg, timeout=5.0),
            round_trips,
            batches,
        )
        ours["batched"] = _time_batches(echo, Ping, batches)
        idle = _idle_cpu(echo) if backend == "cpu" or not settings.quick else None
    base_per_message = baseline["pipelined"].median / CAPACITY
    per_message = ours["pipelined"].median / CAPACITY
    batched = ours["batched"].median / BATCH
    rows = [
        Row(suite, f"{label} round trip p{q}", ours[key].percentile(q), BASELINE,
            baseline["latency"].percentile(q))
        for key, label in (("latency", "send+receive"), ("ask", "ask"))
        for q in (50, 99)
    ] + [
        Row(
            suite,
            f"pipelined, per message (queue {CAPACITY})",
            per_message,
            BASELINE,
            base_per_message,
            rate=format_rate(1, per_message, "msg"),
        ),
        Row(
            suite,
            f"batched send_many/receive_many, per message ({BATCH})",
            batched,
            BASELINE,
            base_per_message,
            rate=format_rate(1, batched, "msg"),
            note="target >= 2 Mmsg/s",
        ),
    ]
    if idle is not None:
        rows.append(
            Row(
                suite,
                f"idle actor CPU over {IDLE_SECONDS:g} s",
                idle,
                "one core",
                1.0,
                note=f"{idle * 100:.2f}% of a core (target <= 1%)",
            )
        )
    return rows


def _time_echo(
    side: str, send: Send, receive: Receive, ask: Callable[[Any], Any], round_trips: int, batches: int
) -> dict[str, Timing]:
    """Round-trip latencies (send+receive, ask) and pipelined batch times; checks nothing was lost."""
    from bench.actor_defs import Ping

    ping = Ping(value=1.0)
    sent = 0

    def send_one() -> None:
        nonlocal sent
        send(ping)
        sent += 1

    def round_trip() -> None:
        send_one()
        receive()

    def asked() -> None:
        nonlocal sent
        ask(ping)
        sent += 1

    def pipelined() -> None:
        for _ in range(CAPACITY):
            send_one()
        for _ in range(CAPACITY):
            receive()

    timings = {"latency": measure(round_trip, round_trips, warmup=50)}
    if side != "baseline":
        timings["ask"] = measure(asked, round_trips, warmup=50)
    timings["pipelined"] = measure(pipelined, batches)
    send_one()
    last = receive()
    if last.count != sent or last.value != ping.value:
        raise AssertionError(f"{side}: reply {last} after {sent} messages: lost or garbled")
    return timings


def _time_batches(echo: Any, ping_class: Any, batches: int) -> Timing:
    batch = np.zeros(BATCH, dtype=ping_class.dtype)
    batch["value"] = 1.0
    first = int(echo.stats["processed"])

    def one_batch() -> None:
        echo.send_many(batch, timeout=5.0)
        got = 0
        while got < BATCH:
            got += len(echo.receive_many(BATCH, timeout=5.0, as_array=True))

    timing = measure(one_batch, batches * 4)
    done = int(echo.stats["processed"]) - first
    if done != BATCH * (batches * 4 + 1):  # + the warm-up batch
        raise AssertionError(f"batched: {done} messages handled, expected {BATCH * (batches * 4 + 1)}")
    return timing


def _idle_cpu(echo: Any) -> float:
    """Process CPU seconds per second while the actor idles (after it has gone quiet)."""
    time.sleep(0.2)
    start = time.process_time()
    time.sleep(IDLE_SECONDS)
    return (time.process_time() - start) / IDLE_SECONDS


@contextmanager
def _thread_echo(reply_class: Any) -> Iterator[tuple[Send, Receive]]:
    inbox: queue.Queue[Any] = queue.Queue(maxsize=CAPACITY)
    outbox: queue.Queue[Any] = queue.Queue(maxsize=CAPACITY)
    stop = object()

    def loop() -> None:
        count = 0
        while (msg := inbox.get()) is not stop:
            count += 1
            outbox.put(reply_class(value=msg.value, count=count))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield inbox.put, lambda: outbox.get(timeout=5.0)
    finally:
        inbox.put(stop)
        thread.join()

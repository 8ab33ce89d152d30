"""Suite 4: persistent actors on the cpu backend against a Python thread with queue.Queue.

Both sides run the same echo actor: take a ``Ping``, bump a counter, reply
with a ``Pong``.  Latency is one send -> receive round trip at a time (p50 and
p99 over individual round trips); throughput keeps the input queue full
(``queue_capacity`` messages in flight, then their replies).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ringkernel as rk
from bench.report import Row, Skipped, format_rate
from bench.settings import Settings
from bench.timing import Timing, measure

SUITE = "actors (cpu)"
CAPACITY = 1024
BASELINE = "queue.Queue + Thread echo"

Send = Callable[[Any], None]
Receive = Callable[[], Any]


def run(settings: Settings) -> list[Row]:
    if not hasattr(rk, "ActorSystem"):
        raise Skipped("rk.ActorSystem is not in this build yet")
    from bench.actor_defs import Echo, Ping, Pong

    round_trips = 300 if settings.quick else 2000
    batches = 2 if settings.quick else 8
    ping = Ping(value=1.0)
    results = {}
    for side, endpoint in (("ours", _ringkernel_echo(Echo)), ("baseline", _thread_echo(Pong))):
        with endpoint as (send, receive):
            results[side] = _time_echo(side, send, receive, ping, round_trips, batches)
    return _rows(results)


def _time_echo(
    side: str, send: Send, receive: Receive, ping: Any, round_trips: int, batches: int
) -> tuple[Timing, Timing]:
    """Round-trip latencies and pipelined batch times; then checks no reply was lost."""
    sent = 0

    def send_one() -> None:
        nonlocal sent
        send(ping)
        sent += 1

    def round_trip() -> None:
        send_one()
        receive()

    def pipelined() -> None:
        for _ in range(CAPACITY):
            send_one()
        for _ in range(CAPACITY):
            receive()

    latency = measure(round_trip, round_trips, warmup=50)
    batch = measure(pipelined, batches)
    send_one()
    last = receive()
    if last.count != sent or last.value != ping.value:
        raise AssertionError(f"{side}: reply {last} after {sent} messages: lost or garbled")
    return latency, batch


def _rows(results: dict[str, tuple[Timing, Timing]]) -> list[Row]:
    (ours_lat, ours_batch), (base_lat, base_batch) = results["ours"], results["baseline"]
    per_message = ours_batch.median / CAPACITY
    return [
        Row(SUITE, "round trip p50", ours_lat.percentile(50), BASELINE, base_lat.percentile(50)),
        Row(SUITE, "round trip p99", ours_lat.percentile(99), BASELINE, base_lat.percentile(99)),
        Row(
            SUITE,
            f"pipelined, per message (queue {CAPACITY})",
            per_message,
            BASELINE,
            base_batch.median / CAPACITY,
            rate=format_rate(1, per_message, "msg"),
        ),
    ]


@contextmanager
def _ringkernel_echo(actor_class: Any) -> Iterator[tuple[Send, Receive]]:
    with rk.ActorSystem(backend="cpu") as system:
        echo = system.spawn(actor_class, queue_capacity=CAPACITY)
        yield echo.send, lambda: echo.receive(timeout=5.0)


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

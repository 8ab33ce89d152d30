"""Suite ``messaging``: actors that talk (issue 23), each row against a baseline of the same run.

- handler sends: a ``Spray`` actor sends ``BURST`` items per host message on its port to a
  ``Sink`` (host -> Spray -> router -> Sink); baseline: the same number of items as host
  messages an ``Echo`` actor replies to (``send_many`` + ``receive_many``): messages an actor
  emits per second either way;
- in-group ``send_to``: every instance of a ring of ``RING`` instances passes a relay on to the
  next instance ``HOPS`` times, each hop delivered device-side (the loop pushes it into the next
  instance's ``routed`` queue); baselines: host-routed delivery, the relay comes back to the host
  as a reply and the host sends it to the next instance (one ``receive_many`` and one
  ``send_many`` per instance and hop), and the same ring through the router (``RoutedRing``: a
  port send ahead of the ``send_to`` keeps every hop off the direct path);
- chain latency: the p50 time from a host ``send`` to the reply of a chain of ``CHAIN`` routed
  hops (``Hop`` -> ... -> ``ChainEnd``, port to port); baseline: the p50 round trip of one reply
  (``send`` + ``receive`` on ``ChainEnd`` alone), samples interleaved in the same run.

cpu always; wgpu when an adapter exists (smaller counts: lavapipe is a CPU too).
"""

from __future__ import annotations

import time

import numpy as np

import ringkernel as rk
from bench.report import Row, Skipped, format_rate
from bench.settings import Settings
from bench.timing import measure
from ringkernel.runtime import backend_status

BURST = 100
RING = 64
CHAIN = 4
SENDS_BASELINE = "replies to the host (send_many + receive_many)"
RING_BASELINE = "host-routed delivery (reply, host sends it on)"
ROUTER_BASELINE = "the same ring through the router (a port send first)"
CHAIN_BASELINE = "p50 reply round trip (send + receive)"


def run(settings: Settings) -> list[Row]:
    if not hasattr(rk, "Port"):
        raise Skipped("rk.Port is not in this build yet")
    rows: list[Row] = []
    for backend in ("cpu", "wgpu"):
        if backend_status(backend)[0]:
            rows += _send_rows(backend, settings) + _ring_rows(backend, settings)
            rows += _chain_rows(backend, settings)
    return rows


def _scale(settings: Settings, backend: str) -> int:
    scale = 1 if settings.quick else 10
    return scale if backend == "cpu" else max(1, scale // 5)


def _wait_for(read, wanted: int, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while read() < wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {read()} of {wanted} after {timeout} s")
        time.sleep(0.0002)


def _send_rows(backend: str, settings: Settings) -> list[Row]:
    from bench.messaging_defs import Burst, Echo, Item, Sink, Spray

    bursts = 20 * _scale(settings, backend)
    total = bursts * BURST
    repeats = max(2, settings.repeats // 2)
    with rk.ActorSystem(backend=backend) as system:
        spray, sink = system.spawn(Spray, queue_capacity=1024), system.spawn(Sink, queue_capacity=4096)
        system.connect(spray, sink, port="out")
        echo = system.spawn(Echo, queue_capacity=4096)
        messages = [Burst(n=BURST)] * bursts
        items = np.zeros(total, dtype=Item.dtype)
        done = [0]

        def sends() -> None:
            done[0] += total
            spray.send_many(messages, timeout=30.0)
            _wait_for(lambda: int(sink.state["count"]), done[0], "items at the sink")

        def replies() -> None:
            for start in range(0, total, 4096):
                n = min(4096, total - start)
                echo.send_many(items[start : start + n], timeout=30.0)
                got = 0
                while got < n:
                    got += len(echo.receive_many(n - got, timeout=30.0, as_array=True))

        ours = measure(sends, repeats).median
        baseline = measure(replies, repeats).median
    return [Row(f"messaging ({backend})", f"{total:,} handler sends ({BURST} per message) via a port",
                ours / total, SENDS_BASELINE, baseline / total, rate=format_rate(total, ours, "msg"))]


def _ring_rows(backend: str, settings: Settings) -> list[Row]:
    from bench.messaging_defs import HostRing, Relay, Ring, RoutedRing

    hops = 10 * _scale(settings, backend)
    total = RING * hops
    repeats = max(2, settings.repeats // 2)
    with rk.ActorSystem(backend=backend) as system:
        ring = system.spawn(Ring, count=RING, queue_capacity=16)
        routed_ring = system.spawn(RoutedRing, count=RING, queue_capacity=16)
        host_ring = system.spawn(HostRing, count=RING, queue_capacity=16)
        refs = [host_ring[i] for i in range(RING)]
        relays = [Relay(hops=hops - 1)]
        done = {id(ring): 0, id(routed_ring): 0}

        def around(group: object) -> None:
            done[id(group)] += total
            group.broadcast(Relay(hops=hops - 1))
            _wait_for(lambda: int(group.state["seen"].astype(np.int64).sum()), done[id(group)], "relays")

        def via_host() -> None:
            for ref in refs:
                ref.send_many(relays, timeout=30.0)
            for _ in range(hops - 1):
                back = [ref.receive_many(1, timeout=30.0, as_array=True) for ref in refs]
                for i, rows in enumerate(back):
                    refs[(i + 1) % RING].send_many(rows, timeout=30.0)
            for ref in refs:
                ref.receive_many(1, timeout=30.0, as_array=True)

        ours = measure(lambda: around(ring), repeats).median
        baseline = measure(via_host, repeats).median
        routed = measure(lambda: around(routed_ring), repeats).median
    what = f"{total:,} send_to deliveries around a ring of {RING} (device-side)"
    rate = format_rate(total, ours, "msg")
    return [Row(f"messaging ({backend})", what, ours / total, RING_BASELINE, baseline / total, rate=rate),
            Row(f"messaging ({backend})", what, ours / total, ROUTER_BASELINE, routed / total, rate=rate)]


def _chain_rows(backend: str, settings: Settings) -> list[Row]:
    from bench.messaging_defs import ChainEnd, Hop, Token

    samples = (50 if settings.quick else 300) // (1 if backend == "cpu" else 5)
    with rk.ActorSystem(backend=backend) as system:
        hops = [system.spawn(Hop, queue_capacity=16) for _ in range(CHAIN)]
        end, echo = system.spawn(ChainEnd, queue_capacity=16), system.spawn(ChainEnd, queue_capacity=16)
        for a, b in zip(hops, [*hops[1:], end], strict=True):
            system.connect(a, b, port="out")

        def trip(first: rk.ActorRef, last: rk.ActorRef, stamp: int) -> float:
            start = time.perf_counter()
            first.send(Token(stamp=stamp))
            reply = last.receive(timeout=30.0)
            took = time.perf_counter() - start
            assert int(reply.stamp) == stamp, (reply, stamp)
            return took

        chain, replies = [], []
        for k in range(samples + 5):  # interleaved, the first few are warm-up
            c, r = trip(hops[0], end, k), trip(echo, echo, k)
            if k >= 5:
                chain.append(c)
                replies.append(r)
    ours, baseline = float(np.median(chain)), float(np.median(replies))
    return [Row(f"messaging ({backend})", f"p50 latency of a {CHAIN}-hop port chain", ours, CHAIN_BASELINE,
                baseline, note=f"p90 {np.percentile(chain, 90) * 1e3:.3g} ms")]

"""Suite: what watching an actor system costs (issue 21: collecting costs <= 2% throughput).

Rows, cpu backend, each against the same work unwatched in the same run
(repeats interleaved, so background load drifts over both alike):

- batched throughput while ``/metrics`` is scraped every ``SCRAPE_EVERY`` s
  (a hundred times Prometheus's usual rate, so the cost shows);
- the round-trip histogram's ``observe`` per ``ask`` against the ask itself
  (it is always on, so it is timed directly);
- batched throughput while a trace taps every queue (no target: a trace is
  switched on to look at something, not left on).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import ringkernel as rk
from bench.report import Row, format_rate
from bench.settings import Settings
from bench.timing import measure, measure_pair

BATCH = 4096
SCRAPE_EVERY = 0.01
SUITE = "observability (cpu)"


def run(settings: Settings) -> list[Row]:
    import tempfile

    from bench.actor_defs import Echo, Ping
    from ringkernel.observability.metrics import Histogram

    repeats = 3 if settings.quick else 7
    batch = np.zeros(BATCH, dtype=Ping.dtype)
    with rk.ActorSystem(backend="cpu") as system:
        echo = system.spawn(Echo, queue_capacity=BATCH)

        def one_batch() -> None:
            echo.send_many(batch, timeout=5.0)
            got = 0
            while got < BATCH:
                got += len(echo.receive_many(BATCH, timeout=5.0, as_array=True))

        server = system.serve(port=0)
        with _scraping(server.url + "/metrics") as scraping:
            scraped, plain = measure_pair(_while(scraping, one_batch), one_batch, repeats)
        ask = measure(lambda: echo.ask(Ping(value=1.0), timeout=5.0), repeats, min_time=0.02, warmup=50)
        histogram = Histogram()
        observe = measure(lambda: histogram.observe(3e-5), repeats, min_time=0.02)
        with tempfile.TemporaryDirectory() as folder:
            tracer = system.trace(f"{folder}/bench.json").start()
            traced = measure(one_batch, repeats)
            tracer.close()
            untraced = measure(one_batch, repeats)
    per = BATCH
    return [
        Row(
            SUITE,
            f"batched, per message, /metrics scraped every {SCRAPE_EVERY * 1000:g} ms",
            scraped.median / per,
            "not scraped",
            plain.median / per,
            rate=format_rate(1, scraped.median / per, "msg"),
            note="target ratio <= 1.02",
        ),
        Row(
            SUITE,
            "round-trip histogram observe, per ask",
            observe.median,
            "ask p50",
            ask.median,
            note="target ratio <= 0.02",
        ),
        Row(
            SUITE,
            "batched, per message, traced",
            traced.median / per,
            "not traced",
            untraced.median / per,
            rate=format_rate(1, traced.median / per, "msg"),
            note="no target: traces are switched on to look",
        ),
    ]


def _while(flag: threading.Event, fn: Callable[[], Any]) -> Callable[[], None]:
    def wrapped() -> None:
        flag.set()
        try:
            fn()
        finally:
            flag.clear()

    return wrapped


@contextmanager
def _scraping(url: str) -> Iterator[threading.Event]:
    """A thread that scrapes ``url`` every ``SCRAPE_EVERY`` s while the yielded flag is set."""
    flag, done = threading.Event(), threading.Event()

    def loop() -> None:
        while not done.is_set():
            if flag.wait(0.05):
                with urllib.request.urlopen(url, timeout=5) as response:
                    response.read()
                time.sleep(SCRAPE_EVERY)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield flag
    finally:
        done.set()
        thread.join()

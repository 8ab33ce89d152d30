"""Suite ``groups``: actor groups (``spawn(count=N)``) against the single-actor path.

Rows, each against a baseline measured in the same run:

- messages/s through a group of 1, 100 and 10,000 instances: ``MESSAGES``
  messages spread evenly, through the bulk API (one ``group.send_many(indices,
  batch)``, then ``group.receive_many()``) and, up to 100 instances, through
  the per-instance API (one ``group[i].send_many`` per instance, then each
  instance's ``receive_many(as_array=True)``); the baseline is one single actor
  (a group of one on the scheduler) taking the same messages in ``send_many`` batches;
- p99 ``ask`` latency of a light instance while its neighbour is flooded
  with slow messages, deficit round robin on (``quantum`` 64) against off
  (``quantum`` 2**32 - 1: one turn drains a whole queue).

cpu always; wgpu when it runs here and its runtime hosts groups.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import ringkernel as rk
from bench.report import Row, Skipped, format_rate
from bench.settings import Settings
from bench.timing import Timing, measure
from ringkernel.runtime import backend_status

SIZES = (1, 100, 10_000)
PER_INSTANCE_MAX = 100  # sizes timed through group[i] too (10,000 refs is what the bulk API avoids)
BASELINE = "single actor, send_many batches"
DRR_OFF = 2**32 - 1
FLOOD_ROUNDS = 20_000  # xorshift rounds per flood message: tens of microseconds
FLOOD_CAPACITY = 1024


def run(settings: Settings) -> list[Row]:
    if not hasattr(rk, "ActorGroup"):
        raise Skipped("rk.ActorGroup is not in this build yet")
    rows: list[Row] = []
    for backend in ("cpu", "wgpu"):
        if not backend_status(backend)[0]:
            continue
        try:
            rows += _throughput_rows(backend, settings)
        except ValueError as exc:  # a runtime that cannot host groups yet
            if "cannot run actor groups" not in str(exc):
                raise
            continue
        if backend == "cpu":
            rows += _fairness_rows(settings)
    return rows


def _messages(settings: Settings, backend: str) -> int:
    total = 20_000 if settings.quick else 200_000
    return total // 10 if backend == "wgpu" else total


def _throughput_rows(backend: str, settings: Settings) -> list[Row]:
    from bench.actor_defs import Echo, Ping

    total = _messages(settings, backend)
    suite = f"groups ({backend})"
    repeats = max(2, settings.repeats // 2)
    with rk.ActorSystem(backend=backend) as system:
        single = system.spawn(Echo, queue_capacity=4096)
        batch = np.zeros(4096, dtype=Ping.dtype)

        def through_single() -> None:
            for start in range(0, total, len(batch)):
                n = min(len(batch), total - start)
                single.send_many(batch[:n], timeout=30.0)
                got = 0
                while got < n:
                    got += len(single.receive_many(n - got, timeout=30.0, as_array=True))

        baseline = measure(through_single, repeats).median
    rows = []
    for size in SIZES:
        per = max(1, total // size)
        capacity = max(2, 1 << (per - 1).bit_length())
        with rk.ActorSystem(backend=backend) as system:
            group = system.spawn(Echo, count=size, queue_capacity=capacity)
            # made once, and only where timed: the rows time messages, not refs (and the bulk
            # API serves instances nobody addressed in vectorised copies)
            refs = [group[i] for i in range(size)] if size <= PER_INSTANCE_MAX else []
            chunk = np.zeros(per, dtype=Ping.dtype)

            def through_group(refs: list[Any] = refs, chunk: np.ndarray = chunk, per: int = per) -> None:
                for ref in refs:
                    ref.send_many(chunk, timeout=30.0)
                for ref in refs:
                    got = 0
                    while got < per:
                        got += len(ref.receive_many(per - got, timeout=30.0, as_array=True))

            targets = np.repeat(np.arange(size), per)
            batch = np.zeros(len(targets), dtype=Ping.dtype)

            def through_bulk(targets: np.ndarray = targets, batch: np.ndarray = batch,
                             group: Any = group) -> None:
                group.send_many(targets, batch, timeout=30.0)
                got = 0
                while got < len(targets):
                    got += len(group.receive_many(len(targets) - got, timeout=30.0)[0])

            timed = [("bulk API", through_bulk)]
            if size <= PER_INSTANCE_MAX:
                timed.insert(0, ("per-instance API", through_group))
            for label, run in timed:
                ours = measure(run, repeats).median
                rows.append(Row(suite, f"{per * size:,} messages through {size:,} instance(s), {label}",
                                ours / (per * size), BASELINE, baseline / total,
                                rate=format_rate(per * size, ours, "msg")))
            handled = int(group.processed.sum())
            expected = per * size * (repeats + 1) * len(timed)
            if handled != expected:
                raise AssertionError(f"{size} instances handled {handled} messages, expected {expected}")
    return rows


def _fairness_rows(settings: Settings) -> list[Row]:
    asks = 10 if settings.quick else 40
    on = _light_latency(64, asks)
    off = _light_latency(DRR_OFF, asks)
    return [
        Row("groups (cpu)", f"light instance ask p{q}, neighbour flooded, DRR on (quantum 64)",
            on.percentile(q), "DRR off (quantum 2**32-1)", off.percentile(q))
        for q in (50, 99)
    ]


def _light_latency(quantum: int, asks: int) -> Timing:
    """``ask`` round trips of instance 1, each sent just after instance 0's queue was filled
    with slow work (one worker: both compete for it).  Without DRR, one turn of instance 0
    takes its whole queue first (a flood that kept coming would starve instance 1 for good)."""
    from bench.actor_defs import Ping
    from bench.group_defs import Ticker, Work

    samples = []
    with rk.ActorSystem(backend="cpu", workers=1, quantum=quantum) as system:
        group = system.spawn(Ticker, count=2, queue_capacity=FLOOD_CAPACITY)
        flooded, light = group[0], group[1]
        work = np.zeros(FLOOD_CAPACITY, dtype=Work.dtype)
        work["rounds"] = FLOOD_ROUNDS
        ping = Ping(value=1.0)
        for _ in range(asks + 1):  # the first is a warm-up
            flooded.send_many(work, timeout=30.0)
            start = time.perf_counter()
            light.ask(ping, timeout=30.0)
            samples.append(time.perf_counter() - start)
            got = 0
            while got < FLOOD_CAPACITY:
                got += len(flooded.receive_many(FLOOD_CAPACITY, timeout=30.0, as_array=True))
    return Timing(tuple(samples[1:]))

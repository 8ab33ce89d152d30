"""Exact trace spans from the actors' trace rings (docs/layout.md, "Trace ring"): on loops with a
device clock each handled message's start and duration come from the loop itself, with or without
a reply; a tap that falls behind counts what it missed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

import ringkernel as rk
from ringkernel.ringir import layout as L

sys.path.insert(0, str(Path(__file__).parent))
from timer_defs import Alarm, Arm  # noqa: E402
from wiring_defs import Job, Sink, Stage  # noqa: E402


def _trace(path: Path) -> tuple[dict[str, int], list[dict], dict]:
    data = json.loads(path.read_text())
    events = data["traceEvents"]
    tids = {e["args"]["name"]: e["tid"] for e in events if e["name"] == "thread_name"}
    return tids, events, data["otherData"]


def _spans(events: list[dict], tid: int) -> list[dict]:
    return sorted((e for e in events if e["ph"] == "X" and e["tid"] == tid and e["name"] == "handle"),
                  key=lambda e: e["args"]["seq"])


def test_spans_measure_the_handler_and_never_overlap(tmp_path):
    path = tmp_path / "work.json"
    with rk.ActorSystem("cpu", trace=path) as system:
        stage, sink = system.spawn(Stage), system.spawn(Sink)
        system.connect(stage, sink)
        works = [200_000 if n % 2 else 2_000 for n in range(40)]  # long and short handlers in turn
        for n, work in enumerate(works):
            stage.send(Job(sender=0, n=n, work=work))
        assert [sink.receive(timeout=30).n for _ in works] == list(range(40))
    tids, events, other = _trace(path)
    spans = _spans(events, tids[stage.name])
    assert [s["args"]["seq"] for s in spans] == list(range(40))
    long = [s["dur"] for s, w in zip(spans, works) if w > 2_000]
    short = [s["dur"] for s, w in zip(spans, works) if w == 2_000]
    assert min(long) > 10 * max(max(short), 1)  # 100x the loop: the span is the handler's time
    for a, b in zip(spans, spans[1:]):  # one track: one after the other (1 µs clock)
        assert a["ts"] + a["dur"] <= b["ts"] + 1
    assert len(_spans(events, tids[sink.name])) == 40
    assert other["lost"] == 0


def test_a_handler_without_a_reply_gets_its_spans_and_flows(tmp_path):
    path = tmp_path / "alarm.json"
    with rk.ActorSystem("cpu") as system:
        with system.trace(path):
            alarm = system.spawn(Alarm)
            for n in range(25):
                alarm.send(Arm(tag=n, delay_us=60_000_000))
            deadline = time.monotonic() + 30
            while alarm.state["armed"] < 25 and time.monotonic() < deadline:
                time.sleep(0.001)
    tids, events, _ = _trace(path)
    spans = _spans(events, tids[alarm.name])
    assert len(spans) == 25 and all(s["dur"] >= 0.001 for s in spans)
    flows = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = [e for e in events if e["ph"] == "f" and e["tid"] == tids[alarm.name]]
    assert len(ends) == 25 and all(flows[e["id"]]["tid"] == 0 for e in ends)  # from the host's sends


def test_only_actors_spawned_with_a_tracer_have_a_ring_and_it_records_while_one_looks(tmp_path):
    with rk.ActorSystem("cpu") as system:
        before = system.spawn(Sink)
        with system.trace(tmp_path / "t.json"):
            after = system.spawn(Sink)
            assert int(before.ctrl[L.C["trace_mask"]]) == 0  # no ring space: reply spans
            assert int(after.ctrl[L.C["trace_mask"]]) + 1 >= 2
            assert after.state_words.size >= int(after.ctrl[L.C["trace_at"]]) + 2 * L.TRACE_ENTRY_WORDS
        assert int(after.ctrl[L.C["trace_mask"]]) == 0  # off with the last tracer
        assert after.ask(Job(sender=0, n=1, work=0), timeout=10).n == 1
        head = int(after.ctrl[L.C["trace_head"]])
        assert system.spawn(Sink).ctrl[L.C["trace_at"]] == 0  # spawned after: no ring space
        with system.trace(tmp_path / "again.json"):
            assert int(after.ctrl[L.C["trace_mask"]]) + 1 >= 2  # on again
            assert after.ask(Job(sender=0, n=2, work=0), timeout=10).n == 2
        assert int(after.ctrl[L.C["trace_head"]]) == head + 1  # only the traced message


def test_a_tap_that_falls_behind_counts_what_the_ring_lost(tmp_path):
    path = tmp_path / "behind.json"
    with rk.ActorSystem("cpu") as system:
        tracer = system.trace(path)
        sink = system.spawn(Sink, queue_capacity=8192)
        entries = int(sink.ctrl[L.C["trace_mask"]]) + 1
        tracer.interval = 3600.0  # it looks only when closed
        tracer.start()
        n = 3 * entries
        sink.send_many([Job(sender=0, n=i, work=0) for i in range(n)], timeout=None)
        got = 0
        while got < n:
            got += len(sink.receive_many(n - got, timeout=30))
        tracer.close()
    tids, events, other = _trace(path)
    spans = _spans(events, tids[sink.name])
    assert [s["args"]["seq"] for s in spans] == list(range(n - entries, n))  # the newest ring-full
    assert other["lost"] == n - entries  # the ring's misses (the queue taps kept up: 8192 slots)


@pytest.mark.parametrize("backend", ["wgpu"])
def test_batch_loops_write_spans_at_dispatch_resolution(backend, tmp_path):
    """No device clock: each entry holds the host's clock of its dispatch and 0 µs, so even a
    handler without a reply gets its span (and its flow from the host's send)."""
    from ringkernel.runtime import backend_status

    ok, reason = backend_status(backend)
    if not ok:
        pytest.skip(reason)
    path = tmp_path / "batch.json"
    with rk.ActorSystem(backend, trace=path) as system:
        alarm = system.spawn(Alarm)
        assert int(alarm.ctrl[L.C["trace_mask"]]) > 0
        for n in range(10):
            alarm.send(Arm(tag=n, delay_us=60_000_000))
        deadline = time.monotonic() + 30
        while alarm.state["armed"] < 10 and time.monotonic() < deadline:
            time.sleep(0.001)
    tids, events, other = _trace(path)
    spans = _spans(events, tids[alarm.name])
    assert [s["args"]["seq"] for s in spans] == list(range(10))
    ends = [e for e in events if e["ph"] == "f" and e["tid"] == tids[alarm.name]]
    assert len(ends) == 10 and other["lost"] == 0

"""ActorSystem(trace=...), system.trace(path) and rk.trace(path): Perfetto trace-event JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.observability.trace import EventRing
from tests.ringkernel import observe_fixtures
from tests.ringkernel.observe_defs import Echo, Ping, Sink, Stage

observe_backend = observe_fixtures.observe_backend  # cpu, and wgpu where it runs


def _load(path) -> dict:
    with open(path) as f:
        return json.load(f)


def _threads(trace: dict) -> dict[str, int]:
    return {e["args"]["name"]: e["tid"] for e in trace["traceEvents"] if e["name"] == "thread_name"}


def _spans(trace: dict, tid: int, name: str) -> list[dict]:
    return [e for e in trace["traceEvents"] if e["ph"] == "X" and e["tid"] == tid and e["name"] == name]


def _flows(trace: dict) -> list[tuple[dict, dict]]:
    starts = {e["id"]: e for e in trace["traceEvents"] if e["ph"] == "s"}
    return [(starts[e["id"]], e) for e in trace["traceEvents"] if e["ph"] == "f"]


def test_a_span_and_a_flow_per_message(observe_backend: str, tmp_path) -> None:
    path = tmp_path / "echo.json"
    with rk.ActorSystem(backend=observe_backend) as system:
        echo = system.spawn(Echo, queue_capacity=64)
        with system.trace(path):
            for i in range(20):
                echo.ask(Ping(value=float(i)), timeout=5)
    trace = _load(path)
    tid = _threads(trace)[echo.name]
    spans = _spans(trace, tid, "handle")
    assert sorted(s["args"]["seq"] for s in spans) == list(range(20))
    assert all(0 < s["dur"] < 1e6 for s in spans)  # µs: a handler of this echo takes far less than 1 s
    assert len(_spans(trace, 0, f"send to {echo.name}")) == 20
    flows = _flows(trace)
    assert len(flows) == 20
    assert all(s["tid"] == 0 and f["tid"] == tid and f["ts"] > s["ts"] for s, f in flows)
    counters = [e for e in trace["traceEvents"] if e["ph"] == "C" and e["tid"] == tid]
    assert counters and all(0 <= e["ts"] < 60e6 for e in counters)  # on the spans' time base
    assert trace["otherData"]["lost"] == 0


def test_three_actor_pipeline_has_flows_between_actors(observe_backend: str, tmp_path) -> None:
    path = tmp_path / "pipeline.json"
    n = 30
    with rk.ActorSystem(backend=observe_backend, trace=path) as system:
        a, b, c = system.spawn(Stage), system.spawn(Stage), system.spawn(Sink)
        system.connect(a, b)
        system.connect(b, c)
        for i in range(n):
            a.send(Ping(value=float(i)), timeout=5)
        assert [c.receive(timeout=5).count for _ in range(n)] == list(range(1, n + 1))
    trace = _load(path)  # written at shutdown
    tids = _threads(trace)
    for ref in (a, b, c):
        spans = sorted(_spans(trace, tids[ref.name], "handle"), key=lambda s: s["args"]["seq"])
        assert [s["args"]["seq"] for s in spans] == list(range(n))
        # one after the other: exact spans (trace rings, cpu) on the device clock's whole µs, so
        # a burst may share a microsecond; reply stamps (wgpu) ordered by the HLC's logical part
        assert all(x["ts"] + x["dur"] <= y["ts"] + 1 for x, y in zip(spans, spans[1:]))
        assert all(x["ts"] <= y["ts"] for x, y in zip(spans, spans[1:]))
    pairs = {}
    for s, f in _flows(trace):
        assert f["ts"] >= s["ts"]
        pairs[(s["tid"], f["tid"])] = pairs.get((s["tid"], f["tid"]), 0) + 1
    assert pairs == {(0, tids[a.name]): n, (tids[a.name], tids[b.name]): n, (tids[b.name], tids[c.name]): n}


def test_trace_memory_stays_bounded_over_a_million_messages(tmp_path) -> None:
    total, batch, capacity = 1_000_000, 8192, 5000
    records = np.zeros(batch, dtype=Ping.dtype)
    with rk.ActorSystem(backend="cpu") as system:
        echo = system.spawn(Echo, queue_capacity=16384)
        tracer = system.trace(tmp_path / "big.json", capacity=capacity).start()
        received = 0
        for _ in range(total // batch + 1):
            echo.send_many(records, timeout=10)
            while echo.pending() > batch:
                received += len(echo.receive_many(max_count=16384, timeout=10))
            assert len(tracer.ring) <= capacity
        sent = (total // batch + 1) * batch
        while received < sent:
            received += len(echo.receive_many(max_count=16384, timeout=10))
        tracer.close()
    ring = tracer.ring
    assert len(ring) <= capacity and sum(len(c[4]) for c in ring.chunks) == len(ring)
    assert ring.evicted + len(ring) + tracer.lost >= 2 * sent  # every send and reply was seen or counted
    events = _load(tmp_path / "big.json")["traceEvents"]
    assert len(events) <= 2 * capacity + 8  # spans plus at most one flow pair each, plus names


def test_trace_capacity_is_checked() -> None:
    with pytest.raises(ValueError, match=">= 16 events"):
        EventRing(3)


@rk.kernel
def scale(x: rk.Array[rk.f32], n: rk.i32, factor: rk.f32):
    i = rk.global_id(0)
    if i < n:
        x[i] = x[i] * factor


def test_rk_trace_records_kernel_launches(tmp_path) -> None:
    x = np.ones(64, dtype=np.float32)
    path = tmp_path / "kernels.json"
    scale[1, 64](x, 64, 2.0)  # outside the block: not traced
    with rk.trace(path):
        for _ in range(3):
            scale[1, 64](x, 64, 2.0)
    scale[1, 64](x, 64, 2.0)
    trace = _load(path)
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert [s["name"] for s in spans] == ["scale"] * 3
    assert np.all(x == 32.0)


def test_a_bad_trace_path_is_refused_before_anything_starts(tmp_path) -> None:
    missing = tmp_path / "no-such-folder" / "run.json"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rk.ActorSystem(backend="cpu", trace=missing)
    with pytest.raises(TypeError, match="str or os.PathLike, got int"):
        rk.ActorSystem(backend="cpu", trace=3)
    with pytest.raises(PermissionError, match="not a writable file path"):
        rk.trace(tmp_path)  # a folder


def test_serve_and_trace_after_shutdown_raise(tmp_path) -> None:
    system = rk.ActorSystem(backend="cpu")
    system.shutdown()
    with pytest.raises(rk.ActorSystemStopped):
        system.serve(port=0)
    with pytest.raises(rk.ActorSystemStopped):
        system.trace(tmp_path / "late.json")

"""system.metrics(), system.health() and the /metrics, /healthz, /readyz endpoints."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import ringkernel as rk
from tests.ringkernel import observe_fixtures
from tests.ringkernel.observe_defs import Echo, Ping

observe_backend = observe_fixtures.observe_backend  # cpu, and wgpu where it runs


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _settle(ref, count: int) -> None:
    deadline = time.monotonic() + 10
    while ref.stats["processed"] < count and time.monotonic() < deadline:
        time.sleep(0.005)


def test_metrics_snapshot_counts_what_was_sent(observe_backend: str) -> None:
    with rk.ActorSystem(backend=observe_backend) as system:
        echo = system.spawn(Echo, queue_capacity=64)
        for i in range(10):
            echo.send(Ping(value=float(i)))
        for _ in range(10):
            echo.receive(timeout=5)
        for _ in range(3):
            assert echo.ask(Ping(value=1.0), timeout=5).value == 2.0
        _settle(echo, 13)
        snap = system.metrics()
    a = snap["actors"][echo.name]
    assert a["processed"] == 13 and a["sent"] == 13 and a["replies"] == 13
    assert a["round_trip_seconds"]["count"] == 3
    assert a["dropped"] == 0 and a["rejected"] == 0 and a["restarts"] == 0
    assert a["status"] in ("running", "idle")
    assert ("dispatches" in a) == (observe_backend == "wgpu")
    assert abs(a["hlc_drift_seconds"]) < 5  # its clock merged the host's a moment ago (both in µs)


def test_scrape_matches_messages_sent(observe_backend: str) -> None:
    with rk.ActorSystem(backend=observe_backend) as system:
        echo = system.spawn(Echo, queue_capacity=64)
        server = system.serve(port=0)
        assert server.port > 0
        for i in range(25):
            echo.ask(Ping(value=float(i)), timeout=5)
        _settle(echo, 25)
        code, body = _get(server.url + "/metrics")
        assert code == 200
        samples = _samples(body.decode())
        label = (("actor", echo.name),)
        assert samples[("ringkernel_messages_processed_total", label)] == 25
        assert samples[("ringkernel_messages_sent_total", label)] == 25
        assert samples[("ringkernel_messages_dropped_total", label)] == 0
        assert samples[("ringkernel_restarts_total", label)] == 0
        assert samples[("ringkernel_round_trip_seconds_count", label)] == 25
        assert samples[("ringkernel_round_trip_seconds_bucket", (("actor", echo.name), ("le", "+Inf")))] == 25
        assert 0 <= samples[("ringkernel_queue_utilization_ratio", label)] <= 1
        if observe_backend == "wgpu":
            assert samples[("ringkernel_dispatches_total", label)] >= 1
    with pytest.raises(OSError):  # the server went with the system
        urllib.request.urlopen(server.url + "/metrics", timeout=1)


def test_readyz_turns_503_when_an_actor_stops_and_200_when_it_runs_again() -> None:
    with rk.ActorSystem(backend="cpu") as system:
        echo = system.spawn(Echo)
        server = system.serve(port=0)
        code, body = _get(server.url + "/readyz")
        assert code == 200 and json.loads(body)["actors"][echo.name] in ("running", "idle")
        assert _get(server.url + "/healthz")[0] == 200
        system._pause([echo])  # its loop leaves, as a crashed or stopped loop would
        code, body = _get(server.url + "/readyz")
        assert code == 503 and json.loads(body)["actors"][echo.name] == "stopped"
        assert system.health()["ready"] is False
        system._launch(echo)  # running again (what a supervised restart does)
        assert _get(server.url + "/readyz")[0] == 200
        assert echo.ask(Ping(value=1.0), timeout=5).value == 2.0


def test_hung_actor_fails_liveness() -> None:
    with rk.ActorSystem(backend="cpu") as system:
        echo = system.spawn(Echo)
        echo.hung = True  # what the watchdog marks an actor that makes no progress
        report = system.health()
        echo.hung = False
    assert report.pop("clock")["refused"] == 0  # (the clock's health: tests/chaos/test_clock_drift.py)
    assert report == {"live": False, "ready": False, "actors": {echo.name: "hung"}}


def test_serve_rejects_a_bad_port() -> None:
    with rk.ActorSystem(backend="cpu") as system:
        for port in (-1, 65536, "9464", True):
            with pytest.raises(ValueError, match="0..65535"):
                system.serve(port=port)
        first = system.serve(port=0)
        with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{first.port}"):
            system.serve(port=first.port)


def test_unknown_path_is_404() -> None:
    with rk.ActorSystem(backend="cpu") as system:
        server = system.serve(port=0)
        assert _get(server.url + "/nope")[0] == 404


def test_ask_async_round_trips_are_measured_too() -> None:
    import asyncio

    with rk.ActorSystem(backend="cpu") as system:
        echo = system.spawn(Echo)

        async def asks() -> list:
            return await asyncio.gather(*(echo.ask_async(Ping(value=float(i)), timeout=5) for i in range(4)))

        assert [r.value for r in asyncio.run(asks())] == [1.0, 2.0, 3.0, 4.0]
        assert system.metrics()["actors"][echo.name]["round_trip_seconds"]["count"] == 4

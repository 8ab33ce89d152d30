"""``python -m ringkernel top URL``: one refresh against a served system, and its errors."""

from __future__ import annotations

import socket
import subprocess
import sys

import ringkernel as rk
from ringkernel.observability.top import metrics_url, table
from tests.ringkernel.observe_defs import Echo, Ping


def _top(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ringkernel", "top", *args], capture_output=True, text=True, timeout=60
    )


def test_top_once_shows_each_actor() -> None:
    with rk.ActorSystem(backend="cpu") as system:
        echo = system.spawn(Echo)
        server = system.serve(port=0)
        for i in range(7):
            echo.ask(Ping(value=float(i)), timeout=5)
        done = _top(server.url, "--once", "--interval", "0.1")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.split()[:4] == ["ACTOR", "STATUS", "PROCESSED", "MSG/S"]
    cells = row.split()
    assert cells[0] == echo.name and cells[1] in ("running", "idle") and cells[2] == "7"


def test_top_rates_compare_two_scrapes() -> None:
    before = {"A#1": {"ringkernel_messages_processed_total": 100.0}}
    now = {"A#1": {"ringkernel_messages_processed_total": 300.0, "status": "running"}}
    row = table(now, before, 2.0).splitlines()[1].split()
    assert row[:4] == ["A#1", "running", "300", "100"]
    assert table(now, None, 0).splitlines()[1].split()[3] == "-"


def test_top_says_when_it_cannot_reach_the_system() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = _top(f"127.0.0.1:{port}", "--once")
    assert done.returncode == 1
    assert f"cannot read http://127.0.0.1:{port}/metrics" in done.stderr


def test_top_checks_its_interval() -> None:
    done = _top("127.0.0.1:1", "--interval", "0")
    assert done.returncode == 2 and "--interval must be between 0.01 and 3600" in done.stderr


def test_metrics_url_forms() -> None:
    assert metrics_url("localhost:9464") == "http://localhost:9464/metrics"
    assert metrics_url("http://h:1/") == "http://h:1/metrics"
    assert metrics_url("http://h:1/metrics") == "http://h:1/metrics"

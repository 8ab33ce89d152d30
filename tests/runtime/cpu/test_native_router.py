"""The cpu's native router (runtime/cpu/routing.py, lowering/llvm/host_router.py): idle, nothing
polls; the wait-for graph search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from ringkernel.ringir import layout as L
from ringkernel.runtime.router import find_cycle as _find_cycle

IDLE_PROBE = textwrap.dedent("""
    import json, os, time
    import ringkernel as rk
    from tests.actors.messaging_defs import Book, Order, Tee, Ticker, Tick

    def threads():
        out = {}
        main = os.getpid()
        for tid in os.listdir("/proc/self/task"):
            if int(tid) == main:
                continue
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/self/task/{tid}/status") as f:
                    status = dict(line.split(":", 1) for line in f if ":" in line)
            except FileNotFoundError:
                continue
            ticks = int(fields[11]) + int(fields[12])  # utime + stime
            switches = int(status["voluntary_ctxt_switches"]) + int(status["nonvoluntary_ctxt_switches"])
            out[tid] = (ticks, switches)
        return out

    with rk.ActorSystem(backend="cpu", workers=2) as system:
        tees = [system.spawn(Tee) for _ in range(20)]
        book = system.spawn(Book, queue_capacity=64)
        for tee in tees:
            system.connect(tee, book, port="out")
        for i, tee in enumerate(tees):
            tee.send(Order(symbol=0, seq=i))
        got = [book.receive(timeout=10) for _ in tees]
        ticker = system.spawn(Ticker)
        time.sleep(0.3)  # everything goes to sleep
        before = threads()
        time.sleep(0.5)
        after = threads()
        tees[0].send(Order(symbol=0, seq=99))  # and wakes up again
        late = book.receive(timeout=10).seq
    hz = os.sysconf("SC_CLK_TCK")
    common = set(before) & set(after)
    print(json.dumps({
        "cpu_s": sum(after[t][0] - before[t][0] for t in common) / hz,
        "switches": sum(after[t][1] - before[t][1] for t in common),
        "threads": len(common),
        "late": late,
        "got": len(got),
    }))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task (Linux)")
def test_an_idle_system_has_no_thread_that_polls():
    """20 talking actors and a router, idle for 0.5 s: the router and scheduler threads sleep
    (the Python router polled every 2 ms: 250 wake-ups in 0.5 s)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", IDLE_PROBE], capture_output=True, text=True, timeout=300,
                          cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["got"] == 20 and probe["late"] == 99
    assert probe["threads"] >= 3  # two scheduler workers and the timer thread at least
    # the workers' longest sleep is 0.1 s: about 10 wake-ups in 0.5 s; generous bounds
    assert probe["switches"] < 60, probe
    assert probe["cpu_s"] <= 0.05, probe


def test_the_wait_for_graph_search_finds_a_cycle_through_any_out_edge():
    assert _find_cycle({}) is None
    assert _find_cycle({"a": ["b"], "b": ["c"]}) is None
    assert _find_cycle({"b": ["a"], "a": ["b"]}) == ("a", "b")
    # a node waiting for two others (a full routed and a full reply link): the cycle is behind the second
    assert _find_cycle({"a": ["x", "b"], "x": [], "b": ["c"], "c": ["a"]}) == ("a", "b", "c")
    assert _find_cycle({"a": ["b"], "b": ["c"], "c": ["b"]}) == ("b", "c")  # a waits behind it
    assert _find_cycle({"a": ["a"]}) == ("a",)


# --- the native routing functions on hand-made queues (the helpers of the Python router's tests) ---

@pytest.fixture
def native():
    from ringkernel.runtime.cpu.routing import NativeRouter
    from ringkernel.runtime.cpu.scheduler import Scheduler

    scheduler = Scheduler(1, 1_000_000)  # no group: no worker thread, the tests route by hand
    router = NativeRouter(scheduler)
    yield router
    router.close()
    scheduler.close()


def route(router) -> int:
    with router.lock.mutex:  # not concurrently with the timer thread's route-all (it would be fine too)
        return router.fns.rk_route_range(router.ctl.ctypes.data, 0, router._endpoints)


def test_native_fan_out_stops_at_a_full_target_and_never_delivers_a_copy_twice(native):
    from tests.runtime.test_router import SEND_PORT, member, payloads, send, take

    tee = member("Tee", first_id=1)
    small, big = member("Small", routed=2, first_id=2), member("Big", routed=16, first_id=3)
    for m in (tee, small, big):
        native.add(m)
    native.connect(tee, 0, big)
    native.connect(tee, 0, small)  # fan-out in connect order: big, then small
    for n in range(4):
        send(tee, 0, SEND_PORT, 0, n)
    route(native)
    assert payloads(take(small)) == [0, 1]  # full after two: message 2 waits, big already has it
    assert native.blocked_endpoints() == ["Tee"]
    route(native)
    rows = take(big)
    assert payloads(rows) == [0, 1, 2, 3]  # each once although message 2 was routed twice
    assert payloads(take(small)) == [2, 3]
    assert all(int(r[L.ENV_TARGET]) == 3 for r in rows)  # the receiver's actor id
    assert native.stats()["routed"] == 8 and native.blocked_endpoints() == []


def test_native_discards_are_counted_and_send_to_stays_in_the_group(native):
    from tests.runtime.test_router import SEND_PORT, SEND_TO, member, payloads, send, take

    group = member("Cell", count=3, first_id=10)
    native.add(group)
    send(group, 0, SEND_PORT, 5, 1)  # nobody connected
    send(group, 0, SEND_TO, 3, 2)  # outside the group
    send(group, 0, 7, 0, 3)  # no such kind
    send(group, 0, SEND_TO, 2, 4)
    route(native)
    assert payloads(take(group, 2)) == [4]
    stats = native.stats()
    assert (stats["unrouted"], stats["invalid"], stats["routed"]) == (1, 2, 1)
    assert int(group.sq.header[0, L.Q_HEAD]) == 4  # every slot freed


def test_native_timers_come_back_after_their_delay_stamped_at_delivery(native):
    from ringkernel.runtime.hlc import physical_now
    from tests.runtime.test_router import SEND_TIMER, member, payloads, send, take

    a = member("A")
    native.add(a)
    now = physical_now()
    send(a, 0, SEND_TIMER, 0, 9, hlc=now, sequence=30_000)  # 30 ms
    route(native)
    assert native.timers_pending == 1
    deadline = time.monotonic() + 5
    while not (rows := take(a)) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert payloads(rows) == [9]
    stamp = int(rows[0][L.ENV_HLC_LO]) | int(rows[0][L.ENV_HLC_HI]) << 32
    assert stamp >> L.HLC_LOGICAL_BITS >= (now >> L.HLC_LOGICAL_BITS) + 30_000
    assert native.stats()["timers_fired"] == 1 and native.timers_pending == 0


def test_native_reports_a_cycle_of_full_queues(native):
    from tests.runtime.test_router import SEND_PORT, member, send

    a, b = member("A", sends=4, routed=2, first_id=1), member("B", sends=4, routed=2, first_id=2)
    for m in (a, b):
        native.add(m)
    native.connect(a, 0, b)
    native.connect(b, 0, a)
    for n in range(4):
        send(a, 0, SEND_PORT, 0, n)
        send(b, 0, SEND_PORT, 0, n)
    route(native)  # two fit in each routed
    assert native.cycle is None
    send(a, 0, SEND_PORT, 0, 4)
    send(b, 0, SEND_PORT, 0, 4)
    route(native)  # three stay in each sends: over half of 4, so neither loop would take a message
    deadline = time.monotonic() + 5
    while native.cycle is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert native.cycle == ("A", "B")

"""The cpu's native router (runtime/cpu/routing.py, lowering/llvm/host_router.py): idle, nothing
polls; the wait-for graph search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ringkernel.runtime.cpu.routing import _find_cycle

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

"""Park and wake (issue 17): an idle cpu actor parks on its doorbell and costs no CPU,
and the host's wake-ups are never lost (the stress test is in test_actor_batches.py)."""

from __future__ import annotations

import os
import re
import sys
import time

import pytest

import ringkernel as rk
from ringkernel.ringir import Backoff, parse, verify, walk
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.layout import C

sys.path.insert(0, os.path.dirname(__file__))
from actor_defs import Doubler, Num  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the futex park is Linux-only")


def test_an_idle_actor_costs_no_measurable_cpu():
    with rk.ActorSystem(backend="cpu") as system:
        refs = [system.spawn(Doubler, queue_capacity=16) for _ in range(3)]
        for ref in refs:
            assert ref.ask(Num(value=1.0), timeout=5.0).value == 2.0
        time.sleep(0.1)
        scheduler = system.runtime.scheduler()  # single actors are served by its workers (issue 18)
        assert scheduler.words[C["parked"]] == scheduler.workers  # every worker sleeps
        start = time.process_time()
        time.sleep(1.0)
        used = time.process_time() - start
        assert used < 0.03, f"three idle actors used {used * 100:.1f}% of a core"
        for ref in refs:  # and a parked actor still answers at once
            t = time.perf_counter()
            assert ref.ask(Num(value=3.0), timeout=5.0).value == 6.0
            assert time.perf_counter() - t < 0.05


def test_a_parked_actor_leaves_promptly_on_shutdown():
    system = rk.ActorSystem(backend="cpu")
    system.spawn(Doubler, queue_capacity=16)
    time.sleep(0.05)
    start = time.monotonic()
    assert system.shutdown() == []
    assert time.monotonic() - start < 0.05  # woken by the stop, not after its 0.1 s park


def test_a_downstream_actor_parks_too_since_its_upstream_rings_its_doorbell():
    with rk.ActorSystem(backend="cpu", idle_ns=20_000) as system:
        a, b = system.spawn(Doubler), system.spawn(Doubler)
        system.connect(a, b)
        assert int(b.ctrl[C["idle_ns"]]) == rk.actors.PARK_NS == int(a.ctrl[C["idle_ns"]])
        a.send(Num(value=1.0))
        assert b.receive(timeout=5.0).value == 4.0


def test_backoff_with_a_doorbell_round_trips_and_is_verified():
    text = Doubler.compile("rir")
    module = parse(text)
    backoffs = [s for fn in module.functions for s in walk(fn.body) if isinstance(s, Backoff)]
    parks = [s for s in backoffs if s.doorbell is not None]  # the others are the spin's yields
    assert len(parks) == 1 and len(backoffs) == 2
    park = re.search(r"backoff (%\w+)\[(%\w+)\], (%\w+), (%\w+)", text)
    assert park is not None
    flag = re.findall(r"(%\w+): bool =", text[: park.start()])[-1]  # the "nothing to do" flag
    bad = text.replace(park[0], f"backoff {park[1]}[{park[2]}], {flag}, {park[4]}")
    with pytest.raises(CompileError, match="expected doorbell value is a u32"):
        verify(parse(bad))

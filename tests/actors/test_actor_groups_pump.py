"""The re-dispatch pump driving a group's turn kernel on wgpu, with hand-built memory.

One dispatch of N workgroups per round (a 2-D grid past 65535), whole arrays
moved once per round: these tests check what the facade builds on, without it.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

from ringkernel.compiler import compile_module
from ringkernel.frontends.actors import build_actor_module
from ringkernel.ringir import layout as L
from ringkernel.ringir.passes.actor_lowering import lower_actor
from ringkernel.runtime import backend_status
from ringkernel.runtime.actor_host import ActorMemory
from ringkernel.runtime.actor_pump import MAX_GRID_X, check_group_memory, group_grid
from ringkernel.runtime.backend import KernelBuild

sys.path.insert(0, os.path.dirname(__file__))
from group_defs import Accumulator, Add, Histogram, Sample, Total  # noqa: E402
from group_harness import GroupMemory  # noqa: E402


def test_the_grid_splits_past_65535_workgroups():
    assert group_grid(1) == (1, 1)
    assert group_grid(MAX_GRID_X) == (MAX_GRID_X, 1)
    assert group_grid(MAX_GRID_X + 1) == (MAX_GRID_X, 2)
    x, y = group_grid(200_000)
    assert x <= MAX_GRID_X and x * y >= 200_000 and x * (y - 1) < 200_000


def test_group_memory_that_does_not_match_the_count_is_a_clear_error():
    memory = GroupMemory(4, 2, 4, 8, quantum=2)
    arrays = ActorMemory(*memory.arrays, out_to_host=True)
    check_group_memory(arrays, 4)
    with pytest.raises(ValueError, match="group of 5 instances"):
        check_group_memory(arrays, 5)


@pytest.fixture
def runtime():
    available, reason = backend_status("wgpu")
    if not available:
        pytest.skip(f"wgpu unavailable: {reason}")
    from ringkernel.runtime.wgpu.actors import WgpuActorRuntime

    rt = WgpuActorRuntime(idle_ns=50_000)
    yield rt
    assert rt.close(10.0)


def start_group(runtime, actor, n, capacity, slot_words, quantum, lanes=1):
    name = actor.info.name
    module = lower_actor(build_actor_module(actor.info), name, "batch", group=True, threads=lanes)
    options = runtime.compile_options(module, name, lanes)
    text = compile_module(module, runtime.target, **options)
    build = KernelBuild(module, name, runtime.target, options, text)
    memory = GroupMemory(n, actor.info.state.words, capacity, slot_words, quantum, alloc=runtime.alloc)
    host = runtime.group_host(build, lanes, n)
    host.start(ActorMemory(*memory.arrays, out_to_host=True))
    return host, memory


def f32_bits(x: float) -> int:
    return int(np.array([x], dtype=np.float32).view(np.uint32)[0])


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def drain_replies(memory, got, n):
    for i in range(n):
        got[i] += memory.replies(i)
    return sum(len(g) for g in got)


@pytest.mark.parametrize("n", [3, MAX_GRID_X + 5], ids=["small", "2d-grid"])
def test_every_instance_handles_its_messages_in_order(runtime, n):
    per = 3
    host, memory = start_group(runtime, Accumulator, n, 4, 8, quantum=2)
    add = Add.__rk_message__.type_id
    for k in range(per):
        for i in range(n):
            assert memory.send(i, add, [f32_bits(float(k + 1))], sequence=k + 1)
        host.wake()
    got = [[] for _ in range(n)]
    wait_for(lambda: drain_replies(memory, got, n) == n * per)
    totals = Total.__rk_message__
    count_word = L.ENVELOPE_WORDS + totals.layout.field("count").word
    for i in (0, 1, n // 2, n - 1):
        assert [int(r[L.ENV_SEQUENCE]) for r in got[i]] == list(range(1, per + 1))
        assert [int(r[count_word]) for r in got[i]] == list(range(1, per + 1))
        assert all(int(r[L.ENV_SOURCE]) == i + 1 for r in got[i])
    sequences = np.array([[int(r[L.ENV_SEQUENCE]) for r in g] for g in got])
    assert (sequences == np.arange(1, per + 1)).all()  # every instance, none lost or doubled
    memory.ctrl[L.C["stop"]] = 1
    host.wake()
    assert host.join(10.0)


def test_a_cooperative_handler_matches_numpy_on_wgpu(runtime):
    n, lanes = 6, Histogram.info.threads
    host, memory = start_group(runtime, Histogram, n, 4, 8, quantum=4, lanes=lanes)
    seeds = np.random.default_rng(3).integers(0, 1 << 20, size=n)
    for i in range(n):
        memory.send(i, Sample.__rk_message__.type_id, [int(seeds[i])], sequence=1)
    host.wake()
    got = [[] for _ in range(n)]
    wait_for(lambda: drain_replies(memory, got, n) == n)
    for i in range(n):
        values = (np.uint32(seeds[i]) * np.arange(lanes, dtype=np.uint32) + np.uint32(7)) % np.uint32(256)
        counts = np.bincount(values, minlength=256)
        (reply,) = got[i]
        peak = int(reply[L.ENVELOPE_WORDS]), int(reply[L.ENVELOPE_WORDS + 1])
        assert peak == (counts.argmax(), counts.max())
    memory.ctrl[L.C["stop"]] = 1
    host.wake()
    assert host.join(10.0)


def test_runs_join_short_gaps_of_idle_instances():
    from ringkernel.runtime.actor_pump import runs_of

    mask = np.zeros(100, dtype=bool)
    mask[[0, 1, 2, 10, 50, 99]] = True
    assert runs_of(mask, gap=8) == [(0, 11), (50, 51), (99, 100)]
    assert runs_of(mask, gap=0) == [(0, 3), (10, 11), (50, 51), (99, 100)]
    assert runs_of(np.zeros(5, dtype=bool)) == []


def test_an_idle_group_round_moves_no_queue(runtime):
    host, memory = start_group(runtime, Accumulator, 50, 4, 8, quantum=2)
    wait_for(lambda: runtime.rounds >= 1)
    moved = []
    real_run = runtime.device.run

    def run(dispatches, reads):
        moved.append(sum(n for _, _, n in reads))
        return real_run(dispatches, reads)

    runtime.device.run = run
    runtime.keepalive = 0.0  # a keepalive round at once
    host.wake()
    wait_for(lambda: moved)
    assert moved[0] == memory.ctrl.size + memory.state.size  # control blocks and state only
    memory.send(7, Add.__rk_message__.type_id, [f32_bits(1.0)], sequence=1)
    host.wake()
    wait_for(lambda: memory.word(7, "processed") == 1)
    assert memory.replies(7) and all(memory.word(i, "processed") == 0 for i in range(50) if i != 7)
    memory.ctrl[L.C["stop"]] = 1
    host.wake()
    assert host.join(10.0)

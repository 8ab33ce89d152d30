"""The group turn kernel on cpu, driven by hand: numpy memory, JIT launches over block ranges.

Checks what the scheduler relies on (one turn handles at most ``quantum``
messages of each instance, in order, into that instance's state, counters and
output queue, and sets block 0's ``progress``; a launch over a block range
touches only those instances), cooperative handlers, per-instance budgets,
and cuda's persistent group kernel run as G resident blocks on G threads.
"""

from __future__ import annotations

import ctypes
import os
import sys

import numpy as np
import pytest

from ringkernel.compiler import compile_module
from ringkernel.frontends.actors import build_actor_module
from ringkernel.ringir import layout as L
from ringkernel.ringir.passes.actor_lowering import lower_actor
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cpu.actors import host_options
from ringkernel.runtime.cpu.jit import jit_kernel

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "actors"))
from group_defs import Accumulator, Add, Histogram, Sample, Total  # noqa: E402
from group_harness import GroupMemory  # noqa: E402


def turn_kernel(actor, threads: int = 1):
    name = actor.info.name
    module = lower_actor(build_actor_module(actor.info), name, "turn", group=True, threads=threads)
    options = host_options(name)
    return jit_kernel(KernelBuild(module, name, "host", options, compile_module(module, "host", **options)))


def launch(kernel, memory: GroupMemory, first: int, end: int, lanes: int = 1) -> None:
    arrays = memory.arrays
    argv = (ctypes.c_void_p * len(arrays))(*(a.ctypes.data for a in arrays))
    dims = (ctypes.c_int32 * 6)(memory.n, 1, 1, lanes, 1, 1)
    assert kernel.launch(argv, dims, first, end) == 0


def f32_bits(x: float) -> int:
    return int(np.array([x], dtype=np.float32).view(np.uint32)[0])


def test_a_turn_handles_up_to_quantum_messages_per_instance_in_order():
    n, quantum, sent = 37, 3, 7
    memory = GroupMemory(n, Accumulator.info.state.words, 16, 8, quantum)
    add = Add.__rk_message__.type_id
    for i in range(n):
        for k in range(sent):
            assert memory.send(i, add, [f32_bits(float(i * 100 + k))], sequence=k + 1)
    kernel = turn_kernel(Accumulator)
    launch(kernel, memory, 0, n)
    assert memory.word(0, "progress") != 0
    for i in range(n):
        assert memory.word(i, "processed") == quantum
        assert memory.word(i, "heartbeat") == 1
    memory.ctrl[L.C["progress"]] = 0
    launch(kernel, memory, 0, n)
    launch(kernel, memory, 0, n)
    totals = Total.__rk_message__
    for i in range(n):
        replies = memory.replies(i)
        assert [int(r[L.ENV_SEQUENCE]) for r in replies] == list(range(1, sent + 1))  # order kept
        assert all(int(r[L.ENV_SOURCE]) == i + 1 for r in replies)  # the instance's actor_id
        assert all(int(r[L.ENV_TYPE_ID]) == totals.type_id for r in replies)
        counts = [int(r[L.ENVELOPE_WORDS + totals.layout.field("count").word]) for r in replies]
        assert counts == list(range(1, sent + 1))
        state = memory.state[i * memory.state_stride : (i + 1) * memory.state_stride]
        total = state[Accumulator.info.state.field("total").word : None].view(np.float32)[0]
        assert total == pytest.approx(sum(float(i * 100 + k) for k in range(sent)))
        assert memory.word(i, "processed") == sent


def test_a_launch_over_a_block_range_touches_only_those_instances():
    n = 10
    memory = GroupMemory(n, Accumulator.info.state.words, 4, 8, quantum=4)
    add = Add.__rk_message__.type_id
    for i in range(n):
        memory.send(i, add, [f32_bits(1.0)], sequence=1)
    launch(turn_kernel(Accumulator), memory, 3, 6)
    assert [memory.word(i, "processed") for i in range(n)] == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]


def test_an_idle_turn_leaves_progress_clear_and_a_stop_handles_nothing():
    memory = GroupMemory(4, Accumulator.info.state.words, 4, 8, quantum=4)
    kernel = turn_kernel(Accumulator)
    launch(kernel, memory, 0, 4)
    assert memory.word(0, "progress") == 0
    assert [memory.word(i, "heartbeat") for i in range(4)] == [1, 1, 1, 1]
    memory.send(2, Add.__rk_message__.type_id, [f32_bits(1.0)], sequence=1)
    memory.ctrl[L.C["stop"]] = 1  # block 0's stop holds for the whole group
    launch(kernel, memory, 0, 4)
    assert memory.word(2, "processed") == 0 and memory.word(0, "progress") == 0


def test_blocks_past_the_group_return():
    memory = GroupMemory(3, Accumulator.info.state.words, 4, 8, quantum=4)
    memory.ctrl[L.C["instances"]] = 2  # the kernel serves two; block 2 must not touch anything
    for i in range(3):
        memory.send(i, Add.__rk_message__.type_id, [f32_bits(1.0)], sequence=1)
    launch(turn_kernel(Accumulator), memory, 0, 3)
    assert [memory.word(i, "processed") for i in range(3)] == [1, 1, 0]


def test_a_cooperative_handler_runs_on_every_lane_and_replies_once():
    n, lanes = 5, Histogram.info.threads
    memory = GroupMemory(n, Histogram.info.state.words, 8, 16, quantum=8)
    sample = Sample.__rk_message__
    rng = np.random.default_rng(5)
    seeds = rng.integers(0, 1 << 20, size=(n, 3))
    for i in range(n):
        for k in range(3):
            memory.send(i, sample.type_id, [int(seeds[i, k])], sequence=k + 1)
    launch(turn_kernel(Histogram, lanes), memory, 0, n, lanes)
    for i in range(n):
        replies = memory.replies(i)
        assert [int(r[L.ENV_SEQUENCE]) for r in replies] == [1, 2, 3]  # once each, in order
        for k, reply in enumerate(replies):
            lane = np.arange(lanes, dtype=np.uint32)
            values = (np.uint32(seeds[i, k]) * lane + np.uint32(7)) % np.uint32(256)
            assert int(reply[L.ENVELOPE_WORDS]) == int(np.bincount(values, minlength=256).argmax())
            assert int(reply[L.ENVELOPE_WORDS + 1]) == int(np.bincount(values, minlength=256).max())
        assert memory.word(i, "processed") == 3
        state = memory.state[i * memory.state_stride]
        assert state == 3  # lane 0 counted each message once


def test_a_cooperative_handler_may_return_from_inside_its_loops():
    from group_defs import Found, Seek, Seeker

    memory = GroupMemory(2, Seeker.info.state.words, 8, 8, quantum=8)
    targets = [[4, 0, 22], [8, 100]]  # 4 = 3*1 + 1, 0 = 0*3, 22 = 3*7 + 1; 8 and 100 are not there
    for i, ts in enumerate(targets):
        for k, target in enumerate(ts):
            memory.send(i, Seek.__rk_message__.type_id, [target], sequence=k + 1)
    launch(turn_kernel(Seeker, Seeker.info.threads), memory, 0, 2, Seeker.info.threads)
    found = Found.__rk_message__.type_id
    answers = [[int(r[L.ENVELOPE_WORDS]) for r in memory.replies(i) if int(r[L.ENV_TYPE_ID]) == found]
               for i in range(2)]
    assert answers == [[11, 0, 71], [999, 999]]
    assert [int(memory.state[i * memory.state_stride]) for i in range(2)] == [3, 0]


def test_budgets_abort_and_roll_back_per_instance():
    from supervision_defs import Bounded, Spin

    memory = GroupMemory(3, Bounded.info.state.words, 4, 8, quantum=4, shadow=True)
    blocks = memory.ctrl.reshape(3, L.CONTROL_WORDS)
    blocks[:, L.C["budget"]] = [0, 50, 0]  # only instance 1 is held to 50 iterations
    for i in range(3):
        memory.send(i, Spin.__rk_message__.type_id, [100], sequence=1)
    launch(turn_kernel(Bounded), memory, 0, 3)
    assert [memory.word(i, "aborted") for i in range(3)] == [0, 1, 0]
    assert memory.word(1, "last_abort") == L.ABORT_BUDGET
    total = Bounded.info.state.field("total").word
    totals = [int(memory.state[i * memory.state_stride + total]) for i in range(3)]
    assert totals == [100, 0, 100]  # instance 1's state rolled back, the others kept theirs
    records = memory.replies(1)
    assert [int(r[L.ENV_TYPE_ID]) for r in records] == [L.ABORT_TYPE_ID]


def test_a_cooperative_helper_with_a_barrier_returns_its_value():
    from group_defs import BlockSum, Found, Seek

    memory = GroupMemory(3, BlockSum.info.state.words, 4, 8, quantum=4)
    for i in range(3):
        memory.send(i, Seek.__rk_message__.type_id, [10 * i], sequence=1)
    launch(turn_kernel(BlockSum, BlockSum.info.threads), memory, 0, 3, BlockSum.info.threads)
    for i in range(3):
        expected = 16 * 10 * i + sum(range(16))
        (reply,) = memory.replies(i)
        assert int(reply[L.ENV_TYPE_ID]) == Found.__rk_message__.type_id
        assert int(reply[L.ENVELOPE_WORDS]) == expected
        assert int(memory.state[i * memory.state_stride]) == expected


def run_persistent(actor, memory: GroupMemory, blocks: int):
    """cuda's mode, run on cpu: G = ``blocks`` resident blocks, one thread each (its lanes: more)."""
    import threading

    name, lanes = actor.info.name, actor.info.threads
    module = lower_actor(build_actor_module(actor.info), name, "persistent", group=True, threads=lanes)
    options = host_options(name)
    kernel = jit_kernel(KernelBuild(module, name, "host", options, compile_module(module, "host", **options)))
    memory.ctrl[L.C["idle_ns"]] = 100_000
    arrays = memory.arrays
    argv = (ctypes.c_void_p * len(arrays))(*(a.ctypes.data for a in arrays))
    dims = (ctypes.c_int32 * 6)(blocks, 1, 1, lanes, 1, 1)
    threads = [threading.Thread(target=kernel.launch, args=(argv, dims, b, b + 1), daemon=True)
               for b in range(blocks)]
    for t in threads:
        t.start()
    return threads


def collect(memory: GroupMemory, wanted: int) -> list[list[np.ndarray]]:
    import time

    deadline = time.monotonic() + 30
    got: list[list[np.ndarray]] = [[] for _ in range(memory.n)]
    while sum(len(g) for g in got) < wanted:
        assert time.monotonic() < deadline
        for i in range(memory.n):
            got[i] += memory.replies(i)
    return got


def leave(memory: GroupMemory, threads) -> None:
    memory.ctrl[L.C["drain"]] = 1  # every input is empty: the blocks leave
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    assert all(memory.word(i, "state") == L.ACTOR_EXITED for i in range(memory.n))


def test_the_persistent_group_kernel_serves_every_instance_from_g_resident_blocks():
    n = 5
    memory = GroupMemory(n, Accumulator.info.state.words, 8, 8, quantum=2)
    threads = run_persistent(Accumulator, memory, blocks=2)  # block b takes instances b, b+2, ...
    add = Add.__rk_message__.type_id
    for k in range(5):
        for i in range(n):
            memory.send(i, add, [f32_bits(1.0)], sequence=k + 1)
    got = collect(memory, 5 * n)
    assert all([int(r[L.ENV_SEQUENCE]) for r in g] == [1, 2, 3, 4, 5] for g in got)
    assert all(memory.word(i, "state") == L.ACTOR_RUNNING for i in range(n))
    leave(memory, threads)


def test_the_persistent_cooperative_group_kernel():
    from group_defs import BlockSum, Seek

    n = 3
    memory = GroupMemory(n, BlockSum.info.state.words, 4, 8, quantum=4)
    threads = run_persistent(BlockSum, memory, blocks=2)
    for i in range(n):
        memory.send(i, Seek.__rk_message__.type_id, [10 * i], sequence=1)
    got = collect(memory, n)
    assert [int(g[0][L.ENVELOPE_WORDS]) for g in got] == [160 * i + sum(range(16)) for i in range(n)]
    leave(memory, threads)

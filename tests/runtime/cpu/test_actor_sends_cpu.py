"""Handler sends on cpu, driven by hand: numpy memory, the JIT-compiled group turn kernel.

Checks the ``sends`` protocol of ``docs/layout.md`` ("Sends"): the envelopes
(type id, source, ``target`` = kind << 24 | index, sequence, HLC ticks), one
publish after the handler, sends of an aborted handler discarded, overflow
counted in ``rejected``, out-of-range ``send_to`` counted in ``bad_target``,
the ``sent`` flag, the half-full backpressure, and ``routed`` messages
handled like any other input.
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
from group_harness import GroupMemory  # noqa: E402
from msg_defs import (  # noqa: E402
    Cell,
    Fan,
    LongTick,
    LongTicker,
    Note,
    Piece,
    Ring,
    Spinner,
    Split,
    Splitter,
    Tick,
    Ticker,
)


def type_id(msg) -> int:
    return msg.__rk_message__.type_id


def turn_kernel(actor):
    name = actor.info.name
    module = lower_actor(build_actor_module(actor.info), name, "turn", group=True, threads=actor.info.threads)
    options = host_options(name)
    return jit_kernel(KernelBuild(module, name, "host", options, compile_module(module, "host", **options)))


def memory_for(actor, n=1, capacity=16, sends=16, routed=2, quantum=8, budget=0) -> GroupMemory:
    shadow = actor.abortable("turn", group=True)
    memory = GroupMemory(n, actor.info.state.words, capacity, 8, quantum, shadow=shadow,
                         sends=(sends, actor.info.send_slot_words), routed=routed)
    blocks = memory.ctrl.reshape(n, L.CONTROL_WORDS)
    blocks[:, L.C["actor_id"]] = np.arange(101, 101 + n)
    blocks[:, L.C["budget"]] = budget
    return memory


def run(kernel, memory: GroupMemory, lanes: int = 1) -> None:
    arrays = memory.arrays
    argv = (ctypes.c_void_p * len(arrays))(*(a.ctypes.data for a in arrays))
    dims = (ctypes.c_int32 * 6)(memory.n, 1, 1, lanes, 1, 1)
    assert kernel.launch(argv, dims, 0, memory.n) == 0


def sent(memory: GroupMemory, i: int) -> list[np.ndarray]:
    """Instance i's published sends (the router's view), oldest first, taken off the queue."""
    q = memory.queue(memory.sends, i)
    found = []
    slot_words = int(q[L.Q_SLOT_WORDS])
    while int(q[L.Q_HEAD]) != int(q[L.Q_TAIL]):
        head = int(q[L.Q_HEAD])
        at = L.QUEUE_HEADER_WORDS + (head & int(q[L.Q_MASK])) * slot_words
        found.append(q[at : at + slot_words].copy())
        q[L.Q_HEAD] = head + 1
    return found


def header(memory: GroupMemory, i: int, name: str) -> int:
    return int(memory.queue(memory.sends, i)[L.Q[name]])


def clock(memory: GroupMemory, i: int) -> int:
    return memory.word(i, "hlc_lo") | memory.word(i, "hlc_hi") << 32


def stamp(row: np.ndarray) -> int:
    return int(row[L.ENV_HLC_LO]) | int(row[L.ENV_HLC_HI]) << 32


def test_port_sends_carry_envelopes_and_tick_the_clock():
    memory = memory_for(Splitter)
    assert memory.send(0, type_id(Split), [3, 7], sequence=1)
    assert memory.send(0, type_id(Split), [0, 8], sequence=2)
    assert memory.send(0, type_id(Split), [1, 9], sequence=3)
    run(turn_kernel(Splitter), memory)
    rows = sent(memory, 0)
    kinds = [L.split_target(int(r[L.ENV_TARGET])) for r in rows]
    # 3 pieces and a note (port 1) for the first input, nothing for the second, 1 piece for the third
    assert kinds == [(L.SEND_PORT, 0)] * 3 + [(L.SEND_PORT, 1)] + [(L.SEND_PORT, 0)]
    assert [int(r[L.ENV_TYPE_ID]) for r in rows] == [type_id(Piece)] * 3 + [type_id(Note)] + [type_id(Piece)]
    assert all(int(r[L.ENV_SOURCE]) == 101 for r in rows)
    assert [int(r[L.ENV_SEQUENCE]) for r in rows] == [0, 1, 2, 3, 4]  # position in the sends stream
    pieces = [r for r in rows if int(r[L.ENV_TYPE_ID]) == type_id(Piece)]
    assert [(int(r[6]), int(r[7])) for r in pieces] == [(7, 0), (7, 1), (7, 2), (9, 0)]
    assert np.float32(rows[3][6:7].view(np.float32)[0]) == 3.0
    stamps = [stamp(r) for r in rows]
    assert stamps[:4] == sorted(stamps[:4]) and len(set(stamps)) == 5  # one tick per send
    assert clock(memory, 0) >= stamps[-1]  # the clock is past every send it made
    assert header(memory, 0, "enqueued") == 5 and header(memory, 0, "rejected") == 0
    assert header(memory, 0, "sent") == 1
    assert memory.word(0, "processed") == 3


def test_send_to_reaches_the_group_and_counts_bad_targets():
    n = 4
    memory = memory_for(Ring, n=n, routed=16, quantum=1)  # one message per turn: the routed ones wait
    for i in range(n):
        assert memory.send(i, type_id(Cell), [10 * i], sequence=1)
    run(turn_kernel(Ring), memory)
    state = memory.state.reshape(n, -1)
    assert state[:, 0].tolist() == list(range(n)) and state[:, 1].tolist() == [n] * n  # index, group_size
    for i in range(n):
        assert sent(memory, i) == []  # every send_to went device-side: nothing for the router
        assert header(memory, i, "bad_target") == (1 if i in (0, n - 1) else 0)
        assert header(memory, i, "direct") == (1 if i in (0, n - 1) else 2)
        rows = routed(memory, i)  # what instance i's neighbours sent it, as the router would write it
        assert sorted(int(r[L.ENV_SOURCE]) for r in rows) == [101 + j for j in (i - 1, i + 1) if 0 <= j < n]
        assert all(int(r[L.ENV_TARGET]) == 101 + i for r in rows)
        values = {int(r[L.ENV_SOURCE]) - 101: int(r[L.ENVELOPE_WORDS]) for r in rows}
        assert values == {j: 10 * j + (2 if j < i else 1) for j in values}
    assert header(memory, 0, "sent") == 0  # nothing was published for the router


def routed(memory: GroupMemory, i: int) -> list[np.ndarray]:
    """Instance i's queued ``routed`` messages (published: non-zero type id), oldest first."""
    q = memory.queue(memory.routed, i)
    slot_words = int(q[L.Q_SLOT_WORDS])
    rows = []
    for position in range(int(q[L.Q_HEAD]), int(q[L.Q_TAIL])):
        at = L.QUEUE_HEADER_WORDS + (position & int(q[L.Q_MASK])) * slot_words
        assert q[at + L.ENV_TYPE_ID] != 0
        rows.append(q[at : at + slot_words].copy())
    return rows


def test_timers_carry_the_clamped_delay_in_sequence():
    memory = memory_for(Ticker, routed=16)
    assert memory.send(0, type_id(Tick), [1500], sequence=1)
    run(turn_kernel(Ticker), memory)
    rows = sent(memory, 0)
    assert [L.split_target(int(r[L.ENV_TARGET])) for r in rows] == [(L.SEND_TIMER, 0)] * 2
    assert [int(r[L.ENV_SEQUENCE]) for r in rows] == [1500, 0]  # -5 is clamped to 0


def test_a_64_bit_delay_is_clamped_to_u32():
    memory = memory_for(LongTicker, routed=16)
    for k, delay in enumerate((2**40, -(2**40), 12)):
        assert memory.send(0, type_id(LongTick), [delay & 0xFFFFFFFF, (delay >> 32) & 0xFFFFFFFF], sequence=k)
    run(turn_kernel(LongTicker), memory)
    assert [int(r[L.ENV_SEQUENCE]) for r in sent(memory, 0)] == [L.MAX_TIMER_DELAY_US, 0, 12]


def test_routed_messages_are_handled_like_any_input():
    memory = memory_for(Ticker, routed=4)
    q = memory.queue(memory.routed, 0)
    at = L.QUEUE_HEADER_WORDS
    q[at + L.ENV_TYPE_ID], q[at + L.ENV_SEQUENCE], q[at + L.ENV_HLC_HI] = type_id(Tick), 5, 7
    q[at + L.ENVELOPE_WORDS] = 40
    q[L.Q_TAIL] = 1
    run(turn_kernel(Ticker), memory)
    assert int(q[L.Q_HEAD]) == 1 and memory.word(0, "processed") == 1
    assert memory.state[0] == 1  # ticks
    assert clock(memory, 0) > 7 << 32  # merged the routed stamp
    assert [int(r[L.ENV_SEQUENCE]) for r in sent(memory, 0)] == [40, 0]


def test_overflow_is_counted_in_rejected_not_written():
    memory = memory_for(Splitter, sends=4)  # room for 4: the fifth and sixth piece are rejected
    assert memory.send(0, type_id(Split), [6, 1], sequence=1)
    run(turn_kernel(Splitter), memory)
    rows = sent(memory, 0)
    assert [int(r[7]) for r in rows] == [0, 1, 2, 3]
    assert header(memory, 0, "rejected") == 3  # 2 pieces and the note
    assert header(memory, 0, "enqueued") == 4


def test_a_sends_queue_over_half_full_holds_the_loop_back():
    memory = memory_for(Splitter, sends=4)
    assert memory.send(0, type_id(Split), [3, 1], sequence=1)
    assert memory.send(0, type_id(Split), [1, 2], sequence=2)
    kernel = turn_kernel(Splitter)
    run(kernel, memory)
    assert memory.word(0, "processed") == 1  # 3 pieces + note: full, so the second input waits
    assert len(sent(memory, 0)) == 4  # the router takes them
    run(kernel, memory)
    assert memory.word(0, "processed") == 2


def test_an_aborted_handler_s_sends_are_discarded():
    memory = memory_for(Spinner, sends=256, budget=50)
    assert memory.send(0, type_id(Split), [10, 1], sequence=1)  # within budget: 10 sends
    assert memory.send(0, type_id(Split), [100_000, 2], sequence=2)  # aborted: none
    assert memory.send(0, type_id(Split), [2, 3], sequence=3)
    run(turn_kernel(Spinner), memory)
    assert memory.word(0, "aborted") == 1 and memory.word(0, "processed") == 3
    rows = sent(memory, 0)
    assert [int(r[6]) for r in rows] == [1] * 10 + [3] * 2
    assert header(memory, 0, "staged") == 0


@pytest.mark.parametrize("count", [0, 5, 32])
def test_cooperative_lanes_each_send(count):
    memory = memory_for(Fan, sends=64)
    assert memory.send(0, type_id(Split), [count, 4], sequence=1)
    run(turn_kernel(Fan), memory, lanes=32)
    rows = sent(memory, 0)
    assert sorted(int(r[7]) for r in rows) == list(range(count))  # any order of lanes, each once
    assert sorted(int(r[L.ENV_SEQUENCE]) for r in rows) == list(range(count))
    assert len({stamp(r) for r in rows}) == count

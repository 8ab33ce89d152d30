"""The actor loop's hybrid logical clock near 2**64, on every actor backend.

Regressions: a message stamped near 2**64 made the device clock (two u32
words) wrap to the wall clock, so a reply was stamped earlier than its cause;
a host clock exhausted by such a stamp lost the reply it came with.
"""

from __future__ import annotations

import os
import sys

import ringkernel as rk
from ringkernel.actors import encode
from ringkernel.ringir import layout as L
from ringkernel.runtime.hlc import MAX_TIMESTAMP, Hlc, physical_now

sys.path.insert(0, os.path.dirname(__file__))
from actor_defs import Accumulator, Add  # noqa: E402


def _push_stamped(ref: rk.ActorRef, stamp: int, value: float = 1.0) -> None:
    """Enqueues an ``Add`` whose envelope carries ``stamp`` (the public API stamps its own)."""
    msg = Add(value=value)
    info = ref.type.message_info(msg)
    ref.h2k.push(encode(msg, info, ref.h2k.slot_words, (0, ref.id, 0, stamp)))
    ref.system._wake(ref)


def test_far_future_stamps_are_handled_but_not_merged(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=16)
        before = acc.send(Add(value=1.0))
        for stamp in (MAX_TIMESTAMP - 1, MAX_TIMESTAMP):
            _push_stamped(acc, stamp)
        replies = [acc.receive(timeout=10.0) for _ in range(3)]
        after = acc.send(Add(value=1.0))
        replies.append(acc.receive(timeout=10.0))
    assert [r.count for r in replies] == [1, 2, 3, 4]  # every message handled, every reply delivered
    hlcs = [r.envelope.hlc for r in replies]
    assert all(b > a for a, b in zip(hlcs, hlcs[1:])), [hex(h) for h in hlcs]
    assert hlcs[0] > before and hlcs[3] > after
    assert hlcs[-1] < MAX_TIMESTAMP >> 1  # the clock did not jump to the far future
    assert acc.stats["clock_refused"] == 2
    assert acc.stats["host_clock_refused"] == 0


def test_stamps_within_the_drift_bound_are_merged(actor_backend):
    ahead = physical_now() + ((L.MAX_CLOCK_DRIFT_US // 2) << L.HLC_LOGICAL_BITS)
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=16)
        _push_stamped(acc, ahead)
        reply = acc.receive(timeout=10.0)
    assert reply.envelope.hlc > ahead
    assert acc.stats["clock_refused"] == 0


def _exhaust(ref: rk.ActorRef) -> None:
    """Sets the actor's clock to 2**64 - 1 (as if restored from one that ran out), loop halted."""
    ref.system._pause([ref])
    ref.ctrl[L.C["hlc_lo"]] = ref.ctrl[L.C["hlc_hi"]] = 0xFFFFFFFF
    ref.system._launch(ref)


def test_an_exhausted_device_clock_saturates_instead_of_wrapping(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=16)
        _exhaust(acc)
        for _ in range(3):
            acc.send(Add(value=1.0))
        replies = [acc.receive(timeout=10.0) for _ in range(3)]
    assert [r.count for r in replies] == [1, 2, 3]
    assert [r.envelope.hlc for r in replies] == [MAX_TIMESTAMP] * 3  # saturated, never back to "now"
    assert acc.stats["hlc"] == MAX_TIMESTAMP
    assert acc.stats["host_clock_refused"] == 3  # the host would not merge them, but delivered them


def test_a_reply_that_would_exhaust_the_host_clock_is_still_delivered(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        system.hlc = Hlc()  # no drift bound: merging 2**64 - 1 raises OverflowError
        acc = system.spawn(Accumulator, queue_capacity=16)
        _exhaust(acc)
        acc.send(Add(value=2.0))
        reply = acc.receive(timeout=10.0)
        assert reply.total == 2.0 and reply.envelope.hlc == MAX_TIMESTAMP
        assert acc.stats["host_clock_refused"] == 1 and system.clock_drift_refused == 1
        acc.send(Add(value=1.0))  # the host clock still works
        assert acc.receive(timeout=10.0).count == 2


def test_host_sequence_numbers_wrap_like_the_envelope_word(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=16)
        acc.sequence = 0xFFFFFFFF  # as after 2**32 - 1 sends
        acc.send(Add(value=1.0))
        acc.send(Add(value=1.0))
        assert [acc.receive(timeout=10.0).count for _ in range(2)] == [1, 2]
    assert acc.sequence == 1



def test_the_persistent_loop_clamps_its_wall_clock_into_48_bits_like_the_host():
    from ringkernel.ringir import Binary, Const, walk

    body = Accumulator.ir.get("Accumulator").body
    consts = {s.result: s.value for s in walk(body) if isinstance(s, Const)}
    ops = {(s.op, consts.get(s.rhs)) for s in walk(body) if isinstance(s, Binary)}
    assert ("min", L.HLC_PHYSICAL_MASK) in ops
    assert ("and", L.HLC_PHYSICAL_MASK) not in ops  # masking wraps to 0 after 2**48 µs

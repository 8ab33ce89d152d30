"""``lower_actor(group=True, threads=N)``: the turn kernel's structure and the verifier's word."""

from __future__ import annotations

import os
import sys

import pytest

from ringkernel.frontends.actors import actor_threads, build_actor_module
from ringkernel.ringir import (
    Backoff,
    Barrier,
    Call,
    Clock,
    Fence,
    ForRange,
    SharedArray,
    ThreadIndex,
    parse,
    verify,
    walk,
)
from ringkernel.ringir import layout as L
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.passes.actor_lowering import lower_actor
from ringkernel.ringir.passes.budget import CBASE_PARAM, CTRL_PARAM

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "actors"))
from actor_defs import Accumulator as SingleAccumulator  # noqa: E402
from group_defs import Accumulator, Histogram  # noqa: E402
from supervision_defs import Nested  # noqa: E402


def lowered(actor, mode, group=True, threads=1):
    return lower_actor(build_actor_module(actor.info), actor.info.name, mode, group=group, threads=threads)


def kernel_of(module, actor):
    return module.get(actor.info.name)


@pytest.mark.parametrize("mode", ["turn", "batch", "persistent"])
def test_the_verifier_accepts_every_group_mode_and_the_text_round_trips(mode):
    module = lowered(Accumulator, mode)
    verify(module)
    assert parse(str(module)) == module


def test_the_instance_is_the_linear_block_id_and_blocks_past_n_return():
    body = kernel_of(lowered(Accumulator, "turn"), Accumulator).body
    kinds = [(s.kind, s.dim) for s in walk(body) if isinstance(s, ThreadIndex)]
    assert ("block_id", 0) in kinds and ("block_id", 1) in kinds and ("grid_dim", 0) in kinds
    text = str(lowered(Accumulator, "turn"))
    assert f"const {L.C['instances']}" in text and f"const {L.C['quantum']}" in text


def test_turn_mode_uses_the_device_clock_and_fences_but_never_waits():
    turn = list(walk(kernel_of(lowered(Accumulator, "turn"), Accumulator).body))
    assert any(isinstance(s, Clock) for s in turn) and any(isinstance(s, Fence) for s in turn)
    assert not any(isinstance(s, Backoff) for s in turn)  # the scheduler sleeps, not the kernel
    batch = list(walk(kernel_of(lowered(Accumulator, "batch"), Accumulator).body))
    assert not any(isinstance(s, (Clock, Fence, Backoff)) for s in batch)


def test_the_persistent_group_strides_over_instances_and_backs_off_when_idle():
    body = list(walk(kernel_of(lowered(Accumulator, "persistent"), Accumulator).body))
    assert any(isinstance(s, ForRange) for s in body)
    backoffs = [s for s in body if isinstance(s, Backoff)]
    assert backoffs and all(s.doorbell is None for s in backoffs)  # no parking on a doorbell


def test_handlers_get_the_state_base_and_a_single_actor_passes_zero():
    module = SingleAccumulator.ir
    handler = next(f for f in module.functions if f.name.startswith("Accumulator__on_"))
    assert [p.name for p in handler.params][-1] == "rk.sbase"
    calls = [s for s in walk(module.get("Accumulator").body) if isinstance(s, Call)]
    assert calls and all(len(c.args) == 6 for c in calls)


def test_checked_handlers_of_a_group_take_the_instance_control_base():
    module = lowered(Nested, "turn")
    checked = [f for f in module.functions if CTRL_PARAM in (p.name for p in f.params)]
    assert checked
    for fn in checked:
        assert [p.name for p in fn.params][-2:] == [CBASE_PARAM, CTRL_PARAM]


def test_a_cooperative_actor_keeps_every_lane_and_inlines_its_handlers():
    module = lowered(Histogram, "turn", threads=Histogram.info.threads)
    assert [f.name for f in module.functions if f.kind == "func"] == []  # inlined into the kernel
    body = list(walk(kernel_of(module, Histogram).body))
    assert any(isinstance(s, SharedArray) for s in body) and any(isinstance(s, Barrier) for s in body)
    assert not any(isinstance(s, ThreadIndex) and s.kind == "global_id" for s in body)


def test_a_single_cooperative_actor_lowers_in_both_loops():
    for mode in ("persistent", "batch"):
        module = lowered(Histogram, mode, group=False, threads=Histogram.info.threads)
        assert any(isinstance(s, Barrier) for s in walk(kernel_of(module, Histogram).body))


@pytest.mark.parametrize("threads", [0, 1025, 2.0, True, "64"])
def test_bad_threads_are_clear_errors(threads):
    with pytest.raises(CompileError, match="threads must be an int from 1 to 1024"):
        lowered(Accumulator, "turn", threads=threads)
    with pytest.raises(ValueError, match="from 1 to 1024"):
        actor_threads(threads)
    assert actor_threads(3) == 3  # any count, not only powers of two


def test_turn_mode_is_only_for_groups():
    with pytest.raises(CompileError, match="'turn' is a group's"):
        lowered(Accumulator, "turn", group=False)

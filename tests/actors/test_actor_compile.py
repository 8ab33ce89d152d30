"""Actor kernels for every target: RingIR round trip, ptxas, naga, the Metal clang shim."""

from __future__ import annotations

import os
import sys

import pytest

from ringkernel.ringir import Clock, Fence, ThreadIndex, parse, walk
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.passes.actor_lowering import lower_actor

sys.path.insert(0, os.path.dirname(__file__))
from actor_defs import Accumulator, Counter, Doubler, Incrementer, Summer  # noqa: E402

ACTORS = [Accumulator, Doubler, Incrementer, Summer, Counter]
PORTABLE = [Accumulator, Doubler, Incrementer, Summer]  # no 64-bit fields


@pytest.mark.parametrize("actor", ACTORS, ids=lambda a: a.__name__)
def test_rir_round_trips_and_is_deterministic(actor):
    text = actor.compile("rir")
    assert parse(text) == actor.ir
    assert str(parse(text)) == text
    kernel = actor.ir.get(actor.__name__)
    names = [p.name for p in kernel.params]
    assert kernel.is_kernel and names == ["ctrl", "state", "h2k", "k2k", "out", "sends", "routed"]


def test_the_pass_reads_the_actor_back_from_text():
    """Handlers and message structs in RingIR text are enough to rebuild the loop."""
    module = Accumulator.ir
    pre = type(module)(tuple(f for f in module.functions if f.name != "Accumulator"), module.structs)
    assert lower_actor(parse(str(pre)), "Accumulator") == module


def test_only_lane_zero_runs_the_loop():
    kernel = Accumulator.ir.get("Accumulator")
    first = kernel.body[:3]
    assert any(isinstance(s, ThreadIndex) and s.kind == "global_id" for s in first)
    batch = Accumulator.module("batch").get("Accumulator")
    assert not any(isinstance(s, (Clock, Fence)) for s in walk(batch.body))  # host time, dispatch order


@pytest.mark.parametrize("actor", ACTORS, ids=lambda a: a.__name__)
def test_ptx_passes_ptxas(actor):
    from ringkernel.lowering.cuda.ptxas import check_ptx, find_ptxas

    ptx = actor.compile("ptx")
    assert "nanosleep.u32" in ptx and "fence.sc.sys" in ptx and "%globaltimer" in ptx
    if find_ptxas() is None:
        pytest.skip("ptxas not found")
    check_ptx(ptx)


def test_llvm_text():
    text = Accumulator.compile("llvm")
    park = "@syscall" if sys.platform.startswith("linux") else "usleep"  # the futex park (doorbell)
    assert park in text and "clock_gettime" in text


@pytest.mark.parametrize("actor", PORTABLE, ids=lambda a: a.__name__)
def test_wgsl_passes_naga(actor):
    from ringkernel.lowering.wgsl import check_wgsl

    check_wgsl(actor.compile("wgsl"))


@pytest.mark.parametrize("actor", PORTABLE, ids=lambda a: a.__name__)
def test_msl_passes_the_clang_shim(actor):
    from ringkernel.lowering.msl.check import check_msl

    check_msl(actor.compile("msl"))


def test_64_bit_state_is_a_clear_error_for_wgsl():
    with pytest.raises(CompileError, match="u64|f64"):
        Counter.compile("wgsl")


def test_output_is_deterministic():
    assert Accumulator.compile("ptx") == Accumulator.compile("ptx")
    assert Accumulator.compile("wgsl") == Accumulator.compile("wgsl")

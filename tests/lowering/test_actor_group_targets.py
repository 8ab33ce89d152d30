"""Every actor as a group, and every cooperative actor, through each target's own checker:
ptxas (PTX, persistent group), naga (WGSL, batch), the Metal clang shim (MSL, batch) and the
cpu JIT's compile (host, turn)."""

from __future__ import annotations

import os
import sys

import pytest

from ringkernel.compiler import compile_module
from ringkernel.frontends.actors import build_actor_module
from ringkernel.ringir.passes.actor_lowering import lower_actor
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cpu.actors import host_options

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "actors"))
from actor_defs import Accumulator, Counter, Doubler, Incrementer, Summer  # noqa: E402
from group_defs import BlockSum, Histogram, Seeker  # noqa: E402
from supervision_defs import Bounded, Nested  # noqa: E402

PLAIN = [Accumulator, Doubler, Incrementer, Summer, Counter, Bounded, Nested]
COOPERATIVE = [Histogram, Seeker, BlockSum]
WIDE = {Counter}  # f64 state: neither WGSL nor MSL has it
CASES = [(a, True) for a in PLAIN + COOPERATIVE] + [(a, False) for a in COOPERATIVE]


def case_id(case):
    actor, group = case
    return f"{actor.__name__}-{'group' if group else 'single'}"


def lowered(actor, mode, group):
    module = build_actor_module(actor.info)
    return lower_actor(module, actor.info.name, mode, group=group, threads=actor.info.threads)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_ptx_passes_ptxas(case):
    from ringkernel.lowering.cuda.ptxas import check_ptx, find_ptxas

    actor, group = case
    ptx = compile_module(lowered(actor, "persistent", group), "ptx", system_scope_atomics=True)
    assert "fence.sc.sys" in ptx
    if actor.info.threads > 1:
        assert "bar.sync" in ptx
    if find_ptxas() is None:
        pytest.skip("ptxas not found")
    check_ptx(ptx)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] not in WIDE], ids=case_id)
def test_wgsl_passes_naga(case):
    from ringkernel.lowering.wgsl import check_wgsl

    actor, group = case
    text = compile_module(lowered(actor, "batch", group), "wgsl", block=(actor.info.threads, 1, 1))
    assert f"@workgroup_size({actor.info.threads}" in text
    check_wgsl(text)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] not in WIDE], ids=case_id)
def test_msl_passes_the_clang_shim(case):
    from ringkernel.lowering.msl.check import check_msl

    actor, group = case
    check_msl(compile_module(lowered(actor, "batch", group), "msl"))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_cpu_jit_compiles_the_turn_kernel(case):
    from ringkernel.runtime.cpu.jit import jit_kernel

    actor, group = case
    name = actor.info.name
    module = lowered(actor, "turn" if group else "persistent", group)
    options = host_options(name)
    text = compile_module(module, "host", **options)
    assert jit_kernel(KernelBuild(module, name, "host", options, text)).address

"""Device-side ``send_to`` on every target: the loop reserves ``routed`` slots with a CAS, and
the kernels of a send_to actor and of a cooperative one pass ptxas, naga and the Metal clang
shim; cooperative MSL handlers see lane 0's device-memory writes (``mem_device`` barriers)."""

from __future__ import annotations

import pytest

from ringkernel.compiler import compile_module
from ringkernel.frontends.actors import build_actor_module
from ringkernel.ringir import AtomicCAS, walk
from ringkernel.ringir.passes.actor_lowering import lower_actor
from tests.actors.devsend_defs import Scatter, Wild

ACTORS = [Wild, Scatter]


def lowered(actor, mode: str, group: bool):
    info = actor.info
    return lower_actor(build_actor_module(info), info.name, mode, group=group, threads=info.threads)


def ids(actor) -> str:
    return actor.__name__


@pytest.mark.parametrize("group", [False, True], ids=["single", "group"])
@pytest.mark.parametrize("actor", ACTORS, ids=ids)
def test_the_loop_reserves_routed_slots_with_a_cas(actor, group):
    module = lowered(actor, "batch", group)
    kernel = module.get(actor.info.name)
    routed = kernel.params[-1]
    cas = [s for s in walk(kernel.body) if isinstance(s, AtomicCAS)]
    assert cas and all(s.array == routed for s in cas)


@pytest.mark.parametrize("actor", ACTORS, ids=ids)
def test_ptx_passes_ptxas(actor):
    from ringkernel.lowering.cuda.ptxas import check_ptx, find_ptxas

    modules = [lowered(actor, "persistent", group) for group in (False, True)]
    texts = [compile_module(m, "ptx", system_scope_atomics=True) for m in modules]
    assert all("cas.b32" in text for text in texts)
    if find_ptxas() is None:
        pytest.skip("ptxas not found")
    for text in texts:
        check_ptx(text)


@pytest.mark.parametrize("group", [False, True], ids=["single", "group"])
@pytest.mark.parametrize("actor", ACTORS, ids=ids)
def test_wgsl_passes_naga(actor, group):
    from ringkernel.lowering.wgsl import check_wgsl

    text = compile_module(lowered(actor, "batch", group), "wgsl")
    assert "atomicCompareExchangeWeak(" in text
    check_wgsl(text)


@pytest.mark.parametrize("group", [False, True], ids=["single", "group"])
@pytest.mark.parametrize("actor", ACTORS, ids=ids)
def test_msl_passes_the_clang_shim(actor, group):
    from ringkernel.lowering.msl.check import check_msl

    text = compile_module(lowered(actor, "batch", group), "msl")
    assert "atomic_compare_exchange_weak_explicit(" in text
    check_msl(text)


def test_cooperative_msl_barriers_order_device_memory():
    from ringkernel.lowering.msl.check import check_msl

    text = compile_module(lowered(Scatter, "batch", True), "msl")
    barriers = [line.strip() for line in text.splitlines() if "threadgroup_barrier(" in line]
    assert barriers
    device = "threadgroup_barrier(mem_flags::mem_device | mem_flags::mem_threadgroup);"
    assert all(b == device for b in barriers)
    check_msl(text)

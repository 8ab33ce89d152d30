"""Actors that send, on every target and in every loop shape: ptxas, naga, the Metal clang shim,
the cpu JIT; and the structure the runtimes and the router rely on."""

from __future__ import annotations

import os
import sys

import pytest

from ringkernel.compiler import compile_module
from ringkernel.frontends.actors import build_actor_module
from ringkernel.ringir import AtomicRMW, Call, walk
from ringkernel.ringir import layout as L
from ringkernel.ringir.passes.actor_lowering import SHARED_WORDS, STEP_WORDS, lower_actor

sys.path.insert(0, os.path.dirname(__file__))
from actor_defs import Accumulator  # noqa: E402
from msg_defs import PORTABLE_TALKERS, TALKERS, Fan, Ring, Spinner, Splitter  # noqa: E402

SHAPES = [("persistent", False), ("batch", False), ("turn", True), ("batch", True), ("persistent", True)]
TARGETS = {"persistent": ("ptx", "llvm"), "batch": ("wgsl", "msl", "llvm"), "turn": ("llvm",)}


def lowered(actor, mode: str, group: bool):
    info = actor.info
    return lower_actor(build_actor_module(info), info.name, mode, group=group, threads=info.threads)


def ids(actor) -> str:
    return actor.__name__


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}{'-group' if s[1] else ''}")
@pytest.mark.parametrize("actor", TALKERS, ids=ids)
def test_every_shape_lowers_with_seven_params(actor, shape):
    module = lowered(actor, *shape)
    kernel = module.get(actor.info.name)
    assert tuple(p.name for p in kernel.params) == L.KERNEL_PARAMS
    if actor.info.threads == 1:  # (a cooperative actor's handlers are inlined into the kernel)
        for fn in module.functions:
            if fn.name.startswith(f"{actor.info.name}__on_"):
                assert [p.name for p in fn.params][6:8] == ["sends", "rk.qbase"]


@pytest.mark.parametrize("actor", TALKERS, ids=ids)
def test_ptx_passes_ptxas(actor):
    from ringkernel.lowering.cuda.ptxas import check_ptx, find_ptxas

    modules = [lowered(actor, "persistent", group) for group in (False, True)]
    texts = [compile_module(m, "ptx", system_scope_atomics=True) for m in modules]
    if find_ptxas() is None:
        pytest.skip("ptxas not found")
    for text in texts:
        check_ptx(text)


@pytest.mark.parametrize("group", [False, True], ids=["single", "group"])
@pytest.mark.parametrize("actor", PORTABLE_TALKERS, ids=ids)
def test_wgsl_passes_naga(actor, group):
    from ringkernel.lowering.wgsl import check_wgsl

    check_wgsl(compile_module(lowered(actor, "batch", group), "wgsl"))


@pytest.mark.parametrize("group", [False, True], ids=["single", "group"])
@pytest.mark.parametrize("actor", TALKERS, ids=ids)
def test_msl_passes_the_clang_shim(actor, group):
    from ringkernel.lowering.msl.check import check_msl

    check_msl(compile_module(lowered(actor, "batch", group), "msl"))


@pytest.mark.parametrize("shape", [("persistent", False), ("turn", True)], ids=["persistent", "turn"])
@pytest.mark.parametrize("actor", TALKERS, ids=ids)
def test_the_cpu_jit_builds_it(actor, shape):
    from ringkernel.runtime.backend import KernelBuild
    from ringkernel.runtime.cpu.actors import host_options
    from ringkernel.runtime.cpu.jit import jit_kernel

    module = lowered(actor, *shape)
    name = actor.info.name
    options = host_options(name)
    kernel = jit_kernel(KernelBuild(module, name, "host", options, compile_module(module, "host", **options)))
    assert kernel.address


def test_an_actor_that_never_sends_has_no_send_code():
    kernel = Accumulator.module("persistent").get("Accumulator")
    # it still polls routed (a port may be connected to it), but never touches its sends queue
    sends = kernel.params[L.KERNEL_PARAMS.index("sends")]
    def touches(stmt) -> bool:
        return sends in getattr(stmt, "args", ()) or getattr(stmt, "array", None) == sends

    assert not any(touches(s) for s in walk(kernel.body))
    routed = kernel.params[L.KERNEL_PARAMS.index("routed")]
    assert any(isinstance(s, AtomicRMW) and s.array == routed for s in walk(kernel.body))


def test_handlers_of_a_talking_actor_get_the_sends_queue():
    kernel = Splitter.module("persistent").get("Splitter")
    sends = kernel.params[L.KERNEL_PARAMS.index("sends")]
    calls = [s for s in walk(kernel.body) if isinstance(s, Call)]
    assert calls and all(s.args[6] == sends for s in calls)
    helper = Splitter.module("persistent").get("Splitter__h_note")
    assert [p.name for p in helper.params][:4] == ["state", "rk.sbase", "sends", "rk.qbase"]


def test_a_budget_checked_talker_takes_both_extra_param_pairs():
    handler = Spinner.module("persistent").get("Spinner__on_Split")
    assert [p.name for p in handler.params][6:] == ["sends", "rk.qbase", "rk.cbase", "rk.ctrl"]


def test_a_cooperative_block_has_shared_words_for_three_inputs():
    assert STEP_WORDS * 3 < SHARED_WORDS
    for shape in SHAPES:
        lowered(Fan, *shape)  # (the lowering asserts its decisions fit the shared words)


def test_send_to_and_the_group_words_lower_in_every_group_mode():
    for mode in ("turn", "batch", "persistent"):
        text = str(lowered(Ring, mode, True))
        assert f"const {L.Q_GROUP_SIZE}" in text and f"const {L.Q_BAD_TARGET}" in text

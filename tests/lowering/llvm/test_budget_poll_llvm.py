"""The budget checks' cost on cpu (issue 19: at most 5% on a loop-heavy handler): the poll's
control block is ``noalias`` and its flag reads relaxed, so LLVM keeps a handler's state in
a register across the checked loop instead of storing and reloading it every iteration
(``python -m bench --only budget`` measures it: +108% before, about +1% after)."""

from __future__ import annotations

import re

import ringkernel as rk
from bench.budget_checks import unchecked_twin
from bench.budget_defs import HeavyState, Work
from ringkernel.lowering.llvm.host import build_host_module


def _kernel_text() -> str:
    """The optimized host LLVM of HeavyState's group-of-one turn kernel (the handler inlined)."""
    with rk.ActorSystem(backend="cpu") as system:
        return system._build(HeavyState, 1, group=True).text


def _block_of(text: str, needle: str) -> str:
    at = text.index(needle)
    return text[text.rindex("\n\n", 0, at) : text.index("\n\n", at)]


def test_the_poll_control_block_is_noalias_and_its_atomics_relaxed():
    module = HeavyState.module("turn", True)
    llmod, _ = build_host_module(module, "HeavyState", True, False)  # before optimization
    handler = str(llmod.globals["rk_func_HeavyState__on_Work"])
    assert re.search(r"ptr noalias %\"rk\.ctrl\"", handler)
    assert "atomicrmw or" in handler and "seq_cst" not in handler


def test_the_state_written_every_iteration_stays_in_a_register():
    loop = _block_of(_kernel_text(), "fmul float")
    # the float the loop carries is a phi (promoted), not a load and store of the state word
    assert "phi float" in loop
    assert "store float" not in loop and "load float" not in loop


def test_the_bench_baseline_really_has_no_checks():
    with rk.ActorSystem(backend="cpu") as system:
        twin = unchecked_twin(HeavyState, system.runtime)  # asserts its kernel is unchecked
        ref = system.spawn(twin, queue_capacity=4)
        assert ref.ask(Work(n=3), timeout=10).x == 1.75

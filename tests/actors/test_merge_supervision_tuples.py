"""Supervision's budget checks (issue 19) over issue 14's tuple-returning funcs and local arrays."""

from __future__ import annotations

import os
import sys

import pytest

import ringkernel as rk
from ringkernel.lowering.cuda import check_ptx, find_ptxas
from ringkernel.lowering.msl.check import check_msl, find_clang
from ringkernel.lowering.wgsl import check_wgsl

sys.path.insert(0, os.path.dirname(__file__))
from bounded import within  # noqa: E402
from merge_supervision_defs import Spin, TupleSpinner  # noqa: E402


def test_a_looping_tuple_func_is_budget_checked_and_unwound(actor_backend):
    with rk.ActorSystem(backend=actor_backend) as system:
        ref = system.spawn(TupleSpinner, queue_capacity=8)
        reply = within(20, lambda: ref.ask(Spin(n=5), timeout=10))
        assert (reply.total, reply.calls) == (5 + 10 + 5 + 8, 1)
        with pytest.raises(rk.HandlerAborted, match="budget"):
            within(20, lambda: ref.ask(Spin(n=-1), timeout=10))
        assert ref.state == {"total": 28, "calls": 1}  # rolled back
        reply = within(20, lambda: ref.ask(Spin(n=1), timeout=10))
        assert (reply.total, reply.calls) == (28 + 1 + 2 + 1 + 4, 2)


@pytest.mark.parametrize("target", ["rir", "wgsl", "msl", "ptx"])
def test_the_budgeted_actor_compiles_for_every_target(target: str) -> None:
    text = TupleSpinner.compile(target)
    if target == "wgsl":
        check_wgsl(text)
    elif target == "msl" and find_clang() is not None:
        check_msl(text)
    elif target == "ptx" and find_ptxas() is not None:
        check_ptx(text)

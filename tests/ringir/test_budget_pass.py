"""The budget-check pass alone: which functions it checks, and what it leaves alone."""

from __future__ import annotations

import pytest

from ringkernel.ringir import I32, U32, ArrayType, FunctionBuilder, Module, parse, verify
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.passes.budget import CTRL_PARAM, checked_functions, insert_budget_checks


def _looping(name: str, ret=I32) -> object:
    b = FunctionBuilder(name, "func", [("n", I32)], ret)
    i = b.local("i", I32)
    b.store_var(i, b.const(0, I32))
    with b.loop():
        with b.if_(b.compare("ge", b.load_var(i), b.params[0])):
            b.break_()
        b.store_var(i, b.binary("add", b.load_var(i), b.const(1, I32)))
    b.return_(b.load_var(i))
    return b.finish()


def _caller(name: str, callee: str) -> object:
    b = FunctionBuilder(name, "func", [("n", I32)], I32)
    b.return_(b.call(callee, (b.params[0],), I32))
    return b.finish()


def _plain(name: str) -> object:
    b = FunctionBuilder(name, "func", [("n", I32)], I32)
    b.return_(b.binary("add", b.params[0], b.const(1, I32)))
    return b.finish()


def test_checks_reach_looping_callees_and_all_their_callers_only():
    module = Module(
        (_looping("spin"), _caller("handler", "spin"), _plain("other"), _caller("unused", "spin"))
    )
    # a caller outside the handlers gets checks too: the callee now takes the control block
    assert checked_functions(module, ["handler", "other"]) == {"handler", "spin", "unused"}
    out = verify(insert_budget_checks(module, ["handler", "other"], {}))
    assert [p.name for p in out.get("spin").params][-1] == CTRL_PARAM
    assert [p.name for p in out.get("handler").params][-1] == CTRL_PARAM
    assert out.get("other") == module.get("other")
    assert checked_functions(module, ["other"]) == set()
    text = str(out)
    assert parse(text) == out  # the checked module round-trips through its text
    assert "%rk.ctrl" in text and "$rk.quota" in text


def test_a_module_without_loops_is_returned_unchanged():
    module = Module((_plain("handler"),))
    assert insert_budget_checks(module, ["handler"], {}) is module


def test_a_looping_function_returning_an_array_is_refused_with_its_name():
    b = FunctionBuilder("grid", "func", [("a", ArrayType(U32))], ArrayType(U32))
    with b.loop():
        b.break_()
    b.return_(b.params[0])
    with pytest.raises(CompileError, match="'grid' loops and returns"):
        insert_budget_checks(Module((b.finish(),)), ["grid"], {})

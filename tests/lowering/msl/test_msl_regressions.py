"""Fuzzer findings in the MSL lowering, each with its reproducer (see docs/fuzzing.md)."""

from __future__ import annotations

import pytest

from ringkernel.compiler import compile_module
from ringkernel.lowering.msl import lower
from ringkernel.ringir import VOID, Function, Module, Return, Stmt, parse
from ringkernel.ringir.diagnostics import CompileError


@pytest.mark.parametrize("stmt", ["fence", "%n: u32 = const 10\n  backoff %n"])
def test_actor_statements_lower_or_say_why(stmt: str) -> None:
    # fuzz/msl: "NotImplementedError: _FunctionEmitter does not handle Fence" for a valid module.
    module = parse(f"ringir 1\n\nkernel @k(%a: array<u32, global>) -> void {{\n  {stmt}\n}}\n")
    try:
        compile_module(module, "msl", cache=False)
    except CompileError as exc:
        assert "cannot lower" in exc.message


def test_an_unknown_statement_is_a_compile_error() -> None:
    class Unknown(Stmt):
        """A statement kind the MSL emitter has never heard of."""

    module = Module((Function("k", "kernel", (), VOID, (), (Unknown(), Return())),))
    with pytest.raises(CompileError):
        lower(module)

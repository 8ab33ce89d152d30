"""The internal ``host`` target: what the cpu runtime JITs, compiled by the one driver."""

from __future__ import annotations

import kernel_corpus
import pytest

import ringkernel.compiler as compiler
from ringkernel.compiler import TARGETS, compile_module
from ringkernel.lowering.llvm.codegen import host_cpu
from ringkernel.ringir.diagnostics import CompileError

SAXPY = next(c for c in kernel_corpus.CASES if c.name == "saxpy").kernel


def _options(**extra):
    cpu, features = host_cpu()
    return {"kernel": "saxpy", "cpu": cpu, "features": features, **extra}


def test_host_is_internal_and_holds_the_launch_wrapper() -> None:
    assert "host" not in TARGETS
    text = compile_module(SAXPY.ir, "host", cache=False, **_options())
    assert "@rk_launch_saxpy(" in text and "define " in text
    assert "rk_bounds_fail" not in text
    assert "rk_bounds_fail" in compile_module(SAXPY.ir, "host", cache=False, **_options(checked=True))


def test_host_needs_a_kernel() -> None:
    with pytest.raises(CompileError, match="kernel=<name>"):
        compile_module(SAXPY.ir, "host", cache=False)


def test_warm_compiles_fingerprint_the_module_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A warm launch looks the text up without printing the module again."""
    calls = []
    real = compiler.fingerprint
    monkeypatch.setattr(compiler, "fingerprint", lambda *a, **k: calls.append(1) or real(*a, **k))
    module = SAXPY.ir
    first = compile_module(module, "host", **_options())
    for _ in range(3):
        assert compile_module(module, "host", **_options()) is first
    assert len(calls) <= 1

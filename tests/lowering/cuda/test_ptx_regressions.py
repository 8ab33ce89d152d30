"""Fuzzer findings in the PTX lowering, each with its reproducer (see docs/fuzzing.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ringkernel.compiler import compile_module
from ringkernel.lowering.cuda import check_ptx, find_ptxas, ptx_kernel_symbol
from ringkernel.ringir import parse

needs_ptxas = pytest.mark.skipif(find_ptxas() is None, reason="ptxas not installed")


def _ptx(text: str) -> str:
    return compile_module(parse(text), "ptx", cache=False)


@needs_ptxas
def test_kernel_name_with_a_dot() -> None:
    # fuzz/ptx: "ptxas ... Parsing error near '.k0': syntax error" for kernel @metal.k0.
    ptx = _ptx("ringir 1\n\nkernel @metal.k0(%a: array<u32, global>) -> void {\n}\n")
    check_ptx(ptx)
    assert f".entry {ptx_kernel_symbol('metal.k0')}(" in ptx


def test_kernel_name_with_unicode_does_not_abort_the_process() -> None:
    # fuzz/ptx: LLVM printed "Symbol name with unsupported characters" and aborted Python.
    text = "ringir 1\\n\\nkernel @\\u00e9(%a: array<u32, global>) -> void {\\n}\\n"
    code = (
        "from ringkernel.compiler import compile_module\n"
        "from ringkernel.ringir import parse\n"
        f"print(compile_module(parse('{text}'), 'ptx', cache=False))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert ptx_kernel_symbol("\u00e9") in proc.stdout
    if find_ptxas() is not None:
        check_ptx(proc.stdout)


def test_ptx_symbols_are_stable_and_distinct() -> None:
    assert ptx_kernel_symbol("saxpy") == "saxpy"
    assert ptx_kernel_symbol("a.b") != ptx_kernel_symbol("a_b")
    assert ptx_kernel_symbol("a.b") == ptx_kernel_symbol("a.b")
    assert ptx_kernel_symbol("a.b").isascii()

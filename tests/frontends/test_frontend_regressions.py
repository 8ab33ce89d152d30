"""Fuzzer findings in the Python frontend, each with its reproducer (see docs/fuzzing.md)."""

from __future__ import annotations

import pytest

from ringkernel.diagnostics import CompileError
from ringkernel.frontends.module import build_module
from ringkernel.frontends.static import scan_source

HEADER = "import ringkernel as rk\nfrom ringkernel import Array, f32, i32\n\n"


def _build(source: str):
    scan = scan_source(HEADER + source, "regression.py")
    return [build_module([entry]) for entry in scan.entries]


def test_huge_integer_literal_used_as_float() -> None:
    # fuzz/frontend: OverflowError "int too large to convert to float" escaped from literal_as.
    with pytest.raises(CompileError, match="too large for f32"):
        _build(
            "@rk.kernel\n"
            "def k(out: Array[f32]):\n"
            "    out[0] = min(out[0], 10 ** 400)\n"
        )

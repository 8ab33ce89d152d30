"""Fuzzer findings in the Python frontend, each with its reproducer (see docs/fuzzing.md)."""

from __future__ import annotations

import pytest

from ringkernel.frontends.module import build_module
from ringkernel.frontends.static import scan_source
from ringkernel.ringir.diagnostics import CompileError

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


def test_shift_of_constants_by_a_float() -> None:
    # fuzz/frontend: "TypeError: unsupported operand type(s) for <<: 'int' and 'float'" escaped
    # from constant folding (the mutant read `stride = RED << 1e+308`).
    with pytest.raises(CompileError, match="need integer operands"):
        _build(
            "RED = 64\n\n"
            "@rk.kernel\n"
            "def k(out: Array[i32]):\n"
            "    stride = RED << 1e+308\n"
            "    out[0] = stride\n"
        )


@pytest.mark.parametrize("expr", ["2 ** 10 ** 9", "1 << 10 ** 12", "(-3) ** 100000"])
def test_absurdly_large_constant_is_an_error_not_a_stall(expr: str) -> None:
    # Found while fixing the shift above: folding these would take minutes and gigabytes.
    with pytest.raises(CompileError, match="too large for any integer type"):
        _build(f"@rk.kernel\ndef k(out: Array[i32]):\n    out[0] = {expr}\n")


def test_large_but_sane_constants_still_fold() -> None:
    (module,) = _build("@rk.kernel\ndef k(out: Array[i32]):\n    out[0] = (1 << 40) >> 38\n")
    assert "const 4" in str(module)

"""Regressions: deep nesting and huge shared arrays in kernels are located CompileErrors."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from ringkernel.frontends.limits import MAX_EXPRESSION_DEPTH
from ringkernel.frontends.module import build_module
from ringkernel.frontends.static import scan_source
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.limits import MAX_NESTING

HEADER = "import ringkernel as rk\nfrom ringkernel import Array, f32, i32\n\n"
KERNEL_LINE = 6  # the line of `x[0] = ...` in kernel_source()


def kernel_source(expr: str) -> str:
    return HEADER + f"@rk.kernel\ndef k(x: Array[f32], a: f32):\n    x[0] = {expr}\n"


def build(source: str, filename: str = "limits.py"):
    scan = scan_source(source, filename)
    assert not scan.errors, scan.errors
    return [build_module([entry]) for entry in scan.entries]


def build_error(source: str) -> CompileError:
    with pytest.raises(CompileError) as info:
        build(source)
    return info.value


@pytest.mark.parametrize(
    "expr",
    [
        "+".join(["a"] * 1000),  # a left-deep sum
        "a+(" * 150 + "a" + ")" * 150,  # right-deep, within Python's 200 parentheses
        "-" * 1000 + "a",
        "a if (" + "not " * 1000 + "(a > 0.0)) else a",
    ],
    ids=["sum", "parens", "unary", "not"],
)
def test_deep_expression_is_located_compileerror(expr):
    exc = build_error(kernel_source(expr))
    assert exc.filename == "limits.py" and exc.line == KERNEL_LINE and exc.col is not None
    assert f"expression nested too deeply (limit {MAX_EXPRESSION_DEPTH}" in exc.message
    assert "^" in str(exc)


def test_expression_at_the_limit_compiles_everywhere():
    (module,) = build(kernel_source("+".join(["a"] * MAX_EXPRESSION_DEPTH)))
    from ringkernel.compiler import compile_module

    for target in ("rir", "wgsl", "msl", "llvm"):
        assert compile_module(module, target, cache=False)


def nested_ifs(depth: int) -> str:
    body = "".join("    " * (d + 1) + "if a > 0.0:\n" for d in range(depth))
    return HEADER + "@rk.kernel\ndef k(x: Array[f32], a: f32):\n" + body + "    " * (depth + 1) + "x[0] = a\n"


def test_statements_nested_past_the_limit_are_located():
    exc = build_error(nested_ifs(MAX_NESTING + 1))
    assert exc.line == 6 + MAX_NESTING + 1  # x[0] = a, inside the innermost if
    assert f"statements nested too deeply (limit {MAX_NESTING}" in exc.message


def test_statements_at_the_limit_compile():
    (module,) = build(nested_ifs(MAX_NESTING))
    assert str(module)


def test_nested_conditional_expressions_take_linear_time():
    # Each level probed both branches again: 2**depth translations, a hang at ~30 levels.
    # A child process, so a regression fails on the timeout instead of hanging the suite.
    expr = "a if a > 0.0 else (" * 40 + "a" + ")" * 40
    code = (
        "import sys\n"
        "from ringkernel.frontends.module import build_module\n"
        "from ringkernel.frontends.static import scan_source\n"
        "scan = scan_source(sys.stdin.read(), 'ifexp.py')\n"
        "print(build_module(scan.entries).functions[0].name)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], input=kernel_source(expr), capture_output=True,
        text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "k"


@pytest.mark.parametrize("size", ["10**20", "2**40", "2**29"])
def test_huge_shared_array_is_located_compileerror(size):
    source = HEADER + (
        "@rk.kernel\n"
        "def k(x: Array[f32]):\n"
        f"    s = rk.shared_array(f32, {size})\n"
        "    s[0] = 1.0\n"
        "    x[0] = s[0]\n"
    )
    exc = build_error(source)
    assert (exc.line, exc.col) == (6, 9)
    assert "larger than any target" in exc.message


def test_decorated_kernel_with_deep_sum_is_a_compileerror(tmp_path):
    # The decorator path (source found through linecache), as a user would write it.
    path = tmp_path / "deep_kernel.py"
    path.write_text(kernel_source("+".join(["a"] * 500)))
    spec = importlib.util.spec_from_file_location("deep_kernel", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(CompileError) as info:
        module.k.compile("rir")
    assert info.value.line == KERNEL_LINE and info.value.filename == str(path)

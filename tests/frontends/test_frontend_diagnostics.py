"""Every class of user error gives file:line:col, the source line and a caret."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import textwrap
from pathlib import Path

import pytest

import ringkernel as rk
from ringkernel import Array, CompileError, f32, i32

HEADER = """\
import math
import numpy as np
import ringkernel as rk
from ringkernel import Array, f32, f64, i32, u32

LIMIT = 8
TABLE = np.zeros(4)
"""

_counter = itertools.count()


def load(tmp_path: Path, body: str):
    name = f"diag_kernels_{next(_counter)}"
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module, path


def check(tmp_path: Path, body: str, token: str, message: str, entry: str = "k") -> CompileError:
    """Compiles ``entry``; the error must point at the first ``token`` after the def line."""
    module, path = load(tmp_path, body)
    with pytest.raises(CompileError) as info:
        getattr(module, entry).ir
    err = info.value
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("def "))
    line_no = next(i for i in range(start, len(lines)) if token in lines[i]) + 1
    col = lines[line_no - 1].index(token) + 1
    assert (err.filename, err.line, err.col) == (str(path), line_no, col), str(err)
    assert message in err.message, str(err)
    text = str(err).splitlines()
    assert text[0] == f"{path}:{line_no}:{col}: error: {err.message}"
    assert text[1].strip() == lines[line_no - 1].strip()
    assert text[2].index("^") == text[1].index(lines[line_no - 1].lstrip()[0]) + (
        col - 1 - (len(lines[line_no - 1]) - len(lines[line_no - 1].lstrip()))
    ), text
    return err


UNSUPPORTED = [
    ("y = [v for v in range(3)]", "[v for", "list comprehensions are not supported"),
    ("f = lambda v: v", "lambda", "lambda expressions are not supported"),
    ("print(x[0])", "print(", "print() is not supported"),
    ("s = 'hello'", "'hello'", "strings are not supported"),
    ("TABLE[0] = 1.0", "TABLE[0]", "embedded read-only"),
    ("import os", "import os", "import statements are not supported"),
    ("assert x[0] > 0", "assert", "assert statements are not supported"),
    ("del x", "del x", "del statements are not supported"),
    ("y = {1: 2}", "{1: 2}", "dict literals are not supported"),
    ("y = x[1:3]", "1:3", "slices are not supported"),
    ("y = x[0, 1]", "0, 1", "declare it Array[T, 2]"),
    ("y = len(2.5)", "2.5", "len() in kernels takes an array"),
    ("y = x.shape", "x.shape", "use a.shape[d]"),
    ("y = math.nonexistent(1.0)", "math.nonexistent", "has no attribute 'nonexistent'"),
    ("y = undefined_name + 1", "undefined_name", "name 'undefined_name' is not defined"),
    ("y = (z := 3)", "z := 3", "the walrus operator (:=) is not supported"),
    ("y = x[0] @ x[1]", "x[0] @", "'@' is not supported"),
    ("y = 1 if x[0] is x[1] else 2", "x[0] is x[1]", "'is' is not supported"),
]


@pytest.mark.parametrize("stmt,token,message", UNSUPPORTED, ids=[u[2][:30] for u in UNSUPPORTED])
def test_unsupported_constructs(tmp_path, stmt, token, message):
    body = f"""
    @rk.kernel
    def k(x: Array[f32]):
        {stmt}
    """
    check(tmp_path, body, token, message)


STATEMENT_BLOCKS = [
    (
        "try:\n            x[0] = 1.0\n        except Exception:\n            pass",
        "try:",
        "try statements are not supported",
    ),
    ("with open('f') as fh:\n            pass", "with open", "with statements are not supported"),
    ("class Inner:\n            pass", "class Inner", "class definitions are not supported"),
    ("def inner():\n            pass", "def inner", "nested function definitions are not supported"),
    ("for v in x + 1:\n            pass", "x + 1:", "loop with 'for i in range(...)'"),
]


@pytest.mark.parametrize("block,token,message", STATEMENT_BLOCKS, ids=[b[2][:25] for b in STATEMENT_BLOCKS])
def test_unsupported_statements(tmp_path, block, token, message):
    body = f"""
    @rk.kernel
    def k(x: Array[f32]):
        {block}
    """
    check(tmp_path, body, token, message)


TYPE_ERRORS = [
    ("y = n + u[0]", "n + u[0]", "different types i32 and u32"),
    ("y = 1\n        y = x[0]", "x[0]", "has type f32 but i32 is needed"),
    ("y = x[1.5]", "1.5", "array indices must be integers"),
    ("y = x[x[0]]", "x[0]]", "array indices must be integers, not f32"),
    ("b = n > 1\n        y = b + b", "b + b", "does not apply to bool"),
    ("y = u[0] << 1.5", "u[0] << 1.5", "needs integer operands"),
    ("y = n\n        y = 2.5", "2.5", "the float 2.5 cannot be used as i32"),
    ("y = n + 10000000000", "10000000000", "does not fit in i32"),
    ("x[0] = d[0]", "d[0]", "has type f64 but f32 is needed"),
    ("y = n(3)", "n(3)", "is a kernel value, not a function"),
    ("rk.atomic_and(x, 0, 1.0)", "rk.atomic_and(x, 0, 1.0)", "does not apply to f32 arrays"),
    ("y = rk.global_id(n)", "n)", "the dimension must be a constant integer"),
    ("y = rk.global_id(3)", "3)", "must be 0, 1 or 2"),
    ("s = rk.shared_array(f32, n)", "n)", "size must be a constant integer"),
    ("s = rk.shared_array(f32, 0)", "0)", "size must be positive"),
    ("for j in range(0.5, 3.0):\n            pass", "0.5, 3.0", "the float 0.5 cannot be used as i32"),
    ("for j in range(0, n, 0):\n            pass", "0):", "step must not be zero"),
    ("y = 1 // 0", "1 // 0", "division by zero"),
    ("return 1", "return 1", "kernels cannot return a value"),
    ("x = 1.0", "x = 1.0", "is an array and cannot be reassigned"),
]


@pytest.mark.parametrize("stmt,token,message", TYPE_ERRORS, ids=[t[2][:30] for t in TYPE_ERRORS])
def test_type_errors(tmp_path, stmt, token, message):
    body = f"""
    @rk.kernel
    def k(x: Array[f32], u: Array[u32], d: Array[f64], n: i32):
        {stmt}
    """
    check(tmp_path, body, token, message)


def test_use_before_assignment(tmp_path):
    body = """
    @rk.kernel
    def k(x: Array[f32], n: i32):
        if n > 0:
            v = 1.0
        x[0] = v
    """
    module, path = load(tmp_path, body)
    with pytest.raises(CompileError, match="'v' may be used before it is assigned") as info:
        module.k.ir
    assert info.value.line == path.read_text().splitlines().index("    x[0] = v") + 1
    assert info.value.col == len("    x[0] = ") + 1


def test_missing_parameter_annotation(tmp_path):
    body = """
    @rk.kernel
    def k(x: Array[f32], n):
        pass
    """
    check(tmp_path, body, "n)", "parameter 'n' of kernel 'k' needs a type annotation")


def test_unsupported_annotation(tmp_path):
    body = """
    @rk.kernel
    def k(x: list):
        pass
    """
    check(tmp_path, body, "list", "unsupported type annotation")


def test_closure_over_non_constant(tmp_path):
    body = """
    def make():
        helper = object()

        @rk.kernel
        def k(x: Array[f32]):
            x[0] = helper

        return k

    k = make()
    """
    module, _ = load(tmp_path, body)
    with pytest.raises(CompileError, match="kernels can only use numbers from the enclosing scope"):
        module.k.ir


def test_func_missing_return(tmp_path):
    body = """
    @rk.func
    def f(v: f32) -> f32:
        if v > 0.0:
            return v

    @rk.kernel
    def k(x: Array[f32]):
        x[0] = f(x[1])
    """
    module, path = load(tmp_path, body)
    with pytest.raises(CompileError, match="may reach its end without returning") as info:
        module.k.ir
    assert info.value.line == path.read_text().splitlines().index("def f(v: f32) -> f32:") + 1


def test_func_return_type_mismatch_and_missing_annotation(tmp_path):
    body = """
    @rk.func
    def f(v: f32) -> i32:
        return v

    @rk.func
    def g(v: f32):
        return v

    @rk.kernel
    def k(x: Array[f32]):
        x[0] = f32(f(x[1]))

    @rk.kernel
    def k2(x: Array[f32]):
        x[0] = g(x[1])
    """
    module, _ = load(tmp_path, body)
    with pytest.raises(CompileError, match="the returned value has type f32 but i32"):
        module.k.ir
    # the callee is translated at its first call, so its own error comes first
    with pytest.raises(CompileError, match="returning a value needs a return annotation"):
        module.k2.ir


def test_void_call_used_as_value(tmp_path):
    body = """
    @rk.func
    def f(x: Array[f32]):
        x[0] = 1.0

    @rk.kernel
    def k(x: Array[f32]):
        y = f(x)
    """
    check(tmp_path, body, "f(x)", "returns no value")


def test_recursion_is_reported_at_the_call(tmp_path):
    body = """
    @rk.func
    def fact(n: i32) -> i32:
        if n <= 1:
            return 1
        return n * fact(n - 1)

    @rk.kernel
    def k(x: Array[i32]):
        x[0] = fact(5)
    """
    module, path = load(tmp_path, body)
    with pytest.raises(CompileError, match="recursion is not supported") as info:
        module.k.ir
    assert info.value.line == path.read_text().splitlines().index("    return n * fact(n - 1)") + 1
    assert "^" in str(info.value)


def test_kernel_calling_kernel_and_wrong_arity(tmp_path):
    body = """
    @rk.kernel
    def other(x: Array[f32]):
        pass

    @rk.func
    def two(a: f32, b: f32) -> f32:
        return a + b

    @rk.kernel
    def k(x: Array[f32]):
        other(x)

    @rk.kernel
    def k2(x: Array[f32]):
        x[0] = two(1.0)
    """
    module, _ = load(tmp_path, body)
    with pytest.raises(CompileError, match="cannot be called from device code"):
        module.k.ir
    with pytest.raises(CompileError, match="takes 2 argument"):
        module.k2.ir


def test_barrier_shared_and_indices_only_in_kernels(tmp_path):
    body = """
    @rk.func
    def f(v: f32) -> f32:
        rk.barrier()
        return v

    @rk.func
    def g(v: f32) -> i32:
        return rk.thread_id(0)

    @rk.kernel
    def k(x: Array[f32]):
        x[0] = f(x[0])

    @rk.kernel
    def k2(x: Array[f32]):
        x[0] = f32(g(x[0]))
    """
    module, _ = load(tmp_path, body)
    with pytest.raises(CompileError, match="barrier\\(\\) can only be used in kernels"):
        module.k.ir
    with pytest.raises(CompileError, match="only available in kernels"):
        module.k2.ir


def test_errors_carry_no_compiler_traceback(tmp_path):
    body = """
    @rk.kernel
    def k(x: Array[f32]):
        print(x)
    """
    module, _ = load(tmp_path, body)
    try:
        module.k.ir
    except CompileError as exc:
        assert exc.__cause__ is None and exc.__suppress_context__
        import traceback

        import ringkernel.frontends

        compiler_dir = Path(ringkernel.frontends.__file__).parent
        frames = traceback.extract_tb(exc.__traceback__)
        assert not any(Path(f.filename).parent == compiler_dir for f in frames)
    else:
        pytest.fail("expected a CompileError")


def test_nested_indented_kernel_has_file_line_numbers():
    def outer():
        @rk.kernel
        def inner(x: Array[f32]):
            x[0] = "nope"

        return inner

    with pytest.raises(CompileError) as info:
        outer().ir
    err = info.value
    assert err.filename == __file__
    src = Path(__file__).read_text().splitlines()
    assert src[err.line - 1].strip() == 'x[0] = "nope"'
    assert err.col == src[err.line - 1].index('"nope"') + 1


def test_calling_kernel_like_a_function_is_an_error():
    @rk.kernel
    def k(x: Array[f32], n: i32):
        pass

    @rk.func
    def f(v: f32) -> f32:
        return v

    with pytest.raises(TypeError, match="cannot be called like a Python function"):
        k(None, 1)
    with pytest.raises(TypeError, match="can only be called from a @rk.kernel"):
        f(1.0)
    with pytest.raises(RuntimeError, match="can only be used inside"):
        rk.global_id(0)


def test_compile_to_unknown_target_lists_targets():
    @rk.kernel
    def k(x: Array[i32]):
        x[0] = 1

    with pytest.raises(CompileError, match="choose one of: rir, llvm, ptx, wgsl, msl"):
        k.compile("spirv")


def test_non_ascii_source_columns(tmp_path):
    body = """
    @rk.kernel
    def k(x: Array[f32]):
        x[0] = 1.0  # é
        y = "é"
    """
    err = check(tmp_path, body, '"é"', "strings are not supported")
    assert err.end_col == err.col + 3


def test_launch_argument_errors_name_the_parameter():
    @rk.kernel
    def k(x: Array[f32], n: i32):
        pass

    import numpy as np

    with pytest.raises(rk.LaunchError, match="takes 2 argument"):
        k.launch(1, 1, (np.zeros(4, np.float32),), backend="cpu")
    with pytest.raises(rk.LaunchError, match="argument 'x' of kernel 'k' must have dtype float32"):
        k.launch(1, 1, (np.zeros(4, np.float64), 4), backend="cpu")
    with pytest.raises(rk.LaunchError, match="argument 'n' .* out of range"):
        k.launch(1, 1, (np.zeros(4, np.float32), 2**40), backend="cpu")
    with pytest.raises(rk.LaunchError, match="C-contiguous"):
        k.launch(1, 1, (np.zeros(8, np.float32)[::2], 4), backend="cpu")
    with pytest.raises(rk.LaunchError, match="grid must be"):
        k.launch(0, 1, (np.zeros(4, np.float32), 4), backend="cpu")
    with pytest.raises(rk.LaunchError, match="float 1.5"):
        k.launch(1, 1, (np.zeros(4, np.float32), 1.5), backend="cpu")


def test_unused_imports_keep_ruff_quiet():
    assert i32 is rk.i32 and Array is rk.Array and f32 is rk.f32


def test_array_of_wrong_rank_passed_to_func(tmp_path):
    body = """
    @rk.func
    def fill(a: Array[f32, 2], i: i32):
        a[i, 0] = 1.0

    @rk.kernel
    def k(x: Array[f32]):
        s = rk.shared_array(f32, 64)
        fill(s, rk.thread_id(0))
    """
    check(tmp_path, body, "s, rk", "must be a 2-D array, got a 1-D one")

"""N-d arrays, local and embedded arrays, funcs over any memory and array rebinding: IR and errors."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, CompileError, f32, i32
from ringkernel.ringir import AddressSpace, ArrayType, ConstArray, LocalArray, SharedArray, walk

HEADER = """\
import numpy as np
import ringkernel as rk
from ringkernel import Array, f32, i32, u32

SMALL = np.array([1.0, 2.0], dtype=np.float32)
HUGE = np.zeros(20000, dtype=np.float32)
CPLX = np.zeros(3, dtype=np.complex64)
"""

_counter = itertools.count()


def check(tmp_path: Path, body: str, token: str, message: str, nth: int = 0) -> CompileError:
    """Compiles kernel ``k``; the error must point at the ``nth`` line with ``token`` after the first def."""
    name = f"nd_kernels_{next(_counter)}"
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    with pytest.raises(CompileError) as info:
        module.k.ir
    err = info.value
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("def "))
    line_no = [i for i in range(start + 1, len(lines)) if token in lines[i]][nth] + 1
    assert (err.line, err.col) == (line_no, lines[line_no - 1].index(token) + 1), str(err)
    assert message in err.message, str(err)
    assert "^" in str(err)
    return err


ERRORS = [
    ("y = a[0]", "0", "needs 2 indexes (a[i, j]), got 1"),
    ("y = a[0, 1, 2]", "0, 1, 2", "needs 2 indexes"),
    ("y = a.shape[2]", "2", "dimension 2 is out of range for an array of 2 dimensions"),
    ("y = a.shape[n]", "n", "must be a constant integer"),
    ("y = a.strides", "a.strides", "arrays have no attribute 'strides'"),
    ("s = rk.shared_array(f32, (4, 0))", "(4, 0)", "extents must be positive"),
    ("s = rk.shared_array(f32, (2, 2, 2, 2))", "(2, 2, 2, 2)", "tuple of 1 to 3"),
    ("s = rk.local_array(f32, n)", "n", "must be a constant integer"),
    ("rk.atomic_add(a, 0, 1.0)", "0", "needs 2 indexes"),
    ("rk.atomic_add(rk.local_array(f32, 4), 0, 1.0)", "rk.local_array", "needs a global or shared array"),
    ("rk.atomic_add(SMALL, 0, 1.0)", "SMALL", "read-only module-level array"),
    ("SMALL[0] = 1.0", "SMALL[0]", "embedded read-only"),
    ("SMALL[0] += 1.0", "SMALL[0]", "embedded read-only"),
    ("y = HUGE[0]", "HUGE", "too large to embed"),
    ("y = CPLX[0]", "CPLX", "cannot be embedded"),
    ("a = b", "b", "'a' holds a 2-D global array of f32 and cannot be rebound to a global array"),
    ("a = rk.shared_array(f32, (2, 2))", "rk.shared", "cannot be rebound to a 2-D shared array"),
    ("a = 1.0", "a = 1.0", "is an array and cannot be reassigned to a number"),
]


@pytest.mark.parametrize("stmt,token,message", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_located_errors(tmp_path: Path, stmt: str, token: str, message: str) -> None:
    body = f"""
    @rk.kernel
    def k(a: Array[f32, 2], b: Array[f32], n: i32):
        {stmt}
    """
    check(tmp_path, body, token, message)


def test_rebinding_to_an_array_created_after_first_use_is_refused(tmp_path: Path) -> None:
    body = """
    @rk.kernel
    def k(a: Array[f32], n: i32):
        s = rk.shared_array(f32, 4)
        x = s
        for i in range(n):
            x[i] = 1.0
            x = rk.shared_array(f32, 4)
    """
    check(tmp_path, body, "rk.shared_array(f32, 4)", "created after", nth=1)


def test_rebinding_to_a_different_memory_space_is_refused(tmp_path: Path) -> None:
    body = """
    @rk.kernel
    def k(a: Array[f32], n: i32):
        s = rk.shared_array(f32, 4)
        for i in range(n):
            a, s = s, a
    """
    check(tmp_path, body, "s, a", "'a' holds a global array of f32 and cannot be rebound to a shared array")


def test_recursion_through_a_specialized_func_is_reported_at_the_call(tmp_path: Path) -> None:
    body = """
    @rk.func
    def walk_down(s: Array[f32], i: i32):
        if i > 0:
            walk_down(s, i - 1)

    @rk.kernel
    def k(a: Array[f32], n: i32):
        t = rk.shared_array(f32, 4)
        walk_down(t, n)
    """
    check(tmp_path, body, "walk_down(s, i - 1)", "recursion is not supported")


@rk.kernel
def tiles(a: Array[f32, 2], out: Array[f32, 2]):
    t = rk.shared_array(f32, (4, 5))
    p = rk.local_array(i32, (2, 3))
    r, c = rk.thread_id(1), rk.thread_id(0)
    t[r, c] = a[r, c]
    p[1, 2] = 7
    out[r, c] = t[r, c] + f32(p[1, 2])


def test_nd_types_and_allocations_in_the_ir() -> None:
    fn = tiles.ir.kernels[0]
    assert [str(p.type) for p in fn.params[:2]] == ["array<f32, global, [?, ?]>"] * 2
    assert [p.name for p in fn.params[2:]] == ["a.shape0", "a.shape1", "out.shape0", "out.shape1"]
    shared = [s for s in walk(fn.body) if isinstance(s, SharedArray)]
    local = [s for s in walk(fn.body) if isinstance(s, LocalArray)]
    assert shared[0].result.type == ArrayType(f32, AddressSpace.SHARED, 20, (4, 5))
    assert local[0].result.type == ArrayType(i32, AddressSpace.LOCAL, 6, (2, 3))


def test_one_d_kernels_compile_exactly_as_before() -> None:
    @rk.kernel
    def saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
        i = rk.global_id(0)
        if i < n:
            y[i] = a * x[i] + y[i]

    assert "shape" not in str(saxpy.ir)
    assert rk.Array[f32] == ArrayType(f32) and rk.Array[f32, 1] == ArrayType(f32)


TABLE = np.array([[1, 2], [3, 4]], dtype=np.int32)


@rk.kernel
def reads_table_twice(out: Array[i32]):
    i = rk.global_id(0)
    if i < 4:
        out[i] = TABLE[i // 2, i % 2] + TABLE[0, 0] + TABLE.shape[1]


def test_a_module_array_is_embedded_once_at_the_top() -> None:
    fn = reads_table_twice.ir.kernels[0]
    tables = [s for s in walk(fn.body) if isinstance(s, ConstArray)]
    assert len(tables) == 1 and fn.body[0] is tables[0]
    assert tables[0].data == (1, 2, 3, 4)
    assert tables[0].result.type == ArrayType(i32, AddressSpace.CONSTANT, 4, (2, 2))


def test_annotation_rejects_bad_ranks() -> None:
    with pytest.raises(TypeError, match="N = 1 to 3"):
        Array[f32, 4]
    with pytest.raises(TypeError, match="N = 1 to 3"):
        Array[f32, 0]


def test_conditional_expression_between_arrays_says_to_use_statements(tmp_path: Path) -> None:
    body = """
    @rk.kernel
    def k(a: Array[f32], b: Array[f32], c: i32):
        x = a if c > 0 else b
        x[0] = 1.0
    """
    check(tmp_path, body, "a if c", "cannot choose between arrays")


def test_if_statements_choose_between_arrays(backend: str) -> None:
    @rk.kernel
    def pick(a: Array[f32], b: Array[f32], c: i32):
        if c > 0:
            x = a
        else:
            x = b
        x[0] = 5.0

    a, b = np.zeros(1, np.float32), np.zeros(1, np.float32)
    pick.launch(1, 1, (a, b, 0), backend=backend)
    assert (a[0], b[0]) == (0.0, 5.0)

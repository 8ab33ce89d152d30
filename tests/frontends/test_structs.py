"""@rk.struct, Vec[T, N] and tuple returns in the frontend: what they translate to, and their errors."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, Vec, f32, i32, u32
from ringkernel.ringir import TupleType

HERE = Path(__file__).name


@rk.struct
class P:
    x: f32
    y: f32


@rk.struct
class Q:
    p: Vec[f32, 2]
    n: u32


@rk.func
def minmax(a: f32, b: f32) -> tuple[f32, f32]:
    if a < b:
        return a, b
    return b, a


@rk.func
def swapped(p: P) -> P:
    return P(y=p.x, x=p.y)


@rk.func
def spread(q: Q, k: f32) -> tuple[Q, f32]:
    r = q
    r.p = q.p * k
    return r, q.p[0] + q.p[1]


@rk.kernel
def uses_everything(a: Array[P], qs: Array[Q], out: Array[f32], q: Q, n: i32):
    i = rk.global_id(0)
    if i < n:
        lo, hi = minmax(a[i].x, a[i].y)
        a[i] = swapped(a[i])
        r, total = spread(q, hi - lo)
        qs[i] = r
        v: Vec[f32, 2] = Vec[f32, 2](lo, hi)
        v += r.p
        x, y = v
        out[i] = x + y + total + minmax(1.0, 2.0)[1] + swapped(P(1.0, 2.0)).x


def test_aggregates_flatten_to_scalars_in_the_ir() -> None:
    ir = uses_everything.ir
    kernel = ir.get("uses_everything")
    assert [str(p) for p in kernel.params] == ["%a", "%qs", "%out", "%q.p.0", "%q.p.1", "%q.n", "%n"]
    assert [str(p.type) for p in kernel.params[:2]] == ["array<u32, global>"] * 2
    assert ir.get("minmax").return_type == TupleType((rk.f32, rk.f32))
    assert str(ir.get("spread").return_type) == "tuple<f32, f32, u32, f32>"
    assert rk.ringir.parse(str(ir)) == ir


@pytest.mark.parametrize("backend", ["cpu"])
def test_aggregates_compute_what_python_would(backend: str) -> None:
    n = 4
    a = np.zeros(n, P.dtype)
    a["x"], a["y"] = [3, 1, 5, 2], [1, 4, 2, 6]
    qs = np.zeros(n, Q.dtype)
    out = np.zeros(n, np.float32)
    q = Q(p=[1.0, 2.0], n=9)
    orig = a.copy()
    uses_everything[1, 32, backend](a, qs, out, q, n)
    lo, hi = np.minimum(orig["x"], orig["y"]), np.maximum(orig["x"], orig["y"])
    np.testing.assert_array_equal(a["x"], orig["y"])
    np.testing.assert_array_equal(qs["p"], np.outer(hi - lo, [1.0, 2.0]))
    assert (qs["n"] == 9).all()
    np.testing.assert_allclose(out, lo + hi + (hi - lo) * 3 + 3 + 2 + 2)


def test_each_target_accepts_the_output() -> None:
    from ringkernel.lowering.cuda.ptxas import check_ptx
    from ringkernel.lowering.msl.check import check_msl
    from ringkernel.lowering.wgsl.naga import check_wgsl

    check_wgsl(uses_everything.compile("wgsl"))
    try:
        check_msl(uses_everything.compile("msl"))
    except rk.CompileError as exc:
        if "needs clang" not in str(exc):
            raise
    try:
        check_ptx(uses_everything.compile("ptx"))
    except rk.CompileError as exc:
        if "ptxas" not in str(exc) or "not found" not in str(exc):
            raise


def _error(kernel) -> rk.CompileError:
    with pytest.raises(rk.CompileError) as info:
        kernel.compile("rir")
    return info.value


@rk.kernel
def unknown_field(a: Array[P]):
    a[0].x = a[0].z


@rk.kernel
def wrong_field_type(a: Array[P]):
    a[0] = P(x=1.0, y=True)


@rk.kernel
def vec_too_long(a: Array[f32]):
    v = Vec[f32, 70000].zeros()
    a[0] = v[0]


@rk.kernel
def vec_param_too_short(a: Array[f32], v: Vec[f32, 0]):
    a[0] = 1.0


@rk.kernel
def unpack_three(a: Array[f32]):
    x, y, z = minmax(1.0, 2.0)


@rk.func
def returns_one(a: f32) -> tuple[f32, f32]:
    return a


@rk.kernel
def calls_returns_one(a: Array[f32]):
    x, y = returns_one(1.0)


@rk.func
def returns_three(a: f32) -> tuple[f32, f32]:
    return a, a, a


@rk.kernel
def calls_returns_three(a: Array[f32]):
    x, y = returns_three(1.0)


@rk.kernel
def tuple_in_arithmetic(a: Array[f32]):
    a[0] = minmax(1.0, 2.0) + 1.0


@rk.kernel
def constant_index_out_of_range(a: Array[f32]):
    v = Vec[f32, 4].zeros()
    a[0] = v[4]


@rk.kernel
def missing_field(a: Array[P]):
    a[0] = P(x=1.0)


@rk.kernel
def scalar_into_struct(a: Array[P]):
    p = a[0]
    p = 1.0  # noqa: F841 (the error under test)


@rk.kernel
def field_of_a_number(a: Array[f32]):
    a[0] = a[1].x


@rk.kernel
def tuple_parameter(t: tuple[f32, f32]):
    pass


@rk.kernel
def wrong_struct_argument(a: Array[P], q: Q):
    a[0] = swapped(q)


ERRORS = [
    (unknown_field, "struct P has no field 'z' (fields: x, y)", "a[0].z"),
    (wrong_field_type, "the bool True cannot be used as f32", "True"),
    (vec_too_long, "Vec length 70000 is out of range; use 1 to 65536", "Vec[f32, 70000].zeros"),
    (vec_param_too_short, "parameter 'v': Vec length 0 is out of range", "Vec[f32, 0]"),
    (unpack_three, "cannot unpack 2 values (tuple[f32, f32]) into 3 targets", "x, y, z"),
    (returns_one, "the returned value is a f32, but tuple[f32, f32] is needed here", "a"),
    (returns_three, "returns tuple[f32, f32], 2 values; here are 3", "a, a, a"),
    (tuple_in_arithmetic, "arithmetic on a tuple[f32, f32] is not supported", "minmax(1.0, 2.0) + 1.0"),
    (constant_index_out_of_range, "index 4 is out of range for Vec[f32, 4] (0 to 3)", "4"),
    (missing_field, "struct P needs a value for field(s) y", "P(x=1.0)"),
    (scalar_into_struct, "'p' holds a P; a f32 cannot be assigned to it", "1.0"),
    (field_of_a_number, "'a[1]' is a number; only struct values have fields", "a[1].x"),
    (tuple_parameter, "kernel parameter 't' cannot be a tuple", "tuple[f32, f32]"),
    (wrong_struct_argument, "argument 'p' is a Q, but P is needed here", "q"),
]


@pytest.mark.parametrize("kernel, message, underlined", ERRORS, ids=[e[0].__name__ for e in ERRORS])
def test_errors_point_at_the_cause(kernel, message: str, underlined: str) -> None:
    if kernel in (returns_one, returns_three):
        kernel = calls_returns_one if kernel is returns_one else calls_returns_three
    err = _error(kernel)
    assert message in err.message
    assert err.filename.endswith(HERE)
    start = err.col - 1  # type: ignore[operator]
    assert err.source_line[start:start + len(underlined)] == underlined  # type: ignore[index]
    assert str(err).splitlines()[-1].count("^") == len(underlined)


def _load(tmp_path: Path, source: str):
    path = tmp_path / "structdefs.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location("structdefs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["structdefs"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop("structdefs", None)
    return module


@pytest.mark.parametrize("field, message", [
    ("a: Vec[f32, 0]", "Vec length 0 is out of range"),
    ("a: Node", "struct Node cannot contain itself"),
    ("a: list", "unsupported type"),
])
def test_bad_struct_fields_are_reported_at_the_field(tmp_path: Path, field: str, message: str) -> None:
    source = f"""
        from __future__ import annotations
        import ringkernel as rk
        from ringkernel import Vec, f32, f64

        @rk.struct
        class Inner:
            x: f32

        @rk.struct
        class Node:
            ok: f32
            {field}
        """
    with pytest.raises(rk.CompileError) as info:
        _load(tmp_path, source)
    assert message in info.value.message
    assert info.value.line == 13 and info.value.source_line.strip() == field  # type: ignore[union-attr]


def test_a_struct_needs_fields() -> None:
    with pytest.raises(rk.CompileError, match="has no fields"):
        @rk.struct
        class Empty:
            pass


def test_ringc_compiles_structs_without_running_the_file(tmp_path: Path, capsys) -> None:
    from ringkernel.cli import main

    path = tmp_path / "k.py"
    path.write_text(textwrap.dedent("""
        import ringkernel as rk
        from ringkernel import Array, Vec, f32, i32

        @rk.struct
        class Body:
            pos: Vec[f32, 3]
            m: f32

        @rk.func
        def split(b: Body) -> tuple[f32, f32]:
            return b.pos[0], b.m

        @rk.kernel
        def k(a: Array[Body], out: Array[f32]):
            x, m = split(a[0])
            out[0] = x * m
        """))
    assert main([str(path), "-t", "rir"]) == 0
    static = capsys.readouterr().out
    module = _load(tmp_path, path.read_text())
    assert static == str(module.k.ir)
    assert main([str(path), "-t", "rir", "--kernel", "Body"]) == 1
    assert "'Body' is a struct" in capsys.readouterr().err


@rk.func
def bump(a: Array[u32], i: i32):
    a[i] = a[i] + u32(1)


@rk.kernel
def atomic_on_struct_array(a: Array[P]):
    rk.atomic_add(a, 0, u32(1))


@rk.kernel
def struct_array_as_u32_argument(a: Array[P]):
    bump(a, 0)


@rk.kernel
def compare_structs(a: Array[P], out: Array[f32]):
    if a[0] == a[1]:
        out[0] = 1.0


@rk.kernel
def vec_as_condition(out: Array[f32]):
    v = Vec[f32, 2].zeros()
    if v:
        out[0] = 1.0


@pytest.mark.parametrize("kernel, message", [
    (atomic_on_struct_array, "'a' is an Array[P]; atomic_add() on its words is not supported"),
    (struct_array_as_u32_argument, "'a' is an Array[P]; passing it as argument 'a' is not supported"),
    (compare_structs, "a P value cannot be used as a number here"),
    (vec_as_condition, "a Vec[f32, 2] value cannot be used as a number here"),
])
def test_a_struct_array_is_never_silently_its_words(kernel, message: str) -> None:
    """Regression: Array[S] is array<u32> in the IR; atomics and u32 parameters took it unchecked."""
    assert message in _error(kernel).message


@rk.kernel
def declared_not_assigned(a: Array[P]):
    p: P
    p.x = 1.0  # noqa: F821 (the error under test)
    a[0] = p  # noqa: F821


def test_a_declared_struct_needs_a_value_first() -> None:
    err = _error(declared_not_assigned)
    assert "'p' may be used before it is assigned" in err.message and "'p = P(...)'" in err.message

"""Language gaps found while porting real kernels: annotations, name resolution, atomics, bitcast.

No ``from __future__ import annotations`` here: these annotations are real
objects, as most users write them (the string case has its own file).
"""

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, u32
from ringkernel.ringir import BOOL, F32, F64, I32, I64, U32, U64, ArrayType, AtomicCAS, Bitcast, Const, walk
from ringkernel.ringir.passes.constfold import fold_constants


def _param_types(k) -> list:
    fn = k.ir.kernels[-1]
    return [p.type for p in fn.params]


# --- 1. numpy and Python types as annotations ------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (bool, BOOL), (np.bool_, BOOL), (np.float32, F32), (np.float64, F64), (np.int32, I32),
        (np.uint32, U32), (np.int64, I64), (np.uint64, U64), (float, F32), (int, I32),
        (rk.f32, F32), (np.dtype("float32"), F32), (np.dtype("u8"), U64),
    ],
    ids=repr,
)
def test_array_accepts_numpy_and_python_element_types(annotation, expected) -> None:
    assert Array[annotation] == ArrayType(expected)
    assert rk.Array[annotation] == ArrayType(expected)


@pytest.mark.parametrize("annotation", [np.complex128, np.datetime64, np.complex64, np.dtype("U3")], ids=repr)
def test_array_of_an_unsupported_numpy_type_says_which_types_work(annotation) -> None:
    with pytest.raises(TypeError, match=r"has no RingIR type; use one of f32, f64"):
        Array[annotation]


def test_array_of_a_non_type_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match=r"takes a scalar element type .* got 'x'"):
        Array["x"]


def test_numpy_annotations_on_kernel_parameters() -> None:
    @rk.kernel
    def k(flags: Array[bool], x: Array[np.float32], a: np.float32, n: np.int32, big: np.uint64,
          on: np.bool_):
        i = rk.global_id(0)
        if i < n and flags[i] and on:
            x[i] = x[i] * a

    assert _param_types(k) == [ArrayType(BOOL), ArrayType(F32), F32, I32, U64, BOOL]


def test_unsupported_numpy_scalar_annotation_is_a_located_compile_error() -> None:
    @rk.kernel
    def k(x: Array[f32], h: np.complex64):
        x[0] = 1.0

    with pytest.raises(rk.CompileError, match="complex64 has no RingIR type") as info:
        k.ir
    assert info.value.line is not None and "np.complex64" in str(info.value)


# --- 2. names resolve as Python resolves them ------------------------------------------------


def _nested_kernel():
    f64_alias = rk.f64
    F = rk.f32
    G = rk.f32  # used only in a body annotation: Python makes no closure cell for it
    scale = 3

    @rk.kernel
    def k(x: Array[f64_alias], y: Array[F], n: i32):
        acc: G = 0.0
        i = rk.global_id(0)
        if i < n:
            acc = F(x[i]) * scale
            y[i] = acc

    return k


def test_kernel_inside_a_function_sees_its_locals_in_annotations_and_body() -> None:
    k = _nested_kernel()
    assert _param_types(k) == [ArrayType(F64), ArrayType(F32), I32]
    text = k.compile("rir")
    assert "const 3" in text


def test_nested_kernel_runs_on_cpu() -> None:
    k = _nested_kernel()
    x = np.arange(8, dtype=np.float64)
    y = np.zeros(8, np.float32)
    k.launch(1, 8, (x, y, 8), backend="cpu")
    np.testing.assert_array_equal(y, (x * 3).astype(np.float32))


def test_kernel_made_by_a_helper_decorator_still_resolves_enclosing_names() -> None:
    def my_kernel(fn):
        return rk.kernel(fn)

    def build():
        T = rk.u32

        @my_kernel
        def k(x: Array[T]):
            x[0] = T(1)

        return k

    assert _param_types(build()) == [ArrayType(U32)]


def test_an_unknown_name_in_an_annotation_is_still_located() -> None:
    def build():
        @rk.kernel
        def k(x: Array[f32], y: "Array[Nope]"):  # noqa: F821
            x[0] = 1.0

        return k

    with pytest.raises(rk.CompileError, match="name 'Nope' is not defined") as info:
        build().ir
    assert info.value.col is not None


def test_kernel_keeps_no_reference_to_enclosing_arrays() -> None:
    big = np.zeros(10, np.float32)

    def build(data):
        F = rk.f32

        @rk.kernel
        def k(x: "Array[F]"):
            x[0] = 1.0

        return k

    k = build(big)
    assert all(v is not big for v in (k._enclosing or {}).values())
    assert _param_types(k) == [ArrayType(F32)]


# --- 3. f32 atomic min/max --------------------------------------------------------------------


def test_atomic_min_max_on_f32_build_ir() -> None:
    @rk.kernel
    def k(x: Array[f32], out: Array[f32]):
        i = rk.global_id(0)
        rk.atomic_max(out, 0, x[i])
        rk.atomic_min(out, 1, x[i])

    text = k.compile("rir")
    assert "atomic_max" in text and "atomic_min" in text


def test_bitwise_atomic_on_f32_names_the_float_atomics() -> None:
    @rk.kernel
    def k(x: Array[f32]):
        rk.atomic_or(x, 0, 1.0)

    with pytest.raises(rk.CompileError, match="add, sub, min, max and exchange"):
        k.ir


def test_atomic_cas_on_f32_is_a_cas_of_the_bits() -> None:
    """Issue 15 turned the old refusal into a bitwise CAS (tests/runtime/test_atomic_cas_float.py)."""
    @rk.kernel
    def k(x: Array[f32]):
        rk.atomic_cas(x, 0, 1.0, 2.0)

    (cas,) = [s for s in walk(k.ir.kernels[-1].body) if isinstance(s, AtomicCAS)]
    assert cas.result.type == F32


# --- 4. rk.bitcast ----------------------------------------------------------------------------


def test_bitcast_builds_a_bitcast_instruction() -> None:
    @rk.kernel
    def k(x: Array[f32], bits: Array[u32]):
        i = rk.global_id(0)
        bits[i] = rk.bitcast(x[i], u32)
        x[i] = rk.bitcast(bits[i] + u32(1), f32)

    casts = [s for s in walk(k.ir.kernels[-1].body) if isinstance(s, Bitcast)]
    assert [s.result.type for s in casts] == [U32, F32]
    assert "bitcast" in k.compile("rir")


def test_bitcast_size_mismatch_is_a_located_compile_error() -> None:
    @rk.kernel
    def k(x: Array[rk.f64], out: Array[u32]):
        out[0] = rk.bitcast(x[0], u32)

    with pytest.raises(rk.CompileError, match=r"f64 has 64 bits, u32 has 32") as info:
        k.ir
    assert "rk.bitcast(x[0], u32)" in str(info.value) and "^" in str(info.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("rk.bitcast(x[0] > 0.0, u32)", "does not apply to bool"),
        ("rk.bitcast(x[0], rk.bool_)", "non-bool scalar type"),
        ("rk.bitcast(x[0])", "takes a value and a type"),
        ("rk.bitcast(x[0], 3)", "non-bool scalar type"),
    ],
)
def test_bitcast_misuse(call: str, message: str, tmp_path) -> None:
    import importlib.util

    path = tmp_path / "bad_bitcast.py"
    path.write_text(
        "import ringkernel as rk\nfrom ringkernel import Array, f32, u32\n\n"
        "@rk.kernel\ndef k(x: Array[f32], out: Array[u32]):\n"
        f"    out[0] = u32({call})\n"
    )
    spec = importlib.util.spec_from_file_location("bad_bitcast", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(rk.CompileError, match=message) as info:
        mod.k.ir
    assert info.value.line == 6


def test_bitcast_of_literals_folds_to_the_bits() -> None:
    @rk.kernel
    def k(out: Array[u32], f: Array[f32], s: Array[i32]):
        out[0] = rk.bitcast(1.0, u32)
        f[0] = rk.bitcast(0x7F800000, f32)
        s[0] = rk.bitcast(-1.5, i32)

    folded = fold_constants(k.ir)
    consts = {s.value for s in walk(folded.kernels[-1].body) if isinstance(s, Const)}
    assert 0x3F800000 in consts
    assert float("inf") in consts
    assert int(np.array([-1.5], np.float32).view(np.int32)[0]) in consts
    assert not [s for s in walk(folded.kernels[-1].body) if isinstance(s, Bitcast)]


def test_bitcast_to_the_same_type_is_the_value() -> None:
    @rk.kernel
    def k(out: Array[u32]):
        out[0] = rk.bitcast(out[1], u32)

    assert not [s for s in walk(k.ir.kernels[-1].body) if isinstance(s, Bitcast)]

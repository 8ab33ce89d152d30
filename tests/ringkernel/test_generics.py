"""Generic kernels and device functions over rk.TypeVar (issue 14): specialize, launch, ringc."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, u8
from ringkernel.cli import main
from ringkernel.ringir import parse

T = rk.TypeVar("T")
U = rk.TypeVar("U")


@rk.func
def twice(v: T) -> T:
    return v + v


@rk.kernel
def scale(x: Array[T], a: T, n: i32):
    i = rk.global_id(0)
    if i < n:
        x[i] = twice(x[i]) * a


@rk.kernel
def convert(src: Array[T], dst: Array[U], n: i32):
    i = rk.global_id(0)
    if i < n:
        dst[i] = U(src[i])


@rk.kernel
def block_max(x: Array[T], out: Array[T]):
    buf = rk.shared_array(T, 64)
    t = rk.thread_id(0)
    buf[t] = x[rk.global_id(0)]
    rk.barrier()
    if t == 0:
        best = buf[0]
        for j in range(1, 64):
            best = max(best, buf[j])
        out[rk.block_id(0)] = best


def test_specialize_gives_a_plain_kernel_for_every_target() -> None:
    special = scale.specialize(T=f32)
    assert special.type_variables == []
    ir = special.ir
    assert [f.name for f in ir.kernels] == ["scale_f32"]
    assert "func @twice_f32(%v: f32) -> f32" in str(ir)
    for target in ("llvm", "ptx", "wgsl", "msl"):
        assert special.compile(target)


def test_specialize_accepts_numpy_types_and_names_and_caches_each_binding() -> None:
    assert scale.specialize(T=np.float32) is scale.specialize(T=f32) is scale.specialize(T="f32")
    assert scale.specialize(T=rk.i32) is not scale.specialize(T=f32)


def test_specialize_refuses_unknown_variables_and_non_types() -> None:
    with pytest.raises(TypeError, match="has no type variable V; its type variables: T"):
        scale.specialize(V=f32)
    with pytest.raises(TypeError, match="is not a scalar type"):
        scale.specialize(T="float")


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint32, np.uint8, np.int16, np.float16])
def test_launch_binds_the_type_variable_from_the_argument_dtypes(dtype, backend: str) -> None:
    if dtype == np.float16 and backend == "wgpu":
        from ringkernel.lowering.wgsl.naga import device_has_f16

        if not device_has_f16():
            pytest.skip("the wgpu adapter lacks shader-f16")
    x = np.arange(10).astype(dtype)
    scale[1, 16, backend](x, dtype(3), 10)
    with np.errstate(over="ignore"):
        want = (np.arange(10).astype(dtype) * dtype(2) * dtype(3)).astype(dtype)
    np.testing.assert_array_equal(x, want)


def test_one_compile_per_distinct_signature() -> None:
    @rk.kernel
    def fill(out: Array[T], v: T):
        out[rk.global_id(0)] = v

    for _ in range(3):
        fill[1, 4, "cpu"](np.zeros(4, np.float32), np.float32(1))
    assert len(fill._specializations) == 1
    first = fill.specialize(T=f32)
    ir = first.ir
    fill[1, 4, "cpu"](np.zeros(4, np.int32), 7)
    assert len(fill._specializations) == 2
    assert fill.specialize(T=f32).ir is ir  # built once, kept


def test_a_python_number_binds_only_what_nothing_else_binds(backend: str) -> None:
    @rk.kernel
    def fill(out: Array[f32], v: T):
        out[rk.global_id(0)] = f32(v)

    out = np.zeros(4, np.float32)
    fill[1, 4, backend](out, 2)  # T = i32 from the int
    assert fill.specialize(T=i32) in fill._specializations.values()
    x = np.zeros(4, np.uint8)
    scale[1, 4, backend](x, 300 - 299, 4)  # the array binds T = u8; the int fits it
    assert scale.specialize(T=u8) in scale._specializations.values()


def test_conflicting_bindings_name_both_arguments() -> None:
    with pytest.raises(rk.LaunchError, match=r"T of kernel 'scale' is bound to f32 by argument 'x' "
                       r"\(float32\) and to i32 by argument 'a' \(int32\)"):
        scale[1, 4, "cpu"](np.zeros(4, np.float32), np.int32(2), 4)


def test_a_generic_array_needs_an_array() -> None:
    with pytest.raises(rk.LaunchError, match="argument 'x' of kernel 'scale' must be a numpy array"):
        scale[1, 4, "cpu"]([1.0, 2.0], 2.0, 2)


def test_an_unbound_type_variable_at_compile_suggests_specialize() -> None:
    with pytest.raises(rk.CompileError) as info:
        scale.compile("ptx")
    err = info.value
    assert "has the generic type T" in err.message and "scale.specialize(T=f32)" not in err.message
    assert "kernel.specialize(T=f32)" in err.message and "ringc --specialize T=f32" in err.message
    assert err.line is not None and "Array[T]" in (err.source_line or "")


def test_a_type_variable_only_in_the_body_is_an_error_at_its_use() -> None:
    @rk.kernel
    def k(out: Array[f32]):
        out[0] = T(1)

    with pytest.raises(rk.CompileError, match="'T\\(1\\)' has the generic type T") as info:
        k.compile("rir")
    assert "T(1)" in (info.value.source_line or "")


def test_two_type_variables_and_casts_to_them(backend: str) -> None:
    src = np.array([-1.5, 0.5, 2.9, 300.0], np.float32)
    dst = np.zeros(4, np.uint8)
    convert[1, 4, backend](src, dst, 4)
    np.testing.assert_array_equal(dst, [0, 0, 2, 255])  # f32 -> u8 saturates
    assert convert.specialize(T=f32, U=u8).ir.kernels[0].name == "convert_f32_u8"


def test_shared_arrays_of_a_type_variable(backend: str) -> None:
    x = np.random.default_rng(0).integers(-1000, 1000, 128).astype(np.int32)
    out = np.zeros(2, np.int32)
    block_max[2, 64, backend](x, out)
    np.testing.assert_array_equal(out, x.reshape(2, 64).max(axis=1))


def test_a_generic_func_is_specialized_per_call_site_types() -> None:
    @rk.kernel
    def both(a: Array[f32], b: Array[i32]):
        a[0] = twice(a[0])
        b[0] = twice(b[0])
        b[1] = twice(3)  # a literal alone binds its own type

    text = both.compile("rir")
    assert "func @twice_f32" in text and "func @twice_i32" in text
    a, b = np.array([1.5], np.float32), np.array([4, 0], np.int32)
    both[1, 1, "cpu"](a, b)
    assert a[0] == 3.0 and list(b) == [8, 6]


def test_conflicting_func_arguments_are_a_compile_error_at_the_call() -> None:
    @rk.func
    def pick(x: T, y: T) -> T:
        return x

    @rk.kernel
    def k(a: Array[f32], b: Array[i32]):
        a[0] = pick(a[0], b[0])

    with pytest.raises(rk.CompileError, match="T of 'pick' is bound to f32 by argument 'x' and to i32 "
                       "by argument 'y'") as info:
        k.compile("rir")
    assert "b[0]" in (info.value.source_line or "")


# --- ringc --specialize ----------------------------------------------------------------------

GENERIC_FILE = textwrap.dedent(
    """\
    import ringkernel as rk
    from ringkernel import Array, i32

    T = rk.TypeVar("T")
    U = rk.TypeVar("U")


    @rk.func
    def twice(v: T) -> T:
        return v + v


    @rk.kernel
    def scale(x: Array[T], a: T, n: i32):
        i = rk.global_id(0)
        if i < n:
            x[i] = twice(x[i]) * a


    @rk.kernel
    def convert(src: Array[T], dst: Array[U], n: i32):
        i = rk.global_id(0)
        if i < n:
            dst[i] = U(src[i])
    """
)


@pytest.fixture()
def generic_file(tmp_path: Path) -> Path:
    path = tmp_path / "generic.py"
    path.write_text(GENERIC_FILE)
    return path


def _ringc(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_ringc_specialize_matches_the_decorated_kernel(capsys, generic_file: Path) -> None:
    argv = ("-t", "rir", "--specialize", "T=f32", "--specialize", "U=u8")
    code, out, err = _ringc(capsys, generic_file, *argv)
    assert (code, err) == (0, "")
    module = parse(out)
    assert {f.name for f in module.kernels} == {"scale_f32", "convert_f32_u8"}
    assert str(module.get("scale_f32")) == str(scale.specialize(T=f32).ir.get("scale_f32"))


def test_ringc_specialize_checks_ptx(capsys, generic_file: Path) -> None:
    argv = ("-t", "ptx", "-k", "scale", "--specialize", "T=i16", "--check")
    code, out, err = _ringc(capsys, generic_file, *argv)
    assert (code, err) == (0, "")
    assert ".entry scale_i16" in out


def test_ringc_without_specialize_points_at_the_generic_parameter(capsys, generic_file: Path) -> None:
    code, out, err = _ringc(capsys, generic_file, "-t", "rir", "-k", "scale")
    assert code == 1 and out == ""
    assert f"{generic_file}:14:" in err and "ringc --specialize T=f32" in err


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--specialize", "V=f32"], 1, "no kernel or func in this file has a type variable V"),
        (["--specialize", "T=f99"], 2, "invalid type 'f99'"),
        (["--specialize", "T"], 2, "expected e.g. T=f32"),
        (["--specialize", "T=f32", "--specialize", "T=i32"], 2, "binds T twice"),
    ],
)
def test_ringc_specialize_errors(capsys, generic_file: Path, argv, code, message) -> None:
    got, _, err = _ringc(capsys, generic_file, "-t", "rir", "-k", "scale", *argv)
    assert got == code and message in err


def _kernel_with_a_local_type_variable():
    V = rk.TypeVar("V")

    @rk.kernel
    def copy_first(x: "Array[V]", n: i32):  # noqa: UP037 (V only in a string: no closure cell)
        x[0] = x[1]

    return copy_first


def test_a_type_variable_of_the_enclosing_function_in_a_string_annotation() -> None:
    k = _kernel_with_a_local_type_variable()
    assert k.type_variables == ["V"]
    x = np.array([0, 5], np.int16)
    k[1, 1, "cpu"](x, 2)
    assert list(x) == [5, 5]

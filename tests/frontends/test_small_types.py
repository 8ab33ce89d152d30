"""i8 u8 i16 u16 f16 (issue 14): promotion, wrapping, f16 rounding, errors, every target.

Semantics under test (docs/dsl.md "Small types"): small integers promote to
i32 for arithmetic and wrap when stored or cast back; f16 arithmetic is done
in f32 and rounded to f16 after every operation (numpy's float16 results);
float-to-small-int conversions saturate. Each kernel runs on cpu and wgpu
(WGSL emulates the integers with packed u32 words; f16 needs shader-f16).
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f16, f32, i8, i16, i32, u8, u16, u32
from ringkernel.lowering.cuda.ptxas import check_ptx
from ringkernel.lowering.msl.check import check_msl
from ringkernel.lowering.msl.cpu_exec import MslCpuProgram
from ringkernel.ringir.diagnostics import CompileError


def _skip_without_f16(backend: str) -> None:
    if backend == "wgpu":
        from ringkernel.lowering.wgsl.naga import device_has_f16

        if not device_has_f16():
            pytest.skip("the wgpu adapter lacks the shader-f16 feature")


@rk.kernel
def int_promotion(a: Array[u8], b: Array[i8], s: Array[i16], out_i: Array[i32], out_u8: Array[u8],
                  out_i8: Array[i8], out_u16: Array[u16], n: i32):
    i = rk.global_id(0)
    if i < n:
        out_i[i] = a[i] + a[i] + b[i] * s[i]  # promoted: no wrap at 8 or 16 bits
        out_u8[i] = a[i] + 100  # wraps on the store
        out_i8[i] = b[i] - 100
        out_u16[i] = s[i] * 3


def _int_args(n: int = 300) -> list:
    r = np.random.default_rng(1)
    return [
        r.integers(0, 256, n).astype(np.uint8),
        r.integers(-128, 128, n).astype(np.int8),
        r.integers(-32768, 32768, n).astype(np.int16),
        np.zeros(n, np.int32), np.zeros(n, np.uint8), np.zeros(n, np.int8), np.zeros(n, np.uint16), n,
    ]


def _int_expected(args: list) -> list:
    a, b, s = (x.astype(np.int64) for x in args[:3])
    return [
        (a + a + b * s).astype(np.int32),
        ((a + 100) % 256).astype(np.uint8),
        (b - 100).astype(np.int8),  # numpy's astype wraps two's complement
        (s * 3).astype(np.uint16),
    ]


def test_small_integers_promote_and_wrap_like_numpy(backend: str) -> None:
    args = _int_args()
    int_promotion.launch(5, 64, args, backend=backend)
    for got, want in zip(args[3:7], _int_expected(args)):
        np.testing.assert_array_equal(got, want)


def test_small_integers_run_in_msl_as_on_the_cpu() -> None:
    args = _int_args()
    MslCpuProgram(int_promotion.ir).launch("int_promotion", 5, 64, args)
    for got, want in zip(args[3:7], _int_expected(args)):
        np.testing.assert_array_equal(got, want)


@rk.kernel
def conversions(x: Array[f32], to_u8: Array[u8], to_i8: Array[i8], to_i16: Array[i16],
                bits: Array[u16], back: Array[f16], n: i32):
    i = rk.global_id(0)
    if i < n:
        to_u8[i] = u8(x[i])  # saturating: -5 -> 0, 300 -> 255, NaN -> 0
        to_i8[i] = i8(x[i])
        to_i16[i] = i16(i32(x[i]))  # i32 -> i16 wraps
        h = f16(x[i])
        bits[i] = rk.bitcast(h, u16)
        back[i] = rk.bitcast(bits[i], f16)


def test_conversions_saturate_from_floats_and_wrap_from_ints(backend: str) -> None:
    _skip_without_f16(backend)
    x = np.array([-5.0, 300.0, np.nan, 1.9, -1.9, 127.5, -200.0, 40000.0, 65535.0, 1e9], np.float32)
    n = len(x)
    outs = [np.zeros(n, t) for t in (np.uint8, np.int8, np.int16, np.uint16, np.float16)]
    conversions.launch(1, 16, [x, *outs, n], backend=backend)
    np.testing.assert_array_equal(outs[0], [0, 255, 0, 1, 0, 127, 0, 255, 255, 255])
    np.testing.assert_array_equal(outs[1], [-5, 127, 0, 1, -1, 127, -128, 127, 127, 127])
    wide = np.array([-5, 300, 0, 1, -1, 127, -200, 40000, 65535, 1000000000], np.int64)
    np.testing.assert_array_equal(outs[2], wide.astype(np.int16))
    with np.errstate(over="ignore", invalid="ignore"):
        np.testing.assert_array_equal(outs[3], x.astype(np.float16).view(np.uint16))
        np.testing.assert_array_equal(outs[4].view(np.uint16), x.astype(np.float16).view(np.uint16))


@rk.kernel
def half_math(x: Array[f16], y: Array[f16], out: Array[f16], wide: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = (x[i] + y[i]) * x[i] - y[i] / x[i]
        wide[i] = x[i] * f32(1.0) + y[i]  # with an f32 operand the result is f32


def test_f16_rounds_after_every_operation_like_numpy(backend: str) -> None:
    _skip_without_f16(backend)
    r = np.random.default_rng(2)
    n = 500
    x = r.uniform(0.5, 60, n).astype(np.float16)
    y = r.uniform(-60, 60, n).astype(np.float16)
    out, wide = np.zeros(n, np.float16), np.zeros(n, np.float32)
    half_math.launch(8, 64, [x, y, out, wide, n], backend=backend)
    np.testing.assert_array_equal(out, (x + y) * x - y / x)  # numpy float16 rounds per op
    np.testing.assert_allclose(wide, x.astype(np.float32) + y.astype(np.float32), rtol=1e-6)


@rk.kernel
def shared_bytes(src: Array[u8], out: Array[u8], n: i32):
    buf = rk.shared_array(u8, 64)
    t = rk.thread_id(0)
    i = rk.global_id(0)
    buf[t] = src[i] if i < n else u8(0)
    rk.barrier()
    if i < n:
        out[i] = buf[63 - t]  # neighbours in one word were written by different threads


def test_shared_small_arrays_keep_every_threads_byte(backend: str) -> None:
    n = 256
    src = (np.arange(n) * 7 % 256).astype(np.uint8)
    out = np.zeros(n, np.uint8)
    shared_bytes.launch(4, 64, [src, out, n], backend=backend)
    np.testing.assert_array_equal(out, src.reshape(4, 64)[:, ::-1].reshape(-1))


@rk.kernel
def scalar_args(a: u8, b: i16, h: f16, out: Array[i32], hout: Array[f16]):
    out[0] = a + b
    out[1] = i32(a)
    hout[0] = h * h


def test_small_scalar_arguments(backend: str) -> None:
    _skip_without_f16(backend)
    out, hout = np.zeros(2, np.int32), np.zeros(1, np.float16)
    scalar_args.launch(1, 1, [np.uint8(250), -30000, np.float16(3.5), out, hout], backend=backend)
    np.testing.assert_array_equal(out, [250 - 30000, 250])
    assert hout[0] == np.float16(12.25)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (256, r"'a' of kernel 'scalar_args' = 256 is out of range for u8 \[0, 255\]"),
        (-1, r"out of range for u8"),
        (2.5, "got the float"),
    ],
)
def test_small_scalar_launch_arguments_are_range_checked(value, message) -> None:
    with pytest.raises(rk.LaunchError, match=message):
        scalar_args.launch(1, 1, [value, 0, 1.0, np.zeros(2, np.int32), np.zeros(1, np.float16)],
                           backend="cpu")


def test_a_float_too_large_for_f16_is_a_launch_error_not_inf() -> None:
    expected = r"'h' of kernel 'scalar_args' = 100000.0 is out of range for f16 \[-65504, 65504\]"
    with pytest.raises(rk.LaunchError, match=expected):
        scalar_args.launch(1, 1, [1, 0, 1e5, np.zeros(2, np.int32), np.zeros(1, np.float16)],
                           backend="cpu")


def test_small_arrays_need_their_numpy_dtype() -> None:
    with pytest.raises(rk.LaunchError, match="must have dtype uint8, got int32"):
        shared_bytes.launch(1, 64, [np.zeros(64, np.int32), np.zeros(64, np.uint8), 64], backend="cpu")


# --- compile-time errors ----------------------------------------------------------------------


def _error(kernel) -> CompileError:
    with pytest.raises(CompileError) as info:
        kernel.ir
    return info.value


def test_mixed_signedness_suggests_the_exact_casts() -> None:
    @rk.kernel
    def k(out: Array[u32], n: u32):
        i = rk.global_id(0)
        if i < n:
            out[i] = 1

    err = _error(k)
    assert "different types i32 and u32" in err.message
    assert "u32(i) or i32(n)" in err.message
    assert err.line is not None and err.source_line and "i < n" in err.source_line


def test_mismatched_assignment_names_the_value_to_convert() -> None:
    @rk.kernel
    def k(out: Array[i32], n: u32):
        out[0] = n * 2

    err = _error(k)
    assert "convert it explicitly with i32(n * 2)" in err.message


def test_u8_with_u32_needs_no_cast_but_i8_with_u32_does() -> None:
    @rk.kernel
    def ok(a: Array[u8], out: Array[u32]):
        out[0] = out[0] + a[0]  # every u8 value is a u32 value

    ok.compile("rir")

    @rk.kernel
    def bad(a: Array[i8], out: Array[u32]):
        out[0] = out[0] + a[0]

    message = _error(bad).message  # a[0] promotes to i32, which does not mix with u32
    assert "different types u32 and i32" in message and "i32(out[0]) or u32(a[0])" in message


def test_literal_out_of_range_for_a_small_type() -> None:
    @rk.kernel
    def k(a: Array[u8]):
        a[0] = 300

    assert "the integer 300 does not fit in u8" in _error(k).message


def test_atomics_on_small_arrays_are_refused_with_a_fix() -> None:
    @rk.kernel
    def k(a: Array[u8]):
        rk.atomic_add(a, 0, 1)

    err = _error(k)
    assert "atomic_add() does not apply to u8 arrays" in err.message and "u32 array" in err.message


def test_f16_literal_too_large() -> None:
    @rk.kernel
    def k(a: Array[f16]):
        a[0] = 70000.0

    assert "too large for f16" in _error(k).message


# --- every target -----------------------------------------------------------------------------

KERNELS = [int_promotion, conversions, half_math, shared_bytes, scalar_args]


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
def test_ptx_through_ptxas(kernel) -> None:
    try:
        check_ptx(kernel.compile("ptx"))
    except CompileError as exc:
        if "ptxas" in exc.message and "not found" in exc.message:
            pytest.skip(exc.message)
        raise


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
def test_msl_through_clang(kernel) -> None:
    check_msl(kernel.compile("msl"))


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
def test_wgsl_through_naga(kernel) -> None:
    from ringkernel.lowering.wgsl.naga import WgpuUnavailable, check_wgsl, device_has_f16

    try:
        has_f16 = device_has_f16()
        check_wgsl(kernel.compile("wgsl", f16=has_f16))
    except WgpuUnavailable as exc:
        pytest.skip(str(exc))
    except CompileError as exc:
        if not has_f16 and "shader-f16" in exc.message:
            pytest.skip("the wgpu adapter lacks shader-f16")
        raise


def test_wgsl_f16_without_the_feature_is_a_clear_error() -> None:
    with pytest.raises(CompileError, match="only with the 'shader-f16' feature") as info:
        half_math.compile("wgsl")
    assert info.value.line is not None


def test_wgsl_enables_f16_only_where_it_is_used() -> None:
    assert half_math.compile("wgsl", f16=True).splitlines()[1] == "enable f16;"
    assert "enable f16" not in int_promotion.compile("wgsl", f16=True)


@rk.kernel
def bump_bytes(a: Array[u8], n: i32):
    i = rk.global_id(0)
    if i < n:
        a[i] = a[i] + 1


def test_device_arrays_of_small_types(backend: str) -> None:
    host = np.array([0, 1, 254, 255, 7], np.uint8)  # 5 bytes: not a whole number of words
    d = rk.to_device(host, backend)
    bump_bytes.launch(1, 8, (d, 5), backend=backend)
    np.testing.assert_array_equal(d.numpy(), (host + 1).astype(np.uint8))
    assert rk.device_array(3, np.float16, backend=backend).dtype == np.float16


def test_f16_on_an_x86_cpu_without_f16c_is_a_clear_error_not_a_crash() -> None:
    from llvmlite import binding

    from ringkernel.compiler import compile_module

    if not binding.get_default_triple().startswith("x86_64"):
        pytest.skip("F16C is an x86 extension")
    with pytest.raises(CompileError, match="needs a CPU with the F16C instructions"):
        compile_module(half_math.ir, "host", kernel="half_math", cpu="x86-64", features="+sse2,-f16c",
                       cache=False)
    compile_module(int_promotion.ir, "host", kernel="int_promotion", cpu="x86-64", features="+sse2,-f16c",
                   cache=False)  # no f16: no F16C needed


def test_bitcast_of_a_literal_to_a_16_bit_type_takes_the_16_bit_float() -> None:
    @rk.kernel
    def k(out: Array[u16], b: Array[i8]):
        out[0] = rk.bitcast(1.5, u16)
        b[0] = rk.bitcast(255, i8)

    out, b = np.zeros(1, np.uint16), np.zeros(1, np.int8)
    k[1, 1, "cpu"](out, b)
    assert out[0] == np.float16(1.5).view(np.uint16) and b[0] == -1


def test_small_actor_fields_are_a_located_error_naming_the_wide_type() -> None:
    with pytest.raises(CompileError, match="field 'a' has type u8, which actor state and messages do not "
                       "hold .*declare it u32 and convert with u8") as info:
        @rk.message
        class Small:
            a: u8

    assert info.value.line is not None


SMALL_CONSTANTS = '''\
import numpy as np
import ringkernel as rk
from ringkernel import Array

BIAS = np.uint8(200)
HALF = np.float16(0.5)


@rk.kernel
def k(a: Array[np.uint8], h: Array[np.float16]):
    a[0] = a[0] + BIAS
    h[0] = h[0] * HALF
'''


def test_ringc_reads_small_numpy_constants_statically(tmp_path, capsys) -> None:
    from ringkernel.cli import main

    path = tmp_path / "small_constants.py"
    path.write_text(SMALL_CONSTANTS)
    code = main([str(path), "-t", "rir"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert "%2: u8 = const 200" in out and "f16 = const 0.5" in out


@rk.kernel
def bump_all(a: Array[u8]):
    i = rk.global_id(0)
    a[i] = a[i] + 1


def test_checked_launches_see_the_element_length_of_packed_arrays(backend: str) -> None:
    a = np.zeros(5, np.uint8)  # two words on wgpu: index 5..7 are in the word but out of bounds
    with pytest.raises(rk.BoundsError, match="index 5"):
        bump_all.launch(1, 8, (a,), backend=backend, checked=True)
    np.testing.assert_array_equal(a, np.ones(5, np.uint8))

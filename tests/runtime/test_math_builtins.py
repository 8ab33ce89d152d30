"""The math builtins of issue 15 against Python's math module and numpy, on every target.

Each float function is compared in units in the last place (ulp) of the f32
result, within the bounds docs/dsl.md "Math" documents per target: cpu runs
libm, wgpu and the MSL text run the formulas of the WGSL/MSL helpers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, u32
from ringkernel.lowering.cuda import check_ptx, find_ptxas
from ringkernel.lowering.msl.check import check_msl, find_clang
from ringkernel.lowering.msl.cpu_exec import MslCpuProgram
from ringkernel.lowering.wgsl import check_wgsl
from ringkernel.lowering.wgsl.naga import WgpuUnavailable, get_device
from ringkernel.ringir.diagnostics import CompileError


@rk.kernel
def float_math(x: Array[f32], y: Array[f32], o: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        a = x[i]
        o[0 * n + i] = math.erf(a)
        o[1 * n + i] = math.erfc(a)
        o[2 * n + i] = math.lgamma(a)
        o[3 * n + i] = math.log1p(a)
        o[4 * n + i] = math.expm1(a)
        o[5 * n + i] = math.cbrt(a)
        o[6 * n + i] = math.atan2(a, y[i])
        o[7 * n + i] = math.hypot(a, y[i])
        o[8 * n + i] = math.copysign(a, y[i])


@rk.kernel
def float_class(x: Array[f32], o: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        o[3 * i] = i32(math.isnan(x[i]))
        o[3 * i + 1] = i32(np.isinf(x[i]))
        o[3 * i + 2] = i32(math.isfinite(x[i]))


@rk.kernel
def bits(a: Array[i32], b: Array[u32], oa: Array[i32], ob: Array[u32], n: i32):
    i = rk.global_id(0)
    if i < n:
        oa[4 * i] = rk.popc(a[i])
        oa[4 * i + 1] = rk.clz(a[i])
        oa[4 * i + 2] = rk.ffs(a[i])
        oa[4 * i + 3] = rk.brev(a[i])
        ob[4 * i] = rk.popc(b[i])
        ob[4 * i + 1] = rk.clz(b[i])
        ob[4 * i + 2] = rk.ffs(b[i])
        ob[4 * i + 3] = rk.brev(b[i])


@rk.kernel
def bits64(a: Array[rk.i64], o: Array[rk.i64], n: i32):
    i = rk.global_id(0)
    if i < n:
        o[4 * i] = rk.popc(a[i])
        o[4 * i + 1] = rk.clz(a[i])
        o[4 * i + 2] = rk.ffs(a[i])
        o[4 * i + 3] = rk.brev(a[i])


@rk.kernel
def clamps(x: Array[f32], k: Array[i32], o: Array[f32], ok: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        o[i] = rk.clamp(x[i], -1.5, 2.0)
        ok[i] = rk.clamp(k[i], 0, 9)
        ok[n + i] = max(k[i], 3)
        ok[2 * n + i] = min(k[i], 3, 5)


NAMES = ("erf", "erfc", "lgamma", "log1p", "expm1", "cbrt", "atan2", "hypot", "copysign")

# Documented bounds (docs/dsl.md, "Math"): ulp of the f32 result; lgamma also
# passes within an absolute 4e-6 (near its roots 1 and 2 no f32 formula is
# relatively accurate); atan2 and the exp/log outside |x| < 0.5 on wgpu are the
# driver's own functions (WGSL allows atan2 4096 ulp, exp 3 + 2|x| ulp).
ULPS = {
    "cpu": dict(erf=2, erfc=4, lgamma=4, log1p=2, expm1=2, cbrt=1, atan2=2, hypot=1, copysign=0),
    "wgpu": dict(erf=4, erfc=8, lgamma=8, log1p=4, expm1=4, cbrt=2, atan2=4096, hypot=2, copysign=0),
    "msl": dict(erf=4, erfc=8, lgamma=8, log1p=4, expm1=4, cbrt=2, atan2=2, hypot=2, copysign=0),
}


def _inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(15)
    x = np.concatenate([
        np.linspace(-9, 9, 721), rng.uniform(-1e-3, 1e-3, 100), rng.uniform(-1e-6, 1e-6, 50),
        rng.uniform(0.01, 30, 100), np.geomspace(1e-20, 1e20, 60), -np.geomspace(1e-20, 1e20, 60),
    ]).astype(np.float32)
    y = rng.uniform(-50, 50, x.size).astype(np.float32)
    return x, y


def _reference(name: str, a: float, b: float) -> float | None:
    fn = {"atan2": math.atan2, "hypot": math.hypot, "copysign": math.copysign}.get(name)
    try:
        want = fn(a, b) if fn else getattr(math, name)(a)
    except (OverflowError, ValueError):
        return None
    if not -3.4e38 < want < 3.4e38 or 0 < abs(want) < 1.2e-38:
        return None  # overflows f32, or a denormal (drivers may flush those)
    return want


def _allowed(target: str, name: str, a: float, want: float, got: float) -> bool:
    err = abs(float(got) - want)
    ulp = float(np.spacing(np.abs(np.float32(want))))
    bound = ULPS[target][name]
    if target == "wgpu" and abs(a) >= 0.5 and name in ("expm1", "log1p"):
        bound += 3 + 2 * abs(a)  # beyond the series: the driver's exp and log
    if target == "wgpu" and name == "erfc":
        bound += 3 + 2 * a * a  # the driver's exp(-x * x)
    if name == "lgamma" and err <= 4e-6:
        return True
    if name == "atan2" and target == "wgpu" and err <= 1e-5:
        return True
    return err <= bound * ulp


def _check_float_math(target: str, out: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    out = out.reshape(len(NAMES), x.size)
    bad = []
    for f, name in enumerate(NAMES):
        for i in range(x.size):
            a, b = float(x[i]), float(y[i])
            if name == "erfc" and target == "wgpu" and a > 9.0:
                continue  # results below 1e-36: lavapipe's exp near underflow
            want = _reference(name, a, b)
            if want is not None and not _allowed(target, name, a, want, out[f, i]):
                bad.append((name, a, b, float(out[f, i]), want))
    assert not bad, bad[:10]


def test_float_math_within_documented_ulps(backend: str) -> None:
    x, y = _inputs()
    out = np.zeros(len(NAMES) * x.size, np.float32)
    float_math.launch(grid=(x.size + 63) // 64, block=64, args=(x, y, out, x.size), backend=backend)
    _check_float_math(backend, out, x, y)


def test_float_math_specials(backend: str) -> None:
    inf, nan = float("inf"), float("nan")
    x = np.array([0.0, -0.0, inf, -inf, nan, 1.0, 2.0], np.float32)
    y = np.array([1.0, -1.0, 2.0, 3.0, inf, -0.0, nan], np.float32)
    out = np.zeros(len(NAMES) * x.size, np.float32).reshape(len(NAMES), x.size)
    float_math.launch(grid=1, block=x.size, args=(x, y, out.reshape(-1), x.size), backend=backend)
    erf, erfc, lgamma, log1p, expm1, cbrt, _atan2, hypot, copysign = out
    np.testing.assert_array_equal(erf[:4], [0.0, -0.0, 1.0, -1.0])
    np.testing.assert_array_equal(erfc[2:4], [0.0, 2.0])
    np.testing.assert_array_equal(lgamma[[0, 2, 3]], [inf, inf, inf])
    np.testing.assert_allclose(lgamma[5:7], [0.0, 0.0], atol=4e-6)  # the documented absolute bound
    np.testing.assert_array_equal(log1p[:3], [0.0, -0.0, inf])
    np.testing.assert_array_equal(expm1[:4], [0.0, -0.0, inf, -1.0])
    np.testing.assert_array_equal(cbrt[:4], [0.0, -0.0, inf, -inf])
    assert hypot[3] == inf and hypot[4] == inf  # an infinity wins over a NaN (C99)
    np.testing.assert_array_equal(copysign[:6], np.copysign(x[:6], y[:6]))
    np.testing.assert_array_equal(np.signbit(copysign[:6]), np.signbit(np.copysign(x[:6], y[:6])))
    assert all(np.isnan(f[4]) for f in (erf, erfc, lgamma, log1p, expm1, cbrt))


def test_float_class_is_exact(backend: str) -> None:
    x = np.array([0.0, -1.5, np.inf, -np.inf, np.nan, -np.nan, 3.4e38, 1e-40], np.float32)
    out = np.zeros(3 * x.size, np.int32)
    float_class.launch(grid=1, block=x.size, args=(x, out, x.size), backend=backend)
    want = np.stack([np.isnan(x), np.isinf(x), np.isfinite(x)], axis=1).astype(np.int32).reshape(-1)
    np.testing.assert_array_equal(out, want)


def _bits_reference(values: np.ndarray, width: int) -> np.ndarray:
    rows = []
    for v in values.tolist():
        u = v & ((1 << width) - 1)
        low = (u & -u).bit_length()
        rows.append([bin(u).count("1"), width - u.bit_length(), low,
                     int(f"{u:0{width}b}"[::-1], 2)])
    return np.array(rows, dtype=np.uint64 if width == 64 else np.uint32)


def test_integer_bit_functions(backend: str) -> None:
    a = np.array([0, 1, -1, 8, 0x7FFFFFFF, -(2**31), 0x00F0F000, 6], np.int32)
    b = a.view(np.uint32).copy()
    oa, ob = np.zeros(4 * a.size, np.int32), np.zeros(4 * a.size, np.uint32)
    bits.launch(grid=1, block=a.size, args=(a, b, oa, ob, a.size), backend=backend)
    want = _bits_reference(a, 32).reshape(-1)
    np.testing.assert_array_equal(ob, want)
    np.testing.assert_array_equal(oa, want.astype(np.uint32).view(np.int32))


def test_integer_bit_functions_64_bit_on_cpu() -> None:
    a = np.array([0, 1, -1, 1 << 40, -(2**63), 0x0F0F], np.int64)
    o = np.zeros(4 * a.size, np.int64)
    bits64.launch(grid=1, block=a.size, args=(a, o, a.size), backend="cpu")
    np.testing.assert_array_equal(o.view(np.uint64), _bits_reference(a, 64).reshape(-1))


def test_clamp_min_max(backend: str) -> None:
    x = np.array([-3.0, -1.5, 0.25, 2.0, 7.0], np.float32)
    k = np.array([-4, 0, 5, 9, 12], np.int32)
    o, ok = np.zeros_like(x), np.zeros(3 * k.size, np.int32)
    clamps.launch(grid=1, block=x.size, args=(x, k, o, ok, x.size), backend=backend)
    np.testing.assert_array_equal(o, np.clip(x, -1.5, 2.0))
    np.testing.assert_array_equal(ok, np.concatenate([np.clip(k, 0, 9), np.maximum(k, 3), np.minimum(k, 3)]))


def _clang_or_skip() -> None:
    try:
        find_clang()
    except CompileError as exc:
        pytest.skip(str(exc))


def test_msl_helpers_compute_within_documented_ulps() -> None:
    _clang_or_skip()
    x, y = _inputs()
    out = np.zeros(len(NAMES) * x.size, np.float32)
    MslCpuProgram(float_math.ir).launch("float_math", (x.size + 63) // 64, 64, [x, y, out, np.int32(x.size)])
    _check_float_math("msl", out, x, y)


def test_msl_bits_and_class_run() -> None:
    _clang_or_skip()
    a = np.array([0, 1, -1, 8, -(2**31), 6], np.int32)
    b = a.view(np.uint32).copy()
    oa, ob = np.zeros(4 * a.size, np.int32), np.zeros(4 * a.size, np.uint32)
    MslCpuProgram(bits.ir).launch("bits", 1, a.size, [a, b, oa, ob, np.int32(a.size)])
    np.testing.assert_array_equal(ob, _bits_reference(a, 32).reshape(-1))
    x = np.array([0.0, np.inf, -np.inf, np.nan], np.float32)
    oc = np.zeros(3 * x.size, np.int32)
    MslCpuProgram(float_class.ir).launch("float_class", 1, x.size, [x, oc, np.int32(x.size)])
    np.testing.assert_array_equal(oc, [0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0])


KERNELS = [float_math, float_class, bits, clamps]


@pytest.mark.skipif(find_ptxas() is None, reason="ptxas not installed")
@pytest.mark.parametrize("kernel", [*KERNELS, bits64], ids=lambda k: k.__name__)
def test_ptx_is_accepted_by_ptxas(kernel) -> None:
    check_ptx(kernel.compile("ptx"))


def test_ptx_uses_libdevice_and_bit_instructions() -> None:
    if find_ptxas() is None:
        pytest.skip("ptxas not installed")
    ptx = bits.compile("ptx")
    assert "popc.b32" in ptx and "clz.b32" in ptx and "brev.b32" in ptx


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
def test_wgsl_is_accepted_by_naga(kernel) -> None:
    try:
        get_device()
    except WgpuUnavailable as exc:
        pytest.skip(f"no wgpu device to run naga: {exc}")
    check_wgsl(kernel.compile("wgsl"))


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
def test_msl_is_accepted_by_clang(kernel) -> None:
    _clang_or_skip()
    check_msl(kernel.compile("msl"))


def test_wgsl_refuses_64_bit_bit_functions() -> None:
    with pytest.raises(CompileError, match="i64"):
        bits64.compile("wgsl")

"""f32 atomic min/max and bitcast reach every target and its real consumer accepts them.

PTX through ptxas, WGSL through naga, MSL through clang against the Metal shim
(and run on the host through the shim's exec mode, NaN rules included).
"""

from __future__ import annotations

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
def minmax(x: Array[f32], hi: Array[f32], lo: Array[f32], old: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        old[i] = rk.atomic_max(hi, i % 2, x[i])
        rk.atomic_min(lo, i % 2, x[i])


@rk.kernel
def shared_max(x: Array[f32], hi: Array[f32], bits: Array[u32]):
    s = rk.shared_array(f32, 1)
    t = rk.thread_id(0)
    if t == 0:
        s[0] = -3.0e38
    rk.barrier()
    rk.atomic_max(s, 0, x[rk.global_id(0)])
    rk.barrier()
    if t == 0:
        hi[0] = rk.atomic_max(hi, 0, s[0])
        bits[0] = rk.bitcast(s[0], u32) ^ rk.bitcast(rk.bitcast(bits[1], i32), u32)


KERNELS = [minmax, shared_max]


def _clang_or_skip() -> None:
    try:
        find_clang()
    except CompileError as exc:
        pytest.skip(str(exc))


@pytest.mark.skipif(find_ptxas() is None, reason="ptxas not installed")
@pytest.mark.parametrize("system_scope", [False, True])
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
def test_ptx_is_accepted_by_ptxas(kernel, system_scope: bool) -> None:
    ptx = kernel.compile("ptx", system_scope_atomics=system_scope)
    check_ptx(ptx)
    assert "cas.b32" in ptx  # PTX has no f32 min/max atomic: a compare-and-swap loop


def test_llvm_host_uses_atomicrmw_fmax_fmin() -> None:
    text = minmax.compile("llvm")
    assert "atomicrmw fmax" in text and "atomicrmw fmin" in text


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
def test_wgsl_is_accepted_by_naga(kernel) -> None:
    try:
        get_device()
    except WgpuUnavailable as exc:
        pytest.skip(f"no wgpu device to run naga: {exc}")
    wgsl = kernel.compile("wgsl")
    check_wgsl(wgsl)
    assert "atomicCompareExchangeWeak" in wgsl and "bitcast<u32>" in wgsl


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
def test_msl_is_accepted_by_clang(kernel) -> None:
    _clang_or_skip()
    msl = kernel.compile("msl")
    check_msl(msl)
    assert "atomic_compare_exchange_weak_explicit" in msl and "as_type<uint>" in msl


def test_msl_minmax_runs_with_nan_as_missing_data() -> None:
    _clang_or_skip()
    program = MslCpuProgram(minmax.ir)
    x = np.array([3.0, np.nan, -1.0, 7.0, np.nan, np.nan, 2.0, -9.0], np.float32)
    hi = np.array([np.nan, -np.inf], np.float32)
    lo = np.array([np.nan, np.inf], np.float32)
    old = np.zeros(len(x), np.float32)
    program.launch("minmax", 1, len(x), [x, hi, lo, old, np.int32(len(x))])
    np.testing.assert_array_equal(hi, [3.0, 7.0])
    np.testing.assert_array_equal(lo, [-1.0, -9.0])
    assert np.isnan(old[0]) and old[2] == 3.0 and old[1] == -np.inf


def test_wgsl_has_no_f64_bitcast() -> None:
    @rk.kernel
    def k(x: Array[rk.f64], out: Array[rk.u64]):
        out[0] = rk.bitcast(x[0], rk.u64)

    with pytest.raises(CompileError, match="WGSL does not support"):
        k.compile("wgsl")


def test_msl_bool_arrays_are_one_byte_like_numpy() -> None:
    _clang_or_skip()

    @rk.kernel
    def k(x: Array[np.float32], flags: Array[bool], out: Array[bool], n: np.int32):
        i = rk.global_id(0)
        if i < n:
            out[i] = x[i] > 0.0 and not flags[i]

    x = np.array([1.0, -1.0, 2.0, 3.0, -4.0], np.float32)
    flags = np.array([False, False, True, False, True])
    out = np.zeros(5, bool)
    MslCpuProgram(k.ir).launch("k", 1, 5, [x, flags, out, np.int32(5)])
    np.testing.assert_array_equal(out, (x > 0) & ~flags)

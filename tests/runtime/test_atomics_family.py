"""The whole atomic family (issue 15) on global and shared arrays, against numpy models.

Every op's final value and multiset of returned old values do not depend on
the order the threads ran in (add/sub/min/max/and/or/xor commute; inc/dec
apply the same wrap step every time), so each is checked exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, i32
from ringkernel.lowering.cuda import check_ptx, find_ptxas
from ringkernel.lowering.msl.check import check_msl, find_clang
from ringkernel.lowering.msl.cpu_exec import MslCpuProgram
from ringkernel.lowering.wgsl import check_wgsl
from ringkernel.lowering.wgsl.naga import WgpuUnavailable, get_device
from ringkernel.ringir.diagnostics import CompileError

N = 64
OPS = ("add", "sub", "min", "max", "and", "or", "xor", "exchange")
TYPES = {"i32": rk.i32, "u32": rk.u32, "i64": rk.i64, "u64": rk.u64, "f32": rk.f32}


def _make_rmw(T):
    """One kernel per element type: every op on a[k] (global) and on a shared copy."""

    @rk.kernel
    def rmw(a: Array[T], v: Array[T], old: Array[T], shared_out: Array[T], n: i32):
        i = rk.global_id(0)
        sh = rk.shared_array(T, 8)
        if rk.thread_id(0) < 8:
            sh[rk.thread_id(0)] = a[rk.thread_id(0)]
        rk.barrier()
        if i < n:
            x = v[i]
            old[0 * n + i] = rk.atomic_add(a, 0, x)
            old[1 * n + i] = rk.atomic_sub(a, 1, x)
            old[2 * n + i] = rk.atomic_min(a, 2, x)
            old[3 * n + i] = rk.atomic_max(a, 3, x)
            old[4 * n + i] = rk.atomic_exchange(a, 7, x)
            rk.atomic_add(sh, 0, x)
            rk.atomic_sub(sh, 1, x)
            rk.atomic_min(sh, 2, x)
            rk.atomic_max(sh, 3, x)
        rk.barrier()
        if rk.thread_id(0) < 8:
            shared_out[rk.thread_id(0)] = sh[rk.thread_id(0)]

    return rmw


def _make_bits(T):
    @rk.kernel
    def bits(a: Array[T], v: Array[T], old: Array[T], shared_out: Array[T], n: i32):
        i = rk.global_id(0)
        sh = rk.shared_array(T, 8)
        if rk.thread_id(0) < 8:
            sh[rk.thread_id(0)] = a[rk.thread_id(0)]
        rk.barrier()
        if i < n:
            x = v[i]
            old[0 * n + i] = rk.atomic_and(a, 4, x)
            old[1 * n + i] = rk.atomic_or(a, 5, x)
            old[2 * n + i] = rk.atomic_xor(a, 6, x)
            rk.atomic_and(sh, 4, x)
            rk.atomic_or(sh, 5, x)
            rk.atomic_xor(sh, 6, x)
            rk.atomic_exchange(sh, 7, x)
        rk.barrier()
        if rk.thread_id(0) < 8:
            shared_out[rk.thread_id(0)] = sh[rk.thread_id(0)]

    return bits


def _make_wrap(T):
    @rk.kernel
    def wrap(c: Array[T], old: Array[T], shared_out: Array[T], n: i32):
        i = rk.global_id(0)
        sh = rk.shared_array(T, 2)
        if rk.thread_id(0) < 2:
            sh[rk.thread_id(0)] = c[rk.thread_id(0)]
        rk.barrier()
        if i < n:
            old[i] = rk.atomic_inc(c, 0, 5)
            old[n + i] = rk.atomic_dec(c, 1, 3)
            rk.atomic_inc(sh, 0, 5)
            rk.atomic_dec(sh, 1, 3)
        rk.barrier()
        if rk.thread_id(0) < 2:
            shared_out[rk.thread_id(0)] = sh[rk.thread_id(0)]

    return wrap


RMW = {name: _make_rmw(T) for name, T in TYPES.items()}
BITS = {name: _make_bits(T) for name, T in TYPES.items() if name != "f32"}
WRAP = {name: _make_wrap(T) for name, T in TYPES.items() if name != "f32"}


def _runs(backend: str, ty: str) -> None:
    if backend == "wgpu" and ty in ("i64", "u64"):
        pytest.skip("WGSL has no 64-bit types (tested as a CompileError below)")


def _values(ty: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    dtype = np.dtype(TYPES[ty].numpy_dtype)
    if ty == "f32":
        return rng.integers(-40, 40, N).astype(dtype) * np.float32(0.5)  # exact sums
    return rng.integers(0 if ty[0] == "u" else -1000, 1000, N).astype(dtype)


def _start(ty: str) -> np.ndarray:
    dtype = np.dtype(TYPES[ty].numpy_dtype)
    return np.array([3, 500, 999, -999 if ty[0] != "u" else 0, -1, 0x0F0, 0x5A5A, 9], np.int64).astype(dtype)


@pytest.mark.parametrize("ty", list(TYPES))
def test_add_sub_min_max_exchange(backend: str, ty: str) -> None:
    _runs(backend, ty)
    v, a = _values(ty), _start(ty)
    start = a.copy()
    old = np.zeros(5 * N, a.dtype)
    shared = np.zeros(8, a.dtype)
    with np.errstate(over="ignore"):
        RMW[ty].launch(grid=1, block=N, args=(a, v, old, shared, N), backend=backend)
        want_sum, want_diff = start[0] + v.sum(dtype=a.dtype), start[1] - v.sum(dtype=a.dtype)
    for got in (a, shared):
        assert got[0] == want_sum and got[1] == want_diff
        assert got[2] == min(start[2], v.min()) and got[3] == max(start[3], v.max())
    # exchange: the old values and the final one are the start value and v, in some order
    assert sorted([*old[4 * N:], a[7]]) == sorted([start[7], *v])
    with np.errstate(over="ignore"):  # each add's old value plus its operand is another's old value
        assert sorted([*(old[:N] + v), start[0]]) == sorted([*old[:N], a[0]])


@pytest.mark.parametrize("ty", list(BITS))
def test_and_or_xor(backend: str, ty: str) -> None:
    _runs(backend, ty)
    v, a = _values(ty), _start(ty)
    start = a.copy()
    old = np.zeros(3 * N, a.dtype)
    shared = np.zeros(8, a.dtype)
    BITS[ty].launch(grid=1, block=N, args=(a, v, old, shared, N), backend=backend)
    for got in (a, shared):
        assert got[4] == np.bitwise_and.reduce(v, initial=start[4])
        assert got[5] == np.bitwise_or.reduce(v, initial=start[5])
        assert got[6] == np.bitwise_xor.reduce(v, initial=start[6])
    assert sorted([*v, start[7]]).count(shared[7]) >= 1


def _wrap_model(start: int, limit: int, op: str, steps: int, bits: int) -> tuple[int, list[int]]:
    mask = (1 << bits) - 1
    value, olds = start & mask, []
    for _ in range(steps):
        olds.append(value)
        if op == "inc":
            value = 0 if value >= limit else value + 1
        else:
            value = limit if value == 0 or value > limit else value - 1
    return value, olds


@pytest.mark.parametrize("ty", list(WRAP))
def test_inc_dec_wrap_as_cuda(backend: str, ty: str) -> None:
    _runs(backend, ty)
    dtype = np.dtype(TYPES[ty].numpy_dtype)
    c = np.array([0, 0], dtype)
    old = np.zeros(2 * N, dtype)
    shared = np.zeros(2, dtype)
    WRAP[ty].launch(grid=1, block=N, args=(c, old, shared, N), backend=backend)
    bits = dtype.itemsize * 8
    inc_final, inc_olds = _wrap_model(0, 5, "inc", N, bits)
    dec_final, dec_olds = _wrap_model(0, 3, "dec", N, bits)
    for got in (c, shared):
        assert int(got[0]) == inc_final and int(got[1]) == dec_final
    assert sorted(old[:N].astype(np.int64)) == sorted(inc_olds)
    assert sorted(old[N:].astype(np.int64)) == sorted(dec_olds)


@rk.kernel
def signed_dec(s: Array[i32], n: i32):
    if rk.global_id(0) < n:
        rk.atomic_dec(s, 0, -1)  # limit 0xffffffff as unsigned: counts down through the negatives
        rk.atomic_inc(s, 1, -1)


def test_inc_dec_compare_as_unsigned_on_signed_arrays(backend: str) -> None:
    s = np.array([0, -3], np.int32)
    signed_dec.launch(grid=1, block=10, args=(s, 10), backend=backend)
    np.testing.assert_array_equal(s, [-10, 7])  # -3 -> ... -> -1 (>= limit) -> 0 -> ... 7


def test_inc_of_a_float_array_is_a_clear_error() -> None:
    @rk.kernel
    def k(a: Array[rk.f32]):
        rk.atomic_inc(a, 0, 1.0)

    with pytest.raises(CompileError, match=r"atomic_inc\(\) does not apply to f32 arrays"):
        k.ir


def test_64_bit_atomics_on_wgsl_and_msl_name_type_and_target() -> None:
    with pytest.raises(CompileError, match="u64.*WGSL"):
        WRAP["u64"].compile("wgsl")
    with pytest.raises(CompileError, match="Metal has no portable 64-bit atomics"):
        WRAP["u64"].compile("msl")


KERNELS = [*RMW.values(), *BITS.values(), *WRAP.values(), signed_dec]


@pytest.mark.skipif(find_ptxas() is None, reason="ptxas not installed")
@pytest.mark.parametrize("system_scope", [False, True])
def test_ptx_is_accepted_by_ptxas(system_scope: bool) -> None:
    for kernel in KERNELS:
        check_ptx(kernel.compile("ptx", system_scope_atomics=system_scope))


def test_ptx_uses_native_inc_dec() -> None:
    ptx = WRAP["u32"].compile("ptx")
    assert "atom.global.inc.u32" in ptx and "atom.shared.dec.u32" in ptx


def test_wgsl_is_accepted_by_naga() -> None:
    try:
        get_device()
    except WgpuUnavailable as exc:
        pytest.skip(f"no wgpu device to run naga: {exc}")
    for name in ("i32", "u32", "f32"):
        for table in (RMW, BITS, WRAP):
            if name in table:
                check_wgsl(table[name].compile("wgsl"))


def test_msl_is_accepted_by_clang_and_wraps() -> None:
    try:
        find_clang()
    except CompileError as exc:
        pytest.skip(str(exc))
    for name in ("i32", "u32", "f32"):
        for table in (RMW, BITS, WRAP):
            if name in table:
                check_msl(table[name].compile("msl"))
    s = np.array([0, -3], np.int32)
    MslCpuProgram(signed_dec.ir).launch("signed_dec", 1, 10, [s, np.int32(10)])
    np.testing.assert_array_equal(s, [-10, 7])

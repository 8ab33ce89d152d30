"""atomic_cas on f32 (and f64 where the target has 64-bit atomics): a CAS of the bits.

Before, atomic_cas refused float arrays.  Now every target swaps the bits of
the same-sized unsigned integer (cpu and PTX: LLVM's cmpxchg; WGSL:
atomic<u32> + bitcast; MSL: atomic_uint over the float's memory), with
CUDA's semantics: the comparison is bitwise (-0.0 is not 0.0).
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, f64, i32
from ringkernel.lowering.cuda import check_ptx, find_ptxas
from ringkernel.lowering.msl.check import check_msl, find_clang
from ringkernel.lowering.msl.cpu_exec import MslCpuProgram
from ringkernel.lowering.wgsl import check_wgsl
from ringkernel.lowering.wgsl.naga import WgpuUnavailable
from ringkernel.ringir.diagnostics import CompileError

N = 64


@rk.kernel
def cas_table(a: Array[f32], expected: Array[f32], desired: Array[f32], old: Array[f32], n: i32):
    """One CAS per element: swaps where a[i] has expected[i]'s bits."""
    i = rk.global_id(0)
    if i < n:
        old[i] = rk.atomic_cas(a, i, expected[i], desired[i])


@rk.kernel
def cas_max(x: Array[f32], best: Array[f32], n: i32):
    """A float max built from atomic_cas under contention: every work-item retries on one word."""
    i = rk.global_id(0)
    if i < n:
        v = x[i]
        seen = best[0]
        while v > seen:
            got = rk.atomic_cas(best, 0, seen, v)
            if rk.bitcast(got, rk.u32) == rk.bitcast(seen, rk.u32):
                break
            seen = got


@rk.kernel
def cas_shared_sum(x: Array[f32], out: Array[f32], n: i32):
    """A float sum into a shared word through CAS retries (a shared-memory CAS)."""
    t = rk.thread_id(0)
    acc = rk.shared_array(f32, 1)
    if t == 0:
        acc[0] = 0.0
    rk.barrier()
    i = rk.global_id(0)
    if i < n:
        seen = acc[0]
        while True:
            got = rk.atomic_cas(acc, 0, seen, seen + x[i])
            if rk.bitcast(got, rk.u32) == rk.bitcast(seen, rk.u32):
                break
            seen = got
    rk.barrier()
    if t == 0:
        out[rk.block_id(0)] = acc[0]


@rk.kernel
def cas_table64(a: Array[f64], expected: Array[f64], desired: Array[f64], old: Array[f64], n: i32):
    i = rk.global_id(0)
    if i < n:
        old[i] = rk.atomic_cas(a, i, expected[i], desired[i])


def _table(dtype: type) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(3)
    a = rng.uniform(-5, 5, N).astype(dtype)
    a[:4] = [0.0, -0.0, np.nan, np.inf]
    expected = np.where(np.arange(N) % 2 == 0, a, a + 1).astype(dtype)  # even: match
    expected[1] = 0.0  # -0.0 in memory, +0.0 expected: bits differ, no swap
    expected[2] = a[2]  # the very same NaN bits: a swap
    desired = rng.uniform(10, 20, N).astype(dtype)
    return a, expected, desired, np.zeros(N, dtype)


def _table_reference(a: np.ndarray, expected: np.ndarray, desired: np.ndarray) -> tuple[np.ndarray, ...]:
    bits = {4: np.uint32, 8: np.uint64}[a.itemsize]
    same = a.view(bits) == expected.view(bits)
    return np.where(same, desired, a).astype(a.dtype), a.copy()


def _backends() -> list[str]:
    from ringkernel.runtime import backend_status

    return [b for b in ("cpu", "wgpu") if backend_status(b)[0]]


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_f32_cas_swaps_by_bits(backend: str) -> None:
    if backend not in _backends():
        pytest.skip(f"{backend} backend unavailable here")
    a, expected, desired, old = _table(np.float32)
    want_a, want_old = _table_reference(a, expected, desired)
    cas_table.launch(2, 32, [a, expected, desired, old, N], backend=backend)
    np.testing.assert_array_equal(a.view(np.uint32), want_a.view(np.uint32))
    np.testing.assert_array_equal(old.view(np.uint32), want_old.view(np.uint32))


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_f32_cas_loops_build_max_and_shared_sums_under_contention(backend: str) -> None:
    if backend not in _backends():
        pytest.skip(f"{backend} backend unavailable here")
    rng = np.random.default_rng(5)
    x = rng.uniform(-100, 100, 4096).astype(np.float32)
    best = np.full(1, -np.inf, np.float32)
    cas_max.launch(16, 256, [x, best, x.size], backend=backend)
    assert best[0] == x.max()
    ints = rng.integers(-50, 50, 512).astype(np.float32)  # exact sums in any order
    out = np.zeros(4, np.float32)
    cas_shared_sum.launch(4, 128, [ints, out, ints.size], backend=backend)
    np.testing.assert_array_equal(out, ints.reshape(4, 128).sum(axis=1))


def test_f64_cas_on_cpu() -> None:
    a, expected, desired, old = _table(np.float64)
    want_a, want_old = _table_reference(a, expected, desired)
    cas_table64.launch(2, 32, [a, expected, desired, old, N], backend="cpu")
    np.testing.assert_array_equal(a.view(np.uint64), want_a.view(np.uint64))
    np.testing.assert_array_equal(old.view(np.uint64), want_old.view(np.uint64))


@pytest.mark.parametrize("kernel", [cas_table, cas_max, cas_shared_sum, cas_table64])
def test_ptx_is_an_integer_cas_accepted_by_ptxas(kernel: rk.Kernel) -> None:
    ptx = kernel.compile("ptx")
    assert "atom." in ptx and ".cas.b" in ptx
    if find_ptxas() is None:
        pytest.skip("ptxas not installed (pip install nvidia-cuda-nvcc)")
    check_ptx(ptx)


@pytest.mark.parametrize("kernel", [cas_table, cas_max, cas_shared_sum])
def test_wgsl_swaps_u32_bits_and_naga_accepts_it(kernel: rk.Kernel) -> None:
    text = kernel.compile("wgsl")
    assert "atomicCompareExchangeWeak" in text and "bitcast<u32>" in text
    try:
        check_wgsl(text)
    except WgpuUnavailable as exc:
        pytest.skip(f"no wgpu device to run naga: {exc}")


def test_wgsl_and_msl_refuse_f64_cas_as_they_refuse_f64() -> None:
    for target in ("wgsl", "msl"):
        with pytest.raises(CompileError, match="f64"):
            cas_table64.compile(target)


@pytest.mark.parametrize("kernel", [cas_table, cas_max, cas_shared_sum])
def test_msl_uses_atomic_uint_and_clang_accepts_it(kernel: rk.Kernel) -> None:
    text = kernel.compile("msl")
    assert "atomic_uint*" in text and "as_type<uint>" in text
    try:
        find_clang()
    except CompileError as exc:
        pytest.skip(str(exc))
    check_msl(text)


def test_msl_float_cas_runs_on_the_host_harness() -> None:
    try:
        program = MslCpuProgram(cas_table.ir)
    except CompileError as exc:
        pytest.skip(str(exc))
    a, expected, desired, old = _table(np.float32)
    want_a, want_old = _table_reference(a, expected, desired)
    program.launch("cas_table", 2, 32, [a, expected, desired, old, N])
    np.testing.assert_array_equal(a.view(np.uint32), want_a.view(np.uint32))
    np.testing.assert_array_equal(old.view(np.uint32), want_old.view(np.uint32))


def test_bool_and_small_arrays_are_still_refused() -> None:
    @rk.kernel
    def on_bytes(a: Array[rk.u8]):
        rk.atomic_cas(a, 0, rk.u8(1), rk.u8(2))

    @rk.kernel
    def on_bools(a: Array[bool]):
        rk.atomic_cas(a, 0, False, True)

    with pytest.raises(CompileError, match="atomic_cas.. does not apply to u8 arrays"):
        on_bytes.compile("rir")
    with pytest.raises(CompileError, match="atomic_cas.. needs an i32, .* array, not bool"):
        on_bools.compile("rir")

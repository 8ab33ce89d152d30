"""f32 atomic min/max, rk.bitcast and bool/numpy-typed arrays, run on cpu and wgpu vs numpy."""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, u32

N = 4096
SLOTS = 4


@rk.kernel
def minmax_slots(x: Array[f32], hi: Array[f32], lo: Array[f32], old: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        old[i] = rk.atomic_max(hi, i % 4, x[i])
        rk.atomic_min(lo, i % 4, x[i])


@rk.kernel
def shared_minmax(x: Array[f32], hi: Array[f32], lo: Array[f32], n: i32):
    s = rk.shared_array(f32, 2)
    t = rk.thread_id(0)
    if t == 0:
        s[0] = -3.0e38
        s[1] = 3.0e38
    rk.barrier()
    i = rk.global_id(0)
    if i < n:
        rk.atomic_max(s, 0, x[i])
        rk.atomic_min(s, 1, x[i])
    rk.barrier()
    if t == 0:
        rk.atomic_max(hi, 0, s[0])
        rk.atomic_min(lo, 0, s[1])


@rk.kernel
def cas_max(x: Array[f32], bits: Array[u32], n: i32):
    """A hand-written f32 atomic max: a CAS loop on the u32 bits (the CUDA idiom)."""
    i = rk.global_id(0)
    if i < n:
        v = x[i]
        old = bits[0]
        while rk.bitcast(old, f32) < v:
            seen = rk.atomic_cas(bits, 0, old, rk.bitcast(v, u32))
            if seen == old:
                break
            old = seen


@rk.kernel
def bits_of(x: Array[f32], as_u: Array[u32], as_i: Array[i32], back: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        as_u[i] = rk.bitcast(x[i], u32)
        as_i[i] = rk.bitcast(x[i], i32)
        back[i] = rk.bitcast(as_u[i], f32)


@rk.kernel
def flags_kernel(x: Array[np.float32], flags: Array[bool], out: Array[bool], count: Array[np.int32],
                 n: np.int32):
    i = rk.global_id(0)
    if i < n:
        out[i] = x[i] > 0.0 and not flags[i]
        if flags[i]:
            rk.atomic_add(count, 0, 1)


def _values(rng: np.random.Generator) -> np.ndarray:
    return (rng.standard_normal(N) * 100).astype(np.float32)


def test_f32_atomic_min_max_under_contention(backend: str) -> None:
    x = _values(np.random.default_rng(1))
    hi = np.full(SLOTS, -np.inf, np.float32)
    lo = np.full(SLOTS, np.inf, np.float32)
    old = np.zeros(N, np.float32)
    minmax_slots.launch(N // 64, 64, (x, hi, lo, old, N), backend=backend)
    slots = x.reshape(-1, SLOTS)
    np.testing.assert_array_equal(hi, slots.max(axis=0))
    np.testing.assert_array_equal(lo, slots.min(axis=0))
    # every returned old value is one the slot really held: the start or an input
    for s in range(SLOTS):
        seen = old[s::SLOTS]
        assert np.all(np.isin(seen, np.append(slots[:, s], -np.inf)))
        assert np.all(seen <= hi[s])


def test_f32_atomic_min_max_treat_nan_as_missing(backend: str) -> None:
    x = _values(np.random.default_rng(2))
    x[::7] = np.nan
    hi = np.array([np.nan, -np.inf, np.nan, 5.0], np.float32)  # a stored NaN is replaced
    lo = np.array([np.nan, np.inf, np.nan, -5.0], np.float32)
    old = np.zeros(N, np.float32)
    minmax_slots.launch(N // 64, 64, (x, hi, lo, old, N), backend=backend)
    slots = x.reshape(-1, SLOTS)
    want_hi = np.fmax(np.nanmax(slots, axis=0), [-np.inf, -np.inf, -np.inf, 5.0])
    want_lo = np.fmin(np.nanmin(slots, axis=0), [np.inf, np.inf, np.inf, -5.0])
    np.testing.assert_array_equal(hi, want_hi.astype(np.float32))
    np.testing.assert_array_equal(lo, want_lo.astype(np.float32))


def test_f32_atomic_min_max_all_nan_operands_change_nothing(backend: str) -> None:
    x = np.full(N, np.nan, np.float32)
    hi = np.array([1.0, -2.0, np.inf, -np.inf], np.float32)
    lo = hi.copy()
    before = hi.copy()
    minmax_slots.launch(N // 64, 64, (x, hi, lo, np.zeros(N, np.float32), N), backend=backend)
    np.testing.assert_array_equal(hi, before)
    np.testing.assert_array_equal(lo, before)


def test_f32_atomic_min_max_on_shared_memory(backend: str) -> None:
    x = _values(np.random.default_rng(3))
    hi = np.full(1, -np.inf, np.float32)
    lo = np.full(1, np.inf, np.float32)
    shared_minmax.launch(N // 128, 128, (x, hi, lo, N), backend=backend)
    assert hi[0] == x.max() and lo[0] == x.min()


def test_user_written_cas_max_with_bitcast(backend: str) -> None:
    x = _values(np.random.default_rng(4))
    bits = np.array([-np.inf], np.float32).view(np.uint32).copy()
    cas_max.launch(N // 64, 64, (x, bits, N), backend=backend)
    assert bits.view(np.float32)[0] == x.max()


def test_bitcast_matches_numpy_views(backend: str) -> None:
    x = np.array([0.0, -0.0, 1.0, -1.5, 3.4e38, 1e-45, np.inf, -np.inf, 0.1, 7.0], np.float32)
    n = len(x)
    as_u, as_i, back = np.zeros(n, np.uint32), np.zeros(n, np.int32), np.zeros(n, np.float32)
    bits_of.launch(1, n, (x, as_u, as_i, back, n), backend=backend)
    np.testing.assert_array_equal(as_u, x.view(np.uint32))
    np.testing.assert_array_equal(as_i, x.view(np.int32))
    np.testing.assert_array_equal(back.view(np.uint32), x.view(np.uint32))


def test_bool_and_numpy_typed_arrays_round_trip(backend: str) -> None:
    rng = np.random.default_rng(5)
    n = 1000
    x = rng.standard_normal(n).astype(np.float32)
    flags = rng.random(n) < 0.3
    out = np.ones(n, bool)
    count = np.zeros(1, np.int32)
    flags_kernel.launch((n + 63) // 64, 64, (x, flags, out, count, n), backend=backend)
    np.testing.assert_array_equal(out, (x > 0) & ~flags)
    assert count[0] == flags.sum()
    assert out.dtype == np.bool_


def test_bool_array_needs_a_numpy_bool_array(backend: str) -> None:
    n = 4
    args = (np.zeros(n, np.float32), np.zeros(n, np.uint8), np.zeros(n, bool), np.zeros(1, np.int32), n)
    with pytest.raises(rk.LaunchError, match="must have dtype bool"):
        flags_kernel.launch(1, n, args, backend=backend)


def test_f64_bitcast_and_atomic_max_on_cpu() -> None:
    @rk.kernel
    def k(x: Array[rk.f64], bits: Array[rk.u64], hi: Array[rk.f64], n: i32):
        i = rk.global_id(0)
        if i < n:
            bits[i] = rk.bitcast(x[i], rk.u64)
            rk.atomic_max(hi, 0, x[i])

    x = np.random.default_rng(6).standard_normal(256)
    bits = np.zeros(256, np.uint64)
    hi = np.full(1, -np.inf)
    k.launch(4, 64, (x, bits, hi, 256), backend="cpu")
    np.testing.assert_array_equal(bits, x.view(np.uint64))
    assert hi[0] == x.max()

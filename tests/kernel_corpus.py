"""Every test kernel, with inputs and a numpy reference.

Backends run each case and compare with the reference (``run_case``);
the PTX, WGSL and MSL checks compile every kernel here.  ``needs`` names
features some targets lack (``"f64"``, ``"i64"``, ``"f16"``: WGSL has f16
only with the adapter's shader-f16 feature, ``compile("wgsl", f16=True)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import ringkernel as rk
from ringkernel import Array, Vec, f16, f32, f64, i32, u8, u16, u32

BLOCK = 64
THRESHOLD = 0.5  # a module-level constant used inside a kernel


@dataclass
class KernelCase:
    name: str
    kernel: rk.Kernel
    grid: Any
    block: Any
    make_args: Callable[[np.random.Generator], list[Any]]
    reference: Callable[[list[Any]], list[Any]]
    rtol: float = 1e-5
    atol: float = 1e-6
    needs: tuple[str, ...] = field(default=())
    static: bool = True  # ringc's static read of this file finds the kernel (not a specialization)


def run_case(case: KernelCase, backend: str, seed: int = 0) -> None:
    """Launches ``case`` on ``backend`` and asserts every output matches numpy."""
    lacking = {"wgpu": {"f64", "i64"}, "metal": {"f64"}}.get(backend, set()) & set(case.needs)
    if lacking:
        import pytest

        pytest.skip(f"{backend} has no {', '.join(sorted(lacking))} (compiling it is a clear CompileError)")
    if backend == "wgpu" and "f16" in case.needs:
        from ringkernel.lowering.wgsl.naga import device_has_f16

        if not device_has_f16():
            import pytest

            pytest.skip("the wgpu adapter lacks the shader-f16 feature WGSL needs for f16")
    rng = np.random.default_rng(seed)
    args = case.make_args(rng)
    originals = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    expected = case.reference(originals)
    case.kernel.launch(case.grid, case.block, args, backend=backend)
    check_outputs(case, args, expected)


def check_outputs(case: KernelCase, args: list[Any], expected: list[Any]) -> None:
    """Asserts each argument with a reference (not None) matches it, within the case's tolerance."""
    for pos, want in enumerate(expected):
        if want is None:
            continue
        got = args[pos]
        if np.asarray(want).dtype.names:  # an Array[S]: field by field
            _check_fields(case, pos, got, want, "")
        elif np.issubdtype(np.asarray(want).dtype, np.floating):
            np.testing.assert_allclose(
                got, want, rtol=case.rtol, atol=case.atol, err_msg=f"{case.name}: argument {pos}"
            )
        else:
            np.testing.assert_array_equal(got, want, err_msg=f"{case.name}: argument {pos}")


def _check_fields(case: KernelCase, pos: int, got: np.ndarray, want: np.ndarray, prefix: str) -> None:
    """Structured arrays field by field, nested structs included."""
    for name in want.dtype.names or ():
        if want[name].dtype.names:
            _check_fields(case, pos, got[name], want[name], f"{prefix}{name}.")
            continue
        np.testing.assert_allclose(got[name], want[name], rtol=case.rtol, atol=case.atol,
                                   err_msg=f"{case.name}: argument {pos}, field {prefix}{name}")


CASES: list[KernelCase] = []


def metal_cases() -> list[KernelCase]:
    """The cases Metal can run: it has no f64 (such a kernel is a CompileError there)."""
    return [c for c in CASES if "f64" not in c.needs]


def case(**kwargs: Any) -> Callable[[rk.Kernel], rk.Kernel]:
    def register(kernel: rk.Kernel) -> rk.Kernel:
        CASES.append(KernelCase(name=kernel.__name__, kernel=kernel, **kwargs))
        return kernel

    return register


def f32s(rng: np.random.Generator, n: int, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    return rng.uniform(lo, hi, n).astype(np.float32)


# --- elementwise --------------------------------------------------------------------------

N = 1000


@case(
    grid=(N + BLOCK - 1) // BLOCK,
    block=BLOCK,
    make_args=lambda r: [np.float32(2.5), f32s(r, N), f32s(r, N), N],
    reference=lambda a: [None, None, a[0] * a[1] + a[2], None],
)
@rk.kernel
def saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


def _math_reference(a: list[Any]) -> list[Any]:
    x = a[0].astype(np.float64)
    out = np.stack(
        [
            np.sqrt(x + 2.0),
            np.exp(x),
            np.log(x + 2.0),
            np.sin(x),
            np.cos(x),
            np.tan(x),
            np.tanh(x),
            np.power(x + 2.0, 1.5),
            np.floor(x * 4.0),
            np.ceil(x * 4.0),
            np.fabs(x),
            np.abs(x),
            1.0 / np.sqrt(x + 2.0),
            x * 2.0 + 1.0,
            np.minimum(x, 0.25),
            np.maximum(x, 0.25),
        ],
        axis=1,
    ).astype(np.float32)
    return [None, out.reshape(-1), None]


@case(
    grid=4,
    block=BLOCK,
    make_args=lambda r: [f32s(r, 256), np.zeros(256 * 16, np.float32), 256],
    reference=_math_reference,
    rtol=2e-5,
    atol=2e-6,
)
@rk.kernel
def math_functions(x: Array[f32], out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i >= n:
        return
    v = x[i]
    o = i * 16
    out[o + 0] = math.sqrt(v + 2.0)
    out[o + 1] = math.exp(v)
    out[o + 2] = math.log(v + 2.0)
    out[o + 3] = math.sin(v)
    out[o + 4] = math.cos(v)
    out[o + 5] = math.tan(v)
    out[o + 6] = math.tanh(v)
    out[o + 7] = math.pow(v + 2.0, 1.5)
    out[o + 8] = math.floor(v * 4.0)
    out[o + 9] = math.ceil(v * 4.0)
    out[o + 10] = math.fabs(v)
    out[o + 11] = abs(v)
    out[o + 12] = rk.rsqrt(v + 2.0)
    out[o + 13] = rk.fma(v, 2.0, 1.0)
    out[o + 14] = min(v, 0.25)
    out[o + 15] = max(v, 0.25)


def _floor_reference(a: list[Any]) -> list[Any]:
    x, y = a[0].astype(np.int64), a[1].astype(np.int64)
    fx, fy = a[2], a[3]
    ints = np.stack([x // y, x % y, np.trunc(x / y), x - np.trunc(x / y) * y], axis=1)
    floats = np.stack([np.floor_divide(fx, fy), np.mod(fx, fy)], axis=1).astype(np.float32)
    return [None, None, None, None, ints.astype(np.int32).reshape(-1), floats.reshape(-1), None]


def _floor_args(r: np.random.Generator) -> list[Any]:
    n = 256
    x = r.integers(-50, 50, n).astype(np.int32)
    y = r.integers(1, 9, n).astype(np.int32) * r.choice([-1, 1], n).astype(np.int32)
    fx = f32s(r, n, -20, 20)
    fy = (r.uniform(0.5, 4, n) * r.choice([-1, 1], n)).astype(np.float32)
    return [x, y, fx, fy, np.zeros(n * 4, np.int32), np.zeros(n * 2, np.float32), n]


@case(grid=4, block=BLOCK, make_args=_floor_args, reference=_floor_reference, rtol=1e-5, atol=1e-4)
@rk.kernel
def floor_division(
    x: Array[i32], y: Array[i32], fx: Array[f32], fy: Array[f32], out: Array[i32], fout: Array[f32], n: i32
):
    i = rk.global_id(0)
    if i < n:
        a = x[i]
        b = y[i]
        out[4 * i] = a // b
        out[4 * i + 1] = a % b
        q = i32(f32(a) / f32(b))
        out[4 * i + 2] = q
        out[4 * i + 3] = a - q * b
        fout[2 * i] = fx[i] // fy[i]
        fout[2 * i + 1] = fx[i] % fy[i]


def _casts_reference(a: list[Any]) -> list[Any]:
    x = a[0]
    as_int = np.trunc(x).astype(np.int32)
    out = np.stack(
        [as_int, (x > 0).astype(np.int32), (as_int.astype(np.uint32) >> np.uint32(1)).astype(np.int32)],
        axis=1,
    )
    return [None, out.reshape(-1), a[0].astype(np.int32).astype(np.float32) * np.float32(0.5), None]


@case(
    grid=2,
    block=BLOCK,
    make_args=lambda r: [
        f32s(r, 128, -100, 100),
        np.zeros(128 * 3, np.int32),
        np.zeros(128, np.float32),
        128,
    ],
    reference=_casts_reference,
)
@rk.kernel
def casts(x: Array[f32], out: Array[i32], half: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        v = x[i]
        t = i32(v)
        out[3 * i] = t
        out[3 * i + 1] = i32(v > 0.0)
        out[3 * i + 2] = i32(u32(t) >> u32(1))
        half[i] = f32(t) * 0.5


def _bits_reference(a: list[Any]) -> list[Any]:
    x = a[0]
    out = np.stack(
        [
            x << np.uint32(3),
            x >> np.uint32(2),
            x ^ np.uint32(0xFF),
            x & np.uint32(0xF0),
            x | np.uint32(1),
            ~x,
        ],
        axis=1,
    )
    return [None, out.reshape(-1).astype(np.uint32), None]


@case(
    grid=2,
    block=BLOCK,
    make_args=lambda r: [r.integers(0, 2**32, 128, dtype=np.uint32), np.zeros(128 * 6, np.uint32), 128],
    reference=_bits_reference,
)
@rk.kernel
def bit_operations(x: Array[u32], out: Array[u32], n: i32):
    i = rk.global_id(0)
    if i < n:
        v = x[i]
        o = i * 6
        out[o] = v << 3
        out[o + 1] = v >> 2
        out[o + 2] = v ^ 0xFF
        out[o + 3] = v & 0xF0
        out[o + 4] = v | 1
        out[o + 5] = ~v


# --- control flow -------------------------------------------------------------------------


def _control_reference(a: list[Any]) -> list[Any]:
    x = a[0]
    out = np.zeros_like(x)
    for i, v in enumerate(x):
        # while with break/continue: count odd numbers below v, stop at 20
        count, k = 0, 0
        while k < v:
            k += 1
            if k % 2 == 0:
                continue
            if count >= 20:
                break
            count += 1
        # for with a negative step
        down = 0
        for j in range(v, 0, -3):
            down += j
        # conditional expression, and/or, chained comparison
        sign = 1 if v > 10 else -1
        both = 1 if (v > 5 and v < 40) or v == 0 else 0
        chain = 1 if 3 < v <= 30 else 0
        out[i] = count * 10000 + down * 10 + sign * 3 + both + chain * 7
    return [None, out, None]


@case(
    grid=1,
    block=BLOCK,
    make_args=lambda r: [r.integers(0, 60, 64).astype(np.int32), np.zeros(64, np.int32), 64],
    reference=_control_reference,
)
@rk.kernel
def control_flow(x: Array[i32], out: Array[i32], n: i32):
    i = rk.global_id(0)
    if i >= n:
        return
    v = x[i]
    count = 0
    k = 0
    while k < v:
        k += 1
        if k % 2 == 0:
            continue
        if count >= 20:
            break
        count += 1
    down = 0
    for j in range(v, 0, -3):
        down += j
    sign = 1 if v > 10 else -1
    both = 1 if (v > 5 and v < 40) or v == 0 else 0
    chain = 1 if 3 < v <= 30 else 0
    out[i] = count * 10000 + down * 10 + sign * 3 + both + chain * 7


@rk.func
def clamp01(v: f32) -> f32:
    if v < 0.0:
        return 0.0
    return min(v, 1.0)


@rk.func
def smooth(v: f32, k: f32) -> f32:
    c = clamp01(v * k)
    return c * c * (3.0 - 2.0 * c)


@rk.func
def add_into(out: Array[f32], i: i32, v: f32):
    out[i] = out[i] + v


@case(
    grid=2,
    block=BLOCK,
    make_args=lambda r: [f32s(r, 100, -2, 2), np.ones(100, np.float32), 100],
    reference=lambda a: [
        None,
        1.0 + (lambda c: c * c * (3 - 2 * c))(np.clip(a[0] * 0.75, 0, 1)).astype(np.float32),
        None,
    ],
)
@rk.kernel
def device_functions(x: Array[f32], out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        add_into(out, i, smooth(x[i], 0.75))


@case(
    grid=2,
    block=32,
    make_args=lambda r: [f32s(r, 5000), np.zeros(5000, np.float32), 5000],
    reference=lambda a: [None, np.where(a[0] > THRESHOLD, a[0], 0).astype(np.float32), None],
)
@rk.kernel
def grid_stride(x: Array[f32], out: Array[f32], n: i32):
    start = rk.global_id(0)
    stride = rk.grid_dim(0) * rk.block_dim(0)
    for i in range(start, n, stride):
        out[i] = x[i] if x[i] > THRESHOLD else 0.0


W, H = 40, 24


@case(
    grid=((W + 7) // 8, (H + 7) // 8),
    block=(8, 8),
    make_args=lambda r: [f32s(r, W * H), np.zeros(W * H, np.float32), W, H],
    reference=lambda a: [None, a[0].reshape(H, W).T.reshape(-1), None, None],
)
@rk.kernel
def transpose_2d(src: Array[f32], dst: Array[f32], width: i32, height: i32):
    col = rk.global_id(0)
    row = rk.global_id(1)
    if col < width and row < height:
        dst[col * height + row] = src[row * width + col]


def _index_reference(a: list[Any]) -> list[Any]:
    out = np.zeros((4, 12, 8), np.int32)  # grid (3, 2) of blocks (4, 2): 12 x 4 threads
    for gy in range(4):
        for gx in range(12):
            out[gy, gx] = [gx % 4, gy % 2, gx // 4, gy // 2, 4, 2, 3, 2]
    return [out.reshape(-1)]


@case(
    grid=(3, 2),
    block=(4, 2),
    make_args=lambda r: [np.zeros(12 * 4 * 8, np.int32)],
    reference=_index_reference,
)
@rk.kernel
def thread_indices(out: Array[i32]):
    gx = rk.global_id(0)
    gy = rk.global_id(1)
    base = (gy * rk.grid_dim(0) * rk.block_dim(0) + gx) * 8
    out[base] = rk.thread_id(0)
    out[base + 1] = rk.thread_id(1)
    out[base + 2] = rk.block_id(0)
    out[base + 3] = rk.block_id(1)
    out[base + 4] = rk.block_dim(0)
    out[base + 5] = rk.block_dim(1)
    out[base + 6] = rk.grid_dim(0)
    out[base + 7] = rk.grid_dim(1)


# --- shared memory, barriers and atomics -------------------------------------------------

RED = 64


@case(
    grid=8,
    block=RED,
    make_args=lambda r: [f32s(r, 8 * RED), np.zeros(8, np.float32)],
    reference=lambda a: [None, a[0].reshape(8, RED).sum(axis=1, dtype=np.float64).astype(np.float32)],
    rtol=1e-5,
    atol=1e-5,
)
@rk.kernel
def block_reduce(x: Array[f32], sums: Array[f32]):
    buf = rk.shared_array(f32, RED)
    t = rk.thread_id(0)
    buf[t] = x[rk.global_id(0)]
    rk.barrier()
    stride = RED // 2
    while stride > 0:
        if t < stride:
            buf[t] += buf[t + stride]
        rk.barrier()
        stride //= 2
    if t == 0:
        sums[rk.block_id(0)] = buf[0]


@case(
    grid=4,
    block=RED,
    make_args=lambda r: [r.integers(0, 10, 4 * RED).astype(np.int32), np.zeros(4 * RED, np.int32)],
    reference=lambda a: [None, np.cumsum(a[0].reshape(4, RED), axis=1).reshape(-1).astype(np.int32)],
)
@rk.kernel
def block_scan(x: Array[i32], out: Array[i32]):
    buf = rk.shared_array(i32, RED)
    t = rk.thread_id(0)
    g = rk.global_id(0)
    buf[t] = x[g]
    rk.barrier()
    offset = 1
    while offset < RED:
        v = 0
        if t >= offset:
            v = buf[t - offset]
        rk.barrier()
        buf[t] += v
        rk.barrier()
        offset *= 2
    out[g] = buf[t]


BINS = 16


@case(
    grid=8,
    block=BLOCK,
    make_args=lambda r: [r.integers(0, 1000, 500).astype(np.int32), np.zeros(BINS, np.int32), 500],
    reference=lambda a: [None, np.bincount(a[0] % BINS, minlength=BINS).astype(np.int32), None],
)
@rk.kernel
def histogram(values: Array[i32], bins: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        rk.atomic_add(bins, values[i] % BINS, 1)


def _atomics_args(r: np.random.Generator) -> list[Any]:
    n = 256
    return [
        r.integers(-1000, 1000, n).astype(np.int32),
        np.array([0, 0, 0, 0, 0, 0, 0, 0], np.int32),
        np.zeros(1, np.float32),
        np.zeros(n, np.int32),
        n,
    ]


def _atomics_reference(a: list[Any]) -> list[Any]:
    v = a[0]
    acc = np.array(
        [
            v.sum(),
            -v.sum(),
            min(0, v.min()),
            max(0, v.max()),
            np.bitwise_or.reduce(v & 0xFF),
            0,
            np.bitwise_xor.reduce(v),
            len(v),
        ],
        np.int32,
    )
    # exchange returns the old value (zero), which each thread then stores back
    return [None, acc, np.array([len(v) * 0.5], np.float32), np.zeros_like(v), None]


@case(grid=4, block=BLOCK, make_args=_atomics_args, reference=_atomics_reference)
@rk.kernel
def atomic_family(v: Array[i32], acc: Array[i32], fsum: Array[f32], old: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        x = v[i]
        rk.atomic_add(acc, 0, x)
        rk.atomic_sub(acc, 1, x)
        rk.atomic_min(acc, 2, x)
        rk.atomic_max(acc, 3, x)
        rk.atomic_or(acc, 4, x & 0xFF)
        rk.atomic_and(acc, 5, x)
        rk.atomic_xor(acc, 6, x)
        # a CAS loop that increments acc[7]: exercises atomic_cas returning the old value
        done = False
        while not done:
            seen = acc[7]
            done = rk.atomic_cas(acc, 7, seen, seen + 1) == seen
        rk.atomic_add(fsum, 0, 0.5)
        old[i] = rk.atomic_exchange(old, i, x)


# --- parallel primitives (issue 15): written with rk.warp_size(), so every width agrees ---

WARPS = 64  # room for one partial result per subgroup, down to one-lane subgroups (cpu)


@case(
    grid=4,
    block=BLOCK,
    make_args=lambda r: [f32s(r, 3000), np.zeros(4, np.float32), 3000],
    reference=lambda a: [None, np.array([sum(a[0][k::4 * BLOCK].sum(dtype=np.float64)
                                             for k in range(b * BLOCK, (b + 1) * BLOCK))
                                         for b in range(4)], np.float32), None],
    rtol=1e-4,
    atol=1e-4,
)
@rk.kernel
def warp_shuffle_reduce(x: Array[f32], sums: Array[f32], n: i32):
    """cuda-samples reduce6: grid-stride sums, a shfl_down tree per warp, then the warps' sums."""
    partial = rk.shared_array(f32, WARPS)
    t = rk.thread_id(0)
    v = 0.0
    i = rk.global_id(0)
    while i < n:
        v += x[i]
        i += rk.block_dim(0) * rk.grid_dim(0)
    d = rk.warp_size() // 2
    while d > 0:
        v += rk.shfl_down(v, d)
        d //= 2
    if rk.lane_id() == 0:
        partial[t // rk.warp_size()] = v
    rk.barrier()
    if t == 0:
        total = 0.0
        for w in range(rk.block_dim(0) // rk.warp_size()):
            total += partial[w]
        sums[rk.block_id(0)] = total


@case(
    grid=4,
    block=BLOCK,
    make_args=lambda r: [r.integers(0, 10, 4 * BLOCK).astype(np.int32), np.zeros(4 * BLOCK, np.int32)],
    reference=lambda a: [None, np.cumsum(a[0].reshape(4, BLOCK), axis=1).reshape(-1).astype(np.int32)],
)
@rk.kernel
def warp_scan(x: Array[i32], out: Array[i32]):
    """Inclusive block scan: shfl_up within each warp, then the warps' totals in order."""
    totals = rk.shared_array(i32, WARPS)
    t = rk.thread_id(0)
    g = rk.global_id(0)
    lane = rk.lane_id()
    v = x[g]
    d = 1
    while d < rk.warp_size():
        up = rk.shfl_up(v, d)
        if lane >= d:
            v += up
        d *= 2
    if lane == rk.warp_size() - 1:
        totals[t // rk.warp_size()] = v
    rk.barrier()
    if t == 0:
        running = 0
        for w in range(rk.block_dim(0) // rk.warp_size()):
            here = totals[w]
            totals[w] = running
            running += here
    rk.barrier()
    out[g] = v + totals[t // rk.warp_size()]


def _compact_reference(a: list[Any]) -> list[Any]:
    kept = a[0][a[0] > 0]
    out = np.zeros_like(a[0])
    out[: kept.size] = kept
    return [None, out, np.array([kept.size], np.int32)]


@case(
    grid=1,
    block=BLOCK,
    make_args=lambda r: [r.integers(-5, 5, BLOCK).astype(np.int32), np.zeros(BLOCK, np.int32),
                         np.zeros(1, np.int32)],
    reference=_compact_reference,
)
@rk.kernel
def ballot_compact(x: Array[i32], out: Array[i32], count: Array[i32]):
    """Stable stream compaction: ballot + popc ranks in a warp, warp offsets scanned in order."""
    offsets = rk.shared_array(i32, WARPS)
    t = rk.thread_id(0)
    lane = rk.lane_id()
    keep = x[t] > 0
    mask = rk.ballot(keep)
    rank = i32(rk.popc(mask & ((u32(1) << u32(lane)) - u32(1))))
    if lane == 0:
        offsets[t // rk.warp_size()] = i32(rk.popc(mask))
    rk.barrier()
    if t == 0:
        running = 0
        for w in range(rk.block_dim(0) // rk.warp_size()):
            here = offsets[w]
            offsets[w] = running
            running += here
        count[0] = running
    rk.barrier()
    if keep:
        out[offsets[t // rk.warp_size()] + rank] = x[t]


@case(
    grid=8,
    block=BLOCK,
    make_args=lambda r: [f32s(r, 8 * BLOCK, -100.0, 100.0), np.full(4, -np.inf, np.float32)],
    reference=lambda a: [None, np.array([a[0][k::4].max() for k in range(4)], np.float32)],
    rtol=0.0,
    atol=0.0,
)
@rk.kernel
def f32_atomic_max_contention(x: Array[f32], best: Array[f32]):
    """Every thread of the grid races on four f32 maxima (a CAS loop on GPUs)."""
    i = rk.global_id(0)
    rk.atomic_max(best, i % 4, x[i])


# --- N-dimensional arrays (issue 14) ---------------------------------------------------------

TILE = 8


def _matmul_args(r: np.random.Generator) -> list[Any]:
    a, b = f32s(r, 16 * 24).reshape(16, 24), f32s(r, 24 * 32).reshape(24, 32)
    return [a, b, np.zeros((16, 32), np.float32)]


@case(
    grid=(32 // TILE, 16 // TILE),
    block=(TILE, TILE),
    make_args=_matmul_args,
    reference=lambda a: [None, None, a[0] @ a[1]],
    rtol=1e-4,
    atol=1e-5,
)
@rk.kernel
def matmul_tiled(a: Array[f32, 2], b: Array[f32, 2], c: Array[f32, 2]):
    """C = A @ B through two TILE x TILE shared tiles (rows padded against bank conflicts)."""
    ta = rk.shared_array(f32, (TILE, TILE + 1))
    tb = rk.shared_array(f32, (TILE, TILE + 1))
    tx, ty = rk.thread_id(0), rk.thread_id(1)
    row = rk.block_id(1) * TILE + ty
    col = rk.block_id(0) * TILE + tx
    acc = f32(0.0)
    for t in range(a.shape[1] // TILE):
        ta[ty, tx] = a[row, t * TILE + tx]
        tb[ty, tx] = b[t * TILE + ty, col]
        rk.barrier()
        for k in range(TILE):
            acc += ta[ty, k] * tb[k, tx]
        rk.barrier()
    c[row, col] = acc


def _stencil_reference(a: list[Any]) -> list[Any]:
    src = a[0]
    out = src.copy()
    out[1:-1, 1:-1] = (
        src[:-2, 1:-1] + src[2:, 1:-1] + src[1:-1, :-2] + src[1:-1, 2:] - 4.0 * src[1:-1, 1:-1]
    )
    return [None, out]


@case(
    grid=(3, 4),
    block=(8, 8),
    make_args=lambda r: [f32s(r, 30 * 20).reshape(30, 20), np.zeros((30, 20), np.float32)],
    reference=_stencil_reference,
)
@rk.kernel
def stencil_2d(src: Array[f32, 2], out: Array[f32, 2]):
    """A 5-point Laplacian; edge cells are copied."""
    r, c = rk.global_id(1), rk.global_id(0)
    rows, cols = src.shape[0], src.shape[1]
    if r < rows and c < cols:
        if r == 0 or c == 0 or r == rows - 1 or c == cols - 1:
            out[r, c] = src[r, c]
        else:
            around = src[r - 1, c] + src[r + 1, c] + src[r, c - 1] + src[r, c + 1]
            out[r, c] = around - 4.0 * src[r, c]


HEAT_STEPS = 5


def _heat_reference(a: list[Any]) -> list[Any]:
    u = a[0].astype(np.float64)
    for _ in range(a[3]):
        v = u.copy()
        v[1:-1, 1:-1] = u[1:-1, 1:-1] + 0.2 * (
            u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4.0 * u[1:-1, 1:-1]
        )
        u = v
    return [None, None, u.astype(np.float32), None]


@case(
    grid=1,
    block=(12, 10),
    make_args=lambda r: [
        f32s(r, 10 * 12, 0.0, 1.0).reshape(10, 12),
        np.zeros((10, 12), np.float32),
        np.zeros((10, 12), np.float32),
        HEAT_STEPS,
    ],
    reference=_heat_reference,
)
@rk.kernel
def heat_swap(u: Array[f32, 2], v: Array[f32, 2], out: Array[f32, 2], steps: i32):
    """Explicit heat steps in one block: read u, write v, then swap the two buffers."""
    r, c = rk.thread_id(1), rk.thread_id(0)
    rows, cols = u.shape[0], u.shape[1]
    v[r, c] = u[r, c]
    rk.barrier()
    for _ in range(steps):
        if r > 0 and c > 0 and r < rows - 1 and c < cols - 1:
            lap = u[r - 1, c] + u[r + 1, c] + u[r, c - 1] + u[r, c + 1] - 4.0 * u[r, c]
            v[r, c] = u[r, c] + 0.2 * lap
        rk.barrier()
        u, v = v, u
    out[r, c] = u[r, c]


SORT_N = 64


@rk.func
def compare_swap(s: Array[f32], i: i32, j: i32, ascending: bool):
    """The bitonic comparator, over whatever memory ``s`` lives in."""
    a, b = s[i], s[j]
    if (a > b and ascending) or (a < b and not ascending):
        s[i] = b
        s[j] = a


@case(
    grid=1,
    block=SORT_N,
    make_args=lambda r: [f32s(r, SORT_N)],
    reference=lambda a: [np.sort(a[0])],
)
@rk.kernel
def bitonic_sort(x: Array[f32]):
    buf = rk.shared_array(f32, SORT_N)
    t = rk.thread_id(0)
    buf[t] = x[t]
    rk.barrier()
    k = 2
    while k <= SORT_N:
        j = k // 2
        while j > 0:
            partner = t ^ j
            if partner > t:
                compare_swap(buf, t, partner, (t & k) == 0)
            rk.barrier()
            j //= 2
        k *= 2
    x[t] = buf[t]


POLY = np.array([0.5, -1.0, 0.25, 2.0], dtype=np.float32)  # embedded read-only in the kernel
WEIGHTS = np.array([[1, 2], [3, 4]], dtype=np.int32)


def _table_reference(a: list[Any]) -> list[Any]:
    x = a[0].astype(np.float64)
    poly = sum(float(c) * x**k for k, c in enumerate(POLY))
    return [None, poly.astype(np.float32), WEIGHTS.ravel()[np.arange(len(x)) % 4], None]


@case(
    grid=(N + BLOCK - 1) // BLOCK,
    block=BLOCK,
    make_args=lambda r: [f32s(r, N), np.zeros(N, np.float32), np.zeros(N, np.int32), N],
    reference=_table_reference,
    rtol=1e-4,
)
@rk.kernel
def constant_table(x: Array[f32], out: Array[f32], picked: Array[i32], n: i32):
    """Horner's rule over a module-level coefficient table, and a 2-D integer table."""
    i = rk.global_id(0)
    if i < n:
        acc = f32(0.0)
        for k in range(len(POLY) - 1, -1, -1):
            acc = acc * x[i] + POLY[k]
        out[i] = acc
        picked[i] = WEIGHTS[(i % 4) // 2, i % 2]


@case(
    grid=(N + BLOCK - 1) // BLOCK,
    block=BLOCK,
    make_args=lambda r: [f32s(r, N), np.zeros(N, np.float32), N],
    reference=lambda a: [
        None,
        np.array([a[0][min(i + 3, N - 1)] - a[0][i] for i in range(N)], np.float32),
        None,
    ],
)
@rk.kernel
def local_window(x: Array[f32], out: Array[f32], n: i32):
    """Each work-item fills a private window and reads it back reversed."""
    i = rk.global_id(0)
    if i < n:
        window = rk.local_array(f32, (2, 2))
        for k in range(4):
            window[k // 2, k % 2] = x[min(i + k, n - 1)]
        out[i] = window[1, 1] - window[0, 0]


# --- small types and generic kernels (issue 14) ----------------------------------------------


def _bytes_reference(a: list[Any]) -> list[Any]:
    data = a[0]
    counts = np.bincount(data, minlength=256).astype(np.uint32)
    shifted = ((data.astype(np.int64) * 3 + 7) % 256).astype(np.uint8)  # u8 stores wrap
    return [None, counts, shifted, None]


@case(
    grid=(N + BLOCK - 1) // BLOCK,
    block=BLOCK,
    make_args=lambda r: [r.integers(0, 256, N).astype(np.uint8), np.zeros(256, np.uint32),
                         np.zeros(N, np.uint8), N],
    reference=_bytes_reference,
)
@rk.kernel
def byte_histogram(data: Array[u8], counts: Array[u32], shifted: Array[u8], n: i32):
    i = rk.global_id(0)
    if i < n:
        b = data[i]
        rk.atomic_add(counts, b, 1)  # a u8 index promotes to i32
        shifted[i] = b * 3 + 7  # computed in i32, wrapped on the store


def _half_reference(a: list[Any]) -> list[Any]:
    # numpy's float16 arithmetic rounds to f16 after each operation, as RingKernel's does
    return [None, None, a[0] * a[1] + a[2], None]


@case(
    grid=(N + BLOCK - 1) // BLOCK,
    block=BLOCK,
    make_args=lambda r: [np.float16(1.5), r.uniform(-4, 4, N).astype(np.float16),
                         r.uniform(-4, 4, N).astype(np.float16), N],
    reference=_half_reference,
    rtol=0.0,
    atol=0.0,
    needs=("f16",),
)
@rk.kernel
def half_axpy(a: f16, x: Array[f16], y: Array[f16], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


def _generic_sum() -> rk.Kernel:
    """A reduction generic over its element type (defined in a function, so ringc's static
    read of this file sees only concrete kernels; tests/ringkernel/test_generics.py runs
    ringc --specialize on it)."""
    T = rk.TypeVar("T")

    @rk.kernel
    def generic_sum(x: Array[T], total: Array[T], n: i32):
        acc = T(0)
        for j in range(rk.global_id(0), n, rk.grid_dim(0) * rk.block_dim(0)):
            acc += x[j]
        rk.atomic_add(total, 0, acc)

    return generic_sum


generic_sum = _generic_sum()
GENERIC_SUM_DTYPES = (np.float32, np.int32, np.uint32)


def _sum_args(dtype: Any) -> Callable[[np.random.Generator], list[Any]]:
    def make(r: np.random.Generator) -> list[Any]:
        x = r.integers(0, 100, N).astype(dtype) if dtype != np.float32 else f32s(r, N)
        return [x, np.zeros(1, dtype), N]

    return make


for _dtype in GENERIC_SUM_DTYPES:
    _special = generic_sum.specialize(T=_dtype)
    CASES.append(KernelCase(
        name=_special.ir.kernels[0].name,  # generic_sum_f32, ...: one IR name per specialization
        kernel=_special,
        grid=4,
        block=BLOCK,
        make_args=_sum_args(_dtype),
        reference=lambda a: [None, np.array([a[0].sum(dtype=a[0].dtype)], a[0].dtype), None],
        rtol=1e-4,
        atol=1e-4,
        static=False,
    ))


# --- struct value types, Vec and tuple returns (issue 14) -----------------------------------


@rk.struct
class Body:
    pos: Vec[f32, 3]
    vel: Vec[f32, 3]
    m: f32


NBODY = 96
NBODY_DT = 0.01
NBODY_SOFT = 0.05


@rk.func
def body_accel(bi: Body, bj: Body) -> Vec[f32, 3]:
    d = bj.pos - bi.pos
    r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + NBODY_SOFT
    inv = rk.rsqrt(r2)
    return d * (bj.m * inv * inv * inv)


def _nbody_args(r: np.random.Generator) -> list[Any]:
    bodies = np.zeros(NBODY, dtype=Body.dtype)
    bodies["pos"] = r.uniform(-1, 1, (NBODY, 3))
    bodies["vel"] = r.uniform(-0.1, 0.1, (NBODY, 3))
    bodies["m"] = r.uniform(0.5, 1.5, NBODY)
    return [bodies, np.zeros(NBODY, dtype=Body.dtype), NBODY]


def _nbody_reference(a: list[Any], dtype: np.dtype = Body.dtype) -> list[Any]:
    pos, vel, m = (a[0][f].astype(np.float64) for f in ("pos", "vel", "m"))
    d = pos[None, :, :] - pos[:, None, :]
    r2 = (d * d).sum(axis=2) + NBODY_SOFT
    acc = (d * (m[None, :] / r2**1.5)[:, :, None]).sum(axis=1)
    out = np.zeros(NBODY, dtype=dtype)
    out["vel"] = vel + acc * NBODY_DT
    out["pos"] = pos + out["vel"] * NBODY_DT
    out["m"] = m
    return [None, out, None]


@case(grid=2, block=BLOCK, make_args=_nbody_args, reference=_nbody_reference, rtol=1e-4, atol=1e-5)
@rk.kernel
def nbody_step(bodies: Array[Body], out: Array[Body], n: i32):
    i = rk.global_id(0)
    if i < n:
        me = bodies[i]
        acc = Vec[f32, 3].zeros()
        for j in range(n):
            acc += body_accel(me, bodies[j])
        me.vel = me.vel + acc * NBODY_DT
        me.pos += me.vel * NBODY_DT
        out[i] = me


@rk.struct
class BodyD:
    pos: Vec[f64, 3]
    vel: Vec[f64, 3]
    m: f64


@rk.func
def body_accel_d(bi: BodyD, bj: BodyD) -> Vec[f64, 3]:
    d = bj.pos - bi.pos
    r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + NBODY_SOFT
    inv = 1.0 / math.sqrt(r2)
    return d * (bj.m * inv * inv * inv)


def _nbody_d_args(r: np.random.Generator) -> list[Any]:
    bodies = np.zeros(NBODY, dtype=BodyD.dtype)
    bodies["pos"] = r.uniform(-1, 1, (NBODY, 3))
    bodies["vel"] = r.uniform(-0.1, 0.1, (NBODY, 3))
    bodies["m"] = r.uniform(0.5, 1.5, NBODY)
    return [bodies, np.zeros(NBODY, dtype=BodyD.dtype), NBODY]


@case(grid=2, block=BLOCK, make_args=_nbody_d_args, reference=lambda a: _nbody_reference(a, BodyD.dtype),
      rtol=1e-12, atol=1e-14, needs=("f64",))
@rk.kernel
def nbody_step_f64(bodies: Array[BodyD], out: Array[BodyD], n: i32):
    """The n-body step on f64 bodies: 8-byte fields and Vecs, two words each in the struct array."""
    i = rk.global_id(0)
    if i < n:
        me = bodies[i]
        acc = Vec[f64, 3].zeros()
        for j in range(n):
            acc += body_accel_d(me, bodies[j])
        me.vel = me.vel + acc * NBODY_DT
        me.pos += me.vel * NBODY_DT
        out[i] = me


@rk.struct
class Spin:
    axis: Vec[f32, 3]
    turns: u8


@rk.struct
class Particle:
    alive: bool
    kind: u8
    age: u16
    pos: Vec[f32, 3]
    spin: Spin
    mass: f64


PARTICLES = 200


def _particle_args(r: np.random.Generator) -> list[Any]:
    p = np.zeros(PARTICLES, Particle.dtype)
    p["alive"] = r.integers(0, 2, PARTICLES)
    p["kind"] = r.integers(0, 4, PARTICLES)
    p["age"] = r.integers(0, 65536, PARTICLES)
    p["pos"] = r.uniform(-1, 1, (PARTICLES, 3))
    p["spin"]["axis"] = r.uniform(-1, 1, (PARTICLES, 3))
    p["spin"]["turns"] = r.integers(0, 256, PARTICLES)
    p["mass"] = r.uniform(1, 2, PARTICLES)
    wind = r.uniform(-0.1, 0.1, (4, 3)).astype(np.float32)
    return [p, wind, np.zeros(PARTICLES), PARTICLES]


def _particle_reference(a: list[Any]) -> list[Any]:
    p, wind = a[0].copy(), a[1]
    alive = p["alive"]
    moved = p["pos"] + wind[p["kind"]] * p["spin"]["axis"]
    p["pos"] = np.where(alive[:, None], moved, p["pos"])
    p["age"] = np.where(alive, (p["age"].astype(np.int64) + 1) % 65536, p["age"])
    p["spin"]["turns"] = np.where(alive, (p["spin"]["turns"].astype(np.int64) + 3) % 256, p["spin"]["turns"])
    p["alive"] = alive & (p["age"] != 0)
    energy = np.where(alive, 0.5 * p["mass"] * (moved.astype(np.float64) ** 2).sum(axis=1), 0.0)
    return [p, None, energy, None]


@case(grid=(PARTICLES + BLOCK - 1) // BLOCK, block=BLOCK, make_args=_particle_args,
      reference=_particle_reference, rtol=1e-5, atol=1e-6, needs=("f64",))
@rk.kernel
def particle_update(ps: Array[Particle], wind: Array[Vec[f32, 3]], energy: Array[f64], n: i32):
    """Struct fields of every width: bool, u8 and u16 share a word, a nested struct holds a Vec, f64 mass."""
    i = rk.global_id(0)
    if i < n and ps[i].alive:
        p = ps[i]
        p.pos += wind[i32(p.kind)] * p.spin.axis
        p.age = u16(p.age + 1)
        p.spin.turns = u8(p.spin.turns + 3)
        p.alive = p.age != u16(0)
        ps[i] = p
        v = f64(p.pos[0]) * f64(p.pos[0]) + f64(p.pos[1]) * f64(p.pos[1]) + f64(p.pos[2]) * f64(p.pos[2])
        energy[i] = 0.5 * p.mass * v


@rk.func
def cnd(d: f32) -> f32:
    """The cumulative normal distribution, as CUDA's BlackScholes sample approximates it."""
    k = 1.0 / (1.0 + 0.2316419 * abs(d))
    poly = k * (0.31938153 + k * (-0.356563782 + k * (1.781477937 + k * (-1.821255978 + k * 1.330274429))))
    c = 0.3989422804014327 * math.exp(-0.5 * d * d) * poly
    return 1.0 - c if d > 0.0 else c


@rk.func
def black_scholes_pair(s: f32, x: f32, t: f32, r: f32, v: f32) -> tuple[f32, f32]:
    sqrt_t = math.sqrt(t)
    d1 = (math.log(s / x) + (r + 0.5 * v * v) * t) / (v * sqrt_t)
    d2 = d1 - v * sqrt_t
    c1, c2 = cnd(d1), cnd(d2)
    discount = math.exp(-r * t)
    return s * c1 - x * discount * c2, x * discount * (1.0 - c2) - s * (1.0 - c1)


BS_N = 500


def _cnd_reference(d: np.ndarray) -> np.ndarray:
    k = 1.0 / (1.0 + 0.2316419 * np.abs(d))
    poly = k * (0.31938153 + k * (-0.356563782 + k * (1.781477937 + k * (-1.821255978 + k * 1.330274429))))
    c = 0.3989422804014327 * np.exp(-0.5 * d * d) * poly
    return np.where(d > 0, 1.0 - c, c)


def _black_scholes_reference(a: list[Any]) -> list[Any]:
    s, x, t = (v.astype(np.float64) for v in a[:3])
    r, v = 0.02, 0.30
    d1 = (np.log(s / x) + (r + 0.5 * v * v) * t) / (v * np.sqrt(t))
    d2 = d1 - v * np.sqrt(t)
    discount = np.exp(-r * t)
    call = s * _cnd_reference(d1) - x * discount * _cnd_reference(d2)
    put = x * discount * (1.0 - _cnd_reference(d2)) - s * (1.0 - _cnd_reference(d1))
    return [None, None, None, call.astype(np.float32), put.astype(np.float32), None]


@case(
    grid=(BS_N + BLOCK - 1) // BLOCK,
    block=BLOCK,
    make_args=lambda r: [f32s(r, BS_N, 5, 30), f32s(r, BS_N, 1, 100), f32s(r, BS_N, 0.25, 10),
                         np.zeros(BS_N, np.float32), np.zeros(BS_N, np.float32), BS_N],
    reference=_black_scholes_reference,
    rtol=1e-3,
    atol=2e-3,
)
@rk.kernel
def black_scholes(s: Array[f32], x: Array[f32], t: Array[f32], call: Array[f32], put: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        c, p = black_scholes_pair(s[i], x[i], t[i], 0.02, 0.30)
        call[i] = c
        put[i] = p


V4_N = 300


def _vec4_reference(a: list[Any]) -> list[Any]:
    x = a[0].reshape(-1, 4).astype(np.float64)
    y = x * 2.0 - 1.0
    k = np.arange(len(x)) % 4
    rows = np.arange(len(x))
    y[rows, k] = 0.0
    total = y.sum(axis=1)
    y[rows, (k + 1) % 4] += x[rows, k]  # read at a dynamic index, written at another
    out = np.concatenate([y, total[:, None]], axis=1)
    return [None, out.astype(np.float32).ravel(), None]


@case(
    grid=(V4_N + BLOCK - 1) // BLOCK,
    block=BLOCK,
    make_args=lambda r: [f32s(r, 4 * V4_N), np.zeros(5 * V4_N, np.float32), V4_N],
    reference=_vec4_reference,
)
@rk.kernel
def vec4_lanes(x: Array[f32], out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        v = Vec[f32, 4](x[4 * i], x[4 * i + 1], x[4 * i + 2], x[4 * i + 3])
        y = v * 2.0 - 1.0
        k = i % 4
        y[k] = 0.0
        a, b, c, d = y
        total = a + b + c + d
        y[(k + 1) % 4] += v[k]
        for j in range(4):
            out[5 * i + j] = y[j]
        out[5 * i + 4] = total


# --- grid-wide sync (issue 15): cooperative launches, cuda and cpu only ---------------------
# Kept out of CASES: WGSL and MSL refuse rk.grid_sync() (no grid-wide barrier), and
# tests/runtime/test_grid_sync.py runs these where they can run and checks the refusals.

GRID_SYNC_CASES: list[KernelCase] = []

HEAT_N = 1000
HEAT_STEPS = 40
HEAT_ALPHA = 0.25


def grid_sync_case(**kwargs: Any) -> Callable[[rk.Kernel], rk.Kernel]:
    def register(kernel: rk.Kernel) -> rk.Kernel:
        GRID_SYNC_CASES.append(KernelCase(name=kernel.__name__, kernel=kernel, **kwargs))
        return kernel
    return register


@rk.func
def heat_step(src: Array[f32], dst: Array[f32], n: i32, first: i32, stride: i32) -> None:
    for i in range(first, n, stride):
        if i == 0 or i == n - 1:
            dst[i] = src[i]  # fixed boundary
        else:
            dst[i] = src[i] + HEAT_ALPHA * (src[i - 1] - 2.0 * src[i] + src[i + 1])


def _heat_reference(a: list[Any]) -> list[Any]:
    u, v = a[0].copy(), a[1].copy()
    n, steps = a[2], a[3]
    for s in range(steps):
        src, dst = (u, v) if s % 2 == 0 else (v, u)
        dst[0], dst[n - 1] = src[0], src[n - 1]
        dst[1:n - 1] = src[1:n - 1] + np.float32(HEAT_ALPHA) * (
            src[:n - 2] - np.float32(2.0) * src[1:n - 1] + src[2:n])
    return [u, v, None, None]


@grid_sync_case(
    grid=4,
    block=BLOCK,
    make_args=lambda r: [f32s(r, HEAT_N, 0, 100), np.zeros(HEAT_N, np.float32), HEAT_N, HEAT_STEPS],
    reference=_heat_reference,
    rtol=1e-5,
    atol=1e-3,
)
@rk.kernel
def heat_jacobi(u: Array[f32], v: Array[f32], n: i32, steps: i32):
    """The 1-D heat equation, ``steps`` Jacobi steps in one launch: a grid-stride sweep from
    one buffer into the other, then rk.grid_sync() before the next step reads it."""
    first = rk.global_id(0)
    stride = rk.grid_dim(0) * rk.block_dim(0)
    for s in range(steps):
        if s % 2 == 0:
            heat_step(u, v, n, first, stride)
        else:
            heat_step(v, u, n, first, stride)
        rk.grid_sync()


SUM_N = 5000


def _two_phase_reference(a: list[Any]) -> list[Any]:
    total = np.float32(a[0].astype(np.float64).sum())
    return [None, None, np.full(1, total, np.float32), None]


@grid_sync_case(
    grid=6,
    block=BLOCK,
    make_args=lambda r: [f32s(r, SUM_N), np.zeros(6, np.float32), np.zeros(1, np.float32), SUM_N],
    reference=_two_phase_reference,
    rtol=1e-4,
    atol=1e-3,
)
@rk.kernel
def grid_two_phase_sum(x: Array[f32], partial: Array[f32], total: Array[f32], n: i32):
    """Phase 1: each block sums a grid-stride share in a shared-memory tree into partial[block];
    rk.grid_sync(); phase 2: block 0 sums the partials (no second launch, no atomics)."""
    t = rk.thread_id(0)
    acc = f32(0.0)
    for i in range(rk.global_id(0), n, rk.grid_dim(0) * rk.block_dim(0)):
        acc += x[i]
    tile = rk.shared_array(f32, BLOCK)
    tile[t] = acc
    rk.barrier()
    s = BLOCK // 2
    while s > 0:
        if t < s:
            tile[t] += tile[t + s]
        rk.barrier()
        s //= 2
    if t == 0:
        partial[rk.block_id(0)] = tile[0]
    rk.grid_sync()
    if rk.block_id(0) == 0 and t == 0:
        sum_ = f32(0.0)
        for b in range(rk.grid_dim(0)):
            sum_ += partial[b]
        total[0] = sum_

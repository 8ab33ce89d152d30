"""Kernels running on wgpu (lavapipe in CI), compared with numpy."""

from __future__ import annotations

import kernel_corpus
import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, u32
from ringkernel.kernels import launch_module
from ringkernel.lowering.wgsl.naga import (
    ADAPTER_ENV,
    WgpuUnavailable,
    create_shader_module,
    select_adapter,
)
from ringkernel.ringir import F32, ArrayType, FunctionBuilder, Module, verify
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.runtime import get_backend
from ringkernel.runtime.arguments import LaunchError
from ringkernel.runtime.wgpu import WgpuBackend

pytestmark = pytest.mark.skipif(
    not WgpuBackend.available(), reason=f"wgpu unavailable: {WgpuBackend.unavailable_reason()}"
)


def launch(kernel, grid, block, *args):
    kernel.launch(grid, block, list(args), backend="wgpu")


@pytest.mark.parametrize(
    "case", [c for c in kernel_corpus.CASES if not {"f64", "i64"} & set(c.needs)],
    ids=lambda c: c.name,
)
def test_corpus_kernel_matches_numpy(case) -> None:
    kernel_corpus.run_case(case, "wgpu")


@rk.kernel
def saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


def test_saxpy_updates_the_callers_array_in_place() -> None:
    x = np.arange(2000, dtype=np.float32).reshape(40, 50)
    y = np.ones_like(x)
    y_id = id(y)
    launch(saxpy, (2000 + 63) // 64, 64, np.float32(0.5), x, y, 2000)
    assert id(y) == y_id
    np.testing.assert_allclose(y, 0.5 * x + 1.0)


@rk.kernel
def floors(a: Array[i32], b: Array[i32], out: Array[i32], ua: Array[u32], ub: Array[u32],
           uout: Array[u32], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[4 * i] = a[i] // b[i]
        out[4 * i + 1] = a[i] % b[i]
        out[4 * i + 2] = -a[i] // b[i]
        out[4 * i + 3] = -a[i] % b[i]
        uout[2 * i] = ua[i] // ub[i]
        uout[2 * i + 1] = ua[i] % ub[i]


def test_floor_division_with_negatives_and_zero() -> None:
    a = np.array([7, -7, 7, -7, 0, 5, -2147483647, 3, -3, 9], np.int32)
    b = np.array([2, 2, -2, -2, 3, 0, -1, 0, 5, -4], np.int32)
    n = a.size
    out = np.zeros(4 * n, np.int32)
    ua = np.array([7, 0, 9, 4294967295, 5, 1, 2, 3, 4, 5], np.uint32)
    ub = np.array([2, 3, 0, 7, 5, 0, 2, 3, 4, 5], np.uint32)
    uout = np.zeros(2 * n, np.uint32)
    launch(floors, 1, 64, a, b, out, ua, ub, uout, n)

    def py(x: int, y: int) -> tuple[int, int]:
        return (0, 0) if y == 0 else (x // y, x % y)

    want = []
    for x, y in zip(a.tolist(), b.tolist()):
        want += [*py(x, y), *py(-x, y)]
    np.testing.assert_array_equal(out, np.array(want, np.int64).astype(np.int32))
    uwant = [v for x, y in zip(ua.tolist(), ub.tolist()) for v in py(x, y)]
    np.testing.assert_array_equal(uout, np.array(uwant, np.uint32))


@rk.kernel
def ranges(out: Array[i32], start: i32, stop: i32, step: i32):
    if rk.global_id(0) == 0:
        k = 0
        for j in range(start, stop, step):
            out[k] = j
            k += 1
        out[31] = k


@pytest.mark.parametrize("start,stop,step", [(0, 10, 3), (10, -5, -4), (5, 5, 1), (3, 9, 0),
                                             (9, 3, 2)])
def test_for_range_with_runtime_step_sign(start: int, stop: int, step: int) -> None:
    out = np.full(32, -99, np.int32)
    launch(ranges, 1, 1, out, start, stop, step)
    values = list(range(start, stop, step)) if step else []
    np.testing.assert_array_equal(out[: len(values)], values)
    assert out[31] == len(values)


@rk.kernel
def grid2d(out: Array[i32], width: i32, height: i32):
    x = rk.global_id(0)
    y = rk.global_id(1)
    if x < width and y < height:
        out[y * width + x] = y * 1000 + x + rk.block_dim(1) * 0 + rk.grid_dim(1) * 0


def test_two_dimensional_grid() -> None:
    width, height = 37, 21
    out = np.zeros(width * height, np.int32)
    launch(grid2d, (5, 6), (8, 4), out, width, height)
    ys, xs = np.mgrid[0:height, 0:width]
    np.testing.assert_array_equal(out.reshape(height, width), ys * 1000 + xs)


@rk.kernel
def block_sum(x: Array[f32], sums: Array[f32], n: i32):
    buf = rk.shared_array(f32, 128)
    t = rk.thread_id(0)
    i = rk.global_id(0)
    buf[t] = x[i] if i < n else 0.0
    rk.barrier()
    stride = rk.block_dim(0) // 2
    while stride > 0:
        if t < stride:
            buf[t] += buf[t + stride]
        rk.barrier()
        stride //= 2
    if t == 0:
        sums[rk.block_id(0)] = buf[0]


def test_shared_memory_reduction_with_barriers_in_a_loop() -> None:
    n = 3000
    x = np.random.default_rng(1).uniform(-1, 1, n).astype(np.float32)
    blocks = (n + 127) // 128
    sums = np.zeros(blocks, np.float32)
    launch(block_sum, blocks, 128, x, sums, n)
    want = np.pad(x, (0, blocks * 128 - n)).reshape(blocks, 128).sum(axis=1)
    np.testing.assert_allclose(sums, want, rtol=1e-4, atol=1e-5)


@rk.kernel
def histogram(values: Array[i32], bins: Array[i32], weights: Array[f32], total: Array[f32],
              n: i32):
    i = rk.global_id(0)
    if i < n:
        rk.atomic_add(bins, values[i], 1)
        rk.atomic_add(total, values[i], weights[i])
        rk.atomic_sub(total, 16, weights[i])


def test_atomic_histogram_with_f32_atomic_add() -> None:
    rng = np.random.default_rng(2)
    n = 4000
    values = rng.integers(0, 16, n).astype(np.int32)
    weights = rng.uniform(0, 1, n).astype(np.float32).round(2)
    bins = np.zeros(16, np.int32)
    total = np.zeros(17, np.float32)
    launch(histogram, (n + 63) // 64, 64, values, bins, weights, total, n)
    np.testing.assert_array_equal(bins, np.bincount(values, minlength=16))
    want = np.bincount(values, weights=weights.astype(np.float64), minlength=16)
    np.testing.assert_allclose(total[:16], want, rtol=1e-4)
    np.testing.assert_allclose(total[16], -weights.astype(np.float64).sum(), rtol=1e-4)


@rk.kernel
def unsigned_atomics(acc: Array[u32], old: Array[u32], fx: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        v = u32(i)
        rk.atomic_min(acc, 0, v)
        rk.atomic_max(acc, 1, v)
        rk.atomic_xor(acc, 2, v)
        old[i] = rk.atomic_exchange(acc, 3, v)
        rk.atomic_exchange(fx, i, f32(i) * 0.5)
        claimed = rk.atomic_cas(acc, 4, u32(0), u32(1))
        if claimed == u32(0):
            rk.atomic_add(acc, 5, u32(1))


def test_unsigned_atomics_and_cas_claim_once() -> None:
    n = 200
    acc = np.array([4294967295, 0, 0, 12345, 0, 0], np.uint32)
    old = np.zeros(n, np.uint32)
    fx = np.zeros(n, np.float32)
    launch(unsigned_atomics, 4, 64, acc, old, fx, n)
    assert acc[0] == 0 and acc[1] == n - 1
    assert acc[2] == np.bitwise_xor.reduce(np.arange(n, dtype=np.uint32))
    assert acc[4] == 1 and acc[5] == 1
    # every value written by exchange is seen exactly once, as an "old" or as the final value
    seen = sorted([*old.tolist(), int(acc[3])])
    assert seen == sorted([12345, *range(n)])
    np.testing.assert_array_equal(fx, np.arange(n, dtype=np.float32) * 0.5)


@rk.func
def bump(arr: Array[f32], i: i32, v: f32):
    arr[i] = arr[i] + v


@rk.func
def cube(v: f32) -> f32:
    return v * v * v


@rk.kernel
def calls(a: Array[f32], b: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        bump(a, i, cube(f32(i)))
        bump(b, i, 1.0)


def test_device_functions_with_array_arguments() -> None:
    n = 100
    a = np.zeros(n, np.float32)
    b = np.full(n, 2.0, np.float32)
    launch(calls, 2, 64, a, b, n)
    np.testing.assert_allclose(a, np.arange(n, dtype=np.float32) ** 3)
    np.testing.assert_allclose(b, 3.0)


@rk.kernel
def math_kernel(x: Array[f32], out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        v = x[i]
        out[3 * i] = rk.rsqrt(v) + rk.fma(v, v, 1.0)
        out[3 * i + 1] = f32(i32(v * 1000.0) // 7) + f32(i32(v * 1000.0) % 7)
        out[3 * i + 2] = (v * 9.0) // 2.0 + (v * -9.0) % 2.0


def test_math_and_float_floor_ops() -> None:
    x = np.linspace(0.1, 4.0, 300).astype(np.float32)
    out = np.zeros(3 * x.size, np.float32)
    launch(math_kernel, 5, 64, x, out, x.size)
    k = (x * np.float32(1000.0)).astype(np.int32)
    want = np.stack([
        1 / np.sqrt(x) + x * x + 1,
        (k // 7 + k % 7).astype(np.float32),
        np.floor_divide(x * np.float32(9.0), np.float32(2.0))
        + np.mod(x * np.float32(-9.0), np.float32(2.0)),
    ], axis=1).reshape(-1)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


@rk.kernel
def hostile(fn: Array[f32], let: f32, loop: i32, workgroup_size: i32):
    var = rk.global_id(0)
    if var < loop:
        fn[var] = fn[var] * let + f32(workgroup_size)


def test_hostile_identifiers_compile_and_run() -> None:
    data = np.arange(50, dtype=np.float32)
    launch(hostile, 1, 64, data, np.float32(2.0), 50, 3)
    np.testing.assert_allclose(data, np.arange(50) * 2.0 + 3.0)


@rk.kernel
def flags(src: Array[rk.bool_], dst: Array[rk.bool_], n: i32):
    i = rk.global_id(0)
    if i < n:
        dst[i] = not src[i]


def test_bool_arrays_travel_as_u32() -> None:
    src = np.array([True, False, True, True, False])
    dst = np.zeros(5, bool)
    launch(flags, 1, 64, src, dst, 5)
    np.testing.assert_array_equal(dst, ~src)


def test_pipeline_cache_reuses_pipelines() -> None:
    backend = get_backend("wgpu")
    x = np.ones(64, np.float32)
    y = np.zeros(64, np.float32)
    launch(saxpy, 1, 64, np.float32(1.0), x, y, 64)
    count = len(backend._pipelines)
    launch(saxpy, 1, 64, np.float32(1.0), x, y, 64)
    assert len(backend._pipelines) == count
    launch(saxpy, 2, 32, np.float32(1.0), x, y, 64)
    assert len(backend._pipelines) == count + 1
    np.testing.assert_allclose(y, 3.0)


def test_limits_give_launch_errors() -> None:
    x = np.ones(64, np.float32)
    with pytest.raises(LaunchError, match="too large"):
        launch(saxpy, 1, 2048, np.float32(1.0), x, x, 64)
    with pytest.raises(LaunchError, match="per block"):
        launch(saxpy, 1, (64, 64), np.float32(1.0), x, x, 64)
    with pytest.raises(LaunchError, match="blocks per dimension"):
        launch(saxpy, 70000, 64, np.float32(1.0), x, x, 64)
    small = WgpuBackend()
    small.limits["max-storage-buffer-binding-size"] = 128
    with pytest.raises(LaunchError, match="argument 'x' of kernel 'saxpy' is 256 bytes"):
        launch_module(saxpy.ir, "saxpy", (1, 1, 1), (64, 1, 1),
                      [np.float32(1.0), x, x.copy(), np.int32(64)], small)
    small.limits["max-storage-buffers-per-shader-stage"] = 1
    with pytest.raises(LaunchError, match="binds at most 1"):
        launch_module(saxpy.ir, "saxpy", (1, 1, 1), (32, 1, 1),
                      [np.float32(1.0), x, x.copy(), np.int32(64)], small)


def test_too_much_shared_memory_is_a_launch_error() -> None:
    fb = FunctionBuilder("big", "kernel", [("o", ArrayType(F32))])
    fb.shared_array(F32, 1 << 20)
    module = verify(Module((fb.finish(),)))
    with pytest.raises(LaunchError, match="shared memory"):
        launch_module(module, "big", (1, 1, 1), (1, 1, 1), [np.zeros(1, np.float32)], "wgpu")


def test_naga_rejection_is_a_compile_error_with_the_line() -> None:
    backend = get_backend("wgpu")
    with pytest.raises(CompileError) as info:
        create_shader_module(backend.device, "fn f() {\n    let a = b;\n}\n", "<t>")
    assert info.value.line == 2 and "let a = b;" in str(info.value)


def test_adapter_selection_by_environment(monkeypatch) -> None:
    import wgpu

    adapters = list(wgpu.gpu.enumerate_adapters_sync())
    monkeypatch.setenv(ADAPTER_ENV, "no-such-adapter-anywhere")
    with pytest.raises(WgpuUnavailable, match="matches no adapter"):
        select_adapter(adapters)
    name = adapters[0].info["device"]
    monkeypatch.setenv(ADAPTER_ENV, name.upper())
    assert name in select_adapter(adapters).info["device"]
    monkeypatch.delenv(ADAPTER_ENV)
    ranks = {"DiscreteGPU": 0, "IntegratedGPU": 1}
    best = select_adapter(adapters)
    assert all(ranks.get(best.info["adapter_type"], 3) <= ranks.get(a.info["adapter_type"], 3)
               for a in adapters)


@rk.kernel
def to_int(x: Array[f32], o: Array[i32], u: Array[u32], n: i32):
    i = rk.global_id(0)
    if i < n:
        o[i] = i32(x[i])
        u[i] = u32(x[i])


def test_float_to_int_casts_saturate_like_the_cpu_backend() -> None:
    x = np.array([3e10, -3e10, np.nan, np.inf, -np.inf, -1.5, 2.7, 4e9, 2**31, -(2**31)],
                 np.float32)
    o = np.zeros(x.size, np.int32)
    u = np.zeros(x.size, np.uint32)
    launch(to_int, 1, 64, x, o, u, x.size)
    top, bottom = 2**31 - 1, -(2**31)
    np.testing.assert_array_equal(o, [top, bottom, 0, top, bottom, -1, 2, top, top, bottom])
    np.testing.assert_array_equal(u, [2**32 - 1, 0, 0, 2**32 - 1, 0, 0, 2, 4000000000, 2**31, 0])


@rk.kernel
def reassign(out: Array[i32]):
    if rk.global_id(0) == 0:
        total = 0
        j = -1
        for j in range(5):
            total += j
            j = 100  # noqa: B007, PLW2901 - Python ignores this for the next iteration
            total += j
        out[0] = total
        out[1] = j


def test_assigning_the_loop_variable_does_not_change_iteration() -> None:
    out = np.zeros(2, np.int32)
    launch(reassign, 1, 1, out)
    np.testing.assert_array_equal(out, [10 + 500, 100])


@rk.func
def count_into(bins: Array[i32], k: i32) -> i32:
    return rk.atomic_add(bins, k, 1)


@rk.func
def tally(bins: Array[i32], scratch: Array[i32], k: i32, i: i32):
    scratch[i] = min(count_into(bins, k), 0) + k


@rk.kernel
def nested_calls(values: Array[i32], bins: Array[i32], seen: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        tally(bins, seen, values[i], i)
        seen[i] = max(seen[i], bins[values[i]] * 0)


def test_funcs_pass_arrays_on_and_atomics_reach_through_calls() -> None:
    rng = np.random.default_rng(5)
    n = 500
    values = rng.integers(0, 8, n).astype(np.int32)
    bins = np.zeros(8, np.int32)
    seen = np.zeros(n, np.int32)
    launch(nested_calls, (n + 63) // 64, 64, values, bins, seen, n)
    np.testing.assert_array_equal(bins, np.bincount(values, minlength=8))
    np.testing.assert_array_equal(seen, values)
    text = nested_calls.compile("wgsl", block=64)
    # bins is atomic because a func two calls down uses it atomically: every access follows
    assert "g_nested_calls_bins: array<atomic<i32>>" in text
    assert "atomicLoad(&g_nested_calls_bins[" in text

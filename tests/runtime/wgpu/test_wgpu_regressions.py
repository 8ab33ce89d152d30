"""wgpu regressions: aliased arguments, llvmpipe's loop limit, checked launches, odd arrays."""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, u32
from ringkernel.runtime import get_backend
from ringkernel.runtime.arguments import LaunchError
from ringkernel.runtime.wgpu import WgpuBackend
from ringkernel.runtime.wgpu.status import LoopLimitError

pytestmark = pytest.mark.skipif(
    not WgpuBackend.available(), reason=f"wgpu unavailable: {WgpuBackend.unavailable_reason()}"
)


def run(kernel, grid, block, *args, checked=None):
    kernel.launch(grid, block, list(args), backend="wgpu", checked=checked)


def loop_limited() -> bool:
    return get_backend("wgpu").loop_limited


# --- aliasing: the same array passed for two parameters --------------------------------


@rk.kernel
def add_one(dst: Array[f32], src: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        dst[i] = src[i] + 1.0


def test_same_array_for_output_and_input_keeps_the_kernels_writes() -> None:
    x = np.arange(100, dtype=np.float32)
    run(add_one, 2, 64, x, x, 100)
    np.testing.assert_array_equal(x, np.arange(100, dtype=np.float32) + 1.0)


@rk.kernel
def walsh_step(dst: Array[f32], src: Array[f32], h: i32, n: i32):
    # The output comes first: copied back in parameter order, the input's stale
    # copy used to land last and undo the step.
    t = rk.global_id(0)
    if t < n // 2:
        i = (t // h) * 2 * h + t % h
        a = src[i]
        b = src[i + h]
        dst[i] = a + b
        dst[i + h] = a - b


def test_fast_walsh_transform_in_place() -> None:
    n = 64
    rng = np.random.default_rng(1)
    x = rng.integers(-4, 5, n).astype(np.float32)
    want = x.copy()
    h = 1
    while h < n:
        run(walsh_step, 1, 64, x, x, h, n)
        h *= 2
    hadamard = np.array([[1.0]])
    while hadamard.shape[0] < n:
        hadamard = np.block([[hadamard, hadamard], [hadamard, -hadamard]])
    np.testing.assert_array_equal(x, hadamard @ want)


@rk.kernel
def bitonic_step(out: Array[i32], keys: Array[i32], j: i32, k: i32, n: i32):
    i = rk.global_id(0)
    partner = i ^ j
    if i < n and partner > i:
        a = keys[i]
        b = keys[partner]
        up = (i & k) == 0
        if (a > b) == up:
            out[i] = b
            out[partner] = a


def test_bitonic_sort_merging_into_the_same_array() -> None:
    n = 256
    keys = np.random.default_rng(2).permutation(n).astype(np.int32)
    k = 2
    while k <= n:
        j = k // 2
        while j > 0:
            run(bitonic_step, n // 64, 64, keys, keys, j, k, n)
            j //= 2
        k *= 2
    np.testing.assert_array_equal(keys, np.arange(n, dtype=np.int32))


@rk.kernel
def count_flags(flags: Array[rk.bool_], same: Array[rk.bool_], hits: Array[u32], n: i32):
    i = rk.global_id(0)
    if i < n:
        flags[i] = not same[i]
        if same[i]:
            rk.atomic_add(hits, 0, u32(1))


def test_aliased_bool_arrays_and_atomics() -> None:
    flags = np.array([True, False] * 32)
    hits = np.zeros(1, np.uint32)
    run(count_flags, 1, 64, flags, flags, hits, 64)
    # Each lane reads its own flag before writing it: what CUDA would give.
    np.testing.assert_array_equal(flags, np.array([False, True] * 32))
    assert hits[0] == 32


def test_partially_overlapping_views_are_a_launch_error_not_a_wrong_result() -> None:
    base = np.zeros(65, np.float32)
    with pytest.raises(LaunchError, match="overlap in memory"):
        run(add_one, 1, 64, base[1:], base[:-1], 64)
    assert not base.any()


def test_disjoint_views_of_one_array_are_separate_arguments() -> None:
    base = np.arange(128, dtype=np.float32)
    run(add_one, 1, 64, base[:64], base[64:], 64)
    np.testing.assert_array_equal(base[:64], np.arange(64, 128, dtype=np.float32) + 1.0)
    np.testing.assert_array_equal(base[64:], np.arange(64, 128, dtype=np.float32))


# --- llvmpipe's loop limiter: never a silently truncated loop -------------------------


@rk.kernel
def for_count(out: Array[i32], n: i32):
    c = 0
    for _j in range(n):
        c += 1
    out[rk.global_id(0)] = c


@rk.kernel
def while_count(out: Array[i32], n: i32):
    c = 0
    while c < n:
        c += 1
    out[rk.global_id(0)] = c


@rk.kernel
def two_loops(out: Array[i32], n: i32):
    c = 0
    for _j in range(n):
        c += 1
    k = 0
    while True:
        k += 1
        if k >= n:
            break
    out[0] = c + k


@pytest.mark.parametrize("kernel", [for_count, while_count], ids=["for", "while"])
def test_loops_below_the_limit_are_exact(kernel) -> None:
    out = np.zeros(64, np.int32)
    run(kernel, 1, 64, out, 60_000)
    assert (out == 60_000).all()


@pytest.mark.parametrize("count", [70_000, 200_000])
@pytest.mark.parametrize("kernel", [for_count, while_count], ids=["for", "while"])
def test_long_loops_are_exact_or_a_clear_error(kernel, count) -> None:
    out = np.full(64, -1, np.int32)
    if loop_limited():
        with pytest.raises(LoopLimitError, match="65,535 iterations"):
            run(kernel, 1, 64, out, count)
        assert (out == -1).all(), "a truncated result must not reach the caller"
    else:
        run(kernel, 1, 64, out, count)
        assert (out == count).all()


def test_the_limit_is_shared_by_all_loops_of_an_invocation() -> None:
    out = np.zeros(1, np.int32)
    run(two_loops, 1, 1, out, 30_000)
    assert out[0] == 60_000
    if loop_limited():
        with pytest.raises(LoopLimitError):
            run(two_loops, 1, 1, out, 40_000)
    else:
        run(two_loops, 1, 1, out, 40_000)
        assert out[0] == 80_000


@rk.message
class Spin:
    n: i32


@rk.message
class Spun:
    count: i32


@rk.actor
class Spinner:
    def spin(self, msg: Spin) -> Spun:
        c = 0
        while c < msg.n:
            c += 1
        return Spun(count=c)


def test_actor_handler_loop_past_the_limit_is_aborted_by_the_default_budget() -> None:
    # (it used to fail the whole system with LoopLimitError; the default budget is below the limit)
    with rk.ActorSystem(backend="wgpu") as system:
        actor = system.spawn(Spinner, queue_capacity=16)
        assert actor.ask(Spin(n=1000), timeout=10.0).count == 1000
        if loop_limited():
            with pytest.raises(rk.HandlerAborted, match="budget"):
                actor.ask(Spin(n=70_000), timeout=10.0)
        else:
            assert actor.ask(Spin(n=70_000), timeout=10.0).count == 70_000
        assert actor.ask(Spin(n=5), timeout=10.0).count == 5  # it keeps serving


# --- checked launches ------------------------------------------------------------------


@rk.kernel
def shifted(src: Array[f32], dst: Array[f32], offset: i32, n: i32):
    i = rk.global_id(0)
    if i < n:
        dst[i] = src[i + offset]


def test_unchecked_launch_is_the_default() -> None:
    src = np.arange(64, dtype=np.float32)
    dst = np.zeros(64, np.float32)
    run(shifted, 1, 64, src, dst, 0, 64)
    np.testing.assert_array_equal(dst, src)


def test_checked_read_past_the_end_raises_bounds_error_naming_the_array() -> None:
    src = np.arange(64, dtype=np.float32)
    dst = np.full(64, -1.0, np.float32)
    with pytest.raises(rk.BoundsError) as info:
        run(shifted, 1, 64, src, dst, 1, 64, checked=True)
    message = str(info.value)
    assert "'shifted'" in message and "'src'" in message
    assert "index 64" in message and "length 64" in message
    # The in-bounds work happened; the bad read yielded 0.
    np.testing.assert_array_equal(dst[:63], src[1:])
    assert dst[63] == 0.0


def test_checked_negative_index_is_reported_signed() -> None:
    src = np.arange(64, dtype=np.float32)
    dst = np.zeros(64, np.float32)
    with pytest.raises(rk.BoundsError, match="index -5 "):
        run(shifted, 1, 64, src, dst, -5, 64, checked=True)


def test_checked_launch_in_bounds_gives_the_unchecked_result() -> None:
    src = np.arange(64, dtype=np.float32)
    dst = np.zeros(64, np.float32)
    run(shifted, 1, 64, src, dst, 0, 64, checked=True)
    np.testing.assert_array_equal(dst, src)


def test_checked_zero_length_array_has_length_zero() -> None:
    src = np.zeros(0, np.float32)
    dst = np.zeros(1, np.float32)
    with pytest.raises(rk.BoundsError, match="length 0"):
        run(shifted, 1, 64, src, dst, 0, 1, checked=True)


@rk.kernel
def shared_shift(out: Array[f32], k: i32):
    tile = rk.shared_array(f32, 64)
    t = rk.thread_id(0)
    tile[t] = f32(t)
    rk.barrier()
    out[t] = tile[t + k]


def test_checked_shared_array_access() -> None:
    out = np.zeros(64, np.float32)
    with pytest.raises(rk.BoundsError, match=r"shared array f32\[64\].*length 64"):
        run(shared_shift, 1, 64, out, 3, checked=True)
    np.testing.assert_array_equal(out[:61], np.arange(3, 64, dtype=np.float32))


def test_checked_write_through_an_alias_names_both_parameters() -> None:
    x = np.zeros(8, np.float32)
    with pytest.raises(rk.BoundsError, match="'dst' \\(also passed as 'src'\\)"):
        run(add_one, 1, 64, x, x, 9, checked=True)


# --- siblings ---------------------------------------------------------------------------


def test_zero_length_arrays_launch_and_stay_empty() -> None:
    empty = np.zeros(0, np.float32)
    run(add_one, 1, 64, empty, empty.copy(), 0)
    assert empty.size == 0


def test_contiguous_slices_are_written_in_place() -> None:
    base = np.zeros((4, 64), np.float32)
    row = base[2]
    run(add_one, 1, 64, row, np.arange(64, dtype=np.float32), 64)
    np.testing.assert_array_equal(base[2], np.arange(64, dtype=np.float32) + 1.0)
    assert not base[[0, 1, 3]].any()


def test_read_only_arrays_are_rejected_before_the_launch() -> None:
    src = np.arange(64, dtype=np.float32)
    src.flags.writeable = False
    with pytest.raises(LaunchError, match="writeable"):
        run(add_one, 1, 64, np.zeros(64, np.float32), src, 64)

"""N-dimensional arrays at launch: ranks, contiguity, hidden extents, every array kind, vs numpy."""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.runtime.arguments import LaunchError


@rk.kernel
def scale3(a: Array[f32, 3], out: Array[f32, 3]):
    i, j = rk.global_id(0), rk.global_id(1)
    if i < a.shape[0] and j < a.shape[1]:
        for k in range(a.shape[2]):
            out[i, j, k] = a[i, j, k] * 2.0 + f32(a.size) + f32(len(a))


def test_three_dimensional_indexing_shape_size_and_len(backend: str) -> None:
    a = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    out = np.zeros_like(a)
    scale3.launch(grid=1, block=(2, 3), args=(a, out), backend=backend)
    np.testing.assert_array_equal(out, a * 2 + a.size + len(a))


def test_wrong_rank_is_a_launch_error_naming_the_annotation() -> None:
    with pytest.raises(LaunchError, match=r"must be a 3-D array \(Array\[f32, 3\]\), got 2-D"):
        scale3.launch(grid=1, block=1, args=(np.zeros((2, 3), np.float32), np.zeros((2, 3, 1), np.float32)))


def test_non_contiguous_array_names_the_fix() -> None:
    a = np.zeros((4, 6, 2), np.float32)[:, ::2, :]
    with pytest.raises(LaunchError, match=r"np\.ascontiguousarray"):
        scale3.launch(grid=1, block=1, args=(a, np.zeros_like(a)), backend="cpu")


def test_user_arguments_count_without_the_hidden_extents() -> None:
    with pytest.raises(LaunchError, match=r"takes 2 argument\(s\) \(a, out\), got 1"):
        scale3.launch(grid=1, block=1, args=(np.zeros((1, 1, 1), np.float32),))


@rk.kernel
def lengths(x: Array[i32], out: Array[i32]):
    out[0] = len(x)
    out[1] = x.size
    out[2] = x.shape[0]


def test_one_dimensional_len_sees_the_array_flat(backend: str) -> None:
    out = np.zeros(3, np.int32)
    lengths.launch(grid=1, block=1, args=(np.zeros(7, np.int32), out), backend=backend)
    assert list(out) == [7, 7, 7]


def test_one_dimensional_arrays_get_no_hidden_parameters_unless_asked() -> None:
    @rk.kernel
    def plain(x: Array[f32], n: i32):
        i = rk.global_id(0)
        if i < n:
            x[i] = 1.0

    assert [p.name for p in plain.ir.kernels[0].params] == ["x", "n"]
    assert [p.name for p in lengths.ir.kernels[0].params] == ["x", "out", "x.shape0"]


@rk.kernel
def atomic_grid(h: Array[i32, 2], rows: Array[i32], cols: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        rk.atomic_add(h, (rows[i], cols[i]), 1)


def test_atomics_take_a_tuple_index_on_nd_arrays(backend: str) -> None:
    rng = np.random.default_rng(3)
    rows, cols = rng.integers(0, 3, 200).astype(np.int32), rng.integers(0, 5, 200).astype(np.int32)
    h = np.zeros((3, 5), np.int32)
    atomic_grid.launch(grid=4, block=64, args=(h, rows, cols, 200), backend=backend)
    expected = np.zeros((3, 5), np.int32)
    np.add.at(expected, (rows, cols), 1)
    np.testing.assert_array_equal(h, expected)


@rk.func
def row_sum(m: Array[f32, 2], r: i32) -> f32:
    total = f32(0.0)
    for c in range(m.shape[1]):
        total += m[r, c]
    return total


@rk.func
def fill_row(m: Array[f32, 2], r: i32, v: f32):
    for c in range(m.shape[1]):
        m[r, c] = v


@rk.kernel
def funcs_over_every_memory(g: Array[f32, 2], out: Array[f32]):
    t = rk.thread_id(0)
    tile = rk.shared_array(f32, (4, 3))
    mine = rk.local_array(f32, (2, 5))
    fill_row(tile, t, f32(t))
    fill_row(mine, 0, 1.5)
    fill_row(mine, 1, 2.0)
    rk.barrier()
    out[t] = row_sum(g, t) + row_sum(tile, 3 - t) + row_sum(mine, 1) + row_sum(mine, 0)


def test_funcs_take_global_shared_and_local_nd_arrays(backend: str) -> None:
    g = np.arange(8, dtype=np.float32).reshape(4, 2)
    out = np.zeros(4, np.float32)
    funcs_over_every_memory.launch(grid=1, block=4, args=(g, out), backend=backend)
    expected = g.sum(axis=1) + 3 * (3 - np.arange(4)) + 10.0 + 7.5
    np.testing.assert_allclose(out, expected)
    names = {f.name for f in funcs_over_every_memory.ir.functions}
    assert {"row_sum", "row_sum_shared", "row_sum_local", "fill_row_shared", "fill_row_local"} <= names


@rk.kernel
def three_way(a: Array[f32], b: Array[f32], c: Array[f32], out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        x, y, z = a, b, c
        for _ in range(i % 3):
            x, y, z = y, z, x
        out[i] = x[i] + 10.0 * z[i]


def test_rebinding_in_a_loop_selects_among_three_arrays(backend: str) -> None:
    n = 9
    a, b, c = (np.full(n, v, np.float32) for v in (1.0, 2.0, 3.0))
    out = np.zeros(n, np.float32)
    three_way.launch(grid=1, block=16, args=(a, b, c, out, n), backend=backend)
    firsts, lasts = [1.0, 2.0, 3.0], [3.0, 1.0, 2.0]
    np.testing.assert_array_equal(out, [firsts[i % 3] + 10 * lasts[i % 3] for i in range(n)])


def test_device_arrays_of_nd_shape(backend: str) -> None:
    a = rk.to_device(np.ones((2, 3, 2), np.float32), backend=backend)
    out = rk.device_array((2, 3, 2), np.float32, backend=backend)
    scale3.launch(grid=1, block=(2, 3), args=(a, out), backend=backend)
    np.testing.assert_array_equal(out.numpy(), np.full((2, 3, 2), 2.0 + 12 + 2, np.float32))
    with pytest.raises(LaunchError, match="must be a 3-D array"):
        scale3.launch(grid=1, block=1, args=(rk.to_device(np.ones(4, np.float32), backend=backend), out))


@rk.kernel
def deep_local(out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        total = f32(0.0)
        for k in range(20000):
            scratch = rk.local_array(f32, 256)
            scratch[k % 256] = f32(k)
            total += scratch[k % 256]
        out[i] = total


def test_local_array_in_a_long_loop_does_not_grow_the_stack() -> None:
    out = np.zeros(2, np.float32)
    deep_local.launch(grid=1, block=2, args=(out, 2), backend="cpu")
    assert out[0] == pytest.approx(sum(range(20000)), rel=1e-3)


@rk.kernel
def local_oob(out: Array[f32], k: i32):
    scratch = rk.local_array(f32, 4)
    scratch[k] = 1.0
    out[0] = scratch[0]


def test_checked_launch_names_a_local_array_as_local(backend: str) -> None:
    with pytest.raises(rk.BoundsError, match="local array") as info:
        local_oob.launch(1, 1, (np.zeros(1, np.float32), 7), backend=backend, checked=True)
    assert "shared" not in str(info.value)


@rk.func
def deep_scratch(i: i32) -> f32:
    buf = rk.local_array(f32, 6000)
    buf[i] = 1.0
    return buf[i]


@rk.kernel
def too_much_local(out: Array[f32]):
    mine = rk.local_array(f32, 4000)
    mine[0] = deep_scratch(0)
    out[0] = mine[0]


def test_local_arrays_past_the_stack_budget_are_a_compile_error_not_a_crash() -> None:
    with pytest.raises(rk.CompileError, match=r"needs 40000 bytes of local arrays .* at most 32768"):
        too_much_local.launch(1, 1, (np.zeros(1, np.float32),), backend="cpu")

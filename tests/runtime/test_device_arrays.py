"""Device arrays (issue 16): launches on them match numpy-argument launches, copy nothing and order."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32


@rk.kernel
def dev_saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


@rk.kernel
def dev_add(x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = x[i] + y[i]


@rk.kernel
def dev_flag_odd(x: Array[i32], out: Array[rk.bool_], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = x[i] % 2 == 1


def _blocks(n: int) -> int:
    return (n + 63) // 64


def test_results_match_numpy_argument_launches(backend: str) -> None:
    n = 1000
    rng = np.random.default_rng(1)
    x, y = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    expected = y.copy()
    dev_saxpy[_blocks(n), 64, backend](2.5, x, expected, n)
    dx, dy = rk.to_device(x, backend), rk.to_device(y, backend)
    dev_saxpy[_blocks(n), 64, backend](2.5, dx, dy, n)
    assert np.array_equal(dy.numpy(), expected)
    assert np.array_equal(dx.numpy(), x)
    assert (dy.shape, dy.dtype, dy.backend) == ((n,), np.dtype(np.float32), backend)


def test_launches_with_device_arrays_leave_host_arrays_alone(backend: str) -> None:
    x = np.ones(64, np.float32)
    dx = rk.to_device(x, backend)
    dev_saxpy[1, 64, backend](3.0, dx, dx, 64)
    assert (x == 1).all()  # the device copy changed, not the array it came from
    assert (dx.numpy() == 4).all()


def test_the_same_device_array_twice_aliases(backend: str) -> None:
    n = 256
    x = np.arange(n, dtype=np.float32)
    dx = rk.to_device(x, backend)
    dev_add[_blocks(n), 64, backend](dx, dx, n)
    assert np.array_equal(dx.numpy(), 2 * x)


def test_mixing_device_and_numpy_arguments(backend: str) -> None:
    n = 300
    x = np.arange(n, dtype=np.float32)
    y = np.ones(n, np.float32)
    dx = rk.to_device(x, backend)
    dev_add[_blocks(n), 64, backend](dx, y, n)  # numpy y: copied back
    assert np.array_equal(y, x + 1)
    dy = rk.to_device(np.full(n, 5, np.float32), backend)
    dev_add[_blocks(n), 64, backend](x, dy, n)  # numpy x: read only, device y written
    assert np.array_equal(dy.numpy(), x + 5)


def test_numpy_sees_every_write_of_a_chain_of_launches(backend: str) -> None:
    n = 4096
    dx = rk.to_device(np.ones(n, np.float32), backend)
    dy = rk.to_device(np.zeros(n, np.float32), backend)
    for _ in range(50):
        dev_add[_blocks(n), 64, backend](dx, dy, n)
    assert (dy.numpy() == 50).all()
    rk.synchronize()
    rk.synchronize(backend)


def test_leading_dimension_views_share_memory(backend: str) -> None:
    base = rk.to_device(np.zeros((8, 16), np.float32), backend)
    ones = rk.to_device(np.ones(16, np.float32), backend)
    for row in (0, 3):  # row 3 starts 192 bytes in: off the binding alignment on most adapters
        dev_add[1, 16, backend](ones, base[row], 16)
    tail = base[6:]
    assert tail.shape == (2, 16)
    sevens = rk.to_device(np.full(32, 7, np.float32), backend)
    dev_saxpy[1, 32, backend](1.0, sevens, tail, 32)  # a 2-d view, written through its rows
    got = base.numpy()
    assert (got[0] == 1).all() and (got[3] == 1).all() and (got[6:] == 7).all()
    assert got[[1, 2, 4, 5]].sum() == 0
    assert np.array_equal(base[3].numpy(), np.ones(16, np.float32))


def test_bool_device_arrays(backend: str) -> None:
    x = np.arange(10, dtype=np.int32)
    out = rk.device_array(10, np.bool_, backend)
    dev_flag_odd[1, 16, backend](rk.to_device(x, backend), out, 10)
    assert np.array_equal(out.numpy(), x % 2 == 1)


def test_device_array_like_and_empty(backend: str) -> None:
    a = rk.device_array((3, 4), np.int32, backend)
    b = rk.device_array_like(a)
    assert (b.shape, b.dtype, b.backend) == ((3, 4), np.dtype(np.int32), backend)
    like_host = rk.device_array_like(np.zeros(5, np.float32), backend)
    assert like_host.shape == (5,)
    empty = rk.to_device(np.zeros(0, np.float32), backend)
    assert empty.numpy().shape == (0,)


def test_a_device_array_on_another_backend_is_a_clear_error() -> None:
    from ringkernel.runtime import backend_status

    if not backend_status("wgpu")[0]:
        pytest.skip("needs the wgpu backend as well as cpu")
    dx = rk.to_device(np.ones(4, np.float32), "cpu")
    message = (
        r"argument 'x' of kernel 'dev_saxpy' is a device array on the 'cpu' backend, "
        r"but the launch runs on 'wgpu'"
    )
    with pytest.raises(rk.LaunchError, match=message):
        dev_saxpy[1, 4, "wgpu"](1.0, dx, np.ones(4, np.float32), 4)


def test_a_device_array_of_the_wrong_dtype_is_a_clear_error() -> None:
    dx = rk.to_device(np.ones(4, np.int32), "cpu")
    with pytest.raises(rk.LaunchError, match="argument 'x' of kernel 'dev_saxpy' must have dtype float32"):
        dev_saxpy[1, 4, "cpu"](1.0, dx, dx, 4)


def test_no_backend_named_runs_where_the_device_arrays_live() -> None:
    dx = rk.to_device(np.ones(4, np.float32), "cpu")
    dev_saxpy[1, 4](1.0, dx, dx, 4)
    assert (dx.numpy() == 2).all()


def test_a_loop_of_launches_does_not_allocate_and_memory_returns_to_the_pool(backend: str) -> None:
    n = 1 << 16
    dx = rk.to_device(np.ones(n, np.float32), backend)
    dy = rk.device_array_like(dx)
    rk.synchronize(backend)
    before = rk.memory_info(backend)
    for _ in range(20):
        dev_add[_blocks(n), 64, backend](dx, dy, n)
    rk.synchronize(backend)
    assert rk.memory_info(backend)["allocations"] == before["allocations"]
    del dx, dy
    gc.collect()
    after = rk.memory_info(backend)
    assert after["in_use"] == before["in_use"] - 2 * n * 4
    again = rk.device_array(n, np.float32, backend)  # served from the pool
    assert rk.memory_info(backend)["allocations"] == after["allocations"]
    del again


def test_bad_shapes_dtypes_and_indices() -> None:
    with pytest.raises(TypeError, match="device arrays hold"):
        rk.device_array(4, np.complex64, "cpu")
    with pytest.raises(ValueError, match="non-negative"):
        rk.device_array(-1, np.float32, "cpu")
    a = rk.device_array((4, 2), np.float32, "cpu")
    with pytest.raises(IndexError, match="out of range"):
        a[4]
    with pytest.raises(IndexError, match="step 1"):
        a[::2]
    with pytest.raises(IndexError, match="leading dimension"):
        a[:, 1]


def test_views_off_the_binding_alignment_are_written_back(backend: str) -> None:
    base = rk.to_device(np.zeros((8, 3), np.float32), backend)  # rows start every 12 bytes
    ones = rk.to_device(np.ones(6, np.float32), backend)
    dev_add[1, 8, backend](ones, base[1], 3)
    dev_add[1, 8, backend](ones, base[5:7], 6)
    dev_add[1, 8, backend](base[1], base[2], 3)  # reads a view that was just written
    got = base.numpy()
    assert (got[1] == 1).all() and (got[2] == 1).all() and (got[5:7] == 1).all()
    assert got[[0, 3, 4, 7]].sum() == 0


def test_partly_overlapping_views_on_wgpu_are_a_clear_error() -> None:
    from ringkernel.runtime import backend_status

    if not backend_status("wgpu")[0]:
        pytest.skip("wgpu is not available")
    base = rk.to_device(np.zeros(64, np.float32), "wgpu")
    with pytest.raises(rk.LaunchError, match="overlap in memory but are not the same array"):
        dev_add[1, 32, "wgpu"](base[0:32], base[16:48], 32)


def test_asarray_copies() -> None:
    dev = rk.to_device(np.arange(3, dtype=np.int32), "cpu")
    host = np.asarray(dev)
    host[0] = 9
    assert dev.numpy()[0] == 0
    with pytest.raises(ValueError, match="only by a copy"):
        np.asarray(dev, copy=False)

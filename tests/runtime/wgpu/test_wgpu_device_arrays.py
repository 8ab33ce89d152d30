"""wgpu device arrays: launches on them are batched, ordered, and report late errors at the wait."""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.runtime import backend_status, get_backend
from ringkernel.runtime.wgpu.status import LoopLimitError

ok, reason = backend_status("wgpu")
pytestmark = pytest.mark.skipif(not ok, reason=reason)


@rk.kernel
def wdev_add(x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = x[i] + y[i]


@rk.kernel
def wdev_count(out: Array[i32], n: i32):
    c = 0
    while c < n:
        c += 1
    out[rk.global_id(0)] = c


def _pending() -> int:
    return get_backend("wgpu").memory._passes


def test_launches_on_device_arrays_are_batched_until_a_read() -> None:
    n = 1024
    dx = rk.to_device(np.ones(n, np.float32), "wgpu")
    dy = rk.to_device(np.zeros(n, np.float32), "wgpu")
    for _ in range(5):
        wdev_add[n // 64, 64, "wgpu"](dx, dy, n)
    assert _pending() == 5  # recorded, not yet submitted
    assert (dy.numpy() == 5).all()
    assert _pending() == 0


def test_a_numpy_argument_launch_runs_after_the_batch() -> None:
    n = 256
    dx = rk.to_device(np.ones(n, np.float32), "wgpu")
    dy = rk.to_device(np.zeros(n, np.float32), "wgpu")
    wdev_add[n // 64, 64, "wgpu"](dx, dy, n)  # batched
    z = np.zeros(n, np.float32)
    wdev_add[n // 64, 64, "wgpu"](dy, z, n)  # mixed: runs now, must see the batched write
    assert (z == 1).all()


def test_synchronize_submits_and_waits() -> None:
    n = 256
    dx = rk.to_device(np.ones(n, np.float32), "wgpu")
    wdev_add[n // 64, 64, "wgpu"](dx, dx, n)
    rk.synchronize()
    assert _pending() == 0
    assert (dx.numpy() == 2).all()


def test_a_late_loop_limit_error_is_raised_by_the_wait() -> None:
    if not get_backend("wgpu").loop_limited:
        pytest.skip("the adapter has no loop limit")
    out = rk.device_array(64, np.int32, "wgpu")
    wdev_count[1, 64, "wgpu"](out, 70_000)  # returns at once: the error is not known yet
    with pytest.raises(LoopLimitError, match="65,535 iterations"):
        out.numpy()
    wdev_count[1, 64, "wgpu"](out, 100)
    assert (out.numpy() == 100).all()  # the error was reported once


def test_checked_launches_on_device_arrays_raise_at_once() -> None:
    out = rk.device_array(4, np.float32, "wgpu")
    with pytest.raises(rk.BoundsError, match="out of bounds"):
        wdev_add.launch(1, 64, [out, out, 64], backend="wgpu", checked=True)


def test_many_unchecked_launches_are_checked_in_bounded_rounds() -> None:
    if not get_backend("wgpu").loop_limited:
        pytest.skip("the adapter has no loop limit")
    from ringkernel.runtime.wgpu.memory import MAX_BATCH

    out = rk.device_array(64, np.int32, "wgpu")
    wdev_count[1, 64, "wgpu"](out, 70_000)  # a loop the driver cuts short
    with pytest.raises(LoopLimitError):
        for _ in range(MAX_BATCH):  # the round of checks happens at a launch, not only at a read
            wdev_count[1, 64, "wgpu"](out, 10)
    assert len(get_backend("wgpu").memory._checks) == 0

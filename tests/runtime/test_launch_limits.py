"""CUDA's grid and block limits hold on every backend, and a long cpu launch stops on Ctrl-C.

The reported hang: a cpu grid of ``(2**20,) * 3`` ran 2**60 blocks and
ignored Ctrl-C.
"""

from __future__ import annotations

import _thread
import threading
import time

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, i32
from ringkernel.kernels import launch_module
from ringkernel.runtime import get_backend
from ringkernel.runtime.arguments import LaunchError, check_dims, launch_dims


@rk.kernel
def touch(x: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        x[i] = 1


BAD_LAUNCHES = [
    ((2**20,) * 3, 1, "grid y may be at most 65535"),
    ((1, 1, 65536), 1, "grid z may be at most 65535"),
    (2**31, 1, "grid x may be at most 2147483647"),
    (1, 1025, "block x may be at most 1024"),
    (1, (1, 1025), "block y may be at most 1024"),
    (1, (1, 1, 65), "block z may be at most 64"),
    (1, (32, 32, 2), "2048 threads; at most 1024 threads per block"),
]


@pytest.mark.parametrize("backend", rk.backends())
@pytest.mark.parametrize(("grid", "block", "message"), BAD_LAUNCHES)
def test_launch_beyond_cuda_limits_is_a_launch_error(backend, grid, block, message) -> None:
    x = np.zeros(4, np.int32)
    start = time.monotonic()
    with pytest.raises(LaunchError, match=message):
        touch.launch(grid, block, (x, 4), backend=backend)
    assert time.monotonic() - start < 5  # refused up front, nothing ran
    np.testing.assert_array_equal(x, 0)


@pytest.mark.parametrize("backend", rk.backends())
def test_backends_check_limits_when_called_directly(backend) -> None:
    x = np.zeros(4, np.int32)
    with pytest.raises(LaunchError, match="65535"):
        launch_module(touch.ir, "touch", (2**20,) * 3, (1, 1, 1), [x, np.int32(4)],
                      get_backend(backend))


def test_largest_legal_dims_pass_the_check() -> None:
    check_dims((2**31 - 1, 65535, 65535), (1024, 1, 1))
    check_dims((1, 1, 1), (16, 1, 64))
    assert launch_dims(7, (8, 4)) == ((7, 1, 1), (8, 4, 1))


def test_long_cpu_launch_stops_on_ctrl_c() -> None:
    x = np.zeros(16, np.int32)
    touch.launch(1, 16, (x, 16), backend="cpu")  # compile first: the timer must hit the run
    timer = threading.Timer(0.3, _thread.interrupt_main)
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            touch.launch(2**31 - 1, 1024, (x, 16), backend="cpu")  # hours of blocks
    finally:
        timer.cancel()
    assert time.monotonic() - start < 10
    touch.launch(1, 16, (x, 16), backend="cpu")  # the backend still works afterwards

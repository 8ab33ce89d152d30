"""The warm-launch fast path: a repeat launch skips the compiler, but never a check.

After one launch with a grid and block, ``Kernel.launch`` hands the
arguments to the backend's cached launcher; anything it does not accept as
is must take the general path and get the same error or result as a first
launch would.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
import ringkernel.kernels as kernels_module
from ringkernel import Array, f32, i32, u32
from ringkernel.runtime.arguments import LaunchError


@rk.kernel
def scale(a: f32, x: Array[f32], n: i32, flag: bool, k: u32):
    i = rk.global_id(0)
    if i < n:
        x[i] = x[i] * a + f32(k) if flag else x[i] * a


@rk.kernel
def poke(x: Array[i32], at: i32):
    if rk.global_id(0) == 0:
        x[at] = 7


def _warm(x: np.ndarray) -> None:
    scale.launch(1, 16, (2.0, x, 4, True, 1), backend="cpu")


def test_a_warm_launch_does_not_compile_again(monkeypatch) -> None:
    x = np.ones(4, np.float32)
    _warm(x)
    calls = []
    real = kernels_module.compile_module
    monkeypatch.setattr(
        kernels_module, "compile_module", lambda *a, **k: (calls.append(a), real(*a, **k))[1]
    )
    for _ in range(3):
        scale.launch(1, 16, (2.0, x, 4, True, 1), backend="cpu")
    assert calls == []
    np.testing.assert_array_equal(x, [31.0] * 4)  # 1 -> 3 (warm) -> 7 -> 15 -> 31


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((2.0, np.ones(4, np.float64), 4, True, 1), "dtype float32"),
        ((2.0, np.ones(8, np.float32)[::2], 4, True, 1), "C-contiguous"),
        ((2.0, [1.0, 2.0], 4, True, 1), "numpy array"),
        ((2.0, np.ones(4, np.float32), 4.0, True, 1), "float"),
        ((2.0, np.ones(4, np.float32), 2**31, True, 1), "out of range"),
        ((2.0, np.ones(4, np.float32), 4, 1, 1), "bool"),
        ((2.0, np.ones(4, np.float32), 4, True, -1), "out of range"),
        (("2", np.ones(4, np.float32), 4, True, 1), "number"),
        ((2.0, np.ones(4, np.float32), 4, True), "takes 5 argument"),
    ],
)
def test_after_a_warm_launch_bad_arguments_still_get_the_precise_error(args, message) -> None:
    _warm(np.ones(4, np.float32))
    with pytest.raises(LaunchError, match=message):
        scale.launch(1, 16, args, backend="cpu")


def test_a_read_only_array_is_refused_after_a_warm_launch() -> None:
    _warm(np.ones(4, np.float32))
    x = np.ones(4, np.float32)
    x.flags.writeable = False
    with pytest.raises(LaunchError, match="writeable"):
        scale.launch(1, 16, (2.0, x, 4, True, 1), backend="cpu")


@pytest.mark.parametrize("grid", [1.0, True, (1.0,), np.float64(1)])
def test_a_grid_equal_to_a_warm_one_but_not_an_int_is_still_an_error(grid) -> None:
    _warm(np.ones(4, np.float32))
    with pytest.raises(LaunchError, match="grid"):
        scale.launch(grid, 16, (2.0, np.ones(4, np.float32), 4, True, 1), backend="cpu")


@pytest.mark.parametrize("a", [2.0, np.float32(2.0), np.float64(2.0), 2, np.int32(2)])
def test_scalars_of_every_accepted_type_give_the_general_paths_result(a) -> None:
    _warm(np.ones(4, np.float32))
    x = np.ones(4, np.float32)
    scale.launch(1, 16, (a, x, np.int64(3), np.bool_(False), np.uint32(5)), backend="cpu")
    np.testing.assert_array_equal(x, [2.0, 2.0, 2.0, 1.0])


def test_a_bounds_violation_on_the_fast_path_is_reported_and_then_forgotten() -> None:
    x = np.zeros(4, np.int32)
    poke.launch(1, 1, (x, 1), backend="cpu")
    with pytest.raises(rk.BoundsError, match="index 9 out of bounds for array 'x' of length 4"):
        poke.launch(1, 1, (x, 9), backend="cpu")
    poke.launch(1, 1, (x, 2), backend="cpu")  # the next launch starts with a clean record
    np.testing.assert_array_equal(x, [0, 7, 7, 0])


def test_the_array_length_is_read_at_every_launch() -> None:
    poke.launch(1, 1, (np.zeros(16, np.int32), 9), backend="cpu")
    with pytest.raises(rk.BoundsError, match="length 4"):
        poke.launch(1, 1, (np.zeros(4, np.int32), 9), backend="cpu")


def test_a_changed_default_backend_is_honoured(monkeypatch) -> None:
    x = np.zeros(4, np.int32)
    poke[1, 1](x, 0)
    monkeypatch.setenv("RINGKERNEL_BACKEND", "no-such-backend")
    with pytest.raises(Exception, match="no-such-backend"):
        poke[1, 1](x, 0)


def test_a_replaced_backend_instance_is_honoured(monkeypatch) -> None:
    from ringkernel import runtime

    x = np.zeros(4, np.int32)
    poke.launch(1, 1, (x, 0), backend="cpu")
    old = runtime._instances["cpu"]
    monkeypatch.setitem(runtime._instances, "cpu", type(old)())
    launched = []
    real = runtime._instances["cpu"].launch
    monkeypatch.setattr(
        runtime._instances["cpu"], "launch", lambda *a, **k: (launched.append(1), real(*a, **k))
    )
    poke.launch(1, 1, (x, 1), backend="cpu")
    assert launched == [1]


def test_cpu_device_arrays_take_the_fast_path(monkeypatch) -> None:
    x = rk.to_device(np.ones(4, np.float32), backend="cpu")
    scale.launch(1, 16, (2.0, x, 4, False, 0), backend="cpu")
    calls = []
    real = kernels_module._launch_build
    monkeypatch.setattr(
        kernels_module, "_launch_build", lambda *a, **k: (calls.append(a), real(*a, **k))[1]
    )
    scale.launch(1, 16, (2.0, x, 4, False, 0), backend="cpu")
    assert calls == []
    np.testing.assert_array_equal(x.numpy(), [4.0] * 4)


def test_a_device_array_of_another_backend_is_still_refused_after_a_warm_launch() -> None:
    if "wgpu" not in rk.backends():
        pytest.skip("needs a second backend (wgpu) for a foreign device array")
    scale.launch(1, 16, (2.0, np.ones(4, np.float32), 4, False, 0), backend="cpu")
    foreign = rk.to_device(np.ones(4, np.float32), backend="wgpu")
    with pytest.raises(LaunchError, match="device array on the 'wgpu' backend"):
        scale.launch(1, 16, (2.0, foreign, 4, False, 0), backend="cpu")

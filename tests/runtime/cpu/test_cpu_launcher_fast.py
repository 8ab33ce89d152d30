"""The cpu fast launcher without its ``.flags`` checks still declines what it must,
and the default-backend read is cheap yet sees every change made through os.environ."""

from __future__ import annotations

import os

import numpy as np
import pytest

import ringkernel as rk
import ringkernel.kernels as kernels_module
from ringkernel import Array, f32
from ringkernel.runtime.arguments import LaunchError


@rk.kernel
def twice(x: Array[f32]):
    i = rk.global_id(0)
    if i < x.size:
        x[i] *= 2.0


@rk.kernel
def twice2(x: Array[f32, 2]):
    i = rk.global_id(0)
    if i < x.shape[0]:
        x[i, 0] *= 2.0


def _readonly() -> np.ndarray:
    x = np.ones(4, np.float32)
    x.flags.writeable = False
    return x


@pytest.mark.parametrize(
    ("kernel", "make", "message"),
    [
        (twice, _readonly, "read-only|writeable"),
        (twice, lambda: np.ones(8, np.float32)[::2], "C-contiguous"),
        (twice2, lambda: np.asfortranarray(np.ones((4, 3), np.float32)), "C-contiguous"),
    ],
)
def test_a_warm_launcher_declines_what_the_general_path_refuses(kernel, make, message) -> None:
    good = np.ones((4, 3) if kernel is twice2 else 4, np.float32)
    kernel.launch(1, 4, (good,), backend="cpu")  # the fast launcher exists now
    bad = make()
    before = bad.copy()
    with pytest.raises(LaunchError, match=message):
        kernel.launch(1, 4, (bad,), backend="cpu")
    np.testing.assert_array_equal(bad, before)


def test_an_empty_array_still_launches_after_a_warm_launch() -> None:
    twice.launch(1, 4, (np.ones(4, np.float32),), backend="cpu")
    twice.launch(1, 4, (np.ones(0, np.float32),), backend="cpu")  # numpy exports no buffer: declined


def test_the_default_backend_is_read_from_os_environ_own_dict(monkeypatch) -> None:
    if kernels_module._ENV_DATA is None:
        pytest.skip("this os.environ has no _data dict: os.environ.get is used")
    x = np.ones(4, np.float32)
    monkeypatch.setenv("RINGKERNEL_BACKEND", "cpu")
    twice[1, 4](x)
    calls = []
    real_get = os.environ.get
    monkeypatch.setattr(os.environ, "get", lambda *a: (calls.append(a), real_get(*a))[1])
    twice[1, 4](x)
    assert calls == []  # the warm launch did not pay for os.environ.get's encode and decode
    np.testing.assert_array_equal(x, 4.0)
    monkeypatch.setenv("RINGKERNEL_BACKEND", "no-such-backend")  # noticed at the next launch
    with pytest.raises(Exception, match="no-such-backend"):
        twice[1, 4](x)

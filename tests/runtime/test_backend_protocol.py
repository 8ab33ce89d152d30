"""Kernel backends run what the facade compiled; they never call the compiler themselves."""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
import ringkernel.compiler as compiler
from ringkernel import Array, i32
from ringkernel.kernels import launch_module
from ringkernel.runtime import backend_status, get_backend
from ringkernel.runtime.arguments import bind_arguments


@rk.kernel
def double(out: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = i * 2


@pytest.mark.parametrize("name", ["cpu", "wgpu"])
def test_launch_compiles_through_the_driver_for_the_backend_target(name, monkeypatch) -> None:
    ok, reason = backend_status(name)
    if not ok:
        pytest.skip(reason)
    backend = get_backend(name)
    seen = []
    real = compiler.compile_module
    monkeypatch.setattr(
        "ringkernel.kernels.compile_module",
        lambda module, target, **options: seen.append(target) or real(module, target, **options),
    )
    out = np.zeros(8, np.int32)
    args = bind_arguments(double.ir.get("double"), (out, 8))
    launch_module(double.ir, "double", (1, 1, 1), (8, 1, 1), args, backend)
    assert seen == [backend.target]
    np.testing.assert_array_equal(out, np.arange(8) * 2)

"""The host build of a data-parallel kernel is SIMD: LLVM vectorizes the work-item loop.

An unchecked saxpy must load, multiply and store whole vectors (masked by
``if i < n``); bounds checks are allowed to keep the loop scalar.
"""

from __future__ import annotations

import re

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.compiler import compile_module
from ringkernel.runtime.cpu import CpuBackend


@rk.kernel
def saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


def test_unchecked_saxpy_work_item_loop_is_vectorized() -> None:
    text = compile_module(saxpy.ir, "host", **CpuBackend().kernel_options("saxpy", False))
    wrapper = text[text.index("@rk_launch_saxpy"):]
    assert re.search(r"<(4|8|16) x float>", wrapper), "no vector float operations in the launch wrapper"
    assert re.search(r"fmul (fast )?<(4|8|16) x float>|fma\.v(4|8|16)f32", wrapper)

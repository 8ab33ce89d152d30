"""PTX loops with a run-time trip count unroll 4 times, as nvcc does (LLVM's NVPTX default is 16),
and the LLVM option that says so does not leak into other targets' compiles."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.compiler import compile_module
from ringkernel.runtime import get_backend

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import kernel_corpus  # noqa: E402


@rk.kernel
def row_sums(x: Array[f32], out: Array[f32], n: i32):
    total = f32(0.0)
    for w in range(n):
        total += x[w]
    out[rk.global_id(0)] = total


def test_a_runtime_trip_count_loop_is_unrolled_four_times() -> None:
    loads = [line for line in row_sums.compile("ptx").splitlines() if "ld.global" in line]
    assert 4 <= len(loads) <= 6, loads  # 4 in the unrolled body, 1 in the remainder loop (LLVM alone: 9)


def test_the_unroll_cap_does_not_reach_host_compiles() -> None:
    kernel = kernel_corpus.warp_shuffle_reduce
    device = get_backend("cpu")
    args = [np.zeros(10, np.float32), np.zeros(4, np.float32), 10]
    options = device.compile_options(kernel.ir, kernel.__name__, (4, 1, 1), (64, 1, 1), args, checked=False)
    before = compile_module(kernel.ir, "host", cache=False, **options)
    compile_module(kernel.ir, "ptx", cache=False)
    assert compile_module(kernel.ir, "host", cache=False, **options) == before

"""Quickstart: one kernel, compiled for every target and run on every backend here.

    python examples/quickstart.py
"""

from __future__ import annotations

import numpy as np

import ringkernel as rk
from ringkernel import Array, f32, i32


@rk.kernel
def saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


def run_kernel() -> None:
    n = 10_000
    x = np.arange(n, dtype=np.float32)
    for target in ("rir", "llvm", "ptx", "wgsl", "msl"):
        text = saxpy.compile(target)
        print(f"{target:>5}: {len(text.splitlines()):4d} lines")
    for backend in rk.backends():
        y = np.ones(n, dtype=np.float32)
        saxpy.launch(grid=(n + 255) // 256, block=256, args=(2.0, x, y, n), backend=backend)
        np.testing.assert_allclose(y, 2.0 * x + 1.0)
        print(f"saxpy on {backend}: ok, y[:4] = {y[:4]}")


if __name__ == "__main__":
    run_kernel()

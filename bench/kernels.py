"""The benchmark kernels and their problems: data, numpy equivalent, expected result.

One ``Problem`` is shared by the cpu-vs-numpy and the wgpu-vs-cpu suites, so
both time exactly the same kernel on exactly the same data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import ringkernel as rk
from ringkernel import Array, f32, i32

BLOCK = 256
RED = 256  # work-items per reduction block (shared array size)
RED_BLOCKS = 16  # reduction blocks: each work-item first sums a strided slice
BINS = 256
TILE = 16


@rk.kernel
def saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


@rk.kernel
def sqrt_exp(x: Array[f32], out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = math.sqrt(x[i]) + math.exp(x[i])


@rk.kernel
def block_reduce(x: Array[f32], total: Array[f32], n: i32):
    buf = rk.shared_array(f32, RED)
    t = rk.thread_id(0)
    acc = f32(0.0)
    for i in range(rk.global_id(0), n, rk.grid_dim(0) * RED):
        acc += x[i]
    buf[t] = acc
    rk.barrier()
    stride = RED // 2
    while stride > 0:
        if t < stride:
            buf[t] += buf[t + stride]
        rk.barrier()
        stride //= 2
    if t == 0:
        rk.atomic_add(total, 0, buf[0])


@rk.kernel
def histogram(values: Array[i32], bins: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        rk.atomic_add(bins, values[i], 1)


@rk.kernel
def transpose(src: Array[f32], dst: Array[f32], width: i32, height: i32):
    col = rk.global_id(0)
    row = rk.global_id(1)
    if col < width and row < height:
        dst[col * height + row] = src[row * width + col]


@rk.kernel
def noop(x: Array[f32]):
    if rk.global_id(0) == 0:
        x[0] = x[0] + 1.0


@dataclass
class Problem:
    """A kernel launch, its numpy equivalent on the same arrays, and what it must produce."""

    name: str
    kernel: rk.Kernel
    grid: Any
    block: Any
    args: list[Any]
    output: int  # index in ``args`` of the array the kernel writes
    expected: np.ndarray  # ``args[output]`` after one launch from the initial data
    numpy_name: str
    numpy_op: Callable[[], object]
    amount: float  # bytes moved or elements processed per launch
    unit: str  # "B" or "elem"
    reset: Callable[[], None] | None = None  # before every launch (accumulating outputs)
    rtol: float = 1e-5

    def launch(
        self, backend: str, kernel: rk.Kernel | None = None, checked: bool | None = None
    ) -> None:
        """One launch of ``kernel`` (default: the problem's own) on the problem's data.

        ``checked`` is passed on to ``Kernel.launch`` (None: the backend's default).
        """
        if self.reset is not None:
            self.reset()
        (kernel or self.kernel).launch(
            self.grid, self.block, self.args, backend=backend, checked=checked
        )

    def check(self, backend: str) -> None:
        """Launches once from the initial data and compares with numpy; a wrong kernel is no benchmark."""
        saved = [a.copy() if isinstance(a, np.ndarray) else a for a in self.args]
        self.launch(backend)
        got = self.args[self.output]
        np.testing.assert_allclose(got, self.expected, rtol=self.rtol, err_msg=f"{self.name} on {backend}")
        for arg, old in zip(self.args, saved):
            if isinstance(arg, np.ndarray):
                arg[...] = old


def _blocks(n: int, block: int) -> int:
    return (n + block - 1) // block


def saxpy_problem(n: int) -> Problem:
    rng = np.random.default_rng(1)
    a = np.float32(2.0)
    x = rng.random(n, dtype=np.float32)
    y = rng.random(n, dtype=np.float32)
    return Problem(
        name=f"saxpy {_count(n)}",
        kernel=saxpy,
        grid=_blocks(n, BLOCK),
        block=BLOCK,
        args=[a, x, y, n],
        output=2,
        expected=a * x + y,
        numpy_name="numpy a*x+y",
        numpy_op=lambda: a * x + y,
        amount=3 * 4 * n,
        unit="B",
    )


def sqrt_exp_problem(n: int) -> Problem:
    x = np.random.default_rng(2).random(n, dtype=np.float32)
    out = np.zeros(n, np.float32)
    return Problem(
        name=f"sqrt+exp {_count(n)}",
        kernel=sqrt_exp,
        grid=_blocks(n, BLOCK),
        block=BLOCK,
        args=[x, out, n],
        output=1,
        expected=np.sqrt(x) + np.exp(x),
        numpy_name="numpy sqrt(x)+exp(x)",
        numpy_op=lambda: np.sqrt(x) + np.exp(x),
        amount=2 * 4 * n,
        unit="B",
    )


def reduce_problem(n: int) -> Problem:
    x = np.random.default_rng(3).random(n, dtype=np.float32)
    total = np.zeros(1, np.float32)
    return Problem(
        name=f"block_reduce {_count(n)}",
        kernel=block_reduce,
        grid=RED_BLOCKS,
        block=RED,
        args=[x, total, n],
        output=1,
        expected=np.array([x.sum(dtype=np.float64)], np.float32),
        numpy_name="numpy sum",
        numpy_op=lambda: np.sum(x),
        amount=4 * n,
        unit="B",
        reset=lambda: total.fill(0),
        rtol=1e-4,
    )


def histogram_problem(n: int) -> Problem:
    values = np.random.default_rng(4).integers(0, BINS, n).astype(np.int32)
    bins = np.zeros(BINS, np.int32)
    return Problem(
        name=f"histogram {_count(n)} ({BINS} bins)",
        kernel=histogram,
        grid=_blocks(n, BLOCK),
        block=BLOCK,
        args=[values, bins, n],
        output=1,
        expected=np.bincount(values, minlength=BINS).astype(np.int32),
        numpy_name="numpy bincount",
        numpy_op=lambda: np.bincount(values, minlength=BINS),
        amount=n,
        unit="elem",
        reset=lambda: bins.fill(0),
    )


def transpose_problem(width: int, height: int) -> Problem:
    src = np.random.default_rng(5).random((height, width), dtype=np.float32)
    dst = np.zeros((width, height), np.float32)
    baseline_dst = np.zeros_like(dst)
    return Problem(
        name=f"transpose {height}x{width}",
        kernel=transpose,
        grid=(_blocks(width, TILE), _blocks(height, TILE)),
        block=(TILE, TILE),
        args=[src.reshape(-1), dst.reshape(-1), width, height],
        output=1,
        expected=src.T.reshape(-1),
        numpy_name="numpy copyto(dst, src.T)",
        numpy_op=lambda: np.copyto(baseline_dst, src.T),
        amount=2 * 4 * width * height,
        unit="B",
    )


def problems(quick: bool) -> list[Problem]:
    """The kernel-execution problems, smaller where ``quick`` asks for it."""
    sizes = [1 << 20] if quick else [1 << 20, 1 << 22]
    side = 1024 if quick else 2048
    return [
        *(saxpy_problem(n) for n in sizes),
        sqrt_exp_problem(1 << 20),
        reduce_problem(1 << 20),
        histogram_problem(1 << 20),
        transpose_problem(side, side),
    ]


def _count(n: int) -> str:
    for suffix, scale in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


@rk.kernel
def tiled_matmul(a: Array[f32], b: Array[f32], c: Array[f32], n: i32):
    ta = rk.shared_array(f32, TILE * TILE)
    tb = rk.shared_array(f32, TILE * TILE)
    tx = rk.thread_id(0)
    ty = rk.thread_id(1)
    col = rk.block_id(0) * TILE + tx
    row = rk.block_id(1) * TILE + ty
    acc = f32(0.0)
    for t in range(0, n, TILE):
        ta[ty * TILE + tx] = a[row * n + t + tx]
        tb[ty * TILE + tx] = b[(t + ty) * n + col]
        rk.barrier()
        for k in range(TILE):
            acc += ta[ty * TILE + k] * tb[k * TILE + tx]
        rk.barrier()
    c[row * n + col] = acc


def matmul_problem(n: int) -> Problem:
    """``c = a @ b`` for ``n`` x ``n`` matrices, ``n`` a multiple of the tile."""
    rng = np.random.default_rng(6)
    a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
    c = np.zeros((n, n), np.float32)
    return Problem(
        name=f"tiled matmul {n}x{n}",
        kernel=tiled_matmul,
        grid=(n // TILE, n // TILE),
        block=(TILE, TILE),
        args=[a.reshape(-1), b.reshape(-1), c.reshape(-1), n],
        output=2,
        expected=(a @ b).reshape(-1),
        numpy_name="numpy a @ b",
        numpy_op=lambda: a @ b,
        amount=2.0 * n**3,
        unit="flop",
        rtol=1e-3,
    )


@rk.kernel
def shared_histogram(values: Array[i32], bins: Array[i32], n: i32):
    local = rk.shared_array(i32, BINS)
    t = rk.thread_id(0)
    local[t] = 0  # the block has BINS work-items
    rk.barrier()
    for i in range(rk.global_id(0), n, rk.grid_dim(0) * BINS):
        rk.atomic_add(local, values[i], 1)
    rk.barrier()
    rk.atomic_add(bins, t, local[t])


def shared_histogram_problem(n: int) -> Problem:
    """The histogram as CUDA programmers write it: per-block bins in shared memory, merged once."""
    p = histogram_problem(n)
    p.name = f"histogram {_count(n)} ({BINS} bins, shared)"
    p.kernel, p.grid, p.block = shared_histogram, 64, BINS
    return p

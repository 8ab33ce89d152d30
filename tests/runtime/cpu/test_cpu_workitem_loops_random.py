"""Random race-free kernels with barriers: work-item loops must equal one thread per work-item.

Programs come from a seeded generator (deterministic): exchanges through
shared memory separated by barriers, uniform ``for``/``while``/``if`` around
them with uniform ``break``/``continue``, varying ``if``s without barriers and
early ``return``s between exchanges.
"""

from __future__ import annotations

import importlib.util
import random

import numpy as np
import pytest

from ringkernel.kernels import launch_module
from ringkernel.runtime.arguments import bind_arguments
from ringkernel.runtime.cpu import CpuBackend

HEADER = """\
import ringkernel as rk
from ringkernel import Array, i32


@rk.kernel
def randomized(x: Array[i32], out: Array[i32], n: i32):
    buf = rk.shared_array(i32, 64)
    t = rk.thread_id(0) + rk.thread_id(1) * rk.block_dim(0)
    size = rk.block_dim(0) * rk.block_dim(1)
    a = x[rk.block_id(0) * size + t]
    b = 0
    u = n
    buf[t] = a  # every slot is written before anyone may return: no read is undefined
    rk.barrier()
"""
FOOTER = "    out[rk.block_id(0) * size + t] = a * 7 + b\n"


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.lines: list[str] = []
        self.loops = 0

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def block(self, depth: int, budget: int, in_loop: bool) -> None:
        for _ in range(self.r.randint(1, budget)):
            self.stmt(depth, budget - 1, in_loop)

    def stmt(self, depth: int, budget: int, in_loop: bool) -> None:
        r = self.r
        kinds = ["exchange", "exchange", "arith", "varying_if"]
        if budget > 0:
            kinds += ["for", "while", "uniform_if"]
        if in_loop:
            kinds += ["uniform_exit"]
        kinds += ["return"] if r.random() < 0.3 else []
        kind = r.choice(kinds)
        if kind == "exchange":
            k = r.randint(1, 63)
            self.emit(depth, "rk.barrier()")
            self.emit(depth, "buf[t] = a")
            self.emit(depth, "rk.barrier()")
            self.emit(depth, f"b = b + buf[(t + {k}) % size]")
        elif kind == "arith":
            self.emit(depth, f"a = a * {r.randint(2, 5)} + b % {r.randint(3, 9)} + u")
        elif kind == "varying_if":
            self.emit(depth, f"if (a + t) % {r.randint(2, 4)} == 0:")
            self.emit(depth + 1, f"a = a + {r.randint(1, 9)}")
        elif kind == "return":
            self.emit(depth, f"if t % {r.randint(5, 11)} == {r.randint(0, 4)}:")
            self.emit(depth + 1, "out[rk.block_id(0) * size + t] = -a")
            self.emit(depth + 1, "return")
        elif kind == "for":
            self.loops += 1
            var = f"i{self.loops}"
            self.emit(depth, f"for {var} in range(n % 3, {r.randint(2, 4)} + u % 2):")
            self.emit(depth + 1, f"u = u + {var}")
            self.block(depth + 1, budget, True)
        elif kind == "while":
            self.loops += 1
            var = f"w{self.loops}"
            self.emit(depth, f"{var} = {r.randint(1, 3)}")
            self.emit(depth, f"while {var} > 0:")
            self.emit(depth + 1, f"{var} -= 1")
            self.block(depth + 1, budget, True)
        elif kind == "uniform_if":
            self.emit(depth, f"if (u + rk.block_id(0)) % {r.randint(2, 3)} == 0:")
            self.block(depth + 1, budget, in_loop)
            self.emit(depth, "else:")
            self.block(depth + 1, budget, in_loop)
        else:
            self.emit(depth, f"if u % {r.randint(2, 5)} == 1:")
            self.emit(depth + 1, r.choice(["break", "continue"]))

    def source(self) -> str:
        self.block(1, 4, False)
        self.emit(1, "rk.barrier()")
        return HEADER + "\n".join(self.lines) + "\n" + FOOTER


@pytest.mark.parametrize("seed", range(12))
def test_random_barrier_kernel_matches_the_thread_path(seed: int, tmp_path) -> None:
    path = tmp_path / f"rk_random_kernel_{seed}.py"
    path.write_text(_Gen(seed).source())
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ir = module.randomized.ir
    loops, threads = CpuBackend(workitem_loops=True), CpuBackend(workitem_loops=False)
    assert loops.barrier_strategy(ir, "randomized")[0] == "loops", path.read_text()
    x = np.random.default_rng(seed).integers(-50, 50, 3 * 24).astype(np.int32)
    results = []
    for backend in (loops, threads):
        args = bind_arguments(ir.get("randomized"), [x.copy(), np.zeros(72, np.int32), seed])
        launch_module(ir, "randomized", (3, 1, 1), (8, 3, 1), args, backend)
        results.append(args[1])
    np.testing.assert_array_equal(results[0], results[1], err_msg=path.read_text())

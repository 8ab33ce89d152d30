"""Quickstart: a kernel and a persistent actor, compiled for every target and run here.

    python examples/quickstart.py
"""

from __future__ import annotations

import numpy as np

import ringkernel as rk
from ringkernel import Array, f32, i32, u32


@rk.message
class Add:
    value: f32


@rk.message
class Total:
    total: f32
    count: u32


@rk.actor
class Accumulator:
    total: f32 = 0.0  # actor state lives with the persistent kernel across messages
    count: u32 = 0

    def add(self, msg: Add) -> Total:
        self.total += msg.value
        self.count += 1
        return Total(total=self.total, count=self.count)


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


def run_actor() -> None:
    for target in ("rir", "ptx", "wgsl", "msl"):
        text = Accumulator.compile(target)
        print(f"actor {target:>4}: {len(text.splitlines()):4d} lines")
    with rk.ActorSystem(backend="cpu") as system:
        acc = system.spawn(Accumulator, queue_capacity=1024)
        for i in range(1, 101):
            acc.send(Add(value=float(i)))
        replies = [acc.receive(timeout=5.0) for _ in range(100)]
    last = replies[-1]
    assert (last.total, last.count) == (5050.0, 100), last
    stamps = [r.envelope.hlc for r in replies]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    print(f"actor on cpu: ok, {last} after 100 messages, HLC strictly increasing")


if __name__ == "__main__":
    run_kernel()
    run_actor()

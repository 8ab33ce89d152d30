"""A memory-cache compile hit and a launch with a new grid do not walk the module again.

Regression: ``sized_module`` remembered only modules that had dynamic shared
arrays, so every compile of any other kernel walked all of its statements to
find none (about 85 us of a 90 us memory-cache hit); the launch path did the
same walk at every launch with a new grid or block.
"""

from __future__ import annotations

import numpy as np

import ringkernel as rk
import ringkernel.compiler as compiler
import ringkernel.ringir.passes.dynamic_shared as dynamic_shared
from ringkernel import Array, f32


@rk.kernel
def bump(x: Array[f32]):
    i = rk.global_id(0)
    if i < x.size:
        x[i] += 1.0


@rk.kernel
def staged(x: Array[f32]):
    buf = rk.dynamic_shared_array(f32)
    t = rk.thread_id(0)
    buf[t] = x[t]
    rk.barrier()
    x[t] = buf[0]


def _count_walks(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = dynamic_shared.dynamic_shared_arrays

    def counted(module):
        calls.append(1)
        return real(module)

    monkeypatch.setattr(dynamic_shared, "dynamic_shared_arrays", counted)
    return calls


def test_a_memory_cache_hit_does_not_walk_the_module(monkeypatch) -> None:
    first = bump.compile("llvm")
    calls = _count_walks(monkeypatch)
    for target in ("llvm", "llvm", "ptx", "wgsl"):
        bump.compile(target)
    assert bump.compile("llvm") == first
    assert calls == []


def test_a_kernel_with_dynamic_shared_arrays_still_needs_its_size(monkeypatch) -> None:
    text = staged.compile("llvm", dynamic_shared=8)
    assert staged.compile("llvm", dynamic_shared=8) is text
    try:
        staged.compile("llvm")
    except rk.CompileError as exc:
        assert "dynamic_shared" in str(exc)
    else:
        raise AssertionError("a kernel with a dynamic shared array compiled without its size")


def test_launches_with_new_grids_do_not_walk_the_module(monkeypatch) -> None:
    x = np.zeros(64, np.float32)
    bump.launch(1, 64, (x,), backend="cpu")
    calls = _count_walks(monkeypatch)
    for block in (8, 16, 32):
        bump.launch(64 // block, block, (x,), backend="cpu")
    assert calls == []
    np.testing.assert_array_equal(x, 4.0)
    assert compiler.sized_module(bump.ir, None) is bump.ir

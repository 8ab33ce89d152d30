"""The emitted MSL *runs*: compiled for the host through the shim's exec mode, vs numpy."""

from __future__ import annotations

import kernel_corpus
import numpy as np
import pytest

from ringkernel.lowering.msl.cpu_exec import MslCpuProgram
from ringkernel.ringir import F32, I32, U32, ArrayType, Barrier, FunctionBuilder, Module, SharedArray, walk
from ringkernel.ringir.diagnostics import CompileError


def _sequential(case: kernel_corpus.KernelCase) -> bool:
    """The harness runs work-items one after another: no barriers, no shared memory."""
    stmts = (s for f in case.kernel.ir.functions for s in walk(f.body))
    return not any(isinstance(s, (Barrier, SharedArray)) for s in stmts)


RUNNABLE = [c for c in kernel_corpus.metal_cases() if _sequential(c)]


@pytest.mark.parametrize("case", RUNNABLE, ids=[c.name for c in RUNNABLE])
def test_corpus_kernel_matches_numpy(case: kernel_corpus.KernelCase) -> None:
    program = MslCpuProgram(case.kernel.ir)
    rng = np.random.default_rng(0)
    args = case.make_args(rng)
    expected = case.reference([a.copy() if isinstance(a, np.ndarray) else a for a in args])
    program.launch(case.name, case.grid, case.block, list(case.kernel.ir_arguments(args)))
    kernel_corpus.check_outputs(case, args, expected)


def test_barrier_kernels_are_refused() -> None:
    program = MslCpuProgram(kernel_corpus.block_reduce.ir)
    x = np.zeros(8 * 64, np.float32)
    with pytest.raises(CompileError, match="barriers or shared memory"):
        program.launch("block_reduce", 8, 64, [x, np.zeros(8, np.float32)])


def _binary_kernel(op: str, ty, out_ty=None) -> Module:
    out_ty = out_ty or ty
    fb = FunctionBuilder(
        "k", "kernel", [("a", ArrayType(ty)), ("b", ArrayType(ty)), ("out", ArrayType(out_ty))]
    )
    a, b, out = fb.params
    i = fb.thread_index("global_id", 0)
    fb.store(out, i, fb.binary(op, fb.load(a, i), fb.load(b, i)))
    return Module((fb.finish(),))


def _run(module: Module, *arrays: np.ndarray) -> None:
    MslCpuProgram(module).launch("k", len(arrays[0]), 1, list(arrays))


INT_MIN = np.iinfo(np.int32).min


@pytest.mark.parametrize(
    "op, expected",
    [
        ("floordiv", [-4, 3, 0, 0, INT_MIN, -3]),
        ("floormod", [1, 1, 0, 0, 0, -2]),
        ("div", [-3, 3, 0, 0, INT_MIN, -2]),
        ("rem", [-2, 1, 0, 0, 0, 1]),
    ],
)
def test_integer_division_semantics(op: str, expected: list[int]) -> None:
    a = np.array([-11, 10, 5, 0, INT_MIN, 7], np.int32)
    b = np.array([3, 3, 0, 0, -1, -3], np.int32)
    out = np.zeros(6, np.int32)
    _run(_binary_kernel(op, I32), a, b, out)
    np.testing.assert_array_equal(out, expected)


def test_shifts_mask_the_amount() -> None:
    a = np.array([1, 1, 0x80000000, 5], np.uint32)
    b = np.array([3, 33, 31, 32], np.uint32)
    out = np.zeros(4, np.uint32)
    _run(_binary_kernel("shl", U32), a, b, out)
    np.testing.assert_array_equal(out, [8, 2, 0, 5])
    _run(_binary_kernel("shr", U32), a, b, out)
    np.testing.assert_array_equal(out, [0, 0, 1, 5])


def test_float_floor_division() -> None:
    a = np.array([7.5, -7.5, 7.5, -7.5], np.float32)
    b = np.array([2.0, 2.0, -2.0, -2.0], np.float32)
    out = np.zeros(4, np.float32)
    _run(_binary_kernel("floordiv", F32), a, b, out)
    np.testing.assert_array_equal(out, np.floor_divide(a, b))
    _run(_binary_kernel("floormod", F32), a, b, out)
    np.testing.assert_array_equal(out, np.mod(a, b))


def test_float_to_int_casts_saturate_and_nan_is_zero() -> None:
    fb = FunctionBuilder("k", "kernel", [("x", ArrayType(F32)), ("i", ArrayType(I32)),
                                         ("u", ArrayType(U32))])
    x, iout, uout = fb.params
    g = fb.thread_index("global_id", 0)
    v = fb.load(x, g)
    fb.store(iout, g, fb.cast(v, I32))
    fb.store(uout, g, fb.cast(v, U32))
    x_values = np.array([np.nan, 3e9, -3e9, -2.7, 2.7, np.inf, -np.inf, 5e9], np.float32)
    i_out = np.zeros(8, np.int32)
    u_out = np.zeros(8, np.uint32)
    _run(Module((fb.finish(),)), x_values, i_out, u_out)
    imax, imin = np.iinfo(np.int32).max, np.iinfo(np.int32).min
    np.testing.assert_array_equal(i_out, [0, imax, imin, -2, 2, imax, imin, imax])
    np.testing.assert_array_equal(u_out, [0, 3000000000, 0, 0, 2, 2**32 - 1, 0, 2**32 - 1])


def test_for_range_follows_python_semantics() -> None:
    """Negative and zero steps, and reassigning the loop variable in the body."""
    fb = FunctionBuilder("k", "kernel", [("p", ArrayType(I32)), ("out", ArrayType(I32))])
    p, out = fb.params
    g = fb.thread_index("global_id", 0)
    zero = fb.const(0, I32)
    start = fb.load(p, fb.const(0, I32))
    stop = fb.load(p, fb.const(1, I32))
    step = fb.load(p, fb.const(2, I32))
    total = fb.local("total", I32)
    var = fb.local("j", I32)
    fb.store_var(total, zero)
    with fb.for_range(var, start, stop, step):
        fb.store_var(total, fb.binary("add", fb.binary("mul", fb.load_var(total),
                                                        fb.const(10, I32)), fb.load_var(var)))
        fb.store_var(var, fb.const(100, I32))
    fb.store(out, g, fb.load_var(total))
    module = Module((fb.finish(),))
    program = MslCpuProgram(module)
    for start_, stop_, step_ in [(1, 4, 1), (5, 0, -2), (0, 5, 0), (3, 3, 1)]:
        out_ = np.zeros(1, np.int32)
        program.launch("k", 1, 1, [np.array([start_, stop_, step_], np.int32), out_])
        want = 0
        for j in (range(start_, stop_, step_) if step_ else ()):
            want = want * 10 + j
        assert out_[0] == want


def test_float_floormod_follows_the_ir_definition() -> None:
    """fmod plus the divisor when signs differ (docs/ir.md), which is numpy's np.mod."""
    a = np.array([5.5, -5.5, 5.5, -5.5, 6.0, -0.0, 1e-8], np.float32)
    b = np.array([2.0, 2.0, -2.0, -2.0, 3.0, 2.0, -1.0], np.float32)
    out = np.zeros(len(a), np.float32)
    _run(_binary_kernel("floormod", F32), a, b, out)
    np.testing.assert_array_equal(out, np.mod(a, b))

"""Constant folding agrees bit for bit with what the cpu backend computes at run time."""

from __future__ import annotations

import numpy as np
import pytest

from ringkernel.kernels import launch_module
from ringkernel.ringir import (
    F32,
    F64,
    I32,
    I64,
    U32,
    U64,
    ArrayType,
    FunctionBuilder,
    Module,
)
from ringkernel.ringir.passes.constfold import fold_binary, fold_cast

OPS = ("add", "sub", "mul", "div", "rem", "floordiv", "floormod", "min", "max",
       "and", "or", "xor", "shl", "shr")
INT_VALUES = {
    I32: [0, 1, -1, 7, -7, 2, -2, 31, 2**31 - 1, -(2**31), 123456789],
    U32: [0, 1, 7, 2, 31, 2**31, 2**32 - 1, 123456789],
    I64: [0, 1, -1, 7, -7, 2, 63, 2**63 - 1, -(2**63)],
    U64: [0, 1, 7, 2, 63, 2**64 - 1],
}
FLOAT_VALUES = [0.0, -0.0, 1.0, -1.5, 7.25, -7.0, 2.0, 0.1, 3.4e38, 1e-45, np.inf, -np.inf]


def _run(ty, ops, a_vals, b_vals):
    """Runs ``out[k*n + i] = ops[k](a[i], b[i])`` on the cpu backend."""

    arr = ArrayType(ty)
    fb = FunctionBuilder("k", "kernel", [("a", arr), ("b", arr), ("out", arr)])
    a, b, out = fb.params
    n = len(a_vals)
    i = fb.thread_index("global_id", 0)
    x, y = fb.load(a, i), fb.load(b, i)
    for k, op in enumerate(ops):
        index = fb.binary("add", i, fb.const(k * n, I32))
        fb.store(out, index, fb.binary(op, x, y))
    module = Module((fb.finish(),))
    dtype = ty.numpy_dtype
    a_arr = np.array(a_vals, dtype=dtype)
    b_arr = np.array(b_vals, dtype=dtype)
    out_arr = np.zeros(len(ops) * n, dtype=dtype)
    launch_module(module, "k", (1, 1, 1), (n, 1, 1), [a_arr, b_arr, out_arr], "cpu")
    return out_arr.reshape(len(ops), n)


def _defined_pairs(ty, values, op):
    pairs = [(x, y) for x in values for y in values]
    # Only inputs the target defines: the folder leaves the others alone.
    return [(x, y) for x, y in pairs if fold_binary(op, x, y, ty) is not None]


@pytest.mark.parametrize("ty", [I32, U32, I64, U64], ids=str)
def test_integer_folding_matches_the_cpu_backend(ty):
    for op in OPS:
        pairs = _defined_pairs(ty, INT_VALUES[ty], op)
        got = _run(ty, [op], [p[0] for p in pairs], [p[1] for p in pairs])[0]
        for (x, y), value in zip(pairs, got):
            assert fold_binary(op, x, y, ty) == int(value), (op, x, y)


@pytest.mark.parametrize("ty", [F32, F64], ids=str)
def test_float_folding_matches_the_cpu_backend(ty):
    for op in ("add", "sub", "mul", "div", "rem", "floordiv", "floormod", "min", "max"):
        pairs = _defined_pairs(ty, FLOAT_VALUES, op)
        got = _run(ty, [op], [p[0] for p in pairs], [p[1] for p in pairs])[0]
        for (x, y), value in zip(pairs, got):
            want = fold_binary(op, x, y, ty)
            assert np.array(want, dtype=ty.numpy_dtype).tobytes() == value.tobytes() or (
                np.isnan(want) and np.isnan(value)
            ), (op, x, y, want, value)


@pytest.mark.parametrize("src, dst", [(F64, I32), (F32, U32), (I64, F32), (U64, F32), (I32, U32)])
def test_cast_folding_matches_the_cpu_backend(src, dst):

    values = {
        F64: [-2.7, 2.7, 0.0, -0.0, 2147483647.0, -2147483648.0, 1e9],
        F32: [2.7, 0.0, 4294967040.0, 1.5],
        I64: [2**60 + 2**36 + 1, -(2**63), 2**24 + 1, 3],
        U64: [2**64 - 1, 2**53 + 1, 0],
        I32: [-1, 5, -(2**31)],
    }[src]
    values = [v for v in values if fold_cast(v, src, dst) is not None]
    fb = FunctionBuilder("k", "kernel", [("a", ArrayType(src)), ("out", ArrayType(dst))])
    a, out = fb.params
    i = fb.thread_index("global_id", 0)
    fb.store(out, i, fb.cast(fb.load(a, i), dst))
    module = Module((fb.finish(),))
    a_arr = np.array(values, dtype=src.numpy_dtype)
    out_arr = np.zeros(len(values), dtype=dst.numpy_dtype)
    launch_module(module, "k", (1, 1, 1), (len(values), 1, 1), [a_arr, out_arr], "cpu")
    for v, got in zip(values, out_arr):
        assert fold_cast(v, src, dst) == got.item(), (v, got)

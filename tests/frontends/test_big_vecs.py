"""Vec[T, N] beyond 64 elements (issue 14): memory-backed locals, dynamic indexing, loops.

A local Vec longer than 64 lives in a per-work-item array of its element
type (docs/dsl.md "Vec"), so ``v[i]`` is one load or store; an index out of
range reads 0 and writes nothing, as for every Vec.  It counts against the
32 KiB of local arrays per work-item.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, Vec, f32, i32, u8, u32
from ringkernel.lowering.cuda.ptxas import check_ptx
from ringkernel.lowering.msl.check import check_msl
from ringkernel.lowering.wgsl.naga import check_wgsl
from ringkernel.ringir import LocalArray, walk


@rk.kernel
def big_vec(x: Array[f32], out: Array[f32], hist: Array[u32], n: i32):
    i = rk.global_id(0)
    if i < n:
        acc = Vec[f32, 128].zeros()
        if i % 2 == 0:
            counts = Vec[u32, 100].zeros()  # first assigned in a branch, used after it
        else:
            counts = Vec[u32, 100].zeros()
        for k in range(128):
            acc[k] = x[i] * f32(k)
        for k in range(200):
            counts[k % 100] += u32(1)
        counts[i + 1000] = u32(5)  # out of range: nothing is written
        s = 0.0
        for k in range(128):
            s += acc[k]
        out[i] = s + acc[i + 500] + acc[3]  # out of range: reads 0
        hist[i] = counts[i] + counts[-1]


def test_memory_backed_vecs_compute_like_numpy(backend: str) -> None:
    n = 8
    x = np.arange(n, dtype=np.float32)
    out = np.zeros(n, np.float32)
    hist = np.zeros(n, np.uint32)
    big_vec[1, 32, backend](x, out, hist, n)
    np.testing.assert_allclose(out, x * sum(range(128)) + x * 3)
    np.testing.assert_array_equal(hist, 4)


def test_a_long_vec_is_one_local_array_not_scalars() -> None:
    fn = big_vec.ir.get("big_vec")
    arrays = [s.result.type for s in walk(fn.body) if isinstance(s, LocalArray)]
    assert sorted(t.size for t in arrays) == [100, 128]
    assert len(fn.locals) < 40  # 228 elements would be 228 locals if flattened


@rk.kernel
def whole_values(out: Array[f32], bytes_out: Array[u8], flags: Array[u32]):
    v = Vec[f32, 100].zeros()
    w = v * 2.0 + 1.0
    w[3] = 5.0
    v = w
    out[0] = v[3] + w[4]
    b = Vec[u8, 100].zeros()
    b[7] = u8(200)
    bytes_out[0] = b[7]
    f = Vec[bool, 70].zeros()
    f[7] = True
    if f[7] and not f[8]:
        flags[0] = u32(1)


def test_whole_value_copies_arithmetic_and_small_elements(backend: str) -> None:
    out, b, flags = np.zeros(1, np.float32), np.zeros(1, np.uint8), np.zeros(1, np.uint32)
    whole_values[1, 1, backend](out, b, flags)
    assert (out[0], b[0], flags[0]) == (6.0, 200, 1)


@pytest.mark.parametrize("kernel", [big_vec, whole_values], ids=lambda k: k.__name__)
def test_each_target_accepts_the_output(kernel) -> None:
    check_wgsl(kernel.compile("wgsl"))
    check_ptx(kernel.compile("ptx"))
    try:
        check_msl(kernel.compile("msl"))
    except rk.CompileError as exc:
        if "needs clang" not in str(exc):
            raise


@rk.kernel
def too_big(out: Array[f32]):
    v = Vec[f32, 9000].zeros()
    out[0] = v[3]


@rk.func
def takes_long(v: Vec[f32, 100]) -> f32:
    return v[0]


@rk.kernel
def passes_long(out: Array[f32]):
    v = Vec[f32, 100].zeros()
    out[0] = takes_long(v)


@rk.kernel
def bools_zero(out: Array[u32]):
    f = Vec[bool, 4].zeros()
    if not f[2]:
        out[0] = u32(1)


def test_bool_vec_zeros() -> None:
    """Regression: Vec[bool, N].zeros() coerced the literal 0 to bool and failed to compile."""
    out = np.zeros(1, np.uint32)
    bools_zero[1, 1, "cpu"](out)
    assert out[0] == 1


@pytest.mark.parametrize("kernel, message, underlined", [
    (too_big, "needs 36000 bytes of local arrays", "v = Vec[f32, 9000].zeros()"),
    (passes_long, "parameter 'v': Vec[f32, 100] holds 100 scalars; a value passed or returned holds "
                  "at most 64", "Vec[f32, 100]"),
], ids=["too-big", "long-parameter"])
def test_errors_point_at_the_cause(kernel, message: str, underlined: str) -> None:
    """A Vec too long to pass by value is refused at the annotation (it once reached an assertion)."""
    with pytest.raises(rk.CompileError) as info:
        kernel.compile("rir")
    err = info.value
    assert message in err.message
    start = err.col - 1  # type: ignore[operator]
    assert err.source_line[start:start + len(underlined)] == underlined  # type: ignore[index]


@rk.struct
class Row:
    vals: Vec[f32, 5]
    k: u8


@rk.kernel
def loops_over_vecs(rows: Array[Row], out: Array[f32]):
    i = rk.global_id(0)
    small = Vec[f32, 4](1.0, 2.0, 3.0, 4.0)
    big = Vec[f32, 100].zeros()
    for k in range(100):
        big[k] = f32(k)
    total = 0.0
    for x in small:
        total += x
    for x in big:
        if x > 10.0:
            break
        total += x
    for x in rows[i].vals:
        if x < 0.0:
            continue
        total += x * 100.0
    out[i] = total


def test_for_loops_walk_vecs(backend: str) -> None:
    rows = np.zeros(2, Row.dtype)
    rows["vals"] = [[1, -2, 3, 4, 5], [0, 0, 0, 0, -1]]
    out = np.zeros(2, np.float32)
    loops_over_vecs[1, 2, backend](rows, out)
    np.testing.assert_array_equal(out, [10 + 55 + 1300, 10 + 55])


@rk.kernel
def loops_over_a_scalar(out: Array[f32]):
    s = 1.0
    for x in s:
        out[0] = x


def test_a_loop_over_something_else_keeps_its_error() -> None:
    with pytest.raises(rk.CompileError, match="kernels loop with 'for i in range"):
        loops_over_a_scalar.compile("rir")

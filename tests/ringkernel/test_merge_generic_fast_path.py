"""The launch fast path (issue 22) with the language features of issue 14.

A warm launch reuses a launcher cached per grid, block, backend, ``checked``
and ``dynamic_shared``.  A generic kernel must never run arguments of other
dtypes through the launcher of another specialization; N-d arrays (hidden
extent parameters) and struct arguments must take the fast path too, with
the extents of the arrays of *this* launch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import ringkernel as rk
import ringkernel.kernels as kernels_module
from ringkernel import Array, f32, f64, i32
from ringkernel.runtime.arguments import LaunchError

T = rk.TypeVar("T")


@rk.kernel
def widen(x: Array[T], out: Array[f64], v: T):
    i = rk.global_id(0)
    if i < len(out):
        out[i] = f64(x[i]) + f64(v)


@rk.kernel
def reverse_dynamic(x: Array[T], out: Array[T]):
    buf = rk.dynamic_shared_array(T)
    t = rk.thread_id(0)
    buf[t] = x[t]
    rk.barrier()
    out[t] = buf[rk.block_dim(0) - 1 - t]


@rk.kernel
def ramp(a: Array[f32, 2]):
    r, c = rk.global_id(1), rk.global_id(0)
    if r < a.shape[0] and c < a.shape[1]:
        a[r, c] = f32(r * 100 + c)


@rk.struct
class Pair:
    x: f32
    k: i32


@rk.kernel
def bump(ps: Array[Pair], n: i32):
    i = rk.global_id(0)
    if i < n:
        p = ps[i]
        p.x += f32(p.k)
        ps[i] = p


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records every compile a launch asks for (a warm launch asks for none)."""
    calls: list[object] = []
    real = kernels_module.compile_module
    monkeypatch.setattr(kernels_module, "compile_module", lambda *a, **k: (calls.append(a), real(*a, **k))[1])
    return calls


def test_a_scalar_of_another_dtype_selects_its_own_specialization() -> None:
    """np.float64 fits an f32 cell of the T=f32 launcher: reusing it would round 0.1 to f32."""
    out = np.zeros(4, np.float64)
    for _ in range(3):  # alternate, so each dtype meets the other's warm launcher
        widen[1, 4](np.zeros(4, np.float32), out, np.float32(0.1))
        assert out[0] == float(np.float32(0.1))
        widen[1, 4](np.zeros(4, np.float64), out, np.float64(0.1))
        assert out[0] == 0.1


def test_warm_generic_launches_skip_the_compiler_per_specialization(compiles: list[object]) -> None:
    x32, x64, out = np.arange(4, dtype=np.float32), np.arange(4, dtype=np.float64), np.zeros(4)
    widen[1, 4](x32, out, np.float32(1.0))
    widen[1, 4](x64, out, np.float64(2.0))
    warm = len(compiles)
    for _ in range(3):
        widen[1, 4](x32, out, np.float32(1.0))
        np.testing.assert_array_equal(out, [1.0, 2.0, 3.0, 4.0])
        widen[1, 4](x64, out, np.float64(2.0))
        np.testing.assert_array_equal(out, [2.0, 3.0, 4.0, 5.0])
    assert len(compiles) == warm
    assert widen.specialize(T=np.float32)._launchers and widen.specialize(T=np.float64)._launchers
    assert not widen._launchers  # the generic kernel itself holds no launcher of any dtype


def test_a_warm_specialization_still_refuses_other_dtypes() -> None:
    special = widen.specialize(T=np.float32)
    out = np.zeros(4, np.float64)
    special[1, 4](np.zeros(4, np.float32), out, np.float32(0.0))
    with pytest.raises(LaunchError, match="dtype float32"):
        special[1, 4](np.zeros(4, np.int32), out, np.float32(0.0))


def test_dynamic_shared_generic_launches_alternate_dtypes() -> None:
    for _ in range(2):
        for dtype in (np.float32, np.uint8, np.float16, np.int64):
            x, out = np.arange(16).astype(dtype), np.zeros(16, dtype)
            reverse_dynamic[1, 16, 16](x, out)
            np.testing.assert_array_equal(out, x[::-1])


def test_nd_extents_come_from_each_launchs_arrays(compiles: list[object]) -> None:
    ramp[(2, 2), (4, 4)](np.zeros((4, 8), np.float32))  # warm
    warm = len(compiles)
    for shape in ((4, 8), (8, 4), (3, 5)):
        a = np.full(shape, -1.0, np.float32)
        ramp[(2, 2), (4, 4)](a)
        rows, cols = np.indices(shape)
        np.testing.assert_array_equal(a, rows * 100 + cols)
    assert len(compiles) == warm  # the hidden extents did not send the launches down the slow path


def test_a_warm_nd_launch_still_checks_the_rank() -> None:
    ramp[(2, 2), (4, 4)](np.zeros((4, 8), np.float32))
    with pytest.raises(LaunchError, match="2-D array"):
        ramp[(2, 2), (4, 4)](np.zeros(32, np.float32))


def test_len_of_a_1d_array_follows_the_argument() -> None:
    out = np.zeros(4)
    widen[1, 8](np.ones(8, np.float32), out, np.float32(0.0))
    longer = np.zeros(8)
    widen[1, 8](np.ones(8, np.float32), longer, np.float32(0.0))
    np.testing.assert_array_equal(longer, np.ones(8))  # len(out) is 8 now, not the warm 4


def test_struct_arrays_take_the_fast_path(compiles: list[object]) -> None:
    ps = np.zeros(8, Pair.dtype)
    ps["k"] = np.arange(8)
    bump[1, 8](ps, 8)
    warm = len(compiles)
    for _ in range(3):
        bump[1, 8](ps, 8)
    np.testing.assert_array_equal(ps["x"], 4.0 * np.arange(8))
    assert len(compiles) == warm


def test_rk_trace_records_each_generic_nd_and_struct_launch_once(tmp_path) -> None:
    """A generic launch runs its specialization's launch: that one records it, not both."""
    path = tmp_path / "kernels.json"
    out, ps = np.zeros(4), np.zeros(4, Pair.dtype)
    widen[1, 4](np.zeros(4, np.float32), out, np.float32(1.0))  # warm, outside the block
    with rk.trace(path):
        for _ in range(2):
            widen[1, 4](np.zeros(4, np.float32), out, np.float32(1.0))
            widen[1, 4](np.zeros(4, np.int32), out, np.int32(1))
            ramp[(1, 1), (4, 4)](np.zeros((4, 4), np.float32))
            bump[1, 4](ps, 4)
    with open(path) as f:
        spans = [e["name"] for e in json.load(f)["traceEvents"] if e["ph"] == "X"]
    assert spans == ["widen", "widen", "ramp", "bump"] * 2

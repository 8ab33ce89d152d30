"""Issue 14's language features used together (the integration of three branches).

Each feature has its own tests; these kernels combine them, where the joins
between the parts live: a generic kernel over 2-D arrays, generic funcs over
shared tiles, 8/16-bit elements in N-d shared, local and embedded arrays
(WGSL packs storage and workgroup arrays into u32 words but keeps local and
embedded ones one value per element), structs with small-type fields and
tuple-returning funcs over shared memory.  Every kernel runs on cpu and wgpu
against numpy, and its PTX, MSL and WGSL pass ptxas, clang and naga.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, Vec, f32, i16, i32, u8
from ringkernel.lowering.cuda.ptxas import check_ptx
from ringkernel.lowering.msl.check import check_msl
from ringkernel.lowering.wgsl.naga import WgpuUnavailable, check_wgsl

T = rk.TypeVar("T")


def _validate_wgsl(text: str) -> None:
    try:
        check_wgsl(text)
    except WgpuUnavailable as exc:
        pytest.skip(str(exc))


def _validate_everywhere(kernel: rk.Kernel) -> None:
    check_ptx(kernel.compile("ptx"))
    check_msl(kernel.compile("msl"))
    _validate_wgsl(kernel.compile("wgsl"))


# --- generic kernels over N-d arrays, generic funcs over shared memory -----------------------


@rk.kernel
def scale_2d(x: Array[T, 2], out: Array[T, 2], a: T):
    r, c = rk.global_id(1), rk.global_id(0)
    if r < x.shape[0] and c < x.shape[1]:
        out[r, c] = x[r, c] * a


@rk.func
def row_max(t: Array[T, 2], r: i32) -> T:
    """Over a shared tile or a global array alike, for any element type."""
    m = t[r, 0]
    for c in range(1, t.shape[1]):
        m = max(m, t[r, c])
    return m


@rk.kernel
def tile_row_max(x: Array[T, 2], out: Array[T]):
    tile = rk.shared_array(T, (4, 4))
    r, c = rk.thread_id(1), rk.thread_id(0)
    tile[r, c] = x[r, c]
    rk.barrier()
    if c == 0:
        out[r] = row_max(tile, r) + row_max(x, r)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint32])
def test_generic_2d_kernel_specializes_per_dtype(backend: str, dtype: type) -> None:
    x = (np.arange(12) % 7).astype(dtype).reshape(3, 4)
    out = np.zeros_like(x)
    scale_2d.launch(grid=1, block=(4, 3), args=(x, out, dtype(3)), backend=backend)
    np.testing.assert_array_equal(out, x * dtype(3))


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint8, np.int16])
def test_generic_func_over_a_shared_tile_and_a_global_array(backend: str, dtype: type) -> None:
    x = (np.arange(16) * 7 % 13).astype(dtype).reshape(4, 4)
    out = np.zeros(4, dtype)
    tile_row_max.launch(grid=1, block=(4, 4), args=(x, out), backend=backend)
    np.testing.assert_array_equal(out, (x.max(axis=1).astype(np.int64) * 2).astype(dtype))


def test_generic_specializations_are_separate_functions() -> None:
    text = str(tile_row_max.specialize(T=np.uint8).ir)
    assert "row_max_u8_shared" in text and "row_max_u8(" in text  # one per memory space
    for dtype in (np.float32, np.uint8, np.int16):
        _validate_everywhere(tile_row_max.specialize(T=dtype))


# --- small types in N-d shared, local and embedded arrays ------------------------------------

TABLE_U8 = np.array([[1, 2], [3, 250]], dtype=np.uint8)
TABLE_I16 = np.array([-32768, 7, 32767], dtype=np.int16)


@rk.func
def bump(a: Array[u8], i: i32):
    a[i] = a[i] + 200  # wraps at 8 bits wherever a lives


@rk.kernel
def small_arrays(x: Array[u8, 2], out: Array[i32]):
    tile = rk.shared_array(u8, (4, 4))
    row = rk.shared_array(u8, 16)
    window = rk.local_array(u8, (2, 2))
    mine = rk.local_array(u8, 2)
    wide = rk.local_array(i16, 3)
    r, c = rk.thread_id(1), rk.thread_id(0)
    t = r * 4 + c
    tile[r, c] = x[r, c]
    row[t] = x[r, c]
    bump(row, t)  # a func over shared bytes: neighbours share a word on WGSL
    window[0, 1] = x[r, c] + 1
    mine[1] = x[r, c]
    bump(mine, 1)  # ... and over private ones
    wide[2] = i16(t) - 1000
    rk.barrier()
    out[t] = (
        i32(tile[c, r]) + i32(window[0, 1]) * 1000 + i32(TABLE_U8[r % 2, c % 2]) * 100000
        + i32(TABLE_I16[c % 3]) * 10 + i32(wide[2]) + (i32(row[t]) + i32(mine[1])) * 10000000
    )


def _small_arrays_expected(x: np.ndarray) -> np.ndarray:
    out = np.zeros(16, np.int64)
    for r in range(4):
        for c in range(4):
            t = r * 4 + c
            bumped = (int(x[r, c]) + 200) % 256
            out[t] = (
                int(x[c, r]) + (int(x[r, c]) + 1) % 256 * 1000 + int(TABLE_U8[r % 2, c % 2]) * 100000
                + int(TABLE_I16[c % 3]) * 10 + (t - 1000) + 2 * bumped * 10000000
            )
    return out.astype(np.int32)


def test_small_types_in_nd_shared_local_and_embedded_arrays(backend: str) -> None:
    x = (np.arange(16) * 37 % 256).astype(np.uint8).reshape(4, 4)
    out = np.zeros(16, np.int32)
    small_arrays.launch(grid=1, block=(4, 4), args=(x, out), backend=backend)
    np.testing.assert_array_equal(out, _small_arrays_expected(x))


def test_small_local_and_embedded_arrays_are_one_value_per_element_in_wgsl() -> None:
    """Only storage and workgroup arrays are packed into u32 words (and need atomic stores)."""
    text = small_arrays.compile("wgsl")
    _validate_wgsl(text)
    assert "array<u32, 4> = array<u32, 4>(1u, 2u, 3u, 250u)" in text  # the embedded u8 table
    private = [line for line in text.splitlines() if line.startswith("var<private>")]
    assert len(private) == 3 and not any("atomic" in line for line in private)
    assert "var<private> l_small_arrays_2: array<u32, 4>;" in text  # the 2 x 2 window, unpacked
    assert "var<workgroup>" in text and "array<atomic<u32>, 4>" in text  # 16 shared bytes, packed
    _validate_everywhere(small_arrays)


# --- structs beside N-d arrays ---------------------------------------------------------------


@rk.struct
class Extents:
    shape0: f32  # flattened to the IR parameter 's.shape0', spelled like a hidden array extent
    shape1: f32


@rk.kernel
def scaled_corner(s: Extents, grid: Array[f32, 2], out: Array[f32]):
    out[0] = s.shape0 * grid[grid.shape[0] - 1, grid.shape[1] - 1] + s.shape1


def test_a_struct_field_named_like_an_extent_is_a_declared_parameter(backend: str) -> None:
    grid = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = np.zeros(1, np.float32)
    scaled_corner.launch(grid=1, block=1, args=(Extents(shape0=2.0, shape1=3.0), grid, out), backend=backend)
    assert out[0] == 2.0 * 5.0 + 3.0


@rk.struct
class Body:
    x: f32
    y: f32
    m: f32


@rk.kernel
def weigh(bodies: Array[Body], grid: Array[f32, 2], out: Array[f32]):
    i = rk.global_id(0)
    if i < len(bodies):  # elements, not the 32-bit words the array is held as
        out[i] = bodies[i].m * grid[i % grid.shape[0], i % grid.shape[1]]
    if i == 0:
        out[len(bodies)] = f32(bodies.size) + f32(bodies.shape[0])


def test_len_size_and_shape_of_a_struct_array_count_elements(backend: str) -> None:
    bodies = np.zeros(5, Body.dtype)
    bodies["m"] = np.arange(5, dtype=np.float32) + 1
    grid = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = np.zeros(8, np.float32)
    weigh.launch(grid=1, block=8, args=(bodies, grid, out), backend=backend)
    expected = [bodies["m"][i] * grid[i % 2, i % 3] for i in range(5)] + [10.0, 0.0, 0.0]
    np.testing.assert_array_equal(out, np.array(expected, np.float32))


# --- tuple returns over shared memory, generic and not -----------------------------------------


@rk.func
def row_range(t: Array[T, 2], r: i32) -> tuple[T, T]:
    """The lowest and highest value of row ``r``: a generic tuple-returning func."""
    lo = t[r, 0]
    hi = t[r, 0]
    for c in range(1, t.shape[1]):
        lo = min(lo, t[r, c])
        hi = max(hi, t[r, c])
    return lo, hi


@rk.kernel
def tile_ranges(x: Array[T, 2], out: Array[T, 2]):
    tile = rk.shared_array(T, (4, 4))
    r, c = rk.thread_id(1), rk.thread_id(0)
    tile[r, c] = x[r, c]
    rk.barrier()
    if c == 0:
        lo, hi = row_range(tile, r)
        out[r, 0] = lo
        out[r, 1] = hi


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int32])
def test_generic_tuple_returning_func_over_a_shared_tile(backend: str, dtype: type) -> None:
    x = (np.arange(16) * 7 % 11).astype(dtype).reshape(4, 4)
    out = np.zeros((4, 2), dtype)
    tile_ranges.launch(grid=1, block=(4, 4), args=(x, out), backend=backend)
    np.testing.assert_array_equal(out, np.stack([x.min(axis=1), x.max(axis=1)], axis=1))
    _validate_everywhere(tile_ranges.specialize(T=dtype))


@rk.func
def total(v: Vec[T, 4]) -> T:
    return v[0] + v[1] + v[2] + v[3]


@rk.kernel
def vec_total(x: Array[T], out: Array[T]):
    out[0] = total(Vec[T, 4](x[0], x[1], x[2], x[3]))


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint8])
def test_generic_func_binds_its_type_variable_from_a_vec_argument(backend: str, dtype: type) -> None:
    x = np.array([1, 2, 3, 250], dtype)
    out = np.zeros(1, dtype)
    vec_total.launch(grid=1, block=1, args=(x, out), backend=backend)
    assert out[0] == x.sum(dtype=dtype)


def test_an_unbound_type_variable_in_a_tuple_result_says_so() -> None:
    @rk.func
    def pair(n: i32) -> tuple[T, T]:
        return n, n

    @rk.kernel
    def uses_pair(out: Array[i32]):
        a, b = pair(1)
        out[0] = a + b

    with pytest.raises(rk.CompileError, match=r"generic type T, which is not bound here"):
        uses_pair.compile("rir")


EAGER_SOURCE = '''
import ringkernel as rk
from ringkernel import Array, Vec, i32

T = rk.TypeVar("T")


@rk.func
def row_range(t: Array[T, 2], r: i32) -> tuple[T, T]:
    lo = t[r, 0]
    hi = t[r, 0]
    for c in range(1, t.shape[1]):
        lo = min(lo, t[r, c])
        hi = max(hi, t[r, c])
    return lo, hi


@rk.func
def total(v: Vec[T, 4]) -> T:
    return v[0] + v[1] + v[2] + v[3]


@rk.kernel
def ranges(x: Array[T, 2], out: Array[T, 2], sums: Array[T]):
    r = rk.thread_id(0)
    lo, hi = row_range(x, r)
    out[r, 0] = lo
    out[r, 1] = hi
    sums[r] = total(Vec[T, 4](x[r, 0], x[r, 1], x[r, 2], x[r, 3]))
'''


def test_generic_annotations_evaluated_eagerly(tmp_path, backend: str) -> None:
    """Without ``from __future__ import annotations`` the annotations are objects such as
    ``tuple[T, T]`` and ``Vec[T, 4]``, bound by substituting inside them."""
    import importlib.util

    path = tmp_path / "eager_generics.py"
    path.write_text(EAGER_SOURCE)
    spec = importlib.util.spec_from_file_location("eager_generics", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for dtype in (np.float32, np.uint8):
        x = (np.arange(16) * 7 % 11).astype(dtype).reshape(4, 4)
        out = np.zeros((4, 2), dtype)
        sums = np.zeros(4, dtype)
        module.ranges.launch(grid=1, block=4, args=(x, out, sums), backend=backend)
        np.testing.assert_array_equal(out, np.stack([x.min(axis=1), x.max(axis=1)], axis=1))
        np.testing.assert_array_equal(sums, x.sum(axis=1, dtype=dtype))


# --- everything at once ----------------------------------------------------------------------

BYTES = np.array([1, 2, 250], dtype=np.uint8)


@rk.kernel
def everything(x: Array[T, 2], out: Array[T, 2], bodies: Array[Body], picked: Array[u8]):
    """A generic 2-D kernel, a generic tuple-returning func over a shared tile, a struct array
    and an embedded byte table, in one kernel."""
    tile = rk.shared_array(T, (4, 4))
    r, c = rk.thread_id(1), rk.thread_id(0)
    tile[r, c] = x[r, c]
    rk.barrier()
    if c == 0:
        lo, hi = row_range(tile, r)
        out[r, 0] = lo
        out[r, 1] = hi
        bodies[r].m = f32(len(bodies)) + bodies[r].x
        picked[r] = BYTES[r % 3] + u8(r)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int16])
def test_everything_at_once(backend: str, dtype: type) -> None:
    x = (np.arange(16) * 7 % 11).astype(dtype).reshape(4, 4)
    out = np.zeros((4, 2), dtype)
    bodies = np.zeros(4, Body.dtype)
    bodies["x"] = [0.5, 1.5, 2.5, 3.5]
    picked = np.zeros(4, np.uint8)
    everything.launch(grid=1, block=(4, 4), args=(x, out, bodies, picked), backend=backend)
    np.testing.assert_array_equal(out, np.stack([x.min(axis=1), x.max(axis=1)], axis=1))
    np.testing.assert_array_equal(bodies["m"], np.array([4.5, 5.5, 6.5, 7.5], np.float32))
    np.testing.assert_array_equal(picked, np.array([1, 3, 252, 4], np.uint8))
    _validate_everywhere(everything.specialize(T=dtype))


@rk.func
def total_mass(bodies: Array[Body]) -> f32:
    """A func that sizes a struct array itself: its hidden extent comes from the caller."""
    s = f32(0.0)
    for i in range(len(bodies)):
        s += bodies[i].m
    return s


@rk.kernel
def mass_of(bodies: Array[Body], out: Array[f32]):
    out[0] = total_mass(bodies)


def test_a_func_taking_a_struct_array_gets_its_length(backend: str) -> None:
    bodies = np.zeros(3, Body.dtype)
    bodies["m"] = [1.0, 2.0, 3.5]
    out = np.zeros(1, np.float32)
    mass_of.launch(grid=1, block=1, args=(bodies, out), backend=backend)
    assert out[0] == 6.5

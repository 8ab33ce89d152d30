"""Struct fields of every scalar type, nested structs, Array[Vec], Array[S, 2] (issue 14).

The layout under test (docs/layout.md "Structs"): numpy's aligned structured
dtype, whatever the fields; RingIR holds the elements as u32 words, so
sub-word fields are read out of their word and stored with atomic and/or,
and 64-bit fields take two words.  Each kernel runs on cpu and wgpu against
numpy and its output passes ptxas, naga and clang.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, Vec, f16, f32, f64, i8, i16, i32, i64, u8, u16, u64
from ringkernel.frontends.valuetypes import StructDef, VecType
from ringkernel.lowering.cuda.ptxas import check_ptx
from ringkernel.lowering.msl.check import check_msl
from ringkernel.lowering.wgsl.naga import check_wgsl


@rk.struct
class Inner:
    a: u8
    v: Vec[f32, 3]


@rk.struct
class Small:
    flag: bool
    c: i8
    h: i16
    inner: Inner
    w: u16
    b: Vec[u8, 6]


@rk.struct
class Wide:
    flag: bool
    m: f64
    c: i8
    k: i64
    u: u64
    g: f16
    inner: Inner
    pos: Vec[f64, 2]


def _numpy_aligned(struct) -> np.dtype:
    def fmt(ty):
        if isinstance(ty, StructDef):
            return _numpy_aligned(ty)
        if isinstance(ty, VecType):
            return (np.dtype(ty.elem.numpy_dtype), (ty.length,))
        return np.dtype(ty.numpy_dtype)
    return np.dtype([(name, fmt(ty)) for name, ty in struct.fields], align=True)


@pytest.mark.parametrize("struct", [Inner, Small, Wide], ids=lambda s: s.name)
def test_layout_is_numpys_aligned_dtype(struct) -> None:
    ours, ref = struct.dtype, _numpy_aligned(struct)
    assert ours.names == ref.names
    assert [ours.fields[n][1] for n in ours.names] == [ref.fields[n][1] for n in ref.names]
    assert ours.itemsize == ref.itemsize


def test_wide_layout_has_the_padding_c_has() -> None:
    assert [Wide.dtype.fields[n][1] for n in Wide.dtype.names] == [0, 8, 16, 24, 32, 40, 44, 64]
    assert Wide.dtype.itemsize == 80


@rk.kernel
def small_fields(a: Array[Small], vs: Array[Vec[f32, 3]], out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        p = a[i]
        out[i] = f32(p.c) + f32(p.h) + f32(p.inner.a) + p.inner.v[2] + f32(p.w) + f32(p.b[i]) + vs[i][1]
        if p.flag:
            out[i] += 1000.0
        a[i].c = i8(p.c - 1)
        a[i].flag = not p.flag
        a[i].inner.v[1] = 7.5
        a[i].inner.a = u8(p.inner.a + 1)
        a[i].w = u16(p.w + 1)
        a[i].b[i] = u8(a[i].b[i] + 10)
        vs[i] = vs[i] * 2.0
        vs[i][0] = f32(len(vs))


def _small_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    a = np.zeros(n, Small.dtype)
    a["flag"] = rng.integers(0, 2, n)
    a["c"] = rng.integers(-128, 128, n)
    a["c"][:2] = [-128, 127]
    a["h"] = rng.integers(-30000, 30000, n)
    a["inner"]["a"] = rng.integers(0, 256, n)
    a["inner"]["a"][0] = 255
    a["inner"]["v"] = rng.random((n, 3))
    a["w"] = rng.integers(0, 65536, n)
    a["w"][1] = 65535
    a["b"] = rng.integers(0, 256, (n, 6))
    return a, rng.random((n, 3)).astype(np.float32)


def test_small_and_nested_fields_read_and_write_like_numpy(backend: str) -> None:
    n = 6
    a, vs = _small_data(n)
    before, vs_before = a.copy(), vs.copy()
    out = np.zeros(n, np.float32)
    small_fields[1, 32, backend](a, vs, out, n)
    idx = np.arange(n)
    expect = (before["c"].astype(np.float32) + before["h"] + before["inner"]["a"] + before["inner"]["v"][:, 2]
              + before["w"] + before["b"][idx, idx] + vs_before[:, 1] + 1000 * before["flag"])
    np.testing.assert_allclose(out, expect, rtol=1e-6)
    np.testing.assert_array_equal(a["c"], (before["c"] - 1).astype(np.int8))  # -128 - 1 wraps
    np.testing.assert_array_equal(a["flag"], ~before["flag"])
    np.testing.assert_array_equal(a["inner"]["a"], (before["inner"]["a"] + 1).astype(np.uint8))
    np.testing.assert_array_equal(a["w"], (before["w"] + 1).astype(np.uint16))
    np.testing.assert_array_equal(a["h"], before["h"])  # neighbours of written bytes untouched
    b = before["b"].copy()
    b[idx, idx] = (b[idx, idx] + 10).astype(np.uint8)
    np.testing.assert_array_equal(a["b"], b)
    np.testing.assert_array_equal(a["inner"]["v"][:, 1], 7.5)
    np.testing.assert_array_equal(a["inner"]["v"][:, [0, 2]], before["inner"]["v"][:, [0, 2]])
    np.testing.assert_array_equal(vs[:, 0], n)
    np.testing.assert_array_equal(vs[:, 1:], vs_before[:, 1:] * 2)


@rk.kernel
def neighbours(a: Array[u8], flags: Array[Small], n: i32):
    i = rk.global_id(0)
    if i < n:
        flags[i // 6].b[i % 6] = u8(i)  # six work-items write six bytes of two shared words


def test_concurrent_byte_stores_into_one_word_all_land(backend: str) -> None:
    """Regression guard: a plain read-modify-write of the word would lose neighbours' bytes."""
    n = 6 * 40
    flags = np.zeros(40, Small.dtype)
    neighbours[(n + 63) // 64, 64, backend](np.zeros(1, np.uint8), flags, n)
    np.testing.assert_array_equal(flags["b"].ravel(), np.arange(n).astype(np.uint8))


@rk.kernel
def wide_fields(a: Array[Wide], out: Array[f64], n: i32):
    i = rk.global_id(0)
    if i < n:
        p = a[i]
        out[i] = p.m + f64(p.c) + f64(p.k) + f64(p.u) + f64(p.g) + f64(p.inner.v[1]) + p.pos[1]
        a[i].m = p.m * 2.0
        a[i].k = p.k - 1
        a[i].u = p.u + u64(1)
        a[i].pos[0] = p.pos[1]
        a[i].g = f16(p.g * f16(2.0))
        a[i].flag = True


def test_64_bit_fields_on_cpu() -> None:
    n = 5
    a = np.zeros(n, Wide.dtype)
    rng = np.random.default_rng(2)
    a["m"] = rng.random(n)
    a["c"] = [-1, 2, 3, -4, 5]
    a["k"] = [-(2**40), 1, 2**33, -5, 0]
    a["u"] = [2**63, 1, 2, 3, 2**64 - 1]
    a["g"] = [0.5, 1.5, 2.0, -3.0, 4.0]
    a["inner"]["v"] = rng.random((n, 3))
    a["pos"] = rng.random((n, 2))
    before = a.copy()
    out = np.zeros(n)
    wide_fields[1, 32, "cpu"](a, out, n)
    expect = (before["m"] + before["c"] + before["k"] + before["u"].astype(np.float64) + before["g"]
              + before["inner"]["v"][:, 1].astype(np.float64) + before["pos"][:, 1])
    np.testing.assert_allclose(out, expect)
    np.testing.assert_array_equal(a["m"], before["m"] * 2)
    np.testing.assert_array_equal(a["k"], before["k"] - 1)
    np.testing.assert_array_equal(a["u"], before["u"] + np.uint64(1))  # 2**64 - 1 wraps to 0
    np.testing.assert_array_equal(a["pos"][:, 0], before["pos"][:, 1])
    np.testing.assert_array_equal(a["g"], before["g"] * 2)
    assert a["flag"].all() and (a["c"] == before["c"]).all()


def test_wgpu_refuses_64_bit_fields_clearly() -> None:
    with pytest.raises(rk.CompileError, match="64-bit|f64|i64|u64"):
        wide_fields.compile("wgsl")


@rk.struct
class Cell:
    t: f32
    k: u8
    v: Vec[f32, 2]


@rk.kernel
def grid_of_cells(g: Array[Cell, 2], out: Array[f32, 2]):
    r, c = rk.global_id(1), rk.global_id(0)
    if r < g.shape[0] and c < g.shape[1]:
        out[r, c] = g[r, c].t + f32(g[r, c].k) * 10.0 + g[r, c].v[1] * 100.0 + f32(g.size) * 1000.0
        g[r, c].k = u8(r * 16 + c)


def _cells() -> np.ndarray:
    g = np.zeros((3, 5), Cell.dtype)
    g["t"] = np.arange(15).reshape(3, 5)
    g["k"] = 2
    g["v"][..., 1] = 3
    return g


def test_two_dimensional_struct_arrays(backend: str) -> None:
    g = _cells()
    out = np.zeros((3, 5), np.float32)
    grid_of_cells[(1, 1), (8, 4), backend](g, out)
    np.testing.assert_array_equal(out, np.arange(15).reshape(3, 5) + 20 + 300 + 15000)
    np.testing.assert_array_equal(g["k"], np.arange(3)[:, None] * 16 + np.arange(5))


def test_device_arrays_of_structs(backend: str) -> None:
    """rk.to_device takes S.dtype arrays; a launch uses them in place, as numpy arrays would be."""
    g = _cells()
    d = rk.to_device(g, backend=backend)
    assert d.dtype == Cell.dtype and d.shape == (3, 5)
    out = rk.device_array((3, 5), np.float32, backend=backend)
    grid_of_cells[(1, 1), (8, 4), backend](d, out)
    host = d.numpy()
    np.testing.assert_array_equal(host["k"], np.arange(3)[:, None] * 16 + np.arange(5))
    np.testing.assert_array_equal(host["t"], g["t"])
    np.testing.assert_array_equal(out.numpy()[0], np.arange(5) + 15320)
    vs = rk.to_device(np.ones((4, 3), np.float32), backend=backend)
    small_fields[1, 32, backend](rk.to_device(_small_data(4)[0], backend=backend), vs,
                                 np.zeros(4, np.float32), 4)
    np.testing.assert_array_equal(vs.numpy()[:, 0], 4)


def test_device_arrays_refuse_unusable_structured_dtypes() -> None:
    with pytest.raises(TypeError, match="whole 32-bit words"):
        rk.to_device(np.zeros(3, np.dtype([("a", "u1")])), backend="cpu")
    with pytest.raises(TypeError, match="numeric or bool"):
        rk.to_device(np.zeros(3, np.dtype([("a", "O")])), backend="cpu")


@pytest.mark.parametrize("kernel", [small_fields, grid_of_cells, neighbours], ids=lambda k: k.__name__)
def test_each_target_accepts_the_output(kernel) -> None:
    check_wgsl(kernel.compile("wgsl"))
    try:
        check_msl(kernel.compile("msl"))
    except rk.CompileError as exc:
        if "needs clang" not in str(exc):
            raise
    check_ptx(kernel.compile("ptx"))


def test_wide_fields_pass_ptxas() -> None:
    check_ptx(wide_fields.compile("ptx"))


@rk.struct
class RGB:
    r: u8
    g: u8
    b: u8


@pytest.mark.parametrize("annotation, message", [
    (lambda: Array[RGB], "struct RGB is 3 bytes; elements of an Array[RGB] are whole 4-byte "
                         "words, so pad it to 4 bytes with a last field such as 'pad: u8'"),
    (lambda: Array[Vec[u8, 3]], "an Array[Vec[u8, 3]] element is 3 bytes"),
    (lambda: Array[Vec[f32, 0]], "Vec length 0 is out of range"),
])
def test_array_elements_must_be_whole_words(annotation, message: str) -> None:
    with pytest.raises(TypeError) as info:
        annotation()
    assert message in str(info.value)


def test_launch_checks_vec_array_shapes() -> None:
    a, _ = _small_data(2)
    with pytest.raises(rk.LaunchError, match="last axis has 3 elements"):
        small_fields[1, 32, "cpu"](a, np.zeros((2, 4), np.float32), np.zeros(2, np.float32), 2)
    with pytest.raises(rk.LaunchError, match="must be a 2-D array of"):
        grid_of_cells[1, 32, "cpu"](np.zeros(15, Cell.dtype), np.zeros((3, 5), np.float32))


@rk.kernel
def struct_params(p: Small, w: Inner, out: Array[f32]):
    out[0] = f32(p.c) + f32(p.inner.a) + p.inner.v[2] + f32(p.b[5]) + f32(w.a)
    if p.flag:
        out[1] = 1.0


def test_struct_parameters_with_small_and_nested_fields(backend: str) -> None:
    out = np.zeros(2, np.float32)
    p = Small(flag=True, c=-5, h=1, inner=(200, [0.0, 0.0, 0.5]), w=3, b=[0, 0, 0, 0, 0, 9])
    struct_params[1, 1, backend](p, Inner(a=7, v=[1, 2, 3]), out)
    np.testing.assert_array_equal(out, [-5 + 200 + 0.5 + 9 + 7, 1.0])


@rk.kernel
def shared_and_local_structs(a: Array[Cell], out: Array[f32], n: i32):
    t = rk.thread_id(0)
    i = rk.global_id(0)
    tile = rk.shared_array(Cell, 64)
    grid = rk.shared_array(Cell, (2, 64))
    mine = rk.local_array(Cell, 3)
    if i < n:
        tile[t] = a[i]
        grid[1, t].k = u8(t)  # 64 work-items write bytes of neighbouring words at once
        mine[2].k = u8(7)
        mine[2].t = 1.5
    rk.barrier()
    if i < n:
        j = (t + 1) % len(tile)
        out[i] = (tile[j].t + f32(tile[j].k) + f32(grid[1, j].k) * 100.0 + f32(mine[2].k) * 1000.0
                  + mine[2].t + f32(grid.shape[1]) * 10000.0)


def test_shared_and_local_arrays_of_structs(backend: str) -> None:
    a = np.zeros(64, Cell.dtype)
    a["t"] = np.arange(64)
    a["k"] = 3
    out = np.zeros(64, np.float32)
    shared_and_local_structs[1, 64, backend](a, out, 64)
    j = (np.arange(64) + 1) % 64
    np.testing.assert_array_equal(out, j + 3 + j * 100 + 7000 + 1.5 + 640000)


def test_shared_struct_arrays_pass_every_target() -> None:
    check_wgsl(shared_and_local_structs.compile("wgsl"))
    check_ptx(shared_and_local_structs.compile("ptx"))
    try:
        check_msl(shared_and_local_structs.compile("msl"))
    except rk.CompileError as exc:
        if "needs clang" not in str(exc):
            raise


@rk.kernel
def shared_of_odd_size(out: Array[f32]):
    s = rk.shared_array(RGB, 4)
    out[0] = f32(s[0].r)


def test_a_shared_array_of_odd_structs_is_refused_at_the_type() -> None:
    with pytest.raises(rk.CompileError) as info:
        shared_of_odd_size.compile("rir")
    assert "struct RGB is 3 bytes" in info.value.message
    assert info.value.source_line[info.value.col - 1:].startswith("RGB, 4)")  # type: ignore[index,operator]


@rk.func
def row_total(g: Array[Cell, 2], vs: Array[Vec[f32, 3]], r: i32) -> f32:
    s = 0.0
    for c in range(g.shape[1]):
        s += g[r, c].t + f32(g[r, c].k)
    return s + vs[r][2] + f32(len(vs))


@rk.func
def mark_second(cells: Array[Cell]) -> f32:
    cells[1].k = u8(9)
    return cells[0].t + f32(cells[1].k)


@rk.kernel
def funcs_over_struct_arrays(g: Array[Cell, 2], vs: Array[Vec[f32, 3]], out: Array[f32]):
    r = rk.global_id(0)
    tile = rk.shared_array(Cell, 4)
    if r < g.shape[0]:
        tile[0].t = 2.0
        out[r] = row_total(g, vs, r) + mark_second(tile)


def test_funcs_take_struct_arrays_of_any_memory_and_rank(backend: str) -> None:
    """Regression: a func's Array[S] parameter was always global, so passing a shared array of
    structs failed the IR verifier."""
    g = np.zeros((3, 4), Cell.dtype)
    g["t"], g["k"] = 1, 2
    out = np.zeros(3, np.float32)
    funcs_over_struct_arrays[1, 4, backend](g, np.ones((3, 3), np.float32), out)
    np.testing.assert_array_equal(out, 27.0)
    assert "mark_second_shared" in funcs_over_struct_arrays.compile("rir")
    check_wgsl(funcs_over_struct_arrays.compile("wgsl"))
    check_ptx(funcs_over_struct_arrays.compile("ptx"))


@rk.kernel
def store_past_the_end(g: Array[Cell], i: i32):
    g[i].k = u8(3)


def test_checked_launches_name_the_struct_element(backend: str) -> None:
    """Regression: the error counted u32 words ("index 9 ... of length 8") with no word of elements."""
    g = np.zeros(4, Cell.dtype)
    with pytest.raises(rk.BoundsError) as info:
        store_past_the_end.launch(1, 1, [g, 4], backend=backend, checked=True)
    message = str(info.value)
    assert "index 17" in message and "length 16" in message  # field k is word 1 of element 4
    assert "'g' holds 4 element(s) of 4 word(s) each (index and length count words), so that is " \
        "word 1 of element 4" in message
    assert (info.value.array, info.value.index, info.value.length) == ("g", 17, 16)

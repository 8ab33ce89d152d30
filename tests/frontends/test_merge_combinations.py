"""Issue 14's language (N-d arrays, small types, generics, local arrays) together with
issue 15's parallel primitives and issue 22's cpu paths, as merged on one branch."""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f16, f32, i8, i16, i32, u8, u16, u32
from ringkernel.lowering.cuda import check_ptx, find_ptxas
from ringkernel.lowering.msl.check import check_msl, find_clang
from ringkernel.ringir import I32, U8, ArrayType, Cast, FunctionBuilder, Module, Subgroup, verify, walk
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.passes.workitem_loops import COROUTINES, LOOPS, plan_block

BLOCK = 64


def _skip_without_subgroups(backend: str, kernel: rk.Kernel, **options: object) -> None:
    if backend != "wgpu":
        return
    from ringkernel.lowering.wgsl.naga import missing_subgroup_features

    missing = missing_subgroup_features(kernel.compile("wgsl", **options))
    if missing:
        pytest.skip(f"the wgpu device lacks {missing}")


# --- shuffles of small types: shuffled as their promoted type, given back in their own ------


def _shuffler(elem: object) -> rk.Kernel:
    @rk.kernel
    def shuffle_small(x: Array[elem], out: Array[elem], width: Array[i32]):
        i = rk.global_id(0)
        out[i] = rk.shfl_xor(x[i], 1)
        width[0] = rk.warp_size()

    return shuffle_small


SMALL = [(u8, np.uint8), (i8, np.int8), (u16, np.uint16), (i16, np.int16), (f16, np.float16)]


@pytest.mark.parametrize(("elem", "dtype"), SMALL, ids=[str(e) for e, _ in SMALL])
def test_shuffles_of_small_types_keep_their_values(elem: object, dtype: type, backend: str) -> None:
    kernel = _shuffler(elem)
    if backend == "wgpu" and dtype is np.float16:
        from ringkernel.lowering.wgsl.naga import device_has_f16

        if not device_has_f16():
            pytest.skip("the wgpu device lacks shader-f16")
    _skip_without_subgroups(backend, kernel, **({"f16": True} if dtype is np.float16 else {}))
    x = np.array([0, 1, -2, 100, 127, -128, 7, 3] * (BLOCK // 8)).astype(dtype)
    out, width = np.zeros(BLOCK, dtype), np.zeros(1, np.int32)
    kernel[1, BLOCK, backend](x, out, width)
    partner = np.arange(BLOCK) ^ 1 if width[0] > 1 else np.arange(BLOCK)
    np.testing.assert_array_equal(out, x[partner])


@pytest.mark.parametrize(("elem", "dtype"), SMALL, ids=[str(e) for e, _ in SMALL])
def test_shuffles_of_small_types_compile_for_every_target(elem: object, dtype: type) -> None:
    kernel = _shuffler(elem)
    shuffles = [s for f in kernel.ir.functions for s in walk(f.body) if isinstance(s, Subgroup)
                and s.op == "shfl_xor"]
    assert shuffles and all(not s.result.type.is_small for s in shuffles)
    for target in ("ptx", "msl", "llvm"):  # ptx crashed in LLVM on an i8 shuffle
        assert kernel.compile(target)
    if find_ptxas() is not None:
        check_ptx(kernel.compile("ptx"))
    if find_clang() is not None:
        check_msl(kernel.compile("msl"))


@pytest.mark.parametrize("target", ["ptx", "msl"])
def test_tuple_indexed_atomics_pass_the_target_validators(target: str) -> None:
    find, check = (find_ptxas, check_ptx) if target == "ptx" else (find_clang, check_msl)
    if find() is None:
        pytest.skip(f"no {target} validator installed")
    for kernel in (histogram_2d, shared_2d_counts):
        check(kernel.compile(target))


def test_the_verifier_refuses_a_small_typed_shuffle() -> None:
    b = FunctionBuilder("k", "kernel", [("x", ArrayType(U8))])
    x = b.params[0]
    v = b.load(x, b.const(0, I32))
    b.store(x, b.const(1, I32), b.subgroup("shfl_xor", U8, v, b.const(1, I32)))
    with pytest.raises(CompileError, match="cannot be u8"):
        verify(Module((b.finish(),)))


def test_a_shuffled_small_value_is_cast_back() -> None:
    kernel = _shuffler(u8)
    casts = [s for f in kernel.ir.functions for s in walk(f.body) if isinstance(s, Cast)]
    assert any(c.result.type == U8 for c in casts)


# --- bit counts of small integers: C's promotion, the same on every backend --------------


@rk.kernel
def small_bits(a: Array[u8], b: Array[i8], out: Array[i32]):
    i = rk.global_id(0)
    out[8 * i] = i32(rk.popc(a[i]))
    out[8 * i + 1] = i32(rk.clz(a[i]))
    out[8 * i + 2] = i32(rk.ffs(a[i]))
    out[8 * i + 3] = i32(rk.brev(a[i]))
    out[8 * i + 4] = i32(rk.popc(b[i]))
    out[8 * i + 5] = i32(rk.clz(b[i]))
    out[8 * i + 6] = i32(rk.ffs(b[i]))
    out[8 * i + 7] = i32(rk.brev(b[i]))


def _bits32(v: int) -> list[int]:
    w = v & 0xFFFFFFFF
    brev = int(f"{w:032b}"[::-1], 2)
    ffs = (w & -w).bit_length()
    return [bin(w).count("1"), 32 - w.bit_length(), ffs, brev - (1 << 32) if brev >= 1 << 31 else brev]


def test_bit_counts_of_small_integers_see_the_promoted_value(backend: str) -> None:
    a = np.array([0, 1, 0x80, 0xFF], np.uint8)
    b = np.array([0, 1, -1, -128], np.int8)
    out = np.zeros(32, np.int32)
    small_bits[1, 4, backend](a, b, out)
    want = [w for i in range(4) for w in _bits32(int(a[i])) + _bits32(int(b[i]))]
    np.testing.assert_array_equal(out, want)


def test_the_verifier_refuses_a_small_typed_bit_count() -> None:
    b = FunctionBuilder("k", "kernel", [("x", ArrayType(U8))])
    x = b.params[0]
    v = b.load(x, b.const(0, I32))
    b.store(x, b.const(1, I32), b.math("popc", v))
    with pytest.raises(CompileError, match="cannot be u8"):
        verify(Module((b.finish(),)))


# --- atomics on N-d arrays take one index per dimension, as a tuple ----------------------


@rk.kernel
def histogram_2d(h: Array[u32, 2], xs: Array[i32], n: i32):
    i = rk.global_id(0)
    if i < n:
        rk.atomic_add(h, (xs[i] % 4, xs[i] // 4 % 3), u32(1))


@rk.kernel
def shared_2d_counts(out: Array[u32, 2]):
    s = rk.shared_array(u32, (4, 4))
    t = rk.thread_id(0)
    if t < 16:
        s[t // 4, t % 4] = u32(0)
    rk.barrier()
    rk.atomic_add(s, (t % 4, t // 16), u32(1))
    rk.atomic_max(s, (3, 3), u32(t))
    rk.barrier()
    if t < 16:
        out[t // 4, t % 4] = s[t // 4, t % 4]


def test_atomic_with_a_tuple_index_on_a_2d_global_array(backend: str) -> None:
    xs = np.arange(120, dtype=np.int32)
    h = np.zeros((4, 3), np.uint32)
    histogram_2d[2, BLOCK, backend](h, xs, xs.size)
    want = np.zeros((4, 3), np.uint32)
    np.add.at(want, (xs % 4, xs // 4 % 3), 1)
    np.testing.assert_array_equal(h, want)


def test_atomic_with_a_tuple_index_on_a_2d_shared_array(backend: str) -> None:
    out = np.zeros((4, 4), np.uint32)
    shared_2d_counts[1, BLOCK, backend](out)
    want = np.zeros((4, 4), np.uint32)
    t = np.arange(BLOCK)
    np.add.at(want, (t % 4, t // 16), 1)
    want[3, 3] = max(want[3, 3], BLOCK - 1)
    np.testing.assert_array_equal(out, want)


def test_an_atomic_index_of_the_wrong_rank_is_a_located_error() -> None:
    @rk.kernel
    def k(h: Array[u32, 2]):
        rk.atomic_add(h, (1, 2, 3), u32(1))

    with pytest.raises(CompileError, match="2 dimensions") as info:
        k.ir
    assert info.value.line is not None


# --- local arrays stay per work-item on the cpu's loop and coroutine paths ---------------


@rk.func
def fill_window(w: Array[f32], base: f32):
    for k in range(4):
        w[k] = base + f32(k)


@rk.kernel
def window_across_divergent_barrier(x: Array[f32], out: Array[f32]):
    t = rk.thread_id(0)
    w = rk.local_array(f32, 4)
    fill_window(w, x[rk.global_id(0)])
    if t < 1000:  # the condition may differ between work-items: coroutines on cpu
        rk.barrier()
    for k in range(4):
        w[k] = w[k] * 2.0
    rk.barrier()
    out[rk.global_id(0)] = w[0] + w[3]


@rk.kernel
def window_across_uniform_barrier(x: Array[f32], out: Array[f32]):
    w = rk.local_array(i32, (2, 2))
    g = rk.global_id(0)
    w[0, 0] = i32(x[g])
    w[1, 1] = i32(x[g]) * 3
    rk.barrier()
    out[g] = f32(w[0, 0] + w[1, 1])


@pytest.mark.parametrize(
    ("kernel", "mode", "expect"),
    [
        (window_across_divergent_barrier, COROUTINES, lambda x: 4 * x + 6),
        (window_across_uniform_barrier, (LOOPS, COROUTINES), lambda x: 4 * x),
    ],
    ids=["coroutines", "uniform"],
)
def test_local_arrays_are_private_to_each_work_item(kernel, mode, expect, backend: str) -> None:
    if backend == "cpu":
        plan = plan_block(kernel.ir, kernel.ir.kernels[0].name)
        assert plan.mode in (mode if isinstance(mode, tuple) else (mode,))
    x = np.arange(4 * BLOCK, dtype=np.float32)
    out = np.zeros_like(x)
    for checked in (True, False):
        out[:] = 0
        kernel.launch(4, BLOCK, (x, out), backend=backend, checked=checked)
        np.testing.assert_array_equal(out, expect(x))


# --- dynamic shared arrays of a generic kernel's type variable ---------------------------

T = rk.TypeVar("T")


@rk.kernel
def rotate_dynamic(x: Array[T], out: Array[T]):
    buf = rk.dynamic_shared_array(T)
    t = rk.thread_id(0)
    buf[t] = x[rk.global_id(0)]
    rk.barrier()
    out[rk.global_id(0)] = buf[(t + 1) % rk.block_dim(0)]


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int16, np.int32])
def test_dynamic_shared_array_of_a_type_variable(dtype: type, backend: str) -> None:
    x = (np.arange(2 * 24) % 97).astype(dtype)
    out = np.zeros_like(x)
    rotate_dynamic[2, 24, 24, backend](x, out)
    want = np.concatenate([np.roll(x[:24], -1), np.roll(x[24:], -1)])
    np.testing.assert_array_equal(out, want)


def test_dynamic_shared_array_of_a_struct_is_a_located_error() -> None:
    @rk.struct
    class Pair:
        a: f32
        b: i32

    @rk.kernel
    def k(out: Array[f32]):
        buf = rk.dynamic_shared_array(Pair)
        out[0] = buf[0]

    with pytest.raises(CompileError, match="scalar type") as info:
        k.ir
    assert info.value.line is not None

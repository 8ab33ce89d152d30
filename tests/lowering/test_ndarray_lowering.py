"""Where each target puts local and embedded arrays, and that its own checker accepts them."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32

LUT = np.array([0.5, 1.5, 2.5, 3.5], dtype=np.float32)


@rk.func
def pick(table: Array[f32], i: i32) -> f32:
    return table[i % 4]


@rk.kernel
def tables(out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        scratch = rk.local_array(f32, (2, 2))
        scratch[0, 1] = LUT[i % 4]
        scratch[1, 1] = 1.0
        flat = rk.local_array(f32, 4)
        flat[1] = LUT[i % 4]
        out[i] = scratch[i % 2, 1] + pick(LUT, i + 1) + pick(flat, 1)


def test_ptx_puts_tables_in_constant_memory_and_locals_on_the_stack() -> None:
    ptx = tables.compile("ptx")
    assert ".const .align 16 .b8" in ptx and "ld.const" in ptx
    assert ".local" in ptx or "__local_depot" in ptx


def test_wgsl_declares_a_const_table_and_a_private_array() -> None:
    wgsl = tables.compile("wgsl")
    assert "const c_tables_" in wgsl and "array<f32, 4>(0.5f, 1.5f, 2.5f, 3.5f)" in wgsl
    assert "var<private> l_tables_" in wgsl


def test_msl_declares_a_program_scope_constant_table_and_a_thread_array() -> None:
    msl = tables.compile("msl")
    assert "constant float c_tables_" in msl and "{ 0.5f, 1.5f, 2.5f, 3.5f }" in msl
    assert "thread float* " in msl and "constant float* " in msl


def test_tables_and_local_arrays_through_every_checker() -> None:
    from ringkernel.lowering.cuda.ptxas import check_ptx
    from ringkernel.lowering.cuda.toolkit import find_ptxas
    from ringkernel.lowering.msl.check import check_msl
    from ringkernel.lowering.wgsl.naga import check_wgsl

    if find_ptxas() is not None:
        check_ptx(tables.compile("ptx"))
    check_wgsl(tables.compile("wgsl"))
    if shutil.which("clang") or shutil.which("clang++"):
        check_msl(tables.compile("msl"))


def test_local_and_constant_arrays_run(backend: str) -> None:
    n = 10
    out = np.zeros(n, np.float32)
    tables.launch(grid=1, block=16, args=(out, n), backend=backend)
    i = np.arange(n)
    np.testing.assert_allclose(out, np.where(i % 2 == 0, LUT[i % 4], 1.0) + LUT[(i + 1) % 4] + LUT[i % 4])


@rk.kernel
def private_across_barrier(out: Array[i32]):
    t = rk.thread_id(0)
    mine = rk.local_array(i32, 3)
    mine[0] = t
    mine[2] = t * 10
    rk.barrier()
    out[t] = mine[0] + mine[2]


def test_a_local_array_live_across_a_barrier_stays_per_work_item(backend: str) -> None:
    out = np.zeros(32, np.int32)
    private_across_barrier.launch(grid=1, block=32, args=(out,), backend=backend)
    np.testing.assert_array_equal(out, np.arange(32) * 11)


BIG_TABLE = np.arange(1024, dtype=np.float32)


@rk.kernel
def big_table(x: Array[i32], out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = BIG_TABLE[x[i]]


def test_wgsl_refuses_a_table_too_large_to_compile_in_time_at_its_use() -> None:
    from ringkernel import CompileError

    with pytest.raises(CompileError, match="WGSL embeds at most 256") as info:
        big_table.compile("wgsl")
    assert info.value.line is not None and "BIG_TABLE[x[i]]" in str(info.value)
    assert "ld.const" in big_table.compile("ptx")  # the other targets take it
    assert "constant float" in big_table.compile("msl")

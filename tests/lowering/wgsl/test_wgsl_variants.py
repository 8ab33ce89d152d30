"""WGSL variants: aliased parameters, bounds-checked accesses, the loop guard."""

from __future__ import annotations

import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, u32
from ringkernel.lowering.wgsl import lower_module_to_wgsl
from ringkernel.lowering.wgsl.naga import WgpuUnavailable, check_wgsl
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.passes.fingerprint import fingerprint


@rk.func
def bump(a: Array[f32], i: i32) -> f32:
    a[i] += 1.0
    return a[i]


@rk.kernel
def busy(y: Array[f32], x: Array[f32], c: Array[u32], n: i32):
    i = rk.global_id(0)
    s = rk.shared_array(f32, 16)
    s[i % 16] = x[i]
    for j in range(n):
        if j > 5:
            break
        y[i] += bump(x, i)
    while i < n:
        i += 1
    rk.atomic_add(y, i, 1.0)
    rk.atomic_cas(c, i, u32(1), u32(2))
    rk.atomic_add(c, i, u32(1))
    y[i] = x[i] + s[3]


def _naga(text: str) -> None:
    try:
        check_wgsl(text)
    except WgpuUnavailable as exc:
        pytest.skip(f"naga needs a wgpu device: {exc}")


def test_default_options_give_the_plain_wgsl() -> None:
    plain = busy.compile("wgsl", block=64)
    explicit = lower_module_to_wgsl(
        busy.ir, block=64, aliases=(), checked=False, loop_guard=False
    )
    assert plain == lower_module_to_wgsl(busy.ir, block=64)
    assert explicit == lower_module_to_wgsl(busy.ir, block=64)
    assert "rk_status" not in plain and "rk_lengths" not in plain and "@group(1)" not in plain


def test_checked_wgsl_tests_every_access_and_validates() -> None:
    text = busy.compile("wgsl", block=64, checked=True)
    assert "@group(1) @binding(0) var<storage, read_write> rk_status" in text
    assert "@group(1) @binding(1) var<storage, read> rk_lengths" in text
    assert "rk_lengths[0u]" in text and "< 16u" in text
    # Every array access sits in the then-branch of a bounds test.
    for line in text.splitlines():
        if "g_busy_" in line and "[" in line and "@group" not in line:
            assert line.startswith("        ") or "rk_oob" in line, line
    _naga(text)


def test_loop_guard_flags_loops_left_without_their_exit_and_validates() -> None:
    text = busy.compile("wgsl", block=64, loop_guard=True)
    assert text.count("rk_loop_cut();") == 2
    assert "rk_lengths" not in text
    _naga(text)


def test_aliased_parameter_reuses_the_earlier_buffer() -> None:
    text = busy.compile("wgsl", block=64, aliases=(("busy", "x", "y"),))
    assert "g_busy_x" not in text
    assert "@group(0) @binding(0) var<storage, read_write> g_busy_y" in text
    assert "@binding(1)" not in text  # x's binding is left unused
    _naga(text)


def test_all_variants_together_validate() -> None:
    _naga(busy.compile(
        "wgsl", block=64, checked=True, loop_guard=True, aliases=(("busy", "x", "y"),)
    ))


def test_variants_are_part_of_the_cache_key() -> None:
    module = busy.ir
    keys = {
        fingerprint(module, "wgsl", {}),
        fingerprint(module, "wgsl", {"checked": True}),
        fingerprint(module, "wgsl", {"loop_guard": True}),
        fingerprint(module, "wgsl", {"aliases": (("busy", "x", "y"),)}),
    }
    assert len(keys) == 4


@pytest.mark.parametrize(
    "aliases, message",
    [
        ((("busy", "y", "x"),), "representative first"),
        ((("busy", "n", "y"),), "two array parameters"),
        ((("busy", "c", "y"),), "different element types"),
    ],
)
def test_bad_aliases_are_compile_errors(aliases, message) -> None:
    with pytest.raises(CompileError, match=message):
        busy.compile("wgsl", block=64, aliases=aliases)

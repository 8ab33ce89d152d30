"""Fuzzer findings in the WGSL lowering, each with its reproducer (see docs/fuzzing.md)."""

from __future__ import annotations

import pytest

from ringkernel.compiler import compile_module
from ringkernel.ringir import parse

wgsl = pytest.importorskip("ringkernel.lowering.wgsl")


def _check(text: str) -> str:
    try:
        wgsl.naga.get_device()
    except wgsl.naga.WgpuUnavailable as exc:
        pytest.skip(f"naga needs a wgpu device: {exc}")
    out = compile_module(parse(text), "wgsl", cache=False)
    wgsl.check_wgsl(out)
    return out


def test_negative_constant_index_into_storage_array() -> None:
    # fuzz/wgsl: naga rejected "Accessing [8] via a negative index is invalid".
    out = _check(
        "ringir 1\n\n"
        "kernel @k0(%1: array<u32, global>) -> void {\n"
        "  %2: i32 = const -1066374698\n"
        "  %3: u32 = const 323431083\n"
        "  store %1[%2], %3\n"
        "}\n"
    )
    assert "rk_index_i32" in out


def test_constant_index_past_a_shared_array() -> None:
    # fuzz/wgsl: naga rejected "Accessing index 3416771603 is out of [N] bounds" (atomic CAS).
    _check(
        "ringir 1\n\n"
        "kernel @k(%out: array<u32, global>) -> void {\n"
        "  %s: array<u32, shared, 125> = shared_array\n"
        "  %i: u32 = const 3416771603\n"
        "  %e: u32 = const 64\n"
        "  %old: u32 = atomic_cas %s[%i], %e, %e\n"
        "  %j: u32 = const 125\n"
        "  %v: u32 = load %s[%j]\n"
        "  %z: i32 = const 0\n"
        "  store %out[%z], %old\n"
        "  %one: i32 = const 1\n"
        "  store %out[%one], %v\n"
        "}\n"
    )


def test_in_bounds_constant_index_stays_plain() -> None:
    out = _check(
        "ringir 1\n\n"
        "kernel @k(%out: array<u32, global>) -> void {\n"
        "  %z: i32 = const 0\n"
        "  %v: u32 = const 7\n"
        "  store %out[%z], %v\n"
        "}\n"
    )
    assert "rk_index" not in out

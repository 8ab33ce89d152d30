"""Regressions: each target checks its real shared-memory limit, at the shared_array.

A 2**40-element shared array passed ``ringc --check`` for PTX (ptxas counts
in 32 bits) and MSL; now the IR rejects it everywhere and each target rejects
what its hardware cannot hold.
"""

from __future__ import annotations

import pytest

from ringkernel.ringir import parse
from ringkernel.ringir.diagnostics import CompileError

FILE = "shared.rir"


def shared_kernel(*arrays: tuple[str, int]) -> str:
    """A kernel whose shared arrays (one a line from line 4) are all used, so none is dead."""
    declare = [f"  %s{i}: array<{t}, shared, {size}> = shared_array" for i, (t, size) in enumerate(arrays)]
    use = [f"  %v{i}: {t} = load %s{i}[%i]\n  store %s0[%i], %v{i}" for i, (t, _) in enumerate(arrays)]
    return (
        "ringir 1\n\nkernel @k(%x: array<f32, global>) -> void {\n"
        + "\n".join(declare)
        + "\n  %i: i32 = thread_id 0\n"
        + "\n".join(use)
        + "\n  %r: f32 = load %s0[%i]\n  store %x[%i], %r\n  return\n}\n"
    )


def compile_text(text: str, target: str) -> str:
    from ringkernel.compiler import compile_module

    return compile_module(parse(text, FILE), target, cache=False)


@pytest.mark.parametrize("target", ["ptx", "msl"])
def test_2_to_the_40_elements_never_reach_a_target(target):
    with pytest.raises(CompileError, match="larger than any target") as info:
        compile_text(shared_kernel(("f32", 2**40)), target)
    assert (info.value.filename, info.value.line) == (FILE, 4)


@pytest.mark.parametrize(
    "target,fits,too_big",
    [("ptx", 12288, 12289), ("msl", 8192, 8193)],  # 48 KiB static shared, 32 KiB threadgroup
)
def test_target_limit_is_located_at_the_crossing_array(target, fits, too_big):
    assert compile_text(shared_kernel(("f32", fits)), target)
    with pytest.raises(CompileError, match="bytes of shared memory") as info:
        compile_text(shared_kernel(("f32", 16), ("f32", too_big - 16)), target)
    assert (info.value.filename, info.value.line, info.value.col) == (FILE, 5, 3)


def test_ptx_within_the_limit_passes_ptxas():
    from ringkernel.lowering.cuda import check_ptx, find_ptxas

    if find_ptxas() is None:
        pytest.skip("ptxas is not installed")
    check_ptx(compile_text(shared_kernel(("f32", 12288)), "ptx"))


def test_wgsl_emits_any_size_but_check_reports_above_16_kib():
    from ringkernel.lowering.wgsl.limits import check_workgroup_storage

    fits = compile_text(shared_kernel(("f32", 4096)), "wgsl")
    check_workgroup_storage(fits)
    big = compile_text(shared_kernel(("f32", 4097)), "wgsl")  # a device may allow it
    with pytest.raises(CompileError, match="16400 bytes of workgroup memory") as info:
        check_workgroup_storage(big, "out.wgsl")
    assert info.value.filename == "out.wgsl"
    assert "var<workgroup>" in info.value.source_line


def test_wgsl_check_counts_per_entry_point():
    from ringkernel.lowering.wgsl.limits import check_workgroup_storage

    text = (
        "ringir 1\n\n"
        "kernel @a(%x: array<f32, global>) -> void {\n"
        "  %s: array<f32, shared, 3000> = shared_array\n  %i: i32 = thread_id 0\n"
        "  %v: f32 = load %s[%i]\n  store %x[%i], %v\n  return\n}\n\n"
        "kernel @b(%x: array<f32, global>) -> void {\n"
        "  %s: array<f32, shared, 3000> = shared_array\n  %i: i32 = thread_id 0\n"
        "  %v: f32 = load %s[%i]\n  store %x[%i], %v\n  return\n}\n"
    )
    check_workgroup_storage(compile_text(text, "wgsl"))  # 12000 bytes each, not 24000


def test_ringc_check_rejects_huge_shared_array(tmp_path, capsys):
    from ringkernel.cli import main

    path = tmp_path / "huge.rir"
    path.write_text(shared_kernel(("f32", 2**40)))
    assert main([str(path), "--target", "msl", "--check", "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{path}:4:" in err and "larger than any target" in err


def test_check_wgsl_reports_above_the_guaranteed_16_kib():
    from ringkernel.lowering.wgsl import check_wgsl
    from ringkernel.lowering.wgsl.naga import WgpuUnavailable, get_device

    try:
        get_device()
    except WgpuUnavailable as exc:
        pytest.skip(f"no wgpu device to run naga: {exc}")
    check_wgsl(compile_text(shared_kernel(("f32", 4096)), "wgsl"))
    with pytest.raises(CompileError, match="WebGPU guarantees only 16384"):
        check_wgsl(compile_text(shared_kernel(("f32", 4097)), "wgsl"))

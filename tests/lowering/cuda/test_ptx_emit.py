"""PTX from the shared LLVM lowering: accepted by ptxas, deterministic, options checked."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import kernel_corpus
import pytest

from ringkernel.lowering.cuda import (
    check_ptx,
    find_libdevice,
    find_ptxas,
    lower_module_to_nvptx_llvm,
    lower_module_to_ptx,
)
from ringkernel.lowering.llvm import lower_module_to_llvm
from ringkernel.ringir.diagnostics import CompileError


def _need(tool: object, what: str) -> None:
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail(f"{what} must exist in CI (the test extra installs it)")
        pytest.skip(f"{what} not installed")


@pytest.fixture(scope="module")
def ptxas() -> Path:
    path = find_ptxas()
    _need(path, "ptxas (nvidia-cuda-nvcc wheel)")
    _need(find_libdevice(), "libdevice (nvidia-nvvm wheel)")
    return path


@pytest.mark.parametrize("case", kernel_corpus.CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("fastmath", [False, True], ids=["precise", "fastmath"])
def test_corpus_ptx_is_accepted_by_ptxas(
    case: kernel_corpus.KernelCase, fastmath: bool, ptxas: Path
) -> None:
    text = case.kernel.compile("ptx", fastmath=fastmath)
    assert ".target sm_80" in text
    assert f".entry {case.kernel.ir.kernels[0].name}(" in text
    check_ptx(text, "sm_80")


def test_other_arch(ptxas: Path) -> None:
    case = kernel_corpus.CASES[0]
    text = case.kernel.compile("ptx", arch="sm_90")
    assert ".target sm_90" in text
    check_ptx(text, "sm_90")


def _named(name: str) -> kernel_corpus.KernelCase:
    return next(c for c in kernel_corpus.CASES if c.name == name)


def test_shared_arrays_and_barriers_map_to_ptx_state_spaces(ptxas: Path) -> None:
    text = _named("block_reduce").kernel.compile("ptx")
    assert ".shared .align 16" in text
    assert "bar.sync" in text
    assert "ld.global" in text and "st.shared" in text


def test_precise_math_uses_libdevice_and_fastmath_uses_approximations(ptxas: Path) -> None:
    module = _named("math_functions").kernel.ir
    precise = lower_module_to_ptx(module)
    fast = lower_module_to_ptx(module, fastmath=True)
    assert "__nv_" not in precise  # libdevice was linked and inlined, no call left
    assert "sqrt.rn.f32" in precise or "sqrt" not in precise
    assert precise != fast
    assert "ex2.approx" in fast


def test_atomics_are_native_ptx_atomics(ptxas: Path) -> None:
    text = _named("atomic_family").kernel.compile("ptx")
    assert "atom.global.add.f32" in text or "red.global.add.f32" in text
    assert "global.cas.b32" in text
    assert "atom.global.min.s32" in text and "atom.global.exch.b32" in text


def test_check_ptx_reports_ptxas_message(ptxas: Path) -> None:
    text = kernel_corpus.CASES[0].kernel.compile("ptx").replace("ret;", "bogus.op;")
    with pytest.raises(CompileError, match="(?s)ptxas rejected.*bogus"):
        check_ptx(text)


def test_bad_options_are_compile_errors() -> None:
    module = kernel_corpus.CASES[0].kernel.ir
    with pytest.raises(CompileError, match="architecture"):
        lower_module_to_ptx(module, arch="volta")
    with pytest.raises(CompileError, match="unknown option"):
        lower_module_to_ptx(module, fast=True)
    with pytest.raises(CompileError, match="triple"):
        lower_module_to_llvm(module, triple="arm")


def test_missing_ptxas_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import ringkernel.lowering.cuda.ptxas as ptxas_module

    monkeypatch.setattr(ptxas_module, "find_ptxas", lambda: None)
    with pytest.raises(CompileError, match="nvidia-cuda-nvcc"):
        check_ptx("")


def test_nvptx_llvm_text_has_entry_and_address_spaces() -> None:
    text = lower_module_to_nvptx_llvm(_named("block_reduce").kernel.ir)
    assert 'target triple = "nvptx64-nvidia-cuda"' in text
    assert "ptx_kernel void @block_reduce(ptr addrspace(1)" in text
    assert "addrspace(3) global [64 x float]" in text


_DIGEST_SCRIPT = """
import hashlib, sys
sys.path.insert(0, {tests!r})
import kernel_corpus
from ringkernel.lowering.cuda import lower_module_to_ptx
from ringkernel.lowering.llvm import lower_module_to_llvm
h = hashlib.sha256()
for case in kernel_corpus.CASES:
    h.update(lower_module_to_llvm(case.kernel.ir).encode())
    h.update(lower_module_to_ptx(case.kernel.ir).encode())
print(h.hexdigest())
"""


def _digest() -> str:
    h = hashlib.sha256()
    for case in kernel_corpus.CASES:
        h.update(lower_module_to_llvm(case.kernel.ir).encode())
        h.update(lower_module_to_ptx(case.kernel.ir).encode())
    return h.hexdigest()


def test_llvm_and_ptx_are_byte_identical_across_runs_and_processes() -> None:
    first = _digest()
    assert _digest() == first
    tests_dir = str(Path(kernel_corpus.__file__).parent)
    out = subprocess.run(
        [sys.executable, "-c", _DIGEST_SCRIPT.format(tests=tests_dir)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert out.stdout.strip() == first


def test_compile_targets_are_deterministic() -> None:
    kernel = kernel_corpus.CASES[0].kernel
    assert kernel.compile("llvm") == kernel.compile("llvm")
    assert kernel.compile("ptx") == lower_module_to_ptx(kernel.ir)

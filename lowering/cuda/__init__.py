"""PTX for NVIDIA GPUs: the shared LLVM lowering, libdevice, and LLVM's NVPTX backend.

``lower_module_to_ptx`` is the ``compile("ptx")`` emitter; ``check_ptx`` hands
PTX to ``ptxas``.
"""

from __future__ import annotations

from typing import Any

import llvmlite.binding as llvm

from ringkernel.lowering.cuda.libdevice import link_libdevice, needs_libdevice
from ringkernel.lowering.cuda.limits import check_static_shared
from ringkernel.lowering.cuda.ptxas import check_ptx
from ringkernel.lowering.cuda.toolkit import find_libdevice, find_ptxas
from ringkernel.lowering.llvm.codegen import nvptx_machine, optimize, prepare
from ringkernel.lowering.llvm.lower import build_ir_module
from ringkernel.lowering.llvm.targets import NvptxTarget, ptx_kernel_symbol
from ringkernel.ringir import Module
from ringkernel.ringir.diagnostics import CompileError

# Compute capabilities LLVM's NVPTX backend knows (an 'a'/'f' suffix is allowed on
# 90 and newer).  LLVM emits PTX for any other name with only a warning on stderr,
# which ptxas then rejects; naming the choices here is kinder.
# Partial/runtime unroll factor of GPU loops whose trip count is not a constant: nvcc's choice
# (LLVM's NVPTX default is 16, which makes larger code that is no faster).
NVCC_RUNTIME_UNROLL = 4
KNOWN_ARCHS = (
    20, 21, 30, 32, 35, 37, 50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90,
    100, 101, 103, 110, 120, 121,
)


def arch_number(arch: str) -> int:
    """``sm_80`` → 80, after checking the name; a ``CompileError`` lists the choices."""
    digits = arch[3:].rstrip("af") if arch.startswith("sm_") else ""
    suffix = arch[3 + len(digits):] if digits else ""
    if not digits.isdigit() or int(digits) not in KNOWN_ARCHS or (suffix and int(digits) < 90):
        choices = ", ".join(f"sm_{n}" for n in KNOWN_ARCHS)
        raise CompileError(f"invalid CUDA architecture '{arch}'; choose one of: {choices}")
    return int(digits)


def _check_system_scope(arch: str) -> None:
    """``atom.sys`` needs sm_60; LLVM aborts the whole process on older targets."""
    if arch_number(arch) < 60:
        raise CompileError(
            f"system-scope atomics (persistent actors on CUDA) need sm_60 or newer, not '{arch}'"
        )


def build_nvptx(
    module: Module, *, arch: str = "sm_80", fastmath: bool = False,
    system_scope_atomics: bool = False, **options: Any,
) -> llvm.ModuleRef:
    """The optimized NVPTX LLVM module (libdevice linked in when needed).

    ``system_scope_atomics`` makes every atomic ``atom.sys`` (relaxed), as
    needed when the host CPU polls the same words through mapped memory.
    """
    if options:
        raise CompileError(f"unknown option(s) for target 'ptx': {', '.join(sorted(options))}")
    number = arch_number(arch)
    check_static_shared(module)
    machine = nvptx_machine(arch)
    if system_scope_atomics:
        _check_system_scope(arch)
    target = NvptxTarget(
        fastmath=fastmath, system_scope_atomics=system_scope_atomics, arch_number=number
    )
    ref = prepare(build_ir_module(module, target), machine)
    if needs_libdevice(ref):
        link_libdevice(ref)
    return optimize(ref, machine, runtime_unroll_max=NVCC_RUNTIME_UNROLL)


def lower_module_to_nvptx_llvm(module: Module, *, checked: bool = False, **options: Any) -> str:
    """The ``compile("llvm", triple="nvptx")`` text: the optimized NVPTX LLVM module."""
    if checked:
        raise CompileError("bounds checking ('checked') exists only for the host triple, not nvptx")
    return str(build_nvptx(module, **options))


def lower_module_to_ptx(
    module: Module, *, arch: str = "sm_80", fastmath: bool = False,
    system_scope_atomics: bool = False, **options: Any,
) -> str:
    """PTX text of every kernel of ``module`` for ``arch``."""
    ref = build_nvptx(
        module, arch=arch, fastmath=fastmath, system_scope_atomics=system_scope_atomics,
        **options,
    )
    ptx: str = nvptx_machine(arch).emit_assembly(ref)
    return ptx


__all__ = [
    "lower_module_to_ptx", "lower_module_to_nvptx_llvm", "build_nvptx", "check_ptx",
    "find_libdevice", "find_ptxas", "ptx_kernel_symbol",
]

"""PTX for NVIDIA GPUs: the shared LLVM lowering, libdevice, and LLVM's NVPTX backend.

``lower_module_to_ptx`` is the ``compile("ptx")`` emitter; ``check_ptx`` hands
PTX to ``ptxas``.
"""

from __future__ import annotations

from typing import Any

import llvmlite.binding as llvm

from ringkernel.diagnostics import CompileError
from ringkernel.lowering.cuda.libdevice import link_libdevice, needs_libdevice
from ringkernel.lowering.cuda.ptxas import check_ptx
from ringkernel.lowering.cuda.toolkit import find_libdevice, find_ptxas
from ringkernel.lowering.llvm.codegen import nvptx_machine, optimize, prepare
from ringkernel.lowering.llvm.lower import build_ir_module
from ringkernel.lowering.llvm.targets import NvptxTarget, ptx_kernel_symbol
from ringkernel.ringir import Module


def _check_arch(arch: str) -> str:
    if not (arch.startswith("sm_") and arch[3:].rstrip("af").isdigit()):
        raise CompileError(f"invalid CUDA architecture '{arch}'; expected e.g. 'sm_80'")
    return arch


def _check_system_scope(arch: str) -> None:
    """``atom.sys`` needs sm_60; LLVM aborts the whole process on older targets."""
    if int(arch[3:].rstrip("af")) < 60:
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
    machine = nvptx_machine(_check_arch(arch))
    if system_scope_atomics:
        _check_system_scope(arch)
    target = NvptxTarget(fastmath=fastmath, system_scope_atomics=system_scope_atomics)
    ref = prepare(build_ir_module(module, target), machine)
    if needs_libdevice(ref):
        link_libdevice(ref)
    return optimize(ref, machine)


def lower_module_to_ptx(
    module: Module, *, arch: str = "sm_80", fastmath: bool = False,
    system_scope_atomics: bool = False, **options: Any,
) -> str:
    """PTX text of every kernel of ``module`` for ``arch``."""
    ref = build_nvptx(
        module, arch=arch, fastmath=fastmath, system_scope_atomics=system_scope_atomics,
        **options,
    )
    return nvptx_machine(arch).emit_assembly(ref)


__all__ = [
    "lower_module_to_ptx", "build_nvptx", "check_ptx", "find_libdevice", "find_ptxas",
    "ptx_kernel_symbol",
]

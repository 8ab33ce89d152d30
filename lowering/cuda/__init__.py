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


def build_nvptx(
    module: Module, *, arch: str = "sm_80", fastmath: bool = False, **options: Any
) -> llvm.ModuleRef:
    """The optimized NVPTX LLVM module (libdevice linked in when needed)."""
    if options:
        raise CompileError(f"unknown option(s) for target 'ptx': {', '.join(sorted(options))}")
    machine = nvptx_machine(_check_arch(arch))
    ref = prepare(build_ir_module(module, NvptxTarget(fastmath=fastmath)), machine)
    if needs_libdevice(ref):
        link_libdevice(ref)
    return optimize(ref, machine)


def lower_module_to_ptx(
    module: Module, *, arch: str = "sm_80", fastmath: bool = False, **options: Any
) -> str:
    """PTX text of every kernel of ``module`` for ``arch``."""
    ref = build_nvptx(module, arch=arch, fastmath=fastmath, **options)
    return nvptx_machine(arch).emit_assembly(ref)


__all__ = [
    "lower_module_to_ptx", "build_nvptx", "check_ptx", "find_libdevice", "find_ptxas",
    "ptx_kernel_symbol",
]

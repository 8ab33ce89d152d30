"""RingIR -> LLVM IR, for the host (cpu runtime) and NVPTX (PTX).

``lower_module_to_llvm`` is the ``compile("llvm")`` emitter; ``build_llvm``
returns the optimized ``ModuleRef`` that the cpu runtime JITs and the PTX
emitter hands to the NVPTX backend.
"""

from __future__ import annotations

from typing import Any

import llvmlite.binding as llvm

from ringkernel.lowering.llvm.codegen import (
    generic_host_machine,
    optimize,
    prepare,
)
from ringkernel.lowering.llvm.lower import FunctionLowerer, build_ir_module, func_symbol
from ringkernel.lowering.llvm.targets import (
    HostTarget,
    LLVMTarget,
    NvptxTarget,
    host_kernel_symbol,
    ptx_kernel_symbol,
    shared_layout,
)
from ringkernel.ringir import Module
from ringkernel.ringir.diagnostics import CompileError


def lower_module_to_llvm(
    module: Module, *, triple: str = "host", checked: bool = False, **options: Any
) -> str:
    """Optimized (O3) LLVM IR text of ``module`` for the host.

    ``checked=True`` is the build the cpu backend's checked launches run:
    every array access bounds-checked.  The ``"nvptx"`` triple is
    ``ringkernel.lowering.cuda.lower_module_to_nvptx_llvm`` (the compiler
    driver picks it), so this package never imports the CUDA one.
    """
    if triple != "host":
        raise CompileError(f"unknown LLVM triple '{triple}'; choose 'host' or 'nvptx'")
    if options:
        raise CompileError(f"unknown option(s) for target 'llvm': {', '.join(sorted(options))}")
    target = HostTarget(bounds_checks=bool(checked))
    return str(build_llvm(module, target, generic_host_machine()))


def build_llvm(
    module: Module, target: LLVMTarget, machine: llvm.TargetMachine
) -> llvm.ModuleRef:
    """Lowers, verifies and O3-optimizes ``module`` for ``target``."""
    return optimize(prepare(build_ir_module(module, target), machine), machine)


__all__ = [
    "lower_module_to_llvm", "build_llvm", "build_ir_module", "FunctionLowerer", "LLVMTarget",
    "HostTarget", "NvptxTarget", "host_kernel_symbol", "ptx_kernel_symbol", "func_symbol", "shared_layout",
    "prepare", "optimize",
]

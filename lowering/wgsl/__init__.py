"""The WGSL backend: RingIR -> WGSL through jinja2 templates, checked by naga.

``lower_module_to_wgsl`` emits the text; ``plan_kernel_bindings`` tells the
runtime where each kernel argument goes; ``check_wgsl`` validates text with
naga (through wgpu) and reports errors as ``CompileError`` at the WGSL line.
"""

from ringkernel.lowering.wgsl.bindings import (
    ArrayBinding,
    KernelBindings,
    ScalarField,
    plan_kernel_bindings,
)
from ringkernel.lowering.wgsl.emitter import lower_module_to_wgsl, normalize_block
from ringkernel.lowering.wgsl.naga import check_wgsl, naga_error

__all__ = [
    "ArrayBinding", "KernelBindings", "ScalarField", "plan_kernel_bindings",
    "lower_module_to_wgsl", "normalize_block", "check_wgsl", "naga_error",
]

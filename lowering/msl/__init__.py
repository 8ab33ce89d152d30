"""MSL backend: RingIR -> Metal Shading Language, checked by clang against a Metal shim.

``lower_module_to_msl(module)`` gives the text, ``msl_kernel_info(module)`` how
the runtime binds each kernel's arguments (``[[buffer(n)]]`` per parameter),
and ``check_msl(text)`` has clang type-check the text as C++ against
``shim/metal_shim.h``.
"""

from __future__ import annotations

from typing import Any

from ringkernel.lowering.msl.check import check_msl, find_clang, shim_header_path
from ringkernel.lowering.msl.emitter import MATH_MODES, MslKernel, MslParam, MslProgram, lower
from ringkernel.ringir import Module


def lower_module_to_msl(module: Module, **options: Any) -> str:
    """MSL text for every kernel (``kernel void``) and func (inline) of ``module``.

    Options: ``math`` = ``"precise"`` (default), ``"fast"`` or ``"default"``
    picks the ``metal::precise::``/``metal::fast::``/``metal::`` math functions.
    """
    return lower(module, **options).text


def msl_kernel_info(module: Module, **options: Any) -> dict[str, MslKernel]:
    """Per kernel: the entry-point name and the buffer index of each parameter."""
    return lower(module, **options).kernels


__all__ = [
    "lower_module_to_msl", "msl_kernel_info", "check_msl", "find_clang", "shim_header_path",
    "lower", "MslKernel", "MslParam", "MslProgram", "MATH_MODES",
]

"""Linking NVIDIA's libdevice bitcode into a module, as Numba does.

Only modules that call ``__nv_*`` functions pay for it.  The linked functions
are made internal so the optimizer keeps only those that are used.
"""

from __future__ import annotations

import functools

import llvmlite.binding as llvm

from ringkernel.lowering.cuda.toolkit import find_libdevice
from ringkernel.ringir.diagnostics import CompileError


@functools.lru_cache(maxsize=1)
def _libdevice_bytes() -> bytes:
    path = find_libdevice()
    if path is None:
        raise CompileError(
            "libdevice.10.bc was not found: install the 'nvidia-nvvm' wheel "
            "(pip install nvidia-nvvm) or set CUDA_HOME to a CUDA toolkit"
        )
    return path.read_bytes()


def needs_libdevice(ref: llvm.ModuleRef) -> bool:
    return any(fn.is_declaration and fn.name.startswith("__nv_") for fn in ref.functions)


def link_libdevice(ref: llvm.ModuleRef) -> None:
    """Links libdevice into ``ref`` (in place) and internalizes its definitions."""
    ours = {fn.name for fn in ref.functions if not fn.is_declaration}
    lib = llvm.parse_bitcode(_libdevice_bytes())
    lib.triple = ref.triple
    lib.data_layout = ref.data_layout
    ref.link_in(lib)
    for fn in ref.functions:
        if not fn.is_declaration and fn.name not in ours:
            fn.linkage = llvm.Linkage.internal

"""CUDA's static shared memory limit, checked before emitting PTX.

A block may declare at most 48 KiB (0xc000 bytes) of static ``.shared``
memory on every architecture; more needs dynamic shared memory and an opt-in
at launch.  ptxas rejects larger declarations, but its count is 32-bit, so a
2**40-element array wraps around and is silently accepted; checking the IR
catches both, at the ``shared_array`` that crosses the line.
"""

from __future__ import annotations

from ringkernel.lowering.llvm.targets import SHARED_ALIGN, memory_type_size
from ringkernel.ringir import Module
from ringkernel.ringir.limits import check_shared_memory

STATIC_SHARED_BYTES = 48 * 1024


def check_static_shared(module: Module) -> None:
    """Raises ``CompileError`` at the shared array that takes a kernel past 48 KiB."""
    for fn in module.kernels:
        check_shared_memory(
            fn, STATIC_SHARED_BYTES, "CUDA", elem_bytes=memory_type_size, align=SHARED_ALIGN,
            hint=" (static shared memory)",
        )

"""Metal's threadgroup memory limit, checked before emitting.

Every current Apple GPU family (Apple4 and newer, and the Mac families)
offers 32 KiB of threadgroup memory per threadgroup
(``maxTotalThreadgroupMemoryLength``); a kernel that declares more fails
when its pipeline is created on the device, far from the source.  Metal
allocates threadgroup memory in 16-byte units; ``bool`` takes one byte.
"""

from __future__ import annotations

from ringkernel.ringir import Module, ScalarType
from ringkernel.ringir.limits import check_shared_memory

THREADGROUP_MEMORY_BYTES = 32 * 1024


def check_threadgroup_memory(module: Module) -> None:
    """Raises ``CompileError`` at the shared array that takes a kernel past 32 KiB."""
    for fn in module.kernels:
        check_shared_memory(
            fn, THREADGROUP_MEMORY_BYTES, "Metal", elem_bytes=_msl_bytes, align=16,
            hint=" (threadgroup memory)",
        )


def _msl_bytes(elem: ScalarType) -> int:
    return 1 if elem.is_bool else elem.bits // 8

"""The cpu backend: kernels JIT-compiled by LLVM and run on the host's cores.

Blocks are split over one Python thread per core; each calls the kernel's
native launch wrapper through ctypes, which releases the GIL, so blocks run
in parallel.  How work-items and barriers run inside a block is described in
:mod:`ringkernel.runtime.cpu.entry`; ``docs/backends-cpu.md`` has the whole
story.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ringkernel.ringir import Module
from ringkernel.ringir.types import ArrayType
from ringkernel.runtime.arguments import LaunchError
from ringkernel.runtime.cpu.jit import compile_kernel

MAX_BLOCK_THREADS = 1024
# Below this many work-items a launch runs on the calling thread only.
_PARALLEL_THRESHOLD = 1 << 14


class CpuBackend:
    """Runs kernels on the host CPU through llvmlite's MCJIT.

    ``workitem_loops`` (default: true unless ``RINGKERNEL_CPU_BARRIERS=threads``)
    runs kernels with barriers as work-item loops when that is provably
    correct; false always uses one OS thread per work-item for them.
    """

    name = "cpu"

    def __init__(self, workitem_loops: bool | None = None) -> None:
        if workitem_loops is None:
            workitem_loops = os.environ.get("RINGKERNEL_CPU_BARRIERS", "loops") != "threads"
        self.workitem_loops = workitem_loops

    @classmethod
    def available(cls) -> bool:
        return True

    @classmethod
    def unavailable_reason(cls) -> str:
        return ""

    def launch(
        self,
        module: Module,
        kernel_name: str,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        args: Sequence[Any],
        *,
        checked: bool | None = None,
    ) -> None:
        """Runs ``kernel_name`` over ``grid`` x ``block``; arrays in ``args`` are updated in place."""
        fn = module.get(kernel_name)
        _check_dims(grid, block)
        compiled = compile_kernel(module, kernel_name, self.workitem_loops)
        keep: list[Any] = []
        argv = (ctypes.c_void_p * max(len(args), 1))()
        for i, (param, value) in enumerate(zip(fn.params, args)):
            if isinstance(param.type, ArrayType):
                argv[i] = value.ctypes.data
            else:
                cell = np.array(value, dtype=np.uint8 if param.type.is_bool else value.dtype)
                keep.append(cell)
                argv[i] = cell.ctypes.data
        dims = (ctypes.c_int32 * 6)(*grid, *block)
        blocks = grid[0] * grid[1] * grid[2]
        work = blocks * block[0] * block[1] * block[2]
        workers = min(os.cpu_count() or 1, blocks)
        if workers == 1 or (work < _PARALLEL_THRESHOLD and not compiled.threaded):
            status = [compiled.launch(argv, dims, 0, blocks)]
        else:
            status = _run_parallel(compiled.launch, argv, dims, blocks, workers)
        if -2 in status:
            raise MemoryError(f"cpu backend: no memory for the shared arrays of '{kernel_name}'")
        if any(status):
            raise RuntimeError(
                f"cpu backend: the OS refused to start {block[0] * block[1] * block[2]} "
                f"threads for a block of kernel '{kernel_name}'"
            )

    def barrier_strategy(self, module: Module, kernel_name: str) -> tuple[str, str]:
        """How ``kernel_name``'s work-items run: (``"plain"``/``"loops"``/``"threads"``, why)."""
        compiled = compile_kernel(module, kernel_name, self.workitem_loops)
        return compiled.mode, compiled.fallback_reason


def _check_dims(grid: tuple[int, int, int], block: tuple[int, int, int]) -> None:
    threads = block[0] * block[1] * block[2]
    if threads > MAX_BLOCK_THREADS:
        raise LaunchError(
            f"a block has at most {MAX_BLOCK_THREADS} threads, got {block} = {threads}"
        )
    if any(d >= 2**31 for d in grid):
        raise LaunchError(f"grid dimensions must be below 2**31, got {grid}")


def _run_parallel(launch: Any, argv: Any, dims: Any, blocks: int, workers: int) -> list[int]:
    status = [0] * workers
    bounds = [blocks * w // workers for w in range(workers + 1)]

    def run(w: int) -> None:
        status[w] = launch(argv, dims, bounds[w], bounds[w + 1])

    threads = [threading.Thread(target=run, args=(w,)) for w in range(1, workers)]
    for t in threads:
        t.start()
    run(0)
    for t in threads:
        t.join()
    return status


__all__ = ["CpuBackend", "MAX_BLOCK_THREADS"]

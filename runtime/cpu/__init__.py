"""The cpu backend: kernels JIT-compiled by LLVM and run on the host's cores.

Blocks are split over one Python thread per core; each calls the kernel's
native launch wrapper through ctypes, which releases the GIL, so blocks run
in parallel.  The kernel arrives compiled for the ``host`` target
(:mod:`ringkernel.lowering.llvm.host`: LLVM IR text tuned for this CPU); this
backend JITs and runs it.  How work-items and barriers run inside a block is
described in :mod:`ringkernel.lowering.llvm.host_entry`;
``docs/backends-cpu.md`` has the whole story.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ringkernel.lowering.llvm.codegen import host_cpu
from ringkernel.ringir import Module
from ringkernel.ringir.types import ArrayType, as_scalar
from ringkernel.runtime.arguments import MAX_BLOCK_THREADS, check_dims
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cpu.bounds import BoundsRecord
from ringkernel.runtime.cpu.jit import CompiledKernel, block_plan, jit_kernel
from ringkernel.runtime.cpu.memory import CpuMemory
from ringkernel.runtime.device_array import DeviceArray

# Below this many work-items a launch runs on the calling thread only.
_PARALLEL_THRESHOLD = 1 << 14
# Seconds between the waiting thread's looks at pending signals (Ctrl-C).
_WAIT_SLICE = 0.05
# Device-array memory: one pool for every CpuBackend instance (it is all host memory).
_MEMORY = CpuMemory()


class CpuBackend:
    """Runs kernels on the host CPU through llvmlite's MCJIT.

    ``workitem_loops`` (default: true unless ``RINGKERNEL_CPU_BARRIERS=threads``)
    runs kernels with barriers as work-item loops when that is provably
    correct; false always uses one OS thread per work-item for them.
    """

    name = "cpu"
    target = "host"

    def __init__(self, workitem_loops: bool | None = None) -> None:
        if workitem_loops is None:
            workitem_loops = os.environ.get("RINGKERNEL_CPU_BARRIERS", "loops") != "threads"
        self.workitem_loops = workitem_loops
        self.cpu, self.features = host_cpu()
        self.memory = _MEMORY
        self._options: dict[tuple[str, bool], dict[str, Any]] = {}

    @classmethod
    def available(cls) -> bool:
        return True

    @classmethod
    def unavailable_reason(cls) -> str:
        return ""

    def compile_options(
        self,
        module: Module,
        kernel_name: str,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        args: Sequence[Any],
        *,
        checked: bool | None = None,
    ) -> dict[str, Any]:
        """The ``host`` options: this kernel, the barrier strategy, checks, and this CPU.

        ``checked`` (default: on) bounds-checks every array access.
        """
        check_dims(grid, block)
        return self.kernel_options(kernel_name, True if checked is None else bool(checked))

    def kernel_options(self, kernel_name: str, checked: bool = False) -> dict[str, Any]:
        """``host`` options for ``kernel_name``: made once per kernel and setting (read-only)."""
        options = self._options.get((kernel_name, checked))
        if options is None:
            options = self._options[(kernel_name, checked)] = {
                "kernel": kernel_name, "workitem_loops": self.workitem_loops, "checked": checked,
                "cpu": self.cpu, "features": self.features,
            }
        return options

    def launch(
        self,
        build: KernelBuild,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        args: Sequence[Any],
        *,
        checked: bool | None = None,
    ) -> None:
        """Runs the build over ``grid`` x ``block``; arrays in ``args`` are updated in place.

        A checked build raises :class:`~ringkernel.runtime.arguments.BoundsError`
        after the launch if an access was out of bounds.  Device arrays are
        host memory: the kernel gets a pointer into it, nothing is copied.
        """
        args = [a.host_view() if isinstance(a, DeviceArray) else a for a in args]
        kernel_name = build.kernel_name
        fn = build.module.get(kernel_name)
        compiled = jit_kernel(build)
        checked = compiled.checked
        keep: list[Any] = [args]
        argv = (ctypes.c_void_p * (len(args) + 2))()
        for i, (param, value) in enumerate(zip(fn.params, args)):
            if isinstance(param.type, ArrayType):
                argv[i] = value.ctypes.data
            else:
                cell = np.array(value, dtype=np.uint8 if as_scalar(param.type).is_bool else value.dtype)
                keep.append(cell)
                argv[i] = cell.ctypes.data
        bounds = BoundsRecord(fn, args) if checked else None
        if bounds is not None:
            argv[len(args)], argv[len(args) + 1] = bounds.pointers
        keep += [argv, bounds]
        dims = (ctypes.c_int32 * 6)(*grid, *block)
        blocks = grid[0] * grid[1] * grid[2]
        work = blocks * block[0] * block[1] * block[2]
        if work < _PARALLEL_THRESHOLD and not compiled.threaded:
            status = [compiled.launch(argv, dims, 0, blocks)]
        else:
            workers = min(os.cpu_count() or 1, blocks)
            status = _run_interruptible(compiled, argv, dims, blocks, workers, keep)
        if -2 in status:
            raise MemoryError(f"cpu backend: no memory for the shared arrays of '{kernel_name}'")
        if any(status):
            raise RuntimeError(
                f"cpu backend: the OS refused to start {block[0] * block[1] * block[2]} "
                f"threads for a block of kernel '{kernel_name}'"
            )
        if bounds is not None:
            bounds.raise_if_violated(kernel_name, compiled.bounds_sites)

    def barrier_strategy(self, module: Module, kernel_name: str) -> tuple[str, str]:
        """How ``kernel_name``'s work-items run: (``"plain"``/``"loops"``/``"threads"``, why)."""
        return block_plan(module, kernel_name, self.workitem_loops)


def _run_interruptible(
    compiled: CompiledKernel, argv: Any, dims: Any, blocks: int, workers: int, keep: list[Any]
) -> list[int]:
    """Runs the blocks on ``workers`` native threads while this thread waits for them.

    The calling thread waits in Python with a timeout, so Ctrl-C reaches it:
    it then sets the cancel flag, which stops every worker before its next
    block, waits for them (at most one block each) and re-raises.  A second
    Ctrl-C stops waiting; the workers hold ``keep`` (the argument memory)
    until they end, so nothing they touch is freed under them.
    """
    status = [0] * workers
    bounds = [blocks * w // workers for w in range(workers + 1)]
    cancel = ctypes.c_int32(0)

    def run(w: int, _keep: list[Any] = keep, _cancel: ctypes.c_int32 = cancel) -> None:
        status[w] = compiled.launch(argv, dims, bounds[w], bounds[w + 1], _cancel)

    threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in range(workers)]
    for t in threads:
        t.start()
    try:
        _join(threads)
    except KeyboardInterrupt:
        cancel.value = 1
        _join(threads)
        raise
    return status


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        while t.is_alive():
            t.join(_WAIT_SLICE)


__all__ = ["CpuBackend", "MAX_BLOCK_THREADS"]

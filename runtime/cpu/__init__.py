"""The cpu backend: kernels JIT-compiled by LLVM and run on the host's cores.

Blocks are split over the threads of a persistent pool
(:mod:`ringkernel.runtime.cpu.pool`, one per core unless
``RINGKERNEL_CPU_THREADS`` or ``CpuBackend(threads=N)`` say otherwise); each
calls the kernel's native launch wrapper through ctypes, which releases the
GIL, so blocks run in parallel.  The kernel arrives compiled for the ``host`` target
(:mod:`ringkernel.lowering.llvm.host`: LLVM IR text tuned for this CPU); this
backend JITs and runs it.  How work-items and barriers run inside a block is
described in :mod:`ringkernel.lowering.llvm.host_entry`;
``docs/backends-cpu.md`` has the whole story.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ringkernel.lowering.llvm.codegen import host_cpu
from ringkernel.lowering.llvm.host_threads import COOPERATIVE_MAX_WORK_ITEMS
from ringkernel.ringir import Module
from ringkernel.ringir.passes.workitem_loops import LOOPS, uses_grid_sync
from ringkernel.ringir.types import ArrayType, as_scalar
from ringkernel.runtime.arguments import MAX_BLOCK_THREADS, LaunchError, check_dims
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cpu.bounds import BoundsRecord
from ringkernel.runtime.cpu.jit import CompiledKernel, block_plan, jit_kernel
from ringkernel.runtime.cpu.launcher import FastLauncher
from ringkernel.runtime.cpu.memory import CpuMemory
from ringkernel.runtime.cpu.pool import shared_pool, worker_count
from ringkernel.runtime.device_array import DeviceArray

INLINE_BELOW = 1 << 14
"""Launches with fewer work-items run on the calling thread (the pool's handoff would cost more)."""
# Device-array memory: one pool for every CpuBackend instance (it is all host memory).
_MEMORY = CpuMemory()


MAX_BLOCK_SHAPES = 8  # per kernel: block shapes that get a specialized build (then: the generic one)


class CpuBackend:
    """Runs kernels on the host CPU through llvmlite's MCJIT.

    ``workitem_loops`` (default: true unless ``RINGKERNEL_CPU_BARRIERS=threads``)
    runs kernels with barriers as work-item loops when that is provably
    correct (else coroutines); false always uses one OS thread per work-item for them.
    ``threads`` (default: ``RINGKERNEL_CPU_THREADS``, else every core; 1 to
    256) is how many pool threads one launch spreads its blocks over;
    launches of fewer than ``inline_below`` work-items run on the calling
    thread instead (0: every launch uses the pool).
    """

    name = "cpu"
    target = "host"

    def __init__(self, workitem_loops: bool | None = None, threads: int | None = None,
                 inline_below: int = INLINE_BELOW) -> None:
        self.threads = worker_count(threads)
        if isinstance(inline_below, bool) or not isinstance(inline_below, int) or inline_below < 0:
            raise ValueError(f"CpuBackend(inline_below={inline_below!r}): expected a work-item count >= 0")
        self.inline_below = inline_below
        if workitem_loops is None:
            workitem_loops = os.environ.get("RINGKERNEL_CPU_BARRIERS", "loops") != "threads"
        self.workitem_loops = workitem_loops
        self.cpu, self.features = host_cpu()
        self.memory = _MEMORY
        self._options: dict[tuple[str, bool, tuple[int, int, int] | None], dict[str, Any]] = {}
        self._shapes: dict[tuple[str, bool], set[tuple[int, ...]]] = {}  # specialized, per kernel

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
        check_cooperative(module, kernel_name, grid, block)
        checked = True if checked is None else bool(checked)
        loops = block_plan(module, kernel_name, self.workitem_loops)[0] == LOOPS
        shape = self._specialized(kernel_name, checked, block, loops)
        return self.kernel_options(kernel_name, checked, shape)

    def _specialized(self, kernel_name: str, checked: bool, block: tuple[int, int, int],
                     loops: bool) -> tuple[int, int, int] | None:
        """The block shape to specialize a launch's build for: its own for the first
        :data:`MAX_BLOCK_SHAPES` shapes of a work-item-loop kernel, then None (the generic build,
        which runs any shape): a kernel launched with many shapes compiles a bounded number."""
        if not loops:
            return None
        shapes = self._shapes.setdefault((kernel_name, checked), set())
        shape = tuple(block)
        if shape not in shapes:
            if len(shapes) >= MAX_BLOCK_SHAPES:
                return None
            shapes.add(shape)
        return shape  # type: ignore[return-value]

    def kernel_options(self, kernel_name: str, checked: bool = False,
                       block: tuple[int, int, int] | None = None) -> dict[str, Any]:
        """``host`` options for ``kernel_name``: made once per kernel and setting (read-only).

        ``block`` specializes a work-item-loop kernel for that block shape
        (constant trip counts LLVM unrolls and vectorizes; one build per shape,
        each in the compile and JIT caches).  ``noalias``: a kernel with two or
        more arrays also gets a variant for arguments that do not overlap,
        chosen per launch (:mod:`ringkernel.lowering.llvm.host_noalias`).
        """
        key = (kernel_name, checked, block)
        options = self._options.get(key)
        if options is None:
            options = self._options[key] = {
                "kernel": kernel_name, "workitem_loops": self.workitem_loops, "checked": checked,
                "cpu": self.cpu, "features": self.features, "noalias": True,
            }
            if block is not None:
                options["block"] = block
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
        # the lengths go to every build: checked ones test indices against them, and
        # every launch wrapper uses them to privatize small atomic arrays (host_privatize)
        record = BoundsRecord(fn, args)
        argv[len(args)], argv[len(args) + 1] = record.pointers
        bounds = record if checked else None
        keep += [argv, record]
        dims = (ctypes.c_int32 * 6)(*grid, *block)
        status = self._run_blocks(compiled, argv, dims, grid[0] * grid[1] * grid[2], keep)
        self._finish(compiled, kernel_name, block, status, bounds)

    def launcher(self, build: KernelBuild, grid: tuple[int, int, int],
                 block: tuple[int, int, int]) -> FastLauncher:
        """A :class:`~ringkernel.runtime.cpu.launcher.FastLauncher` for repeat launches of ``build``.

        ``grid``/``block`` must have passed :meth:`compile_options` (the limits).
        """
        compiled = jit_kernel(build)
        name = build.kernel_name

        def finish(status: list[int], bounds: BoundsRecord | None) -> None:
            self._finish(compiled, name, block, status, bounds)

        inline = self._inline(compiled, grid, block)
        return FastLauncher(build.module.get(name), compiled, grid, block, inline, self._run_blocks, finish)

    def _run_blocks(self, compiled: CompiledKernel, argv: Any, dims: Any, blocks: int,
                    keep: list[Any]) -> list[int]:
        """Runs ``blocks`` blocks: on this thread when small, else spread over the pool.

        Large launches use the pool even with one thread: its caller waits
        in Python, so Ctrl-C can stop them.
        """
        if self._inline(compiled, (blocks, 1, 1), (dims[3], dims[4], dims[5])):
            return [compiled.launch(argv, dims, 0, blocks)]
        if compiled.cooperative:  # every block at once, in one native call (on a pool thread)
            return _run_on_pool(compiled, argv, dims, blocks, 1, keep)
        return _run_on_pool(compiled, argv, dims, blocks, min(self.threads, blocks), keep)

    def _inline(self, compiled: CompiledKernel, grid: tuple[int, int, int],
                block: tuple[int, int, int]) -> bool:
        """Whether a launch is small enough to run on the calling thread (no pool, no waiting)."""
        work = grid[0] * grid[1] * grid[2] * block[0] * block[1] * block[2]
        return work < self.inline_below and not compiled.threaded

    @staticmethod
    def _finish(compiled: CompiledKernel, kernel_name: str, block: tuple[int, int, int],
                status: list[int], bounds: BoundsRecord | None) -> None:
        """Raises what the launch's statuses and bounds record report."""
        if -2 in status:
            raise MemoryError(
                f"cpu backend: no memory for the shared arrays or work-item frames of '{kernel_name}'"
            )
        if any(status):
            where = ("every work-item of the grid (rk.grid_sync)" if compiled.cooperative
                     else f"{block[0] * block[1] * block[2]} threads for a block")
            raise RuntimeError(f"cpu backend: the OS refused to start {where} of kernel '{kernel_name}'")
        if bounds is not None:
            bounds.raise_if_violated(kernel_name, compiled.bounds_sites)

    def barrier_strategy(self, module: Module, kernel_name: str) -> tuple[str, str]:
        """How ``kernel_name``'s work-items run, and why not as loops.

        The mode is ``"plain"``, ``"loops"``, ``"coroutines"``, ``"threads"`` or ``"grid"``.
        """
        return block_plan(module, kernel_name, self.workitem_loops)


def check_cooperative(module: Module, kernel_name: str, grid: tuple[int, int, int],
                      block: tuple[int, int, int]) -> None:
    """A kernel with grid_sync runs every work-item of the grid at once, one OS thread each:
    refuse grids past :data:`COOPERATIVE_MAX_WORK_ITEMS` before anything starts (never a hang)."""
    if not uses_grid_sync(module.get(kernel_name)):
        return
    work = grid[0] * grid[1] * grid[2] * block[0] * block[1] * block[2]
    if work > COOPERATIVE_MAX_WORK_ITEMS:
        raise LaunchError(
            f"kernel '{kernel_name}' calls rk.grid_sync(), so the cpu backend runs all of its "
            f"work-items at once (one OS thread each); grid {grid} x block {block} is {work} "
            f"work-items, at most {COOPERATIVE_MAX_WORK_ITEMS} can be co-resident: use fewer "
            "blocks (loop over the data inside the kernel) or split the kernel into two launches"
        )


def _run_on_pool(
    compiled: CompiledKernel, argv: Any, dims: Any, blocks: int, workers: int, keep: list[Any]
) -> list[int]:
    """Runs the blocks in ``workers`` equal ranges on the shared native pool while this thread waits.

    Ctrl-C sets the cancel flag, which stops every range before its next
    block (see :class:`~ringkernel.runtime.cpu.pool.WorkerPool`), which keeps
    ``keep`` (the argument memory) until the ranges end.
    """
    return shared_pool(workers).run(compiled.address, argv, dims, blocks, workers, keep)


__all__ = ["CpuBackend", "MAX_BLOCK_THREADS"]

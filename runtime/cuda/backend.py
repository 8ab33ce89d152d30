"""The cuda backend: PTX from ``compile("ptx")`` loaded and launched through the driver interface.

The driver comes from :func:`~ringkernel.runtime.cuda.driver.load_driver`
(``cuda-bindings`` preferred, pycuda otherwise); ``available()`` is False
when none can run and ``unavailable_reason()`` says precisely why.  Modules
are cached per PTX text (compiled by the facade for this device's compute
capability).

Launches: device arrays (:class:`~ringkernel.runtime.device_array.DeviceArray`,
also any ``__cuda_array_interface__`` object) are passed as their pointers
and the launch is queued on the backend's stream and returns; numpy
arguments are staged through pooled device buffers (one per group of
arguments sharing memory, so aliasing behaves as with raw pointers), copied
back after the kernel, and the launch waits for that.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ringkernel.ringir import Module
from ringkernel.ringir.passes.workitem_loops import uses_grid_sync
from ringkernel.ringir.types import ArrayType, as_scalar
from ringkernel.runtime.aliasing import memory_groups
from ringkernel.runtime.arguments import LaunchError, check_dims
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cuda.driver import (
    CooperativeUnsupported,
    CudaDriver,
    DriverUnavailable,
    load_driver,
)
from ringkernel.runtime.cuda.memory import CudaBuffer, CudaMemory

Dim3 = tuple[int, int, int]

_probed: CudaDriver | str | None = None
_probe_lock = threading.Lock()


def probe(*, again: bool = False) -> CudaDriver | str:
    """The loaded driver, or the reason none can run here (remembered; ``again`` probes anew)."""
    global _probed
    with _probe_lock:
        if _probed is None or again:
            try:
                _probed = load_driver()
            except DriverUnavailable as exc:
                _probed = str(exc)
        return _probed


class CudaBackend:
    """Runs kernels on an NVIDIA GPU (device 0, its primary context)."""

    name = "cuda"
    target = "ptx"

    @classmethod
    def available(cls) -> bool:
        return not isinstance(probe(), str)

    @classmethod
    def unavailable_reason(cls) -> str:
        probed = probe()
        return probed if isinstance(probed, str) else ""

    def __init__(self, driver: CudaDriver | None = None) -> None:
        if driver is None:
            probed = probe()
            if isinstance(probed, str):
                raise DriverUnavailable(probed)
            driver = probed
        self.driver = driver
        major, minor = driver.compute_capability()
        self.arch = f"sm_{major}{minor}"
        self.memory = CudaMemory(driver)
        self._modules: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._grid_barrier: int | None = None  # rk.grid_sync's word (a device pointer), made once

    def _function(self, build: KernelBuild) -> Any:
        from ringkernel.lowering.cuda import ptx_kernel_symbol

        module = self._modules.get(build.text)
        if module is None:
            module = self._modules[build.text] = self.driver.load_module(build.text)
        return self.driver.function(module, ptx_kernel_symbol(build.kernel_name))

    def compile_options(
        self,
        module: Module,
        kernel_name: str,
        grid: Dim3,
        block: Dim3,
        args: Sequence[Any],
        *,
        checked: bool | None = None,
    ) -> dict[str, Any]:
        """PTX for this device's architecture."""
        check_dims(grid, block)
        return {"arch": self.arch}

    def launch(
        self,
        build: KernelBuild,
        grid: Dim3,
        block: Dim3,
        args: Sequence[Any],
        *,
        checked: bool | None = None,
    ) -> None:
        """Queues the kernel; with numpy arguments, stages them and waits for the copy back."""
        fn = build.module.get(build.kernel_name)
        arrays = [k for k, p in enumerate(fn.params) if isinstance(p.type, ArrayType)]
        host = [k for k in arrays if isinstance(args[k], np.ndarray)]
        stream = self.memory.stream
        with self._lock:
            function = self._function(build)
            staged: list[tuple[np.ndarray, CudaBuffer]] = []
            try:
                pointers = self._stage(args, host, staged)
                values: list[np.generic] = []
                for k, (param, value) in enumerate(zip(fn.params, args)):
                    if k in pointers:
                        values.append(np.uint64(pointers[k]))
                    elif isinstance(param.type, ArrayType):
                        values.append(np.uint64(value.buffer.pointer + value.offset))
                    elif as_scalar(param.type).is_bool:
                        values.append(np.uint8(value))
                    else:
                        values.append(value)
                cooperative = uses_grid_sync(fn)
                if cooperative:
                    values.append(np.uint64(self._grid_word(function, build.kernel_name, grid, block)))
                self.driver.launch(function, grid, block, values, stream, cooperative=cooperative)
                if staged:
                    for span, buffer in staged:
                        if span.nbytes:
                            self.driver.copy_d2h(span, buffer.pointer, stream)
                    self.driver.synchronize(stream)
            finally:
                for _, buffer in staged:
                    self.memory.release(buffer)

    def _grid_word(self, function: Any, kernel_name: str, grid: Dim3, block: Dim3) -> int:
        """The zeroed grid-barrier word of a cooperative launch, once the grid fits the GPU.

        A grid_sync kernel needs every block resident at once; a bigger grid
        would hang, so it is refused here, naming the limit.  The word is the
        backend's own (launches on its stream run one after another), zeroed
        before each launch so an aborted kernel cannot leave it half counted.
        """
        threads = block[0] * block[1] * block[2]
        blocks = grid[0] * grid[1] * grid[2]
        try:
            limit = self.driver.cooperative_grid_limit(function, threads, 0)
        except CooperativeUnsupported as exc:
            raise LaunchError(f"kernel '{kernel_name}' calls rk.grid_sync(): {exc}") from None
        if blocks > limit:
            raise LaunchError(
                f"kernel '{kernel_name}' calls rk.grid_sync(), so all of its blocks must be resident "
                f"at once (a cooperative launch): grid {grid} has {blocks} blocks, but at most {limit} "
                f"blocks of {threads} threads fit on this GPU at once (blocks per SM at this "
                "occupancy x SMs); use fewer blocks and loop over the data inside the kernel"
            )
        if self._grid_barrier is None:
            self._grid_barrier = self.driver.alloc(4)
        self.driver.copy_h2d(self._grid_barrier, np.zeros(1, np.uint32), self.memory.stream)
        return self._grid_barrier

    def _stage(
        self, args: Sequence[Any], host: list[int], staged: list[tuple[np.ndarray, CudaBuffer]]
    ) -> dict[int, int]:
        """Copies the numpy arguments in, one device buffer per group sharing memory; their pointers."""
        pointers: dict[int, int] = {}
        for group in memory_groups(args, host):
            span = group.span(args)
            buffer = self.memory.allocate(span.nbytes)
            staged.append((span, buffer))
            if span.nbytes:
                self.driver.copy_h2d(buffer.pointer, span, self.memory.stream)
            for k, offset in zip(group.members, group.offsets):
                pointers[k] = buffer.pointer + offset
        return pointers


__all__ = ["CudaBackend", "probe"]

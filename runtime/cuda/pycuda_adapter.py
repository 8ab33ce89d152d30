"""The :class:`~ringkernel.runtime.cuda.driver.CudaDriver` over pycuda.

pycuda builds against a CUDA toolkit when it is installed and links the
driver library, so on a machine without the driver even ``import
pycuda.driver`` fails; that failure is told apart from a missing package.
It is kept for machines where it is already installed; ``cuda-bindings`` is
preferred.  Calls push device 0's primary context and pop it again, so the
thread's own context stack is left as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ringkernel.runtime.cuda.driver import (
    BindingMissing,
    CooperativeUnsupported,
    DriverUnavailable,
    driver_library_missing,
)

_NO_COOPERATIVE = (
    "pycuda cannot make a cooperative launch (rk.grid_sync): "
    "pip install 'ringkernel[nvidia]' and set RINGKERNEL_CUDA_DRIVER=cuda-bindings"
)

# The PTX we emit is ISA 7.0: CUDA 11.0 drivers and later load it.
PTX_DRIVER_VERSION = 11000


def _import() -> Any:
    try:
        import pycuda.driver as drv
    except ImportError as exc:
        if "libcuda" in str(exc) or "nvcuda" in str(exc):
            raise driver_library_missing(str(exc)) from None
        raise BindingMissing(f"pycuda is not installed ({exc}): pip install 'ringkernel[cuda]'") from None
    return drv


def load() -> PycudaDriver:
    """Imports pycuda and initialises the driver; raises ``DriverUnavailable`` saying why not."""
    drv = _import()
    try:
        drv.init()
    except Exception as exc:  # pycuda raises its own error types from cuInit
        if "NO_DEVICE" in str(exc).upper() or "no cuda-capable device" in str(exc).lower():
            raise DriverUnavailable("the NVIDIA driver is loaded but reports no CUDA device") from None
        raise DriverUnavailable(f"cuInit failed: {exc}") from None
    return PycudaDriver(drv)


class PycudaDriver:
    """Device 0's primary context through pycuda."""

    name = "pycuda"
    min_driver_version = PTX_DRIVER_VERSION

    def __init__(self, drv: Any) -> None:
        self.drv = drv
        self._context: Any = None
        self._allocations: dict[int, Any] = {}
        self._host: dict[int, Any] = {}

    @contextlib.contextmanager
    def _current(self) -> Iterator[None]:
        if self._context is None:
            self._context = self.drv.Device(0).retain_primary_context()
        self._context.push()
        try:
            yield
        finally:
            self.drv.Context.pop()

    def driver_version(self) -> int:
        return int(self.drv.get_driver_version())

    def device_count(self) -> int:
        return int(self.drv.Device.count())

    def compute_capability(self) -> tuple[int, int]:
        major, minor = self.drv.Device(0).compute_capability()
        return int(major), int(minor)

    def alloc(self, nbytes: int) -> int:
        with self._current():
            try:
                allocation = self.drv.mem_alloc(max(nbytes, 1))
            except self.drv.MemoryError as exc:
                raise MemoryError(f"mem_alloc of {nbytes} bytes: {exc}") from None
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, pointer: int) -> None:
        with self._current():
            self._allocations.pop(pointer).free()

    def copy_h2d(self, pointer: int, host: np.ndarray, stream: Any) -> None:
        with self._current():
            self.drv.memcpy_htod_async(pointer, host, stream)

    def copy_d2h(self, host: np.ndarray, pointer: int, stream: Any) -> None:
        with self._current():
            self.drv.memcpy_dtoh_async(host, pointer, stream)

    def copy_d2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        with self._current():
            self.drv.memcpy_dtod_async(dst, src, nbytes, stream)

    def load_module(self, ptx: str) -> Any:
        with self._current():
            return self.drv.module_from_buffer(ptx.encode())

    def function(self, module: Any, symbol: str) -> Any:
        return module.get_function(symbol)

    def launch(
        self,
        function: Any,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        args: Sequence[np.generic],
        stream: Any,
        *,
        shared_bytes: int = 0,
        cooperative: bool = False,
    ) -> None:
        if cooperative:
            raise CooperativeUnsupported(_NO_COOPERATIVE)
        with self._current():
            function(*args, block=block, grid=grid, stream=stream, shared=shared_bytes)

    def cooperative_grid_limit(self, function: Any, block_threads: int, shared_bytes: int) -> int:
        raise CooperativeUnsupported(_NO_COOPERATIVE)

    def new_stream(self) -> Any:
        with self._current():
            return self.drv.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def synchronize(self, stream: Any) -> None:
        with self._current():
            if isinstance(stream, int):  # a foreign stream pycuda cannot wrap: wait for the whole context
                self.drv.Context.synchronize()
            else:
                stream.synchronize()

    def stream_done(self, stream: Any) -> bool:
        with self._current():
            return bool(stream.is_done())

    def host_alloc_mapped(self, nbytes: int) -> tuple[np.ndarray, int]:
        flags = self.drv.host_alloc_flags.DEVICEMAP | self.drv.host_alloc_flags.PORTABLE
        with self._current():
            host = self.drv.pagelocked_zeros((nbytes,), np.uint8, mem_flags=flags)
            pointer = int(host.base.get_device_pointer())
        self._host[host.ctypes.data] = host
        return host, pointer

    def host_free(self, host: np.ndarray) -> None:
        with self._current():
            self._host.pop(host.ctypes.data).base.free()

"""The :class:`~ringkernel.runtime.cuda.driver.CudaDriver` over NVIDIA's ``cuda-bindings``.

``cuda-bindings`` installs from wheels on every platform and loads the driver
library (``libcuda.so.1``) only when ``cuInit`` runs, so it is the binding to
install: it imports on a machine without a GPU, and the runtime can then say
exactly what is missing.  Every call returns ``(CUresult, *values)``;
:func:`_ok` turns a failure into a ``RuntimeError`` naming the call.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np

from ringkernel.runtime.cuda.driver import (
    BindingMissing,
    CooperativeUnsupported,
    DriverUnavailable,
    driver_library_missing,
)

_DEVICEMAP_PORTABLE = 0x02 | 0x01  # CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE
_NON_BLOCKING = 0x1  # CU_STREAM_NON_BLOCKING: no implicit sync with the legacy stream


def _import() -> Any:
    try:
        from cuda.bindings import driver
    except ImportError as exc:
        raise BindingMissing(
            f"cuda-bindings is not installed ({exc}): pip install 'ringkernel[nvidia]'"
        ) from None
    return driver


def _library_missing(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(word in text for word in ("notfound", "libcuda", "nvcuda", "dlopen", "driver library"))


def load() -> CudaBindingsDriver:
    """Imports the binding and initialises the driver; raises ``DriverUnavailable`` saying why not."""
    cu = _import()
    try:
        (err,) = cu.cuInit(0)
    except Exception as exc:  # the binding loads libcuda here; its loader raises its own types
        if _library_missing(exc):
            raise driver_library_missing(str(exc)) from None
        raise DriverUnavailable(f"cuInit failed: {exc}") from None
    if err == cu.CUresult.CUDA_ERROR_NO_DEVICE:
        raise DriverUnavailable("the NVIDIA driver is loaded but reports no CUDA device")
    if err == cu.CUresult.CUDA_ERROR_INSUFFICIENT_DRIVER:
        raise DriverUnavailable(
            "the NVIDIA driver is too old for this cuda-bindings: update the driver "
            "or pip install 'cuda-bindings<13'"
        )
    if err != cu.CUresult.CUDA_SUCCESS:
        raise DriverUnavailable(f"cuInit failed: {_name(err)}")
    return CudaBindingsDriver(cu)


def _name(err: Any) -> str:
    return str(getattr(err, "name", err))


def _binding_major() -> int:
    from cuda import bindings

    return int(str(getattr(bindings, "__version__", "12")).split(".")[0])


class CudaBindingsDriver:
    """Device 0's primary context through ``cuda.bindings.driver``."""

    name = "cuda-bindings"

    def __init__(self, cu: Any) -> None:
        self.cu = cu
        # cuda-bindings N.x calls entry points of CUDA N; our PTX (ISA 7.0) needs CUDA 11.
        self.min_driver_version = max(_binding_major() * 1000, 11000)
        self._context: Any = None
        self._device: Any = None

    def _ok(self, what: str, result: Any) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self.cu.CUresult.CUDA_SUCCESS:
            raise RuntimeError(f"{what} failed: {_name(err)}")
        return values[0] if len(values) == 1 else tuple(values)

    def _current(self) -> None:
        """Makes the primary context of device 0 current on the calling thread."""
        if self._context is None:
            self._device = self._ok("cuDeviceGet", self.cu.cuDeviceGet(0))
            retained = self.cu.cuDevicePrimaryCtxRetain(self._device)
            self._context = self._ok("cuDevicePrimaryCtxRetain", retained)
        self._ok("cuCtxSetCurrent", self.cu.cuCtxSetCurrent(self._context))

    def driver_version(self) -> int:
        return int(self._ok("cuDriverGetVersion", self.cu.cuDriverGetVersion()))

    def device_count(self) -> int:
        return int(self._ok("cuDeviceGetCount", self.cu.cuDeviceGetCount()))

    def compute_capability(self) -> tuple[int, int]:
        self._current()
        attr = self.cu.CUdevice_attribute
        major = self._ok("cuDeviceGetAttribute", self.cu.cuDeviceGetAttribute(
            attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, self._device))
        minor = self._ok("cuDeviceGetAttribute", self.cu.cuDeviceGetAttribute(
            attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, self._device))
        return int(major), int(minor)

    def alloc(self, nbytes: int) -> int:
        self._current()
        err, pointer = self.cu.cuMemAlloc(max(nbytes, 1))
        if err == self.cu.CUresult.CUDA_ERROR_OUT_OF_MEMORY:
            raise MemoryError(f"cuMemAlloc of {nbytes} bytes: out of device memory")
        return int(self._ok("cuMemAlloc", (err, pointer)))

    def free(self, pointer: int) -> None:
        self._current()
        self._ok("cuMemFree", self.cu.cuMemFree(pointer))

    def copy_h2d(self, pointer: int, host: np.ndarray, stream: Any) -> None:
        self._current()
        result = self.cu.cuMemcpyHtoDAsync(pointer, host.ctypes.data, host.nbytes, stream)
        self._ok("cuMemcpyHtoDAsync", result)

    def copy_d2h(self, host: np.ndarray, pointer: int, stream: Any) -> None:
        self._current()
        result = self.cu.cuMemcpyDtoHAsync(host.ctypes.data, pointer, host.nbytes, stream)
        self._ok("cuMemcpyDtoHAsync", result)

    def copy_d2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        self._current()
        self._ok("cuMemcpyDtoDAsync", self.cu.cuMemcpyDtoDAsync(dst, src, nbytes, stream))

    def load_module(self, ptx: str) -> Any:
        self._current()
        return self._ok("cuModuleLoadData", self.cu.cuModuleLoadData(ptx.encode() + b"\0"))

    def function(self, module: Any, symbol: str) -> Any:
        return self._ok("cuModuleGetFunction", self.cu.cuModuleGetFunction(module, symbol.encode()))

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
        self._current()
        values = [np.array(a) for a in args]  # each argument in memory of its own, as the driver reads it
        pointers = np.array([v.ctypes.data for v in values], dtype=np.uint64)
        if cooperative:
            result = self.cu.cuLaunchCooperativeKernel(
                function, *grid, *block, shared_bytes, stream, pointers.ctypes.data)
        else:
            result = self.cu.cuLaunchKernel(
                function, *grid, *block, shared_bytes, stream, pointers.ctypes.data, 0)
        self._ok("cuLaunchCooperativeKernel" if cooperative else "cuLaunchKernel", result)

    def cooperative_grid_limit(self, function: Any, block_threads: int, shared_bytes: int) -> int:
        self._current()
        attr = self.cu.CUdevice_attribute
        supported = self._ok("cuDeviceGetAttribute", self.cu.cuDeviceGetAttribute(
            attr.CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH, self._device))
        if not supported:
            raise CooperativeUnsupported("this GPU does not support cooperative launches")
        per_sm = self._ok("cuOccupancyMaxActiveBlocksPerMultiprocessor",
                          self.cu.cuOccupancyMaxActiveBlocksPerMultiprocessor(
                              function, block_threads, shared_bytes))
        sms = self._ok("cuDeviceGetAttribute", self.cu.cuDeviceGetAttribute(
            attr.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, self._device))
        return int(per_sm) * int(sms)

    def new_stream(self) -> Any:
        self._current()
        return self._ok("cuStreamCreate", self.cu.cuStreamCreate(_NON_BLOCKING))

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def synchronize(self, stream: Any) -> None:
        self._current()
        self._ok("cuStreamSynchronize", self.cu.cuStreamSynchronize(stream))

    def stream_done(self, stream: Any) -> bool:
        self._current()
        (err,) = self.cu.cuStreamQuery(stream)
        if err == self.cu.CUresult.CUDA_ERROR_NOT_READY:
            return False
        self._ok("cuStreamQuery", (err,))
        return True

    def host_alloc_mapped(self, nbytes: int) -> tuple[np.ndarray, int]:
        self._current()
        host_pointer = int(self._ok("cuMemHostAlloc", self.cu.cuMemHostAlloc(nbytes, _DEVICEMAP_PORTABLE)))
        device_pointer = int(self._ok(
            "cuMemHostGetDevicePointer", self.cu.cuMemHostGetDevicePointer(host_pointer, 0)))
        host = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(host_pointer))
        return host, device_pointer

    def host_free(self, host: np.ndarray) -> None:
        self._current()
        self._ok("cuMemFreeHost", self.cu.cuMemFreeHost(host.ctypes.data))

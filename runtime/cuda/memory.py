"""Device-array memory of the cuda backend: pooled device allocations on one stream.

Every copy and every launch of the backend goes onto one stream, in order, so
a buffer returned to the pool can be handed to the next array at once: any
launch still reading it was queued before whatever the new owner queues.
Only giving memory back to the driver (:meth:`CudaMemory.trim`) waits for
the stream first.  Reads (``.numpy()``) wait for the stream; uploads from
pageable host memory return once the driver has staged the bytes.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ringkernel.runtime.cuda.driver import CudaDriver
from ringkernel.runtime.cuda.interop import ForeignArray, export_interface
from ringkernel.runtime.device_array import Pool, bucket


class CudaBuffer:
    """A device allocation: its pointer and size (``owned`` False: another library's memory)."""

    __slots__ = ("pointer", "size", "owned")

    def __init__(self, pointer: int, size: int, owned: bool = True) -> None:
        self.pointer = pointer
        self.size = size
        self.owned = owned

    def __repr__(self) -> str:
        return f"CudaBuffer(0x{self.pointer:x}, {self.size})"


class CudaMemory:
    """The cuda backend's device arrays: a pool of ``cuMemAlloc`` buffers and the backend's stream."""

    name = "cuda"

    def __init__(self, driver: CudaDriver) -> None:
        self.driver = driver
        self.stream = driver.new_stream()
        self._pool = Pool()
        self._lock = threading.RLock()  # a GC inside a locked section may release an array

    def itemsize(self, dtype: np.dtype) -> int:
        return int(dtype.itemsize)

    def allocate(self, nbytes: int) -> CudaBuffer:
        size = bucket(nbytes)
        with self._lock:
            buffer = self._pool.take(size)
            if buffer is None:
                pointer = self._pool.fresh(size, lambda: self.driver.alloc(size), self._free)
                buffer = CudaBuffer(pointer, size)
        return buffer

    def _free(self, buffer: CudaBuffer) -> None:
        self.driver.synchronize(self.stream)  # no queued launch may still use it
        self.driver.free(buffer.pointer)

    def release(self, buffer: CudaBuffer) -> None:
        with self._lock:
            self._pool.give(buffer.size, buffer)

    def forget(self, buffer: CudaBuffer) -> None:
        with self._lock:
            self._pool.forget(buffer.size)

    def trim(self) -> int:
        with self._lock:
            buffers = self._pool.trim()
            for buffer in buffers:
                self._free(buffer)
            return sum(buffer.size for buffer in buffers)

    def info(self) -> dict[str, int]:
        with self._lock:
            return self._pool.info()

    # --- copies ---

    def upload(self, buffer: CudaBuffer, offset: int, host: np.ndarray) -> None:
        self.driver.copy_h2d(buffer.pointer + offset, np.ascontiguousarray(host), self.stream)

    def download(
        self, buffer: CudaBuffer, offset: int, shape: tuple[int, ...], dtype: np.dtype
    ) -> np.ndarray:
        out = np.empty(shape, dtype)
        if out.nbytes:
            self.driver.copy_d2h(out, buffer.pointer + offset, self.stream)
        self.driver.synchronize(self.stream)
        return out

    def copy(self, dst: CudaBuffer, dst_offset: int, src: CudaBuffer, src_offset: int, nbytes: int) -> None:
        """Device to device, queued on the stream after every earlier launch."""
        self.driver.copy_d2d(dst.pointer + dst_offset, src.pointer + src_offset, nbytes, self.stream)

    def synchronize(self) -> None:
        self.driver.synchronize(self.stream)

    # --- __cuda_array_interface__ ---

    def cuda_array_interface(
        self, buffer: CudaBuffer, offset: int, shape: tuple[int, ...], dtype: np.dtype
    ) -> dict[str, Any]:
        """The v3 interface of the array at ``offset``; its stream is ours (queued launches may write it)."""
        return export_interface(buffer.pointer + offset, shape, dtype, self.driver.stream_handle(self.stream))

    def adopt(self, foreign: ForeignArray) -> CudaBuffer:
        """Another library's memory as a buffer (never pooled), after its producer's stream is done."""
        if foreign.stream is not None:
            self.driver.synchronize(foreign.stream)
        nbytes = int(np.prod(foreign.shape, dtype=np.int64)) * foreign.dtype.itemsize
        return CudaBuffer(foreign.pointer, nbytes, owned=False)

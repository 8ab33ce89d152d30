"""Device-array memory of the metal backend: pooled shared-storage MTLBuffers, and waits.

Shared storage is memory the CPU and the GPU both address, so an upload or
a read is a copy into or out of ``buffer.contents()``, made once every
command buffer that may use the buffer has completed.  Launches whose arrays
are all device arrays are committed and not waited for: the queue runs its
command buffers in commit order, and :meth:`MetalMemory.synchronize` (or a
read) waits for all of them and raises the first error one reported, as CUDA
reports asynchronous errors.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ringkernel.runtime.arguments import LaunchError
from ringkernel.runtime.device_array import Pool, bucket

# Command buffers left unwaited before a launch waits for them itself.
MAX_PENDING = 256


class MetalMemory:
    """Pooled ``MTLResourceStorageModeShared`` buffers for the metal backend's device arrays."""

    name = "metal"

    def __init__(self, metal: Any, device: Any) -> None:
        self.Metal = metal
        self.device = device
        self._pool = Pool()
        self._lock = threading.RLock()  # a GC inside a locked section may release an array
        self._pending: list[Any] = []

    def itemsize(self, dtype: np.dtype) -> int:
        return int(dtype.itemsize)

    def allocate(self, nbytes: int) -> Any:
        size = bucket(nbytes)
        top = int(self.device.maxBufferLength())
        if size > top:
            raise LaunchError(
                f"a device array of {nbytes} bytes does not fit: this Metal device allows at most "
                f"{top} bytes per buffer"
            )
        with self._lock:
            buffer = self._pool.take(size)
            if buffer is None:
                buffer = self._pool.fresh(size, lambda: self._create(size), lambda _buffer: None)
        return buffer

    def _create(self, size: int) -> Any:
        buffer = self.device.newBufferWithLength_options_(size, self.Metal.MTLResourceStorageModeShared)
        if buffer is None:  # Metal answers nil when it cannot allocate
            raise MemoryError(f"Metal could not allocate a buffer of {size} bytes")
        return buffer

    def release(self, buffer: Any) -> None:
        with self._lock:
            self._pool.give(int(buffer.length()), buffer)

    def forget(self, buffer: Any) -> None:
        with self._lock:
            self._pool.forget(int(buffer.length()))

    def trim(self) -> int:
        """Drops the pooled buffers (a command buffer still using one retains it until it completes)."""
        with self._lock:
            return sum(int(buffer.length()) for buffer in self._pool.trim())

    def info(self) -> dict[str, int]:
        with self._lock:
            return self._pool.info()

    # --- copies, through the shared contents ---

    @staticmethod
    def _bytes(buffer: Any) -> np.ndarray:
        size = int(buffer.length())
        return np.frombuffer(buffer.contents().as_buffer(size), dtype=np.uint8)

    def upload(self, buffer: Any, offset: int, host: np.ndarray) -> None:
        self.synchronize()  # no committed launch may still read or write it
        data = np.ascontiguousarray(host).reshape(-1).view(np.uint8)
        self._bytes(buffer)[offset : offset + data.nbytes] = data

    def download(self, buffer: Any, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        self.synchronize()
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        return self._bytes(buffer)[offset : offset + nbytes].view(dtype).reshape(shape).copy()

    # --- committed launches ---

    def committed(self, command: Any) -> None:
        """A launch's command buffer was committed; it is waited for by the next read or sync."""
        with self._lock:
            self._pending.append(command)
            if len(self._pending) >= MAX_PENDING:
                self.synchronize()

    def synchronize(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        failure = None
        for command in pending:
            command.waitUntilCompleted()
            if failure is None and command.status() == self.Metal.MTLCommandBufferStatusError:
                failure = command.error()
        if failure is not None:
            raise RuntimeError(f"a Metal kernel failed: {describe(failure)}")


def describe(error: Any) -> str:
    """An NSError's text (or whatever Metal handed back)."""
    if error is None:
        return "no details"
    try:
        return str(error.localizedDescription())
    except Exception:
        return str(error)

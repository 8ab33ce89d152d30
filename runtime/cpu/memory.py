"""Device-array memory of the cpu backend: host buffers the JIT reads and writes directly.

A launch hands the kernel a pointer into the buffer, so nothing is copied;
launches are synchronous, so there is never anything to wait for.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ringkernel.runtime.device_array import Pool, bucket


class CpuMemory:
    """Pooled host buffers (``uint8`` numpy arrays) for the cpu backend's device arrays."""

    name = "cpu"

    def __init__(self) -> None:
        self._pool = Pool()
        # re-entrant: a garbage collection inside a locked section may release an array
        self._lock = threading.RLock()

    def itemsize(self, dtype: np.dtype) -> int:
        return int(dtype.itemsize)

    def allocate(self, nbytes: int) -> Any:
        size = bucket(nbytes)
        with self._lock:
            buffer = self._pool.take(size)
            if buffer is None:
                buffer = self._pool.fresh(size, lambda: np.empty(size, np.uint8), lambda _buffer: None)
        return buffer

    def release(self, buffer: Any) -> None:
        with self._lock:
            self._pool.give(buffer.nbytes, buffer)

    def forget(self, buffer: Any) -> None:
        with self._lock:
            self._pool.forget(buffer.nbytes)

    @staticmethod
    def view(buffer: Any, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The elements at byte ``offset`` of ``buffer`` as an array (no copy)."""
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        return buffer[offset:offset + nbytes].view(dtype).reshape(shape)

    def upload(self, buffer: Any, offset: int, host: np.ndarray) -> None:
        np.copyto(self.view(buffer, offset, host.shape, host.dtype), host)

    def download(self, buffer: Any, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return self.view(buffer, offset, shape, dtype).copy()

    def synchronize(self) -> None:
        """Nothing to wait for: cpu launches return when they are done."""

    def info(self) -> dict[str, int]:
        with self._lock:
            return self._pool.info()

    def trim(self) -> int:
        """Drops the pooled buffers (numpy frees them when nothing else holds them)."""
        with self._lock:
            return sum(buffer.nbytes for buffer in self._pool.trim())

"""Device-array memory of the wgpu backend: pooled storage buffers and the open batch.

Launches whose array arguments are all device arrays are recorded into one
open command encoder (a *batch*) and return at once; the batch is submitted
as one command submission when something needs its results or the host's
view of memory: a read (``.numpy()``), an upload, ``rk.synchronize()``, a
launch with numpy arguments, or when it grows long.  The batch holds every
object its commands use, so no buffer returns to the pool while a recorded
command still reads it.  Errors a batched launch can only report after it ran
(the loop guard's "loop stopped early" on llvmpipe) are raised by the next
``.numpy()`` or ``rk.synchronize()`` (or, once 256 such launches wait to be
checked, by the launch that checks them), as CUDA reports asynchronous errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ringkernel.runtime.arguments import LaunchError
from ringkernel.runtime.device_array import Pool, bucket

# Passes recorded before a batch is submitted without being asked.
MAX_BATCH = 256


class WgpuMemory:
    """Storage buffers for the wgpu backend's device arrays, and the batch of pending launches."""

    name = "wgpu"

    def __init__(self, device: Any, max_buffer: int, adapter_name: str) -> None:
        self.device = device
        self.max_buffer = max_buffer
        self.adapter_name = adapter_name
        self._pool = Pool()
        self._lock = threading.RLock()
        self._encoder: Any = None
        self._passes = 0
        self._keep: list[Any] = []
        self._checks: list[Callable[[], Exception | None]] = []
        self._fence_buffer: Any = None

    def itemsize(self, dtype: np.dtype) -> int:
        return 4 if dtype == np.bool_ else int(dtype.itemsize)

    # --- the pool ---

    def allocate(self, nbytes: int) -> Any:
        import wgpu

        size = bucket(max(nbytes, 4))
        if size > self.max_buffer:
            raise LaunchError(
                f"a device array of {nbytes} bytes does not fit: the wgpu adapter "
                f"({self.adapter_name}) allows at most {self.max_buffer} bytes per buffer"
            )
        usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST
        with self._lock:
            buffer = self._pool.take(size)
            if buffer is None:
                buffer = self._pool.fresh(size, lambda: self._create(size, usage), self._destroy)
        return buffer

    def _create(self, size: int, usage: Any) -> Any:
        import wgpu

        try:
            return self.device.create_buffer(size=size, usage=usage)
        except wgpu.GPUOutOfMemoryError as exc:
            raise MemoryError(f"the wgpu adapter ({self.adapter_name}) is out of memory: {exc}") from None

    def _destroy(self, buffer: Any) -> None:
        self.flush()  # a recorded launch may still use it: submitted work keeps it alive in wgpu
        buffer.destroy()

    def release(self, buffer: Any) -> None:
        with self._lock:
            self._pool.give(buffer.size, buffer)

    def forget(self, buffer: Any) -> None:
        with self._lock:
            self._pool.forget(buffer.size)

    def info(self) -> dict[str, int]:
        with self._lock:
            return self._pool.info()

    def trim(self) -> int:
        """Destroys the pooled storage buffers once the batch that may use them is submitted.

        WebGPU frees a destroyed buffer only after the submitted work using it ran.
        """
        with self._lock:
            buffers = self._pool.trim()
            for buffer in buffers:
                self._destroy(buffer)
            return sum(int(buffer.size) for buffer in buffers)

    # --- copies ---

    def upload(self, buffer: Any, offset: int, host: np.ndarray) -> None:
        data = host.astype(np.uint32) if host.dtype == np.bool_ else host
        data = np.ascontiguousarray(data)
        if data.nbytes % 4:  # 8/16-bit elements: wgpu writes whole words, so keep the tail's bytes
            data = self._merged_tail(buffer, offset, data)
        with self._lock:
            self.flush()  # recorded launches come first on the queue
            self.device.queue.write_buffer(buffer, offset, data)

    def _merged_tail(self, buffer: Any, offset: int, data: np.ndarray) -> np.ndarray:
        """``data``'s bytes padded to whole words with what the buffer already holds after it."""
        size = (data.nbytes + 3) // 4 * 4
        raw = np.frombuffer(self._read(buffer, offset, size), np.uint8).copy()
        raw[: data.nbytes] = data.reshape(-1).view(np.uint8)
        return raw

    def _read(self, buffer: Any, offset: int, nbytes: int) -> bytes:
        with self._lock:
            self.flush()
            raw = self.device.queue.read_buffer(buffer, offset, nbytes)
            self._raise_deferred()
        return bytes(raw)

    def download(self, buffer: Any, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        count = int(np.prod(shape, dtype=np.int64))
        if count == 0:
            self.synchronize()
            return np.empty(shape, dtype)
        wire = np.dtype(np.uint32) if dtype == np.bool_ else dtype
        nbytes = (count * wire.itemsize + 3) // 4 * 4  # whole words (8/16-bit elements)
        raw = self._read(buffer, offset, nbytes)
        out = np.frombuffer(raw, dtype=wire, count=count).reshape(shape)
        return out != 0 if dtype == np.bool_ else out.copy()

    # --- the batch ---

    def encoder(self) -> Any:
        """The open command encoder launches record into (call with the batch lock held)."""
        if self._encoder is None:
            self._encoder = self.device.create_command_encoder()
        return self._encoder

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def recorded(self, keep: list[Any], check: Callable[[], Exception | None] | None) -> None:
        """A pass was recorded: hold ``keep`` until it ran; ``check`` reports its error later."""
        self._keep.append(keep)
        if check is not None:
            self._checks.append(check)
        self._passes += 1
        if self._passes >= MAX_BATCH:
            self.flush()
        if len(self._checks) >= MAX_BATCH:  # bound what waits to be checked: wait for it now
            self._raise_deferred()

    def flush(self) -> None:
        """Submits the batch (one command submission); it runs in queue order."""
        with self._lock:
            if self._encoder is None:
                return
            encoder, self._encoder, self._passes = self._encoder, None, 0
            self.device.queue.submit([encoder.finish()])
            self._keep.clear()  # wgpu keeps what a submitted command uses alive itself

    def synchronize(self) -> None:
        with self._lock:
            self.flush()
            # Reading a buffer waits for every submission before it (the
            # work-done callback of this wgpu-py is broken against its wgpu-native).
            self.device.queue.read_buffer(self._fence())
            self._raise_deferred()

    def _fence(self) -> Any:
        import wgpu

        if self._fence_buffer is None:
            self._fence_buffer = self.device.create_buffer(size=4, usage=wgpu.BufferUsage.COPY_SRC)
        return self._fence_buffer

    def _raise_deferred(self) -> None:
        """Reads the statuses of launches that ran (submitting the batch first) and raises the first error."""
        self.flush()
        checks, self._checks = self._checks, []
        for check in checks:
            error = check()
            if error is not None:
                raise error

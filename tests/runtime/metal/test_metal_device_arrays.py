"""Device arrays on the metal backend (issue 16), checked without a Mac.

A fake of the Metal objects the backend touches stands in for the device.
Its queue runs a committed command buffer only when something waits for it
(as a real GPU may still be busy), and its "kernel" is Python over the bound
buffers, so these tests see whether the runtime binds device arrays in
place, returns without waiting, and waits before every read.
"""

from __future__ import annotations

import gc
from types import SimpleNamespace

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.lowering.msl import msl_kernel_info
from ringkernel.runtime import module_digest
from ringkernel.runtime.metal.backend import MetalBackend


@rk.kernel
def metal_add(dst: Array[f32], src: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        dst[i] = dst[i] + src[i]


class _Buffer:
    def __init__(self, n: int) -> None:
        self.data = bytearray(n)

    def length(self) -> int:
        return len(self.data)

    def contents(self):
        return SimpleNamespace(as_buffer=lambda n: memoryview(self.data)[:n])


class _Command:
    def __init__(self, queue: _Queue) -> None:
        self.queue = queue
        self.bound: dict[int, tuple[_Buffer, int]] = {}
        self.scalars: dict[int, bytes] = {}
        self.ran = False
        self.failed = False

    # the encoder is the command itself
    def computeCommandEncoder(self) -> _Command:
        return self

    def setComputePipelineState_(self, pipeline) -> None:
        pass

    def setBuffer_offset_atIndex_(self, buffer, offset, index) -> None:
        self.bound[index] = (buffer, offset)

    def setBytes_length_atIndex_(self, data, length, index) -> None:
        self.scalars[index] = bytes(data)

    def dispatchThreadgroups_threadsPerThreadgroup_(self, grid, block) -> None:
        pass

    def endEncoding(self) -> None:
        pass

    def commit(self) -> None:
        self.queue.committed.append(self)

    def waitUntilCompleted(self) -> None:
        while self.queue.committed:  # the queue runs in commit order
            command = self.queue.committed.pop(0)
            self.queue.run(command)
            command.ran = True
            if command is self:
                return

    def status(self) -> int:
        return 5 if self.failed else 4

    def error(self) -> str:
        return "simulated GPU fault"


class _Queue:
    def __init__(self, run) -> None:
        self.run = run
        self.committed: list[_Command] = []
        self.made: list[_Command] = []

    def commandBuffer(self) -> _Command:
        command = _Command(self)
        self.made.append(command)
        return command


def _run_add(command: _Command) -> None:
    """``metal_add``, on the buffers the command bound."""
    dst_index, src_index, n_index = (p.index for p in INFO.params)
    n = int(np.frombuffer(command.scalars[n_index], np.int32)[0])
    dst_buf, dst_off = command.bound[dst_index]
    src_buf, src_off = command.bound[src_index]
    dst = np.frombuffer(dst_buf.data, np.float32, n, dst_off)
    src = np.frombuffer(src_buf.data, np.float32, n, src_off)
    for i in range(n):
        dst[i] = dst[i] + src[i]


INFO = msl_kernel_info(metal_add.ir)["metal_add"]


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> _Queue:
    from ringkernel import runtime

    fake_queue = _Queue(_run_add)
    metal = SimpleNamespace(
        MTLResourceStorageModeShared=0, MTLCommandBufferStatusError=5, MTLSizeMake=lambda *d: d
    )
    device = SimpleNamespace(
        newCommandQueue=lambda: fake_queue,
        newBufferWithLength_options_=lambda n, mode: _Buffer(n),
        newBufferWithBytes_length_options_=lambda data, n, mode: _bytes_buffer(data),
        maxBufferLength=lambda: 1 << 30,
        maxThreadsPerThreadgroup=lambda: SimpleNamespace(width=1024, height=1024, depth=64),
        maxThreadgroupMemoryLength=lambda: 32768,
    )
    backend = MetalBackend(metal=(metal, device))
    pipeline = SimpleNamespace(maxTotalThreadsPerThreadgroup=lambda: 1024)
    backend._pipelines[(module_digest(metal_add.ir), "metal_add")] = (pipeline, INFO)
    monkeypatch.setitem(runtime._instances, "metal", backend)
    return fake_queue


def _bytes_buffer(data: bytes) -> _Buffer:
    buffer = _Buffer(len(data))
    buffer.data[:] = data
    return buffer


def test_round_trip_views_and_pool(queue: _Queue) -> None:
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    a = rk.to_device(host, "metal")
    assert (a.backend, a.shape) == ("metal", (3, 4))
    assert np.array_equal(a.numpy(), host)
    assert np.array_equal(a[1:].numpy(), host[1:])
    del a
    gc.collect()
    assert rk.memory_info("metal")["pooled"] == 256
    rk.device_array(10, np.float32, "metal")
    assert rk.memory_info("metal")["allocations"] == 1


def test_launches_on_device_arrays_do_not_wait_and_reads_do(queue: _Queue) -> None:
    dst = rk.to_device(np.zeros(64, np.float32), "metal")
    src = rk.to_device(np.arange(64, dtype=np.float32), "metal")
    for _ in range(3):
        metal_add[1, 64](dst, src, 64)  # no backend named: where the arrays live
    assert len(queue.committed) == 3 and not any(c.ran for c in queue.made)  # returned at once
    command = queue.made[0]
    assert command.bound[INFO.params[0].index] == (dst.buffer, 0)  # bound in place, no copy
    assert np.array_equal(dst.numpy(), 3 * np.arange(64, dtype=np.float32))
    assert not queue.committed


def test_an_upload_waits_for_launches_that_use_the_buffer(queue: _Queue) -> None:
    dst = rk.to_device(np.zeros(8, np.float32), "metal")
    src = rk.to_device(np.ones(8, np.float32), "metal")
    metal_add[1, 8](dst, src, 8)
    rk.to_device(np.full(8, 9, np.float32), "metal")  # any upload first waits
    assert not queue.committed
    assert (dst.numpy() == 1).all()


def test_aliasing_views_and_numpy_mixing(queue: _Queue) -> None:
    d = rk.to_device(np.arange(8, dtype=np.float32), "metal")
    metal_add[1, 8](d, d, 8)  # the same array twice: one memory
    assert np.array_equal(d.numpy(), 2 * np.arange(8, dtype=np.float32))
    rows = rk.to_device(np.zeros((2, 4), np.float32), "metal")
    host = np.ones(4, np.float32)
    metal_add[1, 4, "metal"](rows[1], host, 4)  # a view at its offset, numpy src copied in
    assert queue.made[-1].bound[INFO.params[0].index] == (rows.buffer, 16)
    assert np.array_equal(rows.numpy(), [[0, 0, 0, 0], [1, 1, 1, 1]])
    out = np.zeros(4, np.float32)
    metal_add[1, 4, "metal"](out, rows[1], 4)  # numpy dst: waited for and copied back
    assert (out == 1).all()


def test_an_asynchronous_failure_is_raised_at_synchronize(queue: _Queue) -> None:
    dst = rk.to_device(np.zeros(8, np.float32), "metal")
    metal_add[1, 8](dst, dst, 8)
    queue.made[-1].failed = True
    with pytest.raises(RuntimeError, match="simulated GPU fault"):
        rk.synchronize("metal")
    rk.synchronize("metal")  # reported once


def test_trim_on_metal(queue: _Queue) -> None:
    a = rk.device_array(1000, np.float32, "metal")
    del a
    gc.collect()
    assert rk.trim_memory("metal") == 4096
    assert rk.memory_info("metal")["pooled"] == 0


def test_an_array_larger_than_a_metal_buffer_is_a_launch_error(queue: _Queue) -> None:
    with pytest.raises(rk.LaunchError, match="allows at most 1073741824 bytes per buffer"):
        rk.device_array(1 << 29, np.float32, "metal")
    assert rk.memory_info("metal")["in_use"] == 0


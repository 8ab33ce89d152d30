"""The Metal runtime's handling of aliased arguments, checked without a Mac.

A fake of the few Metal objects ``MetalBackend._run`` touches stands in for
the device; its "kernel" is Python that reads and writes the bound buffers at
their offsets, so these tests see exactly the buffers and offsets the runtime
binds and what it copies back.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.lowering.msl import msl_kernel_info
from ringkernel.runtime.arguments import LaunchError
from ringkernel.runtime.metal.backend import MetalBackend, array_spans


@rk.kernel
def add_one(dst: Array[f32], src: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        dst[i] = src[i] + 1.0


class _Buffer:
    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)

    def contents(self):
        return SimpleNamespace(as_buffer=lambda n: memoryview(self.data)[:n])


class _Encoder:
    def __init__(self, run) -> None:
        self.bound: dict[int, tuple[_Buffer, int]] = {}
        self.scalars: dict[int, bytes] = {}
        self.run = run

    def setComputePipelineState_(self, pipeline) -> None:
        pass

    def setBuffer_offset_atIndex_(self, buffer, offset, index) -> None:
        self.bound[index] = (buffer, offset)

    def setBytes_length_atIndex_(self, data, length, index) -> None:
        self.scalars[index] = bytes(data)

    def dispatchThreadgroups_threadsPerThreadgroup_(self, grid, block) -> None:
        self.run(self)

    def endEncoding(self) -> None:
        pass


def _fake_backend(run) -> MetalBackend:
    """A MetalBackend whose device runs ``run(encoder)`` as the kernel."""
    encoder = _Encoder(run)
    command = SimpleNamespace(
        computeCommandEncoder=lambda: encoder, commit=lambda: None,
        waitUntilCompleted=lambda: None, status=lambda: 0, error=lambda: None,
    )
    backend = MetalBackend.__new__(MetalBackend)
    backend.Metal = SimpleNamespace(
        MTLResourceStorageModeShared=0, MTLCommandBufferStatusError=5,
        MTLSizeMake=lambda *d: d,
    )
    backend.device = SimpleNamespace(
        newBufferWithBytes_length_options_=lambda data, n, opts: _Buffer(data),
        newBufferWithLength_options_=lambda n, opts: _Buffer(bytes(n)),
    )
    backend.queue = SimpleNamespace(commandBuffer=lambda: command)
    return backend


def _add_one_on(info):
    """The kernel add_one, executed thread by thread on the bound buffers."""
    dst_index, src_index, n_index = (p.index for p in info.params)

    def run(encoder: _Encoder) -> None:
        n = int(np.frombuffer(encoder.scalars[n_index], np.int32)[0])
        dst_buf, dst_off = encoder.bound[dst_index]
        src_buf, src_off = encoder.bound[src_index]
        dst = np.frombuffer(dst_buf.data, np.float32, n, dst_off)
        src = np.frombuffer(src_buf.data, np.float32, n, src_off)
        for i in range(n):
            dst[i] = src[i] + 1.0

    return run


INFO = msl_kernel_info(add_one.ir)["add_one"]


def _launch(*args) -> None:
    _fake_backend(_add_one_on(INFO))._run(None, INFO, (1, 1, 1), (64, 1, 1), list(args))


def test_one_array_for_both_parameters_is_one_buffer() -> None:
    x = np.arange(8, dtype=np.float32)
    _launch(x, x, np.int32(8))
    np.testing.assert_array_equal(x, np.arange(8, dtype=np.float32) + 1.0)


def test_overlapping_views_share_a_buffer_at_their_offsets() -> None:
    base = np.zeros(9, np.float32)
    _launch(base[1:], base[:-1], np.int32(8))
    # Sequential threads over shared memory: each reads what the previous wrote.
    np.testing.assert_array_equal(base, np.arange(9, dtype=np.float32))


def test_disjoint_arrays_keep_their_own_buffers() -> None:
    src = np.arange(8, dtype=np.float32)
    dst = np.zeros(8, np.float32)
    _launch(dst, src, np.int32(8))
    np.testing.assert_array_equal(dst, src + 1.0)
    np.testing.assert_array_equal(src, np.arange(8, dtype=np.float32))


def test_array_spans_give_offsets_in_bytes() -> None:
    base = np.zeros(16, np.float32)
    spans = array_spans(INFO, [base[4:12], base[2:10], np.int32(8)])
    assert len(spans) == 1
    span, members = spans[0]
    assert span.nbytes == 10 * 4
    by_index = dict(members)
    assert by_index[INFO.params[0].index] == 8
    assert by_index[INFO.params[1].index] == 0


def test_misaligned_overlap_is_a_launch_error() -> None:
    raw = np.zeros(40, np.uint8)
    a = raw[0:32].view(np.float32)
    b = raw[2:34].view(np.float32)
    with pytest.raises(LaunchError, match="not a multiple of its element size"):
        array_spans(INFO, [a, b, np.int32(8)])

"""The cuda-bindings adapter against a stand-in for ``cuda.bindings.driver``.

No libcuda is here, so the calls the adapter makes (their order of
arguments, the kernel-parameter array, mapped host memory, error mapping)
are checked against a fake module that answers like the binding:
``(CUresult, *values)`` tuples.
"""

from __future__ import annotations

import ctypes
import enum
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ringkernel.runtime.cuda import bindings_adapter


class _Result(enum.IntEnum):
    CUDA_SUCCESS = 0
    CUDA_ERROR_OUT_OF_MEMORY = 2
    CUDA_ERROR_INVALID_VALUE = 1
    CUDA_ERROR_INSUFFICIENT_DRIVER = 35
    CUDA_ERROR_NO_DEVICE = 100
    CUDA_ERROR_NOT_READY = 600


OK = _Result.CUDA_SUCCESS


class _FakeCu:
    """Records calls; keeps mapped host memory alive in ctypes buffers."""

    CUresult = _Result
    CUdevice_attribute = SimpleNamespace(
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR="major",
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR="minor",
    )

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.hosts: dict[int, Any] = {}
        self.launched: list[Any] = []
        self.ready = True
        self.free_bytes = 1 << 20

    def __getattr__(self, name: str) -> Any:  # any other call: recorded, succeeds
        def call(*args: Any) -> tuple[Any, ...]:
            self.calls.append((name, *args))
            return (OK,)
        return call

    def cuInit(self, flags: int) -> tuple[Any, ...]:
        return (OK,)

    def cuDeviceGet(self, ordinal: int) -> tuple[Any, ...]:
        return (OK, "dev0")

    def cuDevicePrimaryCtxRetain(self, dev: Any) -> tuple[Any, ...]:
        self.calls.append(("retain", dev))
        return (OK, "ctx0")

    def cuDeviceGetAttribute(self, attr: str, dev: Any) -> tuple[Any, ...]:
        return (OK, {"major": 8, "minor": 6}[attr])

    def cuMemAlloc(self, nbytes: int) -> tuple[Any, ...]:
        if nbytes > self.free_bytes:
            return (_Result.CUDA_ERROR_OUT_OF_MEMORY, 0)
        return (OK, 0xD000)

    def cuModuleGetFunction(self, module: Any, name: bytes) -> tuple[Any, ...]:
        return (OK, (module, name))

    def cuModuleLoadData(self, image: bytes) -> tuple[Any, ...]:
        return (OK, image)

    def cuLaunchKernel(self, f, gx, gy, gz, bx, by, bz, shared, stream, params, extra) -> tuple[Any, ...]:
        self.launched.append((f, (gx, gy, gz), (bx, by, bz), shared, stream, params))
        return (OK,)

    def cuStreamQuery(self, stream: Any) -> tuple[Any, ...]:
        return (OK,) if self.ready else (_Result.CUDA_ERROR_NOT_READY,)

    def cuMemHostAlloc(self, nbytes: int, flags: int) -> tuple[Any, ...]:
        buffer = (ctypes.c_uint8 * nbytes)()
        self.hosts[ctypes.addressof(buffer)] = buffer
        self.calls.append(("cuMemHostAlloc", nbytes, flags))
        return (OK, ctypes.addressof(buffer))

    def cuMemHostGetDevicePointer(self, host: int, flags: int) -> tuple[Any, ...]:
        return (OK, host + 0x1000_0000)

    def cuStreamSynchronize(self, stream: Any) -> tuple[Any, ...]:
        self.calls.append(("cuStreamSynchronize", stream))
        return (_Result.CUDA_ERROR_INVALID_VALUE,) if stream == "bad" else (OK,)


@pytest.fixture
def cu(monkeypatch: pytest.MonkeyPatch) -> _FakeCu:
    fake = _FakeCu()
    monkeypatch.setattr(bindings_adapter, "_import", lambda: fake)
    return fake


def test_primary_context_and_compute_capability(cu: _FakeCu) -> None:
    driver = bindings_adapter.load()
    assert driver.compute_capability() == (8, 6)
    assert ("retain", "dev0") in cu.calls and ("cuCtxSetCurrent", "ctx0") in cu.calls


def test_copies_pass_device_pointer_host_address_size_and_stream(cu: _FakeCu) -> None:
    driver = bindings_adapter.load()
    host = np.arange(4, dtype=np.float32)
    driver.copy_h2d(0xD010, host, "s")
    driver.copy_d2h(host, 0xD020, "s")
    driver.copy_d2d(0xD030, 0xD040, 12, "s")
    copies = [c for c in cu.calls if c[0].startswith("cuMemcpy")]
    assert copies == [
        ("cuMemcpyHtoDAsync", 0xD010, host.ctypes.data, 16, "s"),
        ("cuMemcpyDtoHAsync", host.ctypes.data, 0xD020, 16, "s"),
        ("cuMemcpyDtoDAsync", 0xD030, 0xD040, 12, "s"),
    ]


def test_kernel_parameters_are_an_array_of_pointers_to_each_value(cu: _FakeCu) -> None:
    driver = bindings_adapter.load()
    seen = []
    real = cu.cuLaunchKernel

    def launch(f, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        pointers = (ctypes.c_uint64 * 3).from_address(params)
        seen.append((
            ctypes.c_uint64.from_address(pointers[0]).value,
            ctypes.c_float.from_address(pointers[1]).value,
            ctypes.c_int32.from_address(pointers[2]).value,
        ))
        return real(f, gx, gy, gz, bx, by, bz, shared, stream, params, extra)

    cu.cuLaunchKernel = launch  # type: ignore[method-assign]
    driver.launch("fn", (4, 1, 1), (256, 1, 1), [np.uint64(0xD000), np.float32(2.5), np.int32(-7)], "s")
    assert seen == [(0xD000, 2.5, -7)]
    assert cu.launched[0][:5] == ("fn", (4, 1, 1), (256, 1, 1), 0, "s")


def test_out_of_memory_is_a_memory_error_and_failures_name_the_call(cu: _FakeCu) -> None:
    driver = bindings_adapter.load()
    assert driver.alloc(100) == 0xD000
    with pytest.raises(MemoryError, match="out of device memory"):
        driver.alloc(1 << 30)
    with pytest.raises(RuntimeError, match="cuStreamSynchronize failed: CUDA_ERROR_INVALID_VALUE"):
        driver.synchronize("bad")


def test_stream_query_and_mapped_host_memory(cu: _FakeCu) -> None:
    driver = bindings_adapter.load()
    assert driver.stream_done("s")
    cu.ready = False
    assert not driver.stream_done("s")
    host, device_pointer = driver.host_alloc_mapped(64)
    assert host.nbytes == 64 and device_pointer == host.ctypes.data + 0x1000_0000
    host[:] = 7
    assert bytes(cu.hosts[host.ctypes.data])[:4] == b"\x07" * 4  # the array is the mapped memory
    assert ("cuMemHostAlloc", 64, 0x03) in cu.calls  # DEVICEMAP | PORTABLE

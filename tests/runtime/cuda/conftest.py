"""An in-memory CUDA driver (the runtime's ``CudaDriver`` interface) that records its calls.

No GPU is here, so the cuda runtime's own logic (pooling, staging, aliasing,
``__cuda_array_interface__``, stream waits) runs against this fake: device
memory is numpy bytes at made-up addresses, and a launch calls the Python
stand-in a test registers for the kernel's symbol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

BASE = 0x7F00_0000_0000


class FakeDriver:
    name = "fake"
    min_driver_version = 11000

    def __init__(self, capacity: int = 1 << 30, version: int = 13000, devices: int = 1) -> None:
        self.capacity = capacity
        self.version = version
        self.devices = devices
        self.blocks: dict[int, np.ndarray] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.kernels: dict[str, Callable[..., None]] = {}
        self._next = BASE
        self._streams = 0

    # --- memory a test can look at ---

    def _find(self, pointer: int, nbytes: int) -> tuple[np.ndarray, int]:
        for start, block in self.blocks.items():
            if start <= pointer and pointer + nbytes <= start + block.nbytes:
                return block, pointer - start
        raise AssertionError(f"0x{pointer:x}+{nbytes} is not device memory")

    def read(self, pointer: int, count: int, dtype: Any) -> np.ndarray:
        dt = np.dtype(dtype)
        block, at = self._find(pointer, count * dt.itemsize)
        return block[at : at + count * dt.itemsize].view(dt)

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    # --- the CudaDriver interface ---

    def driver_version(self) -> int:
        return self.version

    def device_count(self) -> int:
        return self.devices

    def compute_capability(self) -> tuple[int, int]:
        return (8, 0)

    def alloc(self, nbytes: int) -> int:
        if sum(b.nbytes for b in self.blocks.values()) + nbytes > self.capacity:
            raise MemoryError(f"fake device out of memory ({nbytes} bytes)")
        pointer, self._next = self._next, self._next + ((nbytes + 0xFFFF) & ~0xFFFF)
        self.blocks[pointer] = np.zeros(nbytes, np.uint8)
        self.calls.append(("alloc", nbytes))
        return pointer

    def free(self, pointer: int) -> None:
        del self.blocks[pointer]
        self.calls.append(("free", pointer))

    def copy_h2d(self, pointer: int, host: np.ndarray, stream: Any) -> None:
        block, at = self._find(pointer, host.nbytes)
        block[at : at + host.nbytes] = host.reshape(-1).view(np.uint8)
        self.calls.append(("h2d", pointer, host.nbytes))

    def copy_d2h(self, host: np.ndarray, pointer: int, stream: Any) -> None:
        block, at = self._find(pointer, host.nbytes)
        host.reshape(-1).view(np.uint8)[:] = block[at : at + host.nbytes]
        self.calls.append(("d2h", pointer, host.nbytes))

    def copy_d2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        a, i = self._find(dst, nbytes)
        b, j = self._find(src, nbytes)
        a[i : i + nbytes] = b[j : j + nbytes]
        self.calls.append(("d2d", dst, src, nbytes))

    def load_module(self, ptx: str) -> Any:
        self.calls.append(("load_module",))
        return ptx

    def function(self, module: Any, symbol: str) -> Any:
        assert f".entry {symbol}(" in module
        return symbol

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
        self.calls.append(("launch", function, grid, block, tuple(args)))
        run = self.kernels.get(function)
        if run is not None:
            run(self, *args)

    def new_stream(self) -> Any:
        self._streams += 1
        return 100 + self._streams

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def synchronize(self, stream: Any) -> None:
        self.calls.append(("sync", stream))

    def stream_done(self, stream: Any) -> bool:
        return True

    def host_alloc_mapped(self, nbytes: int) -> tuple[np.ndarray, int]:
        pointer = self.alloc(nbytes)
        return self.blocks[pointer], pointer

    def host_free(self, host: np.ndarray) -> None:
        for pointer, block in list(self.blocks.items()):
            if block is host:
                self.free(pointer)


class FakeCupyArray:
    """Another library's device array: memory of the fake driver, exposed by the interface only."""

    def __init__(self, driver: FakeDriver, values: np.ndarray, **overrides: Any) -> None:
        self.pointer = driver.alloc(max(values.nbytes, 1))
        driver.blocks[self.pointer][: values.nbytes] = values.reshape(-1).view(np.uint8)
        self.desc = {
            "shape": values.shape,
            "typestr": values.dtype.str,
            "data": (self.pointer, False),
            "strides": None,
            "version": 3,
            "stream": 7,
        }
        self.desc.update(overrides)

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return self.desc


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDriver]:
    """The cuda backend instance, made over a :class:`FakeDriver`, as ``get_backend('cuda')`` returns it."""
    from ringkernel import runtime
    from ringkernel.runtime.cuda import CudaBackend

    driver = FakeDriver()
    monkeypatch.setitem(runtime._instances, "cuda", CudaBackend(driver=driver))
    yield driver


@pytest.fixture
def fake_cupy() -> type[FakeCupyArray]:
    """The class of a foreign device array (exposes ``__cuda_array_interface__`` only)."""
    return FakeCupyArray


@pytest.fixture
def fake_driver_class() -> type[FakeDriver]:
    return FakeDriver

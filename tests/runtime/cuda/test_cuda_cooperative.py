"""Cooperative launches (rk.grid_sync) on the cuda backend, over the in-memory driver.

No GPU is here: the fake driver records the launch, and a Python stand-in
for the kernel checks what it is handed (the zeroed grid-barrier word after
the user's arguments).  A real GPU runs the corpus' grid-sync cases.
"""

from __future__ import annotations

from typing import Any

import kernel_corpus
import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.runtime.arguments import LaunchError
from ringkernel.runtime.cuda import CudaBackend
from ringkernel.runtime.cuda.driver import CooperativeUnsupported


@rk.kernel
def synced(x: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        x[i] += 1.0
    rk.grid_sync()
    if i < n:
        x[i] *= 2.0


@rk.kernel
def plain(x: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        x[i] += 1.0


def _backend(monkeypatch: pytest.MonkeyPatch, fake_driver_class: type, limit: int | None) -> Any:
    """A cuda backend over a fake driver whose GPU fits ``limit`` co-resident blocks
    (None: the adapter cannot launch cooperatively, as pycuda)."""
    from ringkernel import runtime

    class CooperativeFake(fake_driver_class):  # type: ignore[misc, valid-type]
        asked: list[tuple[Any, int, int]] = []

        def cooperative_grid_limit(self, function: Any, block_threads: int, shared_bytes: int) -> int:
            self.asked.append((function, block_threads, shared_bytes))
            if limit is None:
                raise CooperativeUnsupported("pycuda cannot make a cooperative launch (rk.grid_sync)")
            return limit

        def launch(self, function: Any, grid: Any, block: Any, args: Any, stream: Any, *,
                   shared_bytes: int = 0, cooperative: bool = False) -> None:
            self.calls.append(("launch", function, grid, block, tuple(args), cooperative))

    driver = CooperativeFake()
    monkeypatch.setitem(runtime._instances, "cuda", CudaBackend(driver=driver))
    return driver


def test_a_grid_sync_kernel_launches_cooperatively_with_a_zeroed_word(
    monkeypatch: pytest.MonkeyPatch, fake_driver_class: type
) -> None:
    driver = _backend(monkeypatch, fake_driver_class, limit=8)
    x = np.zeros(100, np.float32)
    synced.launch(4, 32, [x, 100], backend="cuda")
    launch = next(c for c in driver.calls if c[0] == "launch")
    args, cooperative = launch[4], launch[5]
    assert cooperative is True
    assert len(args) == 3  # x, n, then the grid barrier's word
    word = int(args[2])
    assert driver.read(word, 1, np.uint32)[0] == 0
    assert driver.asked and driver.asked[-1][1:] == (32, 0)
    h2d_of_word = [c for c in driver.calls if c[0] == "h2d" and c[1] == word]
    assert h2d_of_word, "the word is zeroed before every cooperative launch"
    driver.blocks[word][:] = 0xFF  # a kernel aborted half-way left it counted
    synced.launch(4, 32, [x, 100], backend="cuda")
    assert driver.read(word, 1, np.uint32)[0] == 0


def test_a_kernel_without_grid_sync_is_a_plain_launch(
    monkeypatch: pytest.MonkeyPatch, fake_driver_class: type
) -> None:
    driver = _backend(monkeypatch, fake_driver_class, limit=8)
    plain.launch(4, 32, [np.zeros(100, np.float32), 100], backend="cuda")
    launch = next(c for c in driver.calls if c[0] == "launch")
    assert launch[5] is False and len(launch[4]) == 2
    assert not driver.asked


def test_a_grid_larger_than_the_gpu_holds_at_once_is_refused_naming_the_limit(
    monkeypatch: pytest.MonkeyPatch, fake_driver_class: type
) -> None:
    driver = _backend(monkeypatch, fake_driver_class, limit=8)
    with pytest.raises(LaunchError, match=r"9 blocks, but at most 8 blocks of 32 threads"):
        synced.launch(9, 32, [np.zeros(100, np.float32), 100], backend="cuda")
    assert not [c for c in driver.calls if c[0] == "launch"]


def test_an_adapter_without_cooperative_launches_is_a_launch_error(
    monkeypatch: pytest.MonkeyPatch, fake_driver_class: type
) -> None:
    _backend(monkeypatch, fake_driver_class, limit=None)
    with pytest.raises(LaunchError, match="grid_sync.*pycuda cannot"):
        synced.launch(2, 32, [np.zeros(64, np.float32), 64], backend="cuda")


@pytest.mark.parametrize("case", kernel_corpus.GRID_SYNC_CASES, ids=lambda c: c.name)
def test_grid_sync_corpus_on_a_real_gpu(case: kernel_corpus.KernelCase) -> None:
    if not CudaBackend.available():
        pytest.skip(f"cuda backend unavailable: {CudaBackend.unavailable_reason()}")
    kernel_corpus.run_case(case, "cuda")


def test_bindings_adapter_limit_is_occupancy_times_sms_and_launch_is_cooperative(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import enum
    from types import SimpleNamespace

    from ringkernel.runtime.cuda import bindings_adapter

    class Result(enum.IntEnum):
        CUDA_SUCCESS = 0
        CUDA_ERROR_NO_DEVICE = 100
        CUDA_ERROR_INSUFFICIENT_DRIVER = 35

    ok = Result.CUDA_SUCCESS

    class Cu:
        """Answers like ``cuda.bindings.driver``: ``(CUresult, *values)``."""

        CUresult = Result
        CUdevice_attribute = SimpleNamespace(
            CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH="coop", CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT="sms")

        def __init__(self) -> None:
            self.coop, self.calls = 1, []

        def cuInit(self, flags: int) -> tuple[Any, ...]:
            return (ok,)

        def cuDeviceGet(self, ordinal: int) -> tuple[Any, ...]:
            return (ok, "dev0")

        def cuDevicePrimaryCtxRetain(self, dev: Any) -> tuple[Any, ...]:
            return (ok, "ctx0")

        def cuCtxSetCurrent(self, ctx: Any) -> tuple[Any, ...]:
            return (ok,)

        def cuDeviceGetAttribute(self, attr: str, dev: Any) -> tuple[Any, ...]:
            return (ok, {"coop": self.coop, "sms": 46}[attr])

        def cuOccupancyMaxActiveBlocksPerMultiprocessor(self, f: Any, threads: int, shared: int) -> tuple:
            self.calls.append(("occupancy", f, threads, shared))
            return (ok, 2048 // threads)

        def cuLaunchCooperativeKernel(self, f, gx, gy, gz, bx, by, bz, shared, stream, params) -> tuple:
            self.calls.append(("cooperative", (gx, gy, gz), (bx, by, bz), shared, stream))
            return (ok,)

    fake = Cu()
    monkeypatch.setattr(bindings_adapter, "_import", lambda: fake)
    driver = bindings_adapter.load()
    assert driver.cooperative_grid_limit("f", 256, 0) == 8 * 46
    assert ("occupancy", "f", 256, 0) in fake.calls
    driver.launch("f", (4, 1, 1), (256, 1, 1), [np.uint64(1)], "s", cooperative=True)
    assert fake.calls[-1] == ("cooperative", (4, 1, 1), (256, 1, 1), 0, "s")
    fake.coop = 0
    with pytest.raises(CooperativeUnsupported, match="does not support cooperative"):
        driver.cooperative_grid_limit("f", 256, 0)

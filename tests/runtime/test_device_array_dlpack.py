"""DLPack both ways on the cpu backend: zero copies, one memory."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32


@rk.kernel
def dl_scale(x: Array[f32], a: f32, n: i32):
    i = rk.global_id(0)
    if i < n:
        x[i] = a * x[i]


def test_from_dlpack_shares_numpy_memory_both_ways() -> None:
    host = np.arange(8, dtype=np.float32)
    dev = rk.from_dlpack(host)
    assert (dev.backend, dev.shape, dev.dtype) == ("cpu", (8,), np.dtype(np.float32))
    dl_scale[1, 8, "cpu"](dev, 2.0, 8)
    assert np.array_equal(host, np.arange(8) * 2)  # the kernel wrote the numpy array's memory
    host[0] = 100
    assert dev.numpy()[0] == 100


def test_numpy_from_a_device_array_shares_its_memory() -> None:
    dev = rk.to_device(np.zeros((2, 3), np.int32), "cpu")
    view = np.from_dlpack(dev)
    assert view.shape == (2, 3) and view.dtype == np.int32
    view[1, 2] = 7
    assert dev.numpy()[1, 2] == 7
    dl = rk.to_device(np.ones(4, np.float32), "cpu")
    shared = np.from_dlpack(dl)
    dl_scale[1, 4, "cpu"](dl, 3.0, 4)
    assert (shared == 3).all()  # a kernel write is seen through numpy


def test_exported_memory_outlives_the_device_array_and_leaves_the_pool() -> None:
    dev = rk.to_device(np.full(1000, 5, np.float32), "cpu")
    before = rk.memory_info("cpu")
    view = np.from_dlpack(dev)
    del dev
    gc.collect()
    again = rk.device_array(1000, np.float32, "cpu")
    again_view = np.from_dlpack(again)
    again_view[:] = 0
    assert (view == 5).all()  # not handed out again while numpy holds it
    assert rk.memory_info("cpu")["in_use"] <= before["in_use"]


def test_dlpack_device_and_foreign_devices() -> None:
    dev = rk.to_device(np.zeros(3, np.float32), "cpu")
    assert dev.__dlpack_device__() == (1, 0)

    class OnGpu:
        def __dlpack_device__(self) -> tuple[int, int]:
            return (2, 0)  # kDLCUDA

    with pytest.raises(BufferError, match="host \\(CPU\\) memory"):
        rk.from_dlpack(OnGpu())


def test_non_contiguous_and_unsupported_dtypes_are_refused() -> None:
    with pytest.raises(BufferError, match="C-contiguous"):
        rk.from_dlpack(np.zeros((4, 4), np.float32)[:, 1])
    with pytest.raises(TypeError, match="device arrays hold"):
        rk.from_dlpack(np.zeros(4, np.complex64))
    assert rk.from_dlpack(np.zeros(4, np.int8)).dtype == np.int8  # a kernel type since issue 14


def test_torch_cpu_tensors_share_memory() -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed here")
    t = torch.arange(6, dtype=torch.float32)
    dev = rk.from_dlpack(t)
    dl_scale[1, 8, "cpu"](dev, 2.0, 6)
    assert t.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    back = torch.from_dlpack(dev)
    back[0] = 9
    assert dev.numpy()[0] == 9


def test_dlpack_export_on_wgpu_is_a_clear_error() -> None:
    from ringkernel.runtime import backend_status

    if not backend_status("wgpu")[0]:
        pytest.skip("wgpu is not available")
    dev = rk.to_device(np.zeros(3, np.float32), "wgpu")
    with pytest.raises(BufferError, match="cpu backend only"):
        np.from_dlpack(dev)


def test_torch_sees_kernel_writes_after_the_device_array_is_gone() -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed here")
    dev = rk.to_device(np.zeros(5, np.float32), "cpu")
    t = torch.from_dlpack(dev)
    dl_scale[1, 8, "cpu"](rk.from_dlpack(t), 2.0, 5)
    t += 1
    dl_scale[1, 8, "cpu"](dev, 4.0, 5)
    del dev
    gc.collect()
    rk.device_array(5, np.float32, "cpu")  # the exported memory is not handed out again
    assert t.tolist() == [4.0] * 5
    with pytest.raises(BufferError, match="C-contiguous"):
        rk.from_dlpack(torch.zeros(4, 4)[:, 1])

"""``__cuda_array_interface__`` v3 both ways on the cuda backend, over the in-memory driver.

Export is checked field by field; import with a fake foreign array (the
interface only, as CuPy, PyTorch and Numba expose it) living in the fake
driver's memory: no copy, the producer's stream waited for, the object kept
alive, and every malformed interface a clear error.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.runtime import get_backend


@rk.kernel
def cuda_add(x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = x[i] + y[i]


def _python_add(fake, x, y, n) -> None:
    """What ``cuda_add`` does, on the fake device's memory."""
    xs, ys = fake.read(int(x), int(n), np.float32), fake.read(int(y), int(n), np.float32)
    ys += xs


@pytest.fixture
def add(fake_cuda):
    fake_cuda.kernels["cuda_add"] = _python_add
    return fake_cuda


def test_export_cuda_array_interface(fake_cuda) -> None:
    a = rk.to_device(np.zeros((3, 4), np.float32), "cuda")
    desc = a.__cuda_array_interface__
    assert desc == {
        "shape": (3, 4),
        "typestr": "<f4",
        "data": (a.buffer.pointer, False),
        "strides": None,
        "version": 3,
        "stream": get_backend("cuda").memory.stream,
    }
    assert desc["stream"] not in (None, 0)
    assert a[1].__cuda_array_interface__["data"][0] == a.buffer.pointer + 16
    assert not hasattr(rk.to_device(np.zeros(3, np.float32), "cpu"), "__cuda_array_interface__")


def test_import_shares_memory_and_waits_for_the_producer_stream(add, fake_cupy) -> None:
    values = np.arange(16, dtype=np.float32)
    foreign = fake_cupy(add, values)
    add.calls.clear()
    a = rk.from_cuda_array_interface(foreign)
    assert add.names() == ["sync"] and add.calls[0][1] == 7  # the producer's stream, no copy
    assert a.buffer.pointer == foreign.pointer and a.backend == "cuda"
    add.read(foreign.pointer, 16, np.float32)[:] = 5  # the other library writes
    assert (a.numpy() == 5).all()
    del foreign
    gc.collect()
    assert (a.numpy() == 5).all()  # the device array keeps the foreign object alive
    assert rk.memory_info("cuda")["in_use"] == 0  # foreign memory is not ours to pool


def test_foreign_arrays_are_kernel_arguments(add, fake_cupy) -> None:
    x = fake_cupy(add, np.ones(32, np.float32))
    y = fake_cupy(add, np.full(32, 2, np.float32))
    add.calls.clear()
    cuda_add[1, 32](x, y, 32)
    launch = next(c for c in add.calls if c[0] == "launch")
    assert launch[4][:2] == (x.pointer, y.pointer)
    assert "h2d" not in add.names() and "d2h" not in add.names()
    assert (add.read(y.pointer, 32, np.float32) == 3).all()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"strides": (8,)}, "C-contiguous"),
        ({"data": (None, True)}, "read-only"),
        ({"typestr": "<c8"}, "holds complex64"),  # float16 is a kernel type since issue 14
        ({"mask": object()}, "masked"),
        ({"stream": 0}, "stream 0"),
        ({"typestr": "not a dtype"}, "is not a dtype"),
    ],
)
def test_bad_foreign_arrays_are_clear_errors(fake_cuda, fake_cupy, override, message) -> None:
    foreign = fake_cupy(fake_cuda, np.zeros(8, np.float32), **override)
    with pytest.raises(BufferError, match=message):
        rk.from_cuda_array_interface(foreign)
    with pytest.raises(rk.LaunchError, match=f"argument 'x' of kernel 'cuda_add'.*{message}"):
        cuda_add[1, 8, "cuda"](foreign, np.zeros(8, np.float32), 8)


def test_size_one_dimensions_may_have_any_stride(fake_cuda, fake_cupy) -> None:
    foreign = fake_cupy(fake_cuda, np.zeros((1, 8), np.float32), strides=(4, 4))
    assert rk.from_cuda_array_interface(foreign).shape == (1, 8)


def test_from_dlpack_of_cuda_memory_points_at_the_interface() -> None:
    class CudaTensor:
        __cuda_array_interface__: dict = {}

        def __dlpack_device__(self):
            return (2, 0)

    with pytest.raises(BufferError, match="rk.from_cuda_array_interface"):
        rk.from_dlpack(CudaTensor())


def test_to_device_copies_cuda_memory_on_the_device(fake_cuda, fake_cupy) -> None:
    foreign = fake_cupy(fake_cuda, np.arange(6, dtype=np.float32))
    fake_cuda.calls.clear()
    copy = rk.to_device(foreign, "cuda")
    assert "d2d" in fake_cuda.names() and "h2d" not in fake_cuda.names()
    assert copy.buffer.pointer != foreign.pointer  # a copy, not a view
    fake_cuda.read(foreign.pointer, 6, np.float32)[:] = 0
    assert np.array_equal(copy.numpy(), np.arange(6, dtype=np.float32))
    again = rk.to_device(copy[2:], "cuda")  # a cuda device array (a view) too
    assert np.array_equal(again.numpy(), np.arange(2, 6, dtype=np.float32))


def test_to_device_moves_cuda_memory_to_another_backend_through_the_host(fake_cuda, fake_cupy) -> None:
    foreign = fake_cupy(fake_cuda, np.arange(6, dtype=np.float32))
    on_cpu = rk.to_device(foreign, "cpu")
    assert on_cpu.backend == "cpu" and np.array_equal(on_cpu.numpy(), np.arange(6, dtype=np.float32))

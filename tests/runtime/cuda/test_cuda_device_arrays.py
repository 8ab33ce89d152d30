"""Device arrays and ``__cuda_array_interface__`` on the cuda backend, over the in-memory driver.

The fake driver (``conftest.py``) records every call, so these tests check
what the runtime asks of the device: pooled allocations, no copies for
device arrays, staging and copy-back for numpy arguments (aliasing kept),
stream waits, and the interface both ways.  The real-hardware test at the
end skips here.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.runtime.cuda import CudaBackend


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


def test_round_trip_and_pool(fake_cuda) -> None:
    host = np.arange(10, dtype=np.float32)
    a = rk.to_device(host, "cuda")
    assert (a.backend, a.shape, a.dtype) == ("cuda", (10,), np.dtype(np.float32))
    assert np.array_equal(a.numpy(), host)
    assert fake_cuda.names().count("alloc") == 1
    del a
    gc.collect()
    info = rk.memory_info("cuda")
    assert info["in_use"] == 0 and info["pooled"] == 256
    b = rk.device_array(5, np.float32, "cuda")  # same size class: from the pool
    assert fake_cuda.names().count("alloc") == 1
    del b


def test_launches_on_device_arrays_copy_nothing_and_do_not_wait(add) -> None:
    n = 100
    x, y = np.arange(n, dtype=np.float32), np.ones(n, np.float32)
    dx, dy = rk.to_device(x, "cuda"), rk.to_device(y, "cuda")
    add.calls.clear()
    for _ in range(3):
        cuda_add[1, 128](dx, dy, n)  # no backend named: where the arrays live
    assert add.names() == ["load_module", "launch", "launch", "launch"]
    launch = add.calls[1]
    assert launch[4][0] == dx.buffer.pointer and launch[4][1] == dy.buffer.pointer
    assert np.array_equal(dy.numpy(), y + 3 * x)
    assert add.names()[-2:] == ["d2h", "sync"]  # the read waits for the stream


def test_views_pass_their_offset(add) -> None:
    d = rk.to_device(np.zeros((4, 8), np.float32), "cuda")
    row = d[2]
    assert row.offset == 2 * 8 * 4
    cuda_add[1, 8, "cuda"](rk.to_device(np.ones(8, np.float32), "cuda"), row, 8)
    assert add.calls[-1][4][1] == d.buffer.pointer + 64
    expected = np.zeros((4, 8), np.float32)
    expected[2] = 1
    assert np.array_equal(d.numpy(), expected)


def test_numpy_arguments_are_staged_and_copied_back_with_aliasing(add) -> None:
    x = np.arange(64, dtype=np.float32)
    cuda_add[1, 64, "cuda"](x, x, 64)  # one memory: the kernel doubles it
    assert np.array_equal(x, 2 * np.arange(64, dtype=np.float32))
    names = add.names()
    assert names.count("h2d") == 1 and names.count("d2h") == 1 and names[-1] == "sync"
    y = np.ones(64, np.float32)
    dx = rk.to_device(np.full(64, 2, np.float32), "cuda")
    cuda_add[1, 64, "cuda"](dx, y, 64)  # mixed: the numpy one comes back
    assert (y == 3).all()
    assert rk.memory_info("cuda")["in_use"] == 256  # only dx: staging buffers went back


def test_trim_frees_after_the_stream_and_oom_trims_by_itself(fake_cuda) -> None:
    a = rk.device_array(1 << 18, np.int32, "cuda")
    del a
    gc.collect()
    assert rk.trim_memory("cuda") == 1 << 20
    assert fake_cuda.names()[-2:] == ["sync", "free"]
    assert rk.memory_info("cuda")["pooled"] == 0
    fake_cuda.capacity = 3 << 20
    a = rk.device_array(2 << 18, np.int32, "cuda")
    del a
    gc.collect()
    b = rk.device_array(3 << 18, np.int32, "cuda")  # fits only once the pooled 2 MiB is freed
    assert b.nbytes == 3 << 20 and rk.memory_info("cuda")["pooled"] == 0
    with pytest.raises(MemoryError, match="out of memory"):
        rk.device_array(1 << 18, np.int32, "cuda")


def test_the_actor_runtime_uses_mapped_memory_of_the_driver(fake_driver_class) -> None:
    from ringkernel.runtime.cuda.actors import CudaActorRuntime

    fake = fake_driver_class()
    runtime = CudaActorRuntime(driver=fake)
    words = runtime.alloc(8)
    assert words.dtype == np.uint32 and words.shape == (8,) and not words.any()
    pointer = runtime.device_pointer(words)
    words[3] = 42
    assert fake.read(pointer, 8, np.uint32)[3] == 42  # the host's array is the device's memory
    assert runtime.close()
    assert fake.names()[-1] == "free"


def test_on_real_hardware() -> None:
    if not CudaBackend.available():
        pytest.skip(f"cuda backend unavailable: {CudaBackend.unavailable_reason()}")
    x = np.arange(1000, dtype=np.float32)
    dx, dy = rk.to_device(x, "cuda"), rk.to_device(np.ones_like(x), "cuda")
    cuda_add[8, 128](dx, dy, 1000)
    assert np.array_equal(dy.numpy(), x + 1)
    assert dy.__cuda_array_interface__["version"] == 3
    back = rk.from_cuda_array_interface(dy)
    assert np.array_equal(back.numpy(), x + 1)

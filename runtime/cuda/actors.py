"""The cuda actor host: the persistent PTX loop, launched once, over mapped pinned memory.

Every word of actor memory (control blocks, state, queues) is page-locked
host memory mapped into the device's address space
(``cuMemHostAlloc(DEVICEMAP)`` through the driver interface of
:mod:`ringkernel.runtime.cuda.driver`), so the host's numpy arrays
*are* the memory the kernel polls: ``ringkernel.runtime.queues`` runs unchanged on
the host side and the loop uses atomics and ``fence.sc.sys`` on the device
side.  Each actor's kernel is launched once, one block of ``lanes`` threads,
on its own stream, and stays resident until the control block's ``stop`` or
``drain`` asks it to leave; idle, it backs off with ``nanosleep``.  A group
is one such launch of G blocks (:func:`group_launch_config`), each serving
every G-th instance.

Needs a CUDA binding and an NVIDIA device: ``ActorSystem(backend="cuda")`` raises
``BackendUnavailable`` (with the reason) otherwise.  The launch arguments
(:func:`launch_arguments`) are plain functions so they are tested without a GPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ringkernel.ringir import Module
from ringkernel.ringir import layout as L
from ringkernel.ringir.layout import KERNEL_PARAMS
from ringkernel.runtime.actor_host import ActorMemory
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cuda.driver import CudaDriver, DriverUnavailable


def launch_arguments(memory: ActorMemory, device_pointer: Callable[[np.ndarray], int]) -> list[np.intp]:
    """The kernel's five pointer arguments, in ``KERNEL_PARAMS`` order."""
    arrays = memory.arrays
    assert len(arrays) == len(KERNEL_PARAMS)
    for name, a in zip(KERNEL_PARAMS, arrays):
        if a.dtype != np.uint32 or not a.flags.c_contiguous or a.ndim != 1:
            raise ValueError(f"actor memory '{name}' must be a contiguous 1-D uint32 array")
    return [np.intp(device_pointer(a)) for a in arrays]


def launch_config(lanes: int) -> dict[str, tuple[int, int, int]]:
    """One resident block: lane 0 runs the loop, the other lanes leave at once."""
    if not isinstance(lanes, int) or lanes < 1:
        raise ValueError(f"lanes must be a positive int, got {lanes!r}")
    return {"block": (lanes, 1, 1), "grid": (1, 1, 1)}


def group_launch_config(lanes: int, count: int, resident: int) -> dict[str, tuple[int, int, int]]:
    """A group's persistent launch: G = min(count, resident) blocks, block b serving instances
    b, b+G, ... (``lower_actor(..., "persistent", group=True)``).  Never more blocks than can be
    resident at once: a block waiting for a slot would leave its instances unserved."""
    config = launch_config(lanes)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"a group has at least one instance, got count={count!r}")
    config["grid"] = (max(1, min(count, resident)), 1, 1)
    return config


class CudaActorKernel:
    """One actor's (or group's) resident loop on its own stream (an ``ActorHost``)."""

    def __init__(
        self, runtime: CudaActorRuntime, function: Any, name: str, lanes: int, count: int | None = None
    ) -> None:
        self.runtime = runtime
        self.function = function
        self.name = name
        if count is None:
            self.config = launch_config(lanes)
        else:
            self.config = group_launch_config(lanes, count, runtime.resident_blocks())
        self.stream: Any = None
        self.memory: ActorMemory | None = None

    def start(self, memory: ActorMemory) -> None:
        if not self.join(0):
            raise RuntimeError(f"actor loop '{self.name}' is already running")
        args = launch_arguments(memory, self.runtime.device_pointer)
        self.memory = memory
        driver = self.runtime.driver
        self.stream = driver.new_stream()
        driver.launch(self.function, self.config["grid"], self.config["block"], args, self.stream)

    def wake(self) -> None:
        """The resident loop polls its queues itself."""

    def join(self, timeout: float | None = None) -> bool:
        if self.stream is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.runtime.driver.stream_done(self.stream):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.0005)


class CudaActorRuntime:
    """Actors on an NVIDIA GPU: persistent kernels over mapped pinned memory."""

    mode = "persistent"
    target = "ptx"
    max_buffer_words = None

    def __init__(self, idle_ns: int = 50_000, driver: CudaDriver | None = None) -> None:
        if driver is None:
            from ringkernel.runtime.cuda.backend import probe

            probed = probe()
            if isinstance(probed, str):
                raise DriverUnavailable(probed)
            driver = probed
        self.driver = driver
        major, minor = driver.compute_capability()
        self.arch = f"sm_{major}{minor}"
        self.allocations: list[np.ndarray] = []  # the driver's mapped uint8 buffers
        self.pointers: dict[int, int] = {}  # host address -> device address of each allocation
        self.kernels: list[CudaActorKernel] = []
        self._modules: dict[str, Any] = {}

    def alloc(self, words: int) -> np.ndarray:
        host, pointer = self.driver.host_alloc_mapped(max(words, 1) * L.WORD)
        host[:] = 0
        array = host[: words * L.WORD].view(np.uint32)
        self.pointers[array.ctypes.data] = pointer
        self.allocations.append(host)  # freed only after every loop has left (close)
        return array

    def device_pointer(self, array: np.ndarray) -> int:
        """The device address of an array from :meth:`alloc`."""
        pointer = self.pointers.get(array.ctypes.data)
        if pointer is None:
            raise ValueError("actor memory on cuda must come from CudaActorRuntime.alloc (mapped, pinned)")
        return pointer

    def compile_options(self, module: Module, kernel: str, lanes: int) -> dict[str, Any]:
        # The host reads and writes the queue words through mapped memory.
        return {"arch": self.arch, "system_scope_atomics": True}

    def host(self, build: KernelBuild, lanes: int) -> CudaActorKernel:
        return self._host(build, lanes, None)

    def group_host(self, build: KernelBuild, lanes: int, count: int) -> CudaActorKernel:
        """One persistent launch serving the group's ``count`` instances (see :func:`group_launch_config`)."""
        return self._host(build, lanes, count)

    def resident_blocks(self) -> int:
        """Blocks of a group launch that are surely resident together: one per multiprocessor
        when the driver says how many it has, else 1 (one block then serves every instance)."""
        count = getattr(self.driver, "multiprocessor_count", None)
        return max(1, int(count())) if callable(count) else 1

    def _host(self, build: KernelBuild, lanes: int, count: int | None) -> CudaActorKernel:
        from ringkernel.lowering.cuda import ptx_kernel_symbol

        ptx, kernel = build.text, build.kernel_name
        cu_module = self._modules.get(ptx)
        if cu_module is None:
            cu_module = self._modules[ptx] = self.driver.load_module(ptx)
        function = self.driver.function(cu_module, ptx_kernel_symbol(kernel))
        host = CudaActorKernel(self, function, kernel, lanes, count)
        self.kernels.append(host)
        return host

    def close(self, timeout: float = 0.0) -> bool:
        """Frees the mapped memory once every kernel has left (within ``timeout`` s).

        A kernel still running keeps everything: it reads and writes that memory.
        """
        if any(not k.join(0) for k in self.kernels):
            for k in self.kernels:
                if k.memory is not None:
                    k.memory.ctrl[L.C["stop"]] = 1
            deadline = time.monotonic() + timeout
            if not all(k.join(max(deadline - time.monotonic(), 0.0)) for k in self.kernels):
                return False
        for host in self.allocations:
            self.driver.host_free(host)
        self.allocations.clear()
        self.pointers.clear()
        self._modules.clear()
        return True


__all__ = ["CudaActorRuntime", "CudaActorKernel", "launch_arguments", "launch_config", "group_launch_config"]

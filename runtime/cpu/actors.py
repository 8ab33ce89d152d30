"""The cpu actor host: the JIT-compiled persistent loop on a native thread.

The actor kernel (``ringkernel.ringir.passes.actor_lowering``) is compiled by
the facade for the same ``host`` target as every cpu kernel, JIT-compiled
like them and launched once, as a
grid of one block, from a Python thread; ctypes releases the GIL for the
whole call, so the loop runs natively until the control block asks it to
leave.  Its five arguments are numpy ``uint32`` arrays the host also reads
and writes (queues, control block, state); ``ringkernel.runtime.queues`` documents
the memory-order protocol.  Idle, the loop sleeps in ``usleep`` (``ctrl.idle_ns``).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

from ringkernel.lowering.llvm.codegen import host_cpu
from ringkernel.ringir import Module
from ringkernel.runtime.actor_host import ActorMemory
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cpu.jit import jit_kernel


def host_options(kernel: str) -> dict[str, Any]:
    """What an actor loop is compiled with: the ``host`` target for this CPU, unchecked."""
    cpu, features = host_cpu()
    return {"kernel": kernel, "workitem_loops": True, "checked": False, "cpu": cpu, "features": features}


class CpuActorThread:
    """Runs one actor loop kernel over five shared word arrays on a native thread."""

    def __init__(self, build: KernelBuild, lanes: int = 1) -> None:
        self.compiled = jit_kernel(build)
        self.kernel = build.kernel_name
        self.lanes = lanes
        self.thread: threading.Thread | None = None
        self.status: int | None = None
        self._memory: ActorMemory | None = None

    def start(self, memory: ActorMemory) -> None:
        """Launches the loop; the arrays must stay alive (this object keeps them) until it exits."""
        if self.running:
            raise RuntimeError(f"actor loop '{self.kernel}' is already running")
        arrays = memory.arrays
        for a in arrays:
            if a.dtype != np.uint32 or not a.flags.c_contiguous:
                raise ValueError("actor memory must be contiguous uint32 arrays")
        self._memory = memory
        argv = (ctypes.c_void_p * len(arrays))(*(a.ctypes.data for a in arrays))
        dims = (ctypes.c_int32 * 6)(1, 1, 1, self.lanes, 1, 1)
        launch = self.compiled.launch

        def run() -> None:
            self.status = launch(argv, dims, 0, 1)

        self.status = None
        self.thread = threading.Thread(target=run, name=f"ringkernel-actor-{self.kernel}", daemon=True)
        self.thread.start()

    def wake(self) -> None:
        """The native loop polls its queues itself."""

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Waits for the loop to leave; True once it has."""
        if self.thread is None:
            return True
        self.thread.join(timeout)
        return not self.thread.is_alive()


class CpuActorRuntime:
    """Actors on the cpu: plain numpy memory, one native thread per actor."""

    mode = "persistent"
    target = "host"
    max_buffer_words = None

    def __init__(self, idle_ns: int = 50_000) -> None:
        self.idle_ns = idle_ns

    def alloc(self, words: int) -> np.ndarray:
        return np.zeros(words, dtype=np.uint32)

    def compile_options(self, module: Module, kernel: str, lanes: int) -> dict[str, Any]:
        return host_options(kernel)

    def host(self, build: KernelBuild, lanes: int) -> CpuActorThread:
        return CpuActorThread(build, lanes)

    def close(self, timeout: float = 0.0) -> bool:
        """Nothing to release: each thread has left, or was abandoned with its memory kept alive."""
        return True


class CpuBatchDevice:
    """The batch loop on the cpu JIT, as a ``BatchDevice`` (``ringkernel.runtime.wgpu.actors``).

    Buffers are numpy arrays the host never sees directly and a dispatch is
    a synchronous JIT launch, so the re-dispatch pump that wgpu and Metal
    use can be run and tested on any machine.
    """

    target = "host"

    def buffer(self, words: int) -> np.ndarray:
        return np.zeros(max(words, 1), dtype=np.uint32)

    def write(self, buf: np.ndarray, word: int, data: np.ndarray) -> None:
        buf[word : word + data.size] = data

    def compile_options(self, module: Module, name: str, lanes: int) -> dict[str, Any]:
        return host_options(name)

    def kernel(self, build: KernelBuild, lanes: int) -> tuple:
        return jit_kernel(build), lanes

    def bind(self, kernel: tuple, buffers: tuple) -> tuple:
        compiled, lanes = kernel
        argv = (ctypes.c_void_p * len(buffers))(*(b.ctypes.data for b in buffers))
        dims = (ctypes.c_int32 * 6)(1, 1, 1, lanes, 1, 1)
        return compiled, argv, dims, buffers

    def run(self, dispatches: list, reads: list) -> np.ndarray:
        for compiled, argv, dims, _ in dispatches:
            compiled.launch(argv, dims, 0, 1)
        parts = [buf[word : word + n] for buf, word, n in reads]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)


__all__ = ["CpuActorThread", "CpuActorRuntime", "CpuBatchDevice"]

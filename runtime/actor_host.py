"""The actor backend interface: what one backend supplies to run actor loops.

An :class:`ActorRuntime` allocates word memory that host and device both see
and builds an :class:`ActorHost` per actor that runs the loop kernel over an
:class:`ActorMemory`: a native thread (cpu), a re-dispatching pump (wgpu,
metal) or one resident kernel (cuda).  The actor system (``ringkernel.actors``)
speaks only to this interface, and compiles the loop kernel itself (target
and options from the runtime), as kernel launches do (:mod:`.backend`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ringkernel.ringir import Module
from ringkernel.ringir.layout import KERNEL_PARAMS
from ringkernel.runtime.backend import KernelBuild


@dataclass(frozen=True)
class ActorMemory:
    """The five word arrays of one actor's loop (``docs/layout.md``), as the kernel takes them.

    The array fields are named after the kernel's parameters
    (:data:`~ringkernel.ringir.layout.KERNEL_PARAMS`), which fix their order.

    ``out_to_host`` says whether ``out`` is the actor's K2H queue (the host
    consumes it) or a downstream actor's K2K queue (only loops touch it).
    """

    ctrl: np.ndarray
    state: np.ndarray
    h2k: np.ndarray
    k2k: np.ndarray
    out: np.ndarray
    out_to_host: bool

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays in the loop kernel's parameter order."""
        return tuple(getattr(self, name) for name in KERNEL_PARAMS)


class ActorHost(Protocol):
    """Runs one actor's loop; the control block's ``stop``/``drain`` words ask it to leave."""

    def start(self, memory: ActorMemory) -> None:
        """Starts the loop over ``memory`` (again, after it left)."""

    def wake(self) -> None:
        """New input, output room or a control flag: hosts that poll may look now."""

    def join(self, timeout: float | None = None) -> bool:
        """Waits up to ``timeout`` s for the loop to leave; True once it has."""


class ActorRuntime(Protocol):
    """One backend's actor support for one :class:`ActorSystem`."""

    mode: str  # the loop it runs: "persistent" or "batch" (``lower_actor``)
    target: str  # the compile target whose text it runs
    max_buffer_words: int | None  # the largest array a loop can bind (None: no limit but memory)

    def alloc(self, words: int) -> np.ndarray:
        """Zeroed ``uint32`` words that the host and the actor loops both see."""

    def compile_options(self, module: Module, kernel: str, lanes: int) -> dict[str, Any]:
        """The options to compile the loop kernel ``kernel`` of ``module`` (lowered in ``mode``) with."""

    def host(self, build: KernelBuild, lanes: int) -> ActorHost:
        """A host for the loop kernel the facade compiled with :meth:`compile_options`."""

    def close(self, timeout: float) -> bool:
        """Releases what the runtime holds (threads, devices) once every loop has left.

        Waits at most ``timeout`` s; False (keeping everything) if something still runs on it.
        """


_RUNTIMES = {
    "cpu": "ringkernel.runtime.cpu.actors:CpuActorRuntime",
    "wgpu": "ringkernel.runtime.wgpu.actors:WgpuActorRuntime",
    "cuda": "ringkernel.runtime.cuda.actors:CudaActorRuntime",
    "metal": "ringkernel.runtime.metal.actors:MetalActorRuntime",
}


def open_runtime(backend: str, idle_ns: int) -> ActorRuntime:
    """The actor runtime of ``backend``; ``BackendUnavailable`` says why it cannot run here."""
    from ringkernel.runtime import get_backend

    if backend not in _RUNTIMES:
        raise ValueError(f"unknown actor backend '{backend}'; choose one of: {', '.join(_RUNTIMES)}")
    get_backend(backend)  # raises BackendUnavailable with the reason
    module_name, class_name = _RUNTIMES[backend].split(":")
    return getattr(importlib.import_module(module_name), class_name)(idle_ns=idle_ns)

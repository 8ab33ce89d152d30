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
    """The seven word arrays of one actor's loop (``docs/layout.md``), as the kernel takes them.

    The array fields are named after the kernel's parameters
    (:data:`~ringkernel.ringir.layout.KERNEL_PARAMS`), which fix their order.

    ``out_to_host`` says whether ``out`` is the actor's K2H queue (the host
    consumes it) or a downstream actor's K2K queue (only loops touch it).
    ``sends`` (the loop produces, the system's router consumes) and ``routed``
    (the router produces, the loop consumes) carry handler-initiated sends
    (``docs/layout.md``, "Sends"); the router reads and writes both from the host.
    """

    ctrl: np.ndarray
    state: np.ndarray
    h2k: np.ndarray
    k2k: np.ndarray
    out: np.ndarray
    sends: np.ndarray
    routed: np.ndarray
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

    def group_host(self, build: KernelBuild, lanes: int, count: int) -> ActorHost:
        """A host for the kernel serving all ``count`` instances of an actor group (``lower_actor``
        with ``group=True``, lowered in the runtime's ``group_mode``, default its ``mode``).

        Its ``start``/``wake``/``join`` act on the whole group (block 0's ``stop`` and
        ``drain``); it may offer ``instance(i)``, the host an ``ActorRef`` of instance ``i``
        uses (reply waits), and ``bell``, the ``(ctrl, bellq)`` words instance pushes ring.
        The cpu runtime also takes ``priority=`` (its scheduler's classes; ``priorities = True``).
        """

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


def open_runtime(backend: str, idle_ns: int, workers: int | None = None, quantum: int = 64) -> ActorRuntime:
    """The actor runtime of one ``ActorSystem`` on ``backend``; ``BackendUnavailable`` says why
    it cannot run here.

    ``workers``: the native threads that serve the system's actor groups, on runtimes
    that have them (``takes_workers``: the cpu scheduler; ``None``: every core).
    ``quantum`` (messages per instance per turn) is written into each group's control
    block by the facade; runtimes that want it see it as ``runtime.quantum``.
    """
    from ringkernel.runtime import get_backend

    if backend not in _RUNTIMES:
        raise ValueError(f"unknown actor backend '{backend}'; choose one of: {', '.join(_RUNTIMES)}")
    get_backend(backend)  # raises BackendUnavailable with the reason
    module_name, class_name = _RUNTIMES[backend].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    extra = {"workers": workers} if getattr(cls, "takes_workers", False) else {}
    runtime = cls(idle_ns=idle_ns, **extra)
    runtime.quantum = quantum
    return runtime

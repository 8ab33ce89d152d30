"""The metal actor host: the MSL batch loop, re-dispatched like wgpu, through pyobjc.

Metal, like WebGPU, promises no forward progress to a kernel that waits, so
an actor is the *batch* loop (one dispatch drains up to ``ctrl.batch``
messages, time from ``ctrl.now``) driven by the same host pump as wgpu:
:class:`~ringkernel.runtime.wgpu.actors.RedispatchRuntime`.  This module
only adapts Metal to the pump's :class:`~ringkernel.runtime.wgpu.actors.BatchDevice`:
shared-storage buffers (the host writes and reads their contents directly,
between command buffers), one serial compute encoder per round whose
dispatches see each other's writes in order, and ``waitUntilCompleted``.

macOS only; ``ActorSystem(backend="metal")`` raises ``BackendUnavailable``
elsewhere.  :func:`buffer_indices` (which ``[[buffer(n)]]`` each of the five
arguments takes) is a plain function, tested without a Mac.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ringkernel.ringir import Module
from ringkernel.ringir import layout as L
from ringkernel.ringir.layout import KERNEL_PARAMS
from ringkernel.runtime.actor_pump import Read, RedispatchRuntime
from ringkernel.runtime.arguments import LaunchError
from ringkernel.runtime.backend import KernelBuild


def buffer_indices(module: Module, kernel: str) -> tuple[int, ...]:
    """The Metal buffer index of each loop argument, in ``KERNEL_PARAMS`` order."""
    from ringkernel.lowering.msl import msl_kernel_info

    params = {p.name: p for p in msl_kernel_info(module)[kernel].params}
    missing = [name for name in KERNEL_PARAMS if name not in params or not params[name].is_array]
    if missing:
        raise LaunchError(f"actor kernel '{kernel}' lacks the array parameters {', '.join(missing)}")
    return tuple(params[name].index for name in KERNEL_PARAMS)


@dataclass
class _Buffer:
    """A shared-storage Metal buffer and the host's numpy view of its contents."""

    buffer: Any
    words: np.ndarray


class MetalBatchDevice:
    """The pump's ``BatchDevice`` on the system's default Metal device."""

    def __init__(self) -> None:
        from ringkernel.runtime import get_backend

        self.backend = get_backend("metal")
        self.Metal = self.backend.Metal
        self.device = self.backend.device
        self.queue = self.device.newCommandQueue()
        self.max_buffer_words = int(self.device.maxBufferLength()) // L.WORD  # checked at spawn

    def buffer(self, words: int) -> _Buffer:
        nbytes = max(words, 1) * L.WORD
        buffer = self.device.newBufferWithLength_options_(nbytes, self.Metal.MTLResourceStorageModeShared)
        view = np.frombuffer(buffer.contents().as_buffer(nbytes), dtype=np.uint32)
        view[:] = 0
        return _Buffer(buffer, view)

    def write(self, buf: _Buffer, word: int, data: np.ndarray) -> None:
        buf.words[word : word + data.size] = data  # no command buffer is running: the pump is serial

    target = "msl"

    def compile_options(self, module: Module, name: str, lanes: int) -> dict[str, Any]:
        return {}

    def kernel(self, build: KernelBuild, lanes: int) -> tuple[Any, tuple[int, ...], int]:
        module, name = build.module, build.kernel_name
        pipeline, _ = self.backend.pipeline(build)
        top = int(pipeline.maxTotalThreadsPerThreadgroup())
        if lanes > top:
            raise LaunchError(f"actor '{name}' asks for {lanes} lanes; Metal allows {top} per threadgroup")
        return pipeline, buffer_indices(module, name), lanes

    def bind(
        self,
        kernel: tuple[Any, tuple[int, ...], int],
        buffers: Sequence[_Buffer],
        grid: tuple[int, int] = (1, 1),
    ) -> Any:
        pipeline, indices, lanes = kernel
        return pipeline, tuple(zip(indices, (b.buffer for b in buffers))), lanes, grid

    def run(self, dispatches: Sequence[Any], reads: Sequence[Read]) -> np.ndarray:
        Metal = self.Metal
        command = self.queue.commandBuffer()
        encoder = command.computeCommandEncoder()  # serial: each dispatch sees the previous one's writes
        for pipeline, bindings, lanes, (x, y) in dispatches:
            encoder.setComputePipelineState_(pipeline)
            for index, buffer in bindings:
                encoder.setBuffer_offset_atIndex_(buffer, 0, index)
            encoder.dispatchThreadgroups_threadsPerThreadgroup_(
                Metal.MTLSizeMake(x, y, 1), Metal.MTLSizeMake(lanes, 1, 1)
            )
        encoder.endEncoding()
        command.commit()
        command.waitUntilCompleted()
        if command.status() == Metal.MTLCommandBufferStatusError:
            raise RuntimeError(f"the Metal actor dispatch failed: {command.error()}")
        parts = [buf.words[word : word + n] for buf, word, n in reads]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)


class MetalActorRuntime(RedispatchRuntime):
    """``ActorSystem(backend="metal")``: the MSL batch loop re-dispatched on the Metal device."""

    def __init__(self, idle_ns: int = 50_000) -> None:
        super().__init__(MetalBatchDevice(), idle_ns)


__all__ = ["MetalActorRuntime", "MetalBatchDevice", "buffer_indices"]

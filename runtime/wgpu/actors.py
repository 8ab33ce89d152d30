"""Actors on wgpu: the :class:`~ringkernel.runtime.actor_pump.RedispatchRuntime`
pump over the shared wgpu device.  ``ringkernel.runtime.actor_pump`` explains the
rounds; this module only adapts wgpu's buffers and dispatches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ringkernel import layout as L
from ringkernel.ringir import Module
from ringkernel.runtime.actor_pump import Read, RedispatchRuntime
from ringkernel.runtime.arguments import LaunchError


class WgpuBatchDevice:
    """:class:`BatchDevice` on the shared wgpu device (``ringkernel.lowering.wgsl.naga``)."""

    def __init__(self) -> None:
        from ringkernel.lowering.wgsl.naga import get_device

        self.device = get_device()
        # one queue is one storage buffer: the pump's runtime rejects a larger one at spawn
        binding = min(self._limit("max_storage_buffer_binding_size"), self._limit("max_buffer_size"))
        self.max_buffer_words = binding // L.WORD
        self.max_lanes = min(
            self._limit("max_compute_workgroup_size_x"), self._limit("max_compute_invocations_per_workgroup")
        )
        self.gather: Any = None
        self.gather_words = 0
        self._kernels: dict[tuple[str, str, int], Any] = {}

    def _limit(self, name: str) -> int:
        """One of the device's limits (wgpu spells their keys with '-' or '_', by version)."""
        limits = self.device.limits
        return int(limits[name] if name in limits else limits[name.replace("_", "-")])

    def buffer(self, words: int) -> Any:
        import wgpu

        usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST
        return self.device.create_buffer(size=max(words, 1) * L.WORD, usage=usage)

    def write(self, buf: Any, word: int, data: np.ndarray) -> None:
        if data.size:
            self.device.queue.write_buffer(buf, word * L.WORD, np.ascontiguousarray(data, dtype=np.uint32))

    def kernel(self, module: Module, name: str, lanes: int) -> Any:
        import wgpu

        from ringkernel.compiler import compile_module
        from ringkernel.lowering.wgsl import plan_kernel_bindings
        from ringkernel.lowering.wgsl.naga import create_shader_module, naga_error
        from ringkernel.ringir.passes.fingerprint import fingerprint

        if lanes > self.max_lanes:
            raise LaunchError(
                f"actor '{name}' asks for {lanes} lanes; this wgpu device allows {self.max_lanes}"
            )
        key = (fingerprint(module, "wgsl", {}), name, lanes)
        if key in self._kernels:
            return self._kernels[key]
        plan = plan_kernel_bindings(module.get(name))
        text = compile_module(module, "wgsl", block=(lanes, 1, 1), kernels=(name,))
        label = f"<wgsl:actor {name}>"
        shader = create_shader_module(self.device, text, label)
        entries = [
            {
                "binding": a.binding,
                "visibility": wgpu.ShaderStage.COMPUTE,
                "buffer": {"type": wgpu.BufferBindingType.storage},
            }
            for a in plan.arrays
        ]
        try:
            layout = self.device.create_bind_group_layout(entries=entries)
            pipeline = self.device.create_compute_pipeline(
                layout=self.device.create_pipeline_layout(bind_group_layouts=[layout]),
                compute={"module": shader, "entry_point": plan.entry_point},
            )
        except wgpu.GPUError as exc:
            raise naga_error(exc, text, label) from None
        self._kernels[key] = (pipeline, layout)
        return self._kernels[key]

    def bind(self, kernel: Any, buffers: Sequence[Any]) -> Any:
        pipeline, layout = kernel
        entries = [{"binding": i, "resource": {"buffer": b}} for i, b in enumerate(buffers)]
        return pipeline, self.device.create_bind_group(layout=layout, entries=entries)

    def run(self, dispatches: Sequence[Any], reads: Sequence[Read]) -> np.ndarray:
        import wgpu

        total = sum(n for _, _, n in reads)
        if total > self.gather_words:
            self.gather_words = max(total, 2 * self.gather_words, 1024)
            self.gather = self.device.create_buffer(
                size=self.gather_words * L.WORD, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST
            )
        encoder = self.device.create_command_encoder()
        compute = encoder.begin_compute_pass()
        for pipeline, bind_group in dispatches:
            compute.set_pipeline(pipeline)
            compute.set_bind_group(0, bind_group)
            compute.dispatch_workgroups(1, 1, 1)
        compute.end()
        at = 0
        for buf, word, n in reads:
            if n:
                encoder.copy_buffer_to_buffer(buf, word * L.WORD, self.gather, at * L.WORD, n * L.WORD)
            at += n
        self.device.queue.submit([encoder.finish()])
        if not total:
            return np.zeros(0, dtype=np.uint32)
        # one mappable buffer, mapped in place: no staging copy, no extra submit
        self.gather.map_sync(wgpu.MapMode.READ, 0, total * L.WORD)
        try:
            data = self.gather.read_mapped(0, total * L.WORD)
        finally:
            self.gather.unmap()
        return np.frombuffer(data, dtype=np.uint32).copy()


class WgpuActorRuntime(RedispatchRuntime):
    """``ActorSystem(backend="wgpu")``: the batch loop re-dispatched on the wgpu device."""

    def __init__(self, idle_ns: int = 50_000) -> None:
        super().__init__(WgpuBatchDevice(), idle_ns)


__all__ = ["WgpuBatchDevice", "WgpuActorRuntime"]

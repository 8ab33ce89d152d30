"""Actors on wgpu: the :class:`~ringkernel.runtime.actor_pump.RedispatchRuntime`
pump over the shared wgpu device.  ``ringkernel.runtime.actor_pump`` explains the
rounds; this module only adapts wgpu's buffers and dispatches.

On llvmpipe (lavapipe) the batch loop is compiled with the loop guard
(:mod:`ringkernel.runtime.wgpu.status`): a handler loop the driver stopped
early makes the round raise :class:`LoopLimitError`, which fails the pump and
reaches the user at the next ``send``/``receive``, instead of a reply computed
from a truncated loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ringkernel.ringir import Module
from ringkernel.ringir import layout as L
from ringkernel.runtime.actor_pump import DEFAULT_BUDGET, Read, RedispatchRuntime
from ringkernel.runtime.arguments import LaunchError
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.wgpu.status import (
    LLVMPIPE_LOOP_LIMIT,
    STATUS_WORDS,
    has_loop_limit,
    loop_limit_error,
    status_bind_group,
    status_layout_entries,
)


class WgpuBatchDevice:
    """:class:`BatchDevice` on the shared wgpu device (``ringkernel.lowering.wgsl.naga``)."""

    def __init__(self) -> None:
        from ringkernel.lowering.wgsl.naga import describe_adapter, get_adapter, get_device

        self.device = get_device()
        self.adapter_name = describe_adapter(get_adapter())
        self.loop_guard = has_loop_limit(get_adapter().info)
        # below lavapipe's loop limit (with room for the batch loop around the handlers)
        self.default_budget = LLVMPIPE_LOOP_LIMIT // 4 if self.loop_guard else DEFAULT_BUDGET
        # a larger budget would let one handler reach the limit (the system fails, LoopLimitError)
        self.max_budget = LLVMPIPE_LOOP_LIMIT // 2 if self.loop_guard else None
        # one queue is one storage buffer: the pump's runtime rejects a larger one at spawn
        binding = min(self._limit("max_storage_buffer_binding_size"), self._limit("max_buffer_size"))
        self.max_buffer_words = binding // L.WORD
        self.max_lanes = min(
            self._limit("max_compute_workgroup_size_x"), self._limit("max_compute_invocations_per_workgroup")
        )
        self.gather: Any = None
        self.gather_words = 0
        self.lose_next = False  # fault injection: the next run() fails as a lost device does
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

    target = "wgsl"

    def compile_options(self, module: Module, name: str, lanes: int) -> dict[str, Any]:
        if lanes > self.max_lanes:
            raise LaunchError(
                f"actor '{name}' asks for {lanes} lanes; this wgpu device allows {self.max_lanes}"
            )
        guard = {"loop_guard": True} if self.loop_guard else {}
        return {"block": (lanes, 1, 1), "kernels": (name,), **guard}

    def kernel(self, build: KernelBuild, lanes: int) -> Any:
        import wgpu

        from ringkernel.lowering.wgsl import plan_kernel_bindings
        from ringkernel.lowering.wgsl.naga import create_shader_module, naga_error

        name, text = build.kernel_name, build.text
        key = (text, name, lanes)
        if key in self._kernels:
            return self._kernels[key]
        plan = plan_kernel_bindings(build.module.get(name))
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
            layouts = [layout]
            if self.loop_guard:
                layouts.append(self.device.create_bind_group_layout(
                    entries=status_layout_entries(checked=False)
                ))
            pipeline = self.device.create_compute_pipeline(
                layout=self.device.create_pipeline_layout(bind_group_layouts=layouts),
                compute={"module": shader, "entry_point": plan.entry_point},
            )
        except wgpu.GPUError as exc:
            raise naga_error(exc, text, label) from None
        self._kernels[key] = (pipeline, layouts, name)
        return self._kernels[key]

    def bind(self, kernel: Any, buffers: Sequence[Any], grid: tuple[int, int] = (1, 1)) -> Any:
        """``(pipeline, bind groups, status buffer or None, kernel name, grid)``."""
        pipeline, layouts, name = kernel
        entries = [{"binding": i, "resource": {"buffer": b}} for i, b in enumerate(buffers)]
        groups = [self.device.create_bind_group(layout=layouts[0], entries=entries)]
        status = None
        if len(layouts) > 1:
            group, status = status_bind_group(self.device, layouts[1], None)
            groups.append(group)
        return pipeline, groups, status, name, grid

    def run(self, dispatches: Sequence[Any], reads: Sequence[Read]) -> np.ndarray:
        import wgpu

        statuses = [(d[2], d[3]) for d in dispatches if d[2] is not None]
        reads = [*reads, *((buf, 0, STATUS_WORDS) for buf, _ in statuses)]
        total = sum(n for _, _, n in reads)
        if total > self.gather_words:
            self.gather_words = max(total, 2 * self.gather_words, 1024)
            self.gather = self.device.create_buffer(
                size=self.gather_words * L.WORD, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST
            )
        encoder = self.device.create_command_encoder()
        compute = encoder.begin_compute_pass()
        for pipeline, bind_groups, _, _, (x, y) in dispatches:
            compute.set_pipeline(pipeline)
            for index, group in enumerate(bind_groups):
                compute.set_bind_group(index, group)
            compute.dispatch_workgroups(x, y, 1)
        compute.end()
        at = 0
        for buf, word, n in reads:
            if n:
                encoder.copy_buffer_to_buffer(buf, word * L.WORD, self.gather, at * L.WORD, n * L.WORD)
            at += n
        self.device.queue.submit([encoder.finish()])
        if self.lose_next:
            self.lose_next = False
            raise DeviceLostError(f"the wgpu device ({self.adapter_name}) was lost (injected fault)")
        if not total:
            return np.zeros(0, dtype=np.uint32)
        # one mappable buffer, mapped in place: no staging copy, no extra submit
        self.gather.map_sync(wgpu.MapMode.READ, 0, total * L.WORD)
        try:
            data = self.gather.read_mapped(0, total * L.WORD)
        finally:
            self.gather.unmap()
        words = np.frombuffer(data, dtype=np.uint32).copy()
        if statuses:
            tail = words[total - STATUS_WORDS * len(statuses):].reshape(len(statuses), -1)
            for (_, name), status in zip(statuses, tail):
                error = loop_limit_error(status, f"actor kernel '{name}'", self.adapter_name)
                if error is not None:
                    raise error
            words = words[: total - STATUS_WORDS * len(statuses)]
        return words


    @staticmethod
    def is_device_loss(exc: BaseException) -> bool:
        """Whether ``exc`` is the device going away (wgpu reports it as an error naming the loss)."""
        return isinstance(exc, DeviceLostError) or (
            type(exc).__module__.startswith("wgpu") and "lost" in str(exc).lower()
        )


class DeviceLostError(RuntimeError):
    """The wgpu device was lost: what it held is gone; the host mirror is what is left."""


class WgpuActorRuntime(RedispatchRuntime):
    """``ActorSystem(backend="wgpu")``: the batch loop re-dispatched on the wgpu device."""

    def __init__(self, idle_ns: int = 50_000) -> None:
        super().__init__(WgpuBatchDevice(), idle_ns)

    def inject_device_loss(self) -> None:
        """Test hook: the next round's dispatch is submitted, then its read-back fails as on a
        lost device (the pump stops; a system with a fallback migrates its actors)."""
        self.device.lose_next = True  # type: ignore[attr-defined]
        self.wake()


__all__ = ["DeviceLostError", "WgpuBatchDevice", "WgpuActorRuntime"]

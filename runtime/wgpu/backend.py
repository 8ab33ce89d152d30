"""The wgpu backend: WGSL kernels dispatched through wgpu-py (Vulkan, Metal, DX12, GL).

One device per process (shared with ``check_wgsl``).  Each launch uploads the
numpy arrays into storage buffers and the scalars into one uniform buffer,
dispatches ``grid`` workgroups and copies every numpy array back in place.
Device arrays (:mod:`.memory`) are bound where they live and copied nowhere;
a launch whose arrays are all device arrays is recorded into the open batch
and returns before it runs.  Pipelines are cached per (module fingerprint, kernel, block, and
the variant options below).

- Aliasing: an array passed for several parameters (``k(x, x)``) is one
  buffer, and the kernel is compiled with those parameters mapped to one WGSL
  variable, so a write through one is seen through the other, as on CUDA.
  Views that overlap only in part cannot be one WGSL binding: a LaunchError.
- ``checked=True`` compiles the bounds-checked variant and raises
  :class:`~ringkernel.runtime.arguments.BoundsError` after the launch (the
  in-bounds writes are copied back first).
- On llvmpipe/lavapipe, kernels carry the loop guard (see :mod:`.status`); a
  loop the driver stopped raises :class:`~.status.LoopLimitError` and nothing
  is copied back.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ringkernel.lowering.wgsl import KernelBindings, plan_kernel_bindings
from ringkernel.lowering.wgsl.emitter import shared_array_labels, uses_f16
from ringkernel.lowering.wgsl.naga import (
    WgpuUnavailable,
    create_shader_module,
    describe_adapter,
    get_adapter,
    get_device,
    naga_error,
)
from ringkernel.lowering.wgsl.target import F16_FEATURE
from ringkernel.ringir import ArrayType, Function, Module, SharedArray, walk
from ringkernel.ringir.passes import run_default_pipeline
from ringkernel.runtime import module_digest
from ringkernel.runtime.aliasing import MemoryGroup, memory_groups
from ringkernel.runtime.arguments import LaunchError, as_tuple
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.device_array import DeviceArray
from ringkernel.runtime.wgpu.memory import WgpuMemory
from ringkernel.runtime.wgpu.status import (
    bounds_error,
    has_loop_limit,
    loop_limit_error,
    read_status,
    status_bind_group,
    status_layout_entries,
)

Dim3 = tuple[int, int, int]

# one uniform field per scalar; the emulated i8..u16 travel as i32/u32
_PACK = {"f32": "<f", "i32": "<i", "u32": "<I", "bool": "<I", "f16": "<e",
         "i8": "<i", "u8": "<I", "i16": "<i", "u16": "<I"}


@dataclass(frozen=True)
class _Variant:
    """What, besides module, kernel and block, selects the compiled shader."""

    aliases: tuple[tuple[str, str, str], ...] = ()
    checked: bool = False
    loop_guard: bool = False

    @property
    def options(self) -> dict[str, Any]:
        """Compile options; the plain variant passes none, so its WGSL and cache key stay."""
        opts: dict[str, Any] = {}
        if self.aliases:
            opts["aliases"] = self.aliases
        if self.checked:
            opts["checked"] = True
        if self.loop_guard:
            opts["loop_guard"] = True
        return opts

    @property
    def status(self) -> bool:
        return self.checked or self.loop_guard


@dataclass(frozen=True)
class _Pipeline:
    pipeline: Any
    layout: Any
    status_layout: Any
    bindings: KernelBindings
    variant: _Variant


class WgpuBackend:
    """Runs kernels as WGSL compute shaders on the selected wgpu adapter."""

    name = "wgpu"
    target = "wgsl"

    @classmethod
    def available(cls) -> bool:
        try:
            get_device()
        except WgpuUnavailable:
            return False
        return True

    @classmethod
    def unavailable_reason(cls) -> str:
        try:
            get_device()
        except WgpuUnavailable as exc:
            return str(exc)
        return ""

    def __init__(self) -> None:
        self.device = get_device()
        self.adapter = get_adapter()
        self.limits = dict(self.device.limits)
        self.loop_limited = has_loop_limit(self.adapter.info)
        self._pipelines: dict[tuple[str, str, Dim3, _Variant], _Pipeline] = {}
        self._lock = threading.Lock()
        self.memory = _memory(self.device, self.limits, self.adapter_name)

    @property
    def adapter_name(self) -> str:
        return describe_adapter(self.adapter)

    def compile_options(
        self,
        module: Module,
        kernel_name: str,
        grid: Dim3,
        block: Dim3,
        args: Sequence[Any],
        *,
        checked: bool | None = None,
    ) -> dict[str, Any]:
        """WGSL for this block and kernel, with the aliasing map, checks and loop guard it needs.

        Checks the launch against the adapter's limits first (a ``LaunchError``).
        """
        fn = module.get(kernel_name)
        grid, block = as_tuple(grid), as_tuple(block)
        self._check_dims(fn, grid, block)
        variant = self._variant(fn, self._memory_groups(fn, args), checked)
        options = {"block": block, "kernels": (fn.name,), **variant.options}
        if F16_FEATURE in self.device.features and uses_f16(module):
            options["f16"] = True  # enable f16; only where it is used keeps other keys unchanged
        return options

    def launch(
        self,
        build: KernelBuild,
        grid: Dim3,
        block: Dim3,
        args: Sequence[Any],
        *,
        checked: bool | None = None,
    ) -> None:
        """Runs the build over ``grid`` x ``block``; arrays in ``args`` are updated in place."""
        module = build.module
        fn = module.get(build.kernel_name)
        grid, block = as_tuple(grid), as_tuple(block)
        groups = self._memory_groups(fn, args)
        variant = self._variant(fn, groups, checked)
        with self._lock:
            compiled = self._pipeline(build, fn, block, variant)
            self._run(compiled, module, fn, grid, args, groups)

    def _variant(self, fn: Function, groups: list[MemoryGroup], checked: bool | None) -> _Variant:
        aliases = tuple(
            (fn.name, fn.params[i].name, fn.params[g.members[0]].name)
            for g in groups for i in g.members[1:]
        )
        return _Variant(aliases, bool(checked), self.loop_limited)

    def _memory_groups(self, fn: Function, args: Sequence[Any]) -> list[MemoryGroup]:
        """Array arguments by shared memory; a partial overlap is a LaunchError."""
        indices = [i for i, p in enumerate(fn.params) if isinstance(p.type, ArrayType)]
        groups = memory_groups(args, indices)
        for g in groups:
            if not g.identical:
                names = ", ".join(f"'{fn.params[i].name}'" for i in g.members)
                raise LaunchError(
                    f"arguments {names} of kernel '{fn.name}' overlap in memory but are not "
                    "the same array; the wgpu backend can pass one array for several "
                    "parameters, not overlapping views of different extent, offset or dtype "
                    "(pass the same array, or copies)"
                )
        return groups

    # --- limits ---

    def _check_dims(self, fn: Function, grid: Dim3, block: Dim3) -> None:
        lim = self.limits
        where = f"kernel '{fn.name}' on wgpu ({self.adapter_name})"
        for axis, size in zip("xyz", block):
            top = lim[f"max-compute-workgroup-size-{axis}"]
            if size > top:
                raise LaunchError(f"block {block} is too large for {where}: {axis} <= {top}")
        threads = block[0] * block[1] * block[2]
        top = lim["max-compute-invocations-per-workgroup"]
        if threads > top:
            raise LaunchError(
                f"block {block} has {threads} threads; {where} allows at most {top} per block"
            )
        top = lim["max-compute-workgroups-per-dimension"]
        if any(g > top for g in grid):
            raise LaunchError(
                f"grid {grid} is too large for {where}: at most {top} blocks per dimension"
            )
        shared = sum(
            (s.result.type.size or 0) * 4
            for s in walk(fn.body)
            if isinstance(s, SharedArray) and isinstance(s.result.type, ArrayType)
        )
        top = lim["max-compute-workgroup-storage-size"]
        if shared > top:
            raise LaunchError(
                f"kernel '{fn.name}' uses {shared} bytes of shared memory; "
                f"{where} allows {top}"
            )

    def _check_bindings(self, fn: Function, plan: KernelBindings, variant: _Variant) -> None:
        top = self.limits["max-storage-buffers-per-shader-stage"]
        # The status buffer, and the lengths when checked, are storage buffers too.
        extra = (1 + variant.checked) if variant.status else 0
        if len(plan.arrays) + extra > top:
            raise LaunchError(
                f"kernel '{fn.name}' has {len(plan.arrays)} array parameters"
                + (f" and needs {extra} more storage buffers for its checks" if extra else "")
                + f"; the wgpu adapter ({self.adapter_name}) binds at most {top}"
            )
        top = self.limits["max-bindings-per-bind-group"]
        if plan.binding_count > top:
            raise LaunchError(
                f"kernel '{fn.name}' needs {plan.binding_count} bindings; at most {top} fit"
            )

    # --- compile ---

    def _pipeline(
        self, build: KernelBuild, fn: Function, block: Dim3, variant: _Variant
    ) -> _Pipeline:
        import wgpu

        key = (module_digest(build.module), fn.name, block, variant)
        cached = self._pipelines.get(key)
        if cached is not None:
            return cached
        plan = plan_kernel_bindings(fn, variant.aliases)
        self._check_bindings(fn, plan, variant)
        text = build.text
        label = f"<wgsl:{fn.name}>"
        shader = create_shader_module(self.device, text, label)
        entries = [
            {
                "binding": a.binding,
                "visibility": wgpu.ShaderStage.COMPUTE,
                "buffer": {"type": wgpu.BufferBindingType.storage},
            }
            for a in plan.arrays
        ]
        if plan.uniform_binding is not None:
            entries.append({
                "binding": plan.uniform_binding,
                "visibility": wgpu.ShaderStage.COMPUTE,
                "buffer": {"type": wgpu.BufferBindingType.uniform},
            })
        try:
            layout = self.device.create_bind_group_layout(entries=entries)
            layouts = [layout]
            status_layout = None
            if variant.status:
                status_layout = self.device.create_bind_group_layout(
                    entries=status_layout_entries(variant.checked)
                )
                layouts.append(status_layout)
            pipeline = self.device.create_compute_pipeline(
                layout=self.device.create_pipeline_layout(bind_group_layouts=layouts),
                compute={"module": shader, "entry_point": plan.entry_point},
            )
        except wgpu.GPUError as exc:
            raise naga_error(exc, text, label) from None
        compiled = self._pipelines[key] = _Pipeline(
            pipeline, layout, status_layout, plan, variant
        )
        return compiled

    # --- run ---

    def _run(
        self,
        compiled: _Pipeline,
        module: Module,
        fn: Function,
        grid: Dim3,
        args: Sequence[Any],
        groups: list[MemoryGroup],
    ) -> None:
        device = self.device
        plan = compiled.bindings
        variant = compiled.variant
        memory = self.memory
        arrays = [args[a.index] for a in plan.arrays]
        batched = all(isinstance(x, DeviceArray) for x in arrays) and not variant.checked
        with memory.lock:
            if not batched:
                memory.flush()  # launches recorded earlier run first
            encoder = memory.encoder() if batched else device.create_command_encoder()
            keep: list[Any] = [arrays]
            entries, copies, staged = self._bind_arrays(fn, plan, args, encoder, keep)
            if plan.uniform_binding is not None:
                ubuf = device.create_buffer_with_data(
                    data=self._uniform(plan, args), usage=wgpu_usage().UNIFORM
                )
                keep.append(ubuf)
                entries.append({"binding": plan.uniform_binding, "resource": {"buffer": ubuf}})
            bind_group = device.create_bind_group(layout=compiled.layout, entries=entries)
            status = None
            if variant.status:
                lengths = None
                if variant.checked:
                    lengths = [
                        args[i].size for i, p in enumerate(fn.params) if isinstance(p.type, ArrayType)
                    ]
                status_group, status = status_bind_group(device, compiled.status_layout, lengths)
                keep.append(status_group)
            compute = encoder.begin_compute_pass()
            compute.set_pipeline(compiled.pipeline)
            compute.set_bind_group(0, bind_group)
            if status is not None:
                compute.set_bind_group(1, status_group)
            compute.dispatch_workgroups(*grid)
            compute.end()
            for src, src_offset, dst, dst_offset, size in copies:
                encoder.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, size)
            keep.append(bind_group)
            if batched:
                check = None
                if status is not None:
                    check = self._deferred_check(fn, status)
                memory.recorded(keep, check)
                return
            device.queue.submit([encoder.finish()])
            words = read_status(device, status) if status is not None else None
        try:
            if words is not None:
                cut = loop_limit_error(
                    words, f"kernel '{fn.name}'", f"the adapter ({self.adapter_name})"
                )
                if cut is not None:
                    raise cut
            for a, host, buf in staged:
                if host.size == 0:
                    continue
                dtype = np.uint32 if a.elem == "bool" else host.dtype
                raw = np.frombuffer(device.queue.read_buffer(buf), dtype=dtype)[: host.size]
                if a.elem == "bool":
                    raw = raw != 0
                np.copyto(host, raw.reshape(host.shape))
        finally:
            for _, _, buf in staged:
                buf.destroy()
        if words is not None:
            error = bounds_error(
                words, fn.name, self._storage_names(fn, groups),
                lambda: shared_array_labels(run_default_pipeline(module), fn.name),
            )
            if error is not None:
                raise error

    def _bind_arrays(
        self, fn: Function, plan: KernelBindings, args: Sequence[Any], encoder: Any, keep: list[Any]
    ) -> tuple[list[dict[str, Any]], list[tuple[Any, int, Any, int, int]], list[tuple[Any, Any, Any]]]:
        """Bind-group entries for the arrays, device copies to make after the pass, numpy staging.

        A device array binds its own buffer (no copy); one whose offset the
        adapter cannot bind (a slice not on the offset alignment) is copied to
        a scratch buffer on the device, and back after the pass.  A numpy
        array is uploaded into a new buffer and read back after the launch.
        """
        device = self.device
        usage = wgpu_usage()
        entries: list[dict[str, Any]] = []
        copies: list[tuple[Any, int, Any, int, int]] = []
        staged: list[tuple[Any, Any, Any]] = []
        align = self.limits["min-storage-buffer-offset-alignment"]
        for a in plan.arrays:
            host = args[a.index]
            if isinstance(host, DeviceArray):
                size = max((host.nbytes + 3) // 4 * 4, 4)  # bindings are whole words (8/16-bit data)
                buf, offset = host.buffer, host.offset
                if offset % align:
                    scratch = device.create_buffer(
                        size=size, usage=usage.STORAGE | usage.COPY_SRC | usage.COPY_DST
                    )
                    keep.append(scratch)
                    if host.nbytes:
                        encoder.copy_buffer_to_buffer(buf, offset, scratch, 0, host.nbytes)
                        copies.append((scratch, 0, buf, offset, host.nbytes))
                    buf, offset = scratch, 0
                entries.append({
                    "binding": a.binding,
                    "resource": {"buffer": buf, "offset": offset, "size": size},
                })
                continue
            data = host.astype(np.uint32) if a.elem == "bool" else host
            size = max((data.nbytes + 3) // 4 * 4, 4)
            self._check_buffer(fn, a.param, size)
            buf = device.create_buffer(
                size=size, usage=usage.STORAGE | usage.COPY_SRC | usage.COPY_DST
            )
            if data.nbytes:
                device.queue.write_buffer(buf, 0, _padded(np.ascontiguousarray(data), size))
            staged.append((a, host, buf))
            entries.append({"binding": a.binding, "resource": {"buffer": buf}})
        return entries, copies, staged

    @staticmethod
    def _uniform(plan: KernelBindings, args: Sequence[Any]) -> bytes:
        uniform = bytearray(plan.uniform_size)
        for f in plan.scalars:
            value = args[f.index]
            if f.type == "bool":
                value = int(bool(value))
            elif f.type in ("f32", "f16"):
                value = float(value)
            else:
                value = int(value)
            struct.pack_into(_PACK[f.type], uniform, f.offset, value)
        return bytes(uniform)

    def _deferred_check(self, fn: Function, status: Any) -> Callable[[], Exception | None]:
        """The loop-guard check of a batched launch, run when its batch is waited for."""
        device, adapter = self.device, f"the adapter ({self.adapter_name})"

        def check() -> Exception | None:
            return loop_limit_error(read_status(device, status), f"kernel '{fn.name}'", adapter)

        return check

    @staticmethod
    def _storage_names(fn: Function, groups: list[MemoryGroup]) -> dict[int, str]:
        """Binding number -> the parameter whose array it holds (and its aliases)."""
        arrays = [i for i, p in enumerate(fn.params) if isinstance(p.type, ArrayType)]
        names = {}
        for g in groups:
            head, *rest = (f"'{fn.params[i].name}'" for i in g.members)
            label = f"{head} (also passed as {', '.join(rest)})" if rest else head
            names[arrays.index(g.members[0])] = label
        return names

    def _check_buffer(self, fn: Function, param: str, size: int) -> None:
        top = min(self.limits["max-storage-buffer-binding-size"], self.limits["max-buffer-size"])
        if size > top:
            raise LaunchError(
                f"argument '{param}' of kernel '{fn.name}' is {size} bytes; "
                f"the wgpu adapter ({self.adapter_name}) binds at most {top} bytes per buffer"
            )


def wgpu_usage() -> Any:
    import wgpu

    return wgpu.BufferUsage


_MEMORIES: dict[int, WgpuMemory] = {}


def _memory(device: Any, limits: dict[str, Any], adapter_name: str) -> WgpuMemory:
    """The device's one device-array memory, shared by every WgpuBackend on it."""
    memory = _MEMORIES.get(id(device))
    if memory is None:
        top = min(limits["max-storage-buffer-binding-size"], limits["max-buffer-size"])
        memory = _MEMORIES[id(device)] = WgpuMemory(device, top, adapter_name)
    return memory


def _padded(data: np.ndarray, size: int) -> Any:
    """``data``'s bytes padded to ``size``: wgpu writes whole words (an f16 array of odd length)."""
    if data.nbytes == size:
        return data
    raw = np.zeros(size, np.uint8)
    raw[: data.nbytes] = data.reshape(-1).view(np.uint8)
    return raw

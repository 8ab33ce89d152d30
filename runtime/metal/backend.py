"""The metal backend: MSL kernels on Apple GPUs through pyobjc-framework-Metal.

macOS only.  The MSL comes from the same pipeline as every target (the
facade compiles it for the ``msl`` target); it is compiled with fast math off so
results follow IEEE like the other backends.  Each launch copies the arrays
into shared-storage buffers, passes scalars with ``setBytes``, dispatches
``grid`` threadgroups of ``block`` threads and copies every array back into
the caller's numpy array in place.  Device arrays (``memory.py``) are bound
where they live, at their offset; a launch whose arrays are all device
arrays is committed and not waited for.  Pipelines are cached per (module,
kernel).

Arguments that share memory (``k(x, x)``, overlapping views) share one Metal
buffer: each group of overlapping arrays (:mod:`ringkernel.runtime.aliasing`)
is copied in once as one span, every member is bound at its byte offset in
it, and the span is copied back once, so aliased parameters behave as on CUDA.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ringkernel.lowering.msl import MslKernel, msl_kernel_info
from ringkernel.ringir import ArrayType, Function, Module, SharedArray, walk
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.runtime import module_digest
from ringkernel.runtime.aliasing import memory_groups
from ringkernel.runtime.arguments import LaunchError, as_tuple, check_dims
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.metal.memory import MetalMemory, describe

Dim3 = tuple[int, int, int]


class _Unavailable(Exception):
    pass


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[Any, Any] | str:
    """(Metal module, default device), or the reason Metal cannot run here."""
    if sys.platform != "darwin":
        return f"Metal exists only on macOS (this is {sys.platform})"
    try:
        import Metal
    except ImportError:
        return "pyobjc-framework-Metal is not installed (pip install 'ringkernel[metal]')"
    try:
        device = Metal.MTLCreateSystemDefaultDevice()
    except Exception as exc:  # pyobjc bridges arbitrary ObjC failures
        return f"creating the Metal device failed: {exc}"
    if device is None:
        return "this Mac reports no Metal device"
    return Metal, device


def _metal() -> tuple[Any, Any]:
    probed = _probe()
    if isinstance(probed, str):
        raise _Unavailable(probed)
    return probed


class MetalBackend:
    """Runs kernels as MSL compute pipelines on the system's default Metal device."""

    name = "metal"
    target = "msl"

    @classmethod
    def available(cls) -> bool:
        try:
            return not isinstance(_probe(), str)
        except Exception:
            return False

    @classmethod
    def unavailable_reason(cls) -> str:
        probed = _probe()
        return probed if isinstance(probed, str) else ""

    def __init__(self, metal: tuple[Any, Any] | None = None) -> None:
        """``metal``: the (Metal module, device) to use; the system default device when None."""
        self.Metal, self.device = metal if metal is not None else _metal()
        self.queue = self.device.newCommandQueue()
        self.memory = MetalMemory(self.Metal, self.device)
        self._pipelines: dict[tuple[str, str], tuple[Any, MslKernel]] = {}
        self._lock = threading.Lock()

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
        """MSL needs no options: every variant is decided at launch."""
        check_dims(as_tuple(grid), as_tuple(block))
        return {}

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
        fn = build.module.get(build.kernel_name)
        grid, block = as_tuple(grid), as_tuple(block)
        with self._lock:
            pipeline, info = self.pipeline(build)
            self._check_dims(fn, pipeline, block)
            self._run(pipeline, info, grid, block, args)

    def _check_dims(self, fn: Function, pipeline: Any, block: Dim3) -> None:
        threads = block[0] * block[1] * block[2]
        top = int(pipeline.maxTotalThreadsPerThreadgroup())
        if threads > top:
            raise LaunchError(
                f"block {block} has {threads} threads; kernel '{fn.name}' on Metal allows {top}"
            )
        limit = self.device.maxThreadsPerThreadgroup()
        for axis, size, top in zip("xyz", block, (limit.width, limit.height, limit.depth)):
            if size > top:
                raise LaunchError(f"block {block} is too large for Metal: {axis} <= {top}")
        shared = sum(
            (s.result.type.size or 0) * s.result.type.elem.nbytes
            for s in walk(fn.body)
            if isinstance(s, SharedArray) and isinstance(s.result.type, ArrayType)
        )
        top = int(self.device.maxThreadgroupMemoryLength())
        if shared > top:
            raise LaunchError(
                f"kernel '{fn.name}' uses {shared} bytes of shared memory; Metal allows {top}"
            )

    def pipeline(self, build: KernelBuild) -> tuple[Any, MslKernel]:
        key = (module_digest(build.module), build.kernel_name)
        cached = self._pipelines.get(key)
        if cached is not None:
            return cached
        Metal = self.Metal
        text = build.text
        info = msl_kernel_info(build.module)[build.kernel_name]
        options = Metal.MTLCompileOptions.alloc().init()
        options.setFastMathEnabled_(False)
        version = getattr(Metal, "MTLLanguageVersion3_0", None)
        if version is not None:
            options.setLanguageVersion_(version)
        library, error = self.device.newLibraryWithSource_options_error_(text, options, None)
        if library is None:
            raise CompileError(f"the Metal compiler rejected the MSL: {describe(error)}")
        function = library.newFunctionWithName_(info.entry)
        if function is None:
            raise CompileError(f"the Metal library has no function '{info.entry}'")
        pipeline, error = self.device.newComputePipelineStateWithFunction_error_(function, None)
        if pipeline is None:
            raise CompileError(f"creating the Metal pipeline failed: {describe(error)}")
        self._pipelines[key] = (pipeline, info)
        return pipeline, info

    def _run(
        self, pipeline: Any, info: MslKernel, grid: Dim3, block: Dim3, args: Sequence[Any]
    ) -> None:
        Metal = self.Metal
        command = self.queue.commandBuffer()
        encoder = command.computeCommandEncoder()
        encoder.setComputePipelineState_(pipeline)
        spans = array_spans(info, args)
        copies = [(span, self._buffer(span)) for span, _ in spans]
        for (_, members), (_, buffer) in zip(spans, copies):
            for index, offset in members:
                encoder.setBuffer_offset_atIndex_(buffer, offset, index)
        on_device = False
        for param, arg in zip(info.params, args):
            if not param.is_array:
                data = np.asarray(arg, dtype=param.type.numpy_dtype).tobytes()
                encoder.setBytes_length_atIndex_(data, len(data), param.index)
            elif not isinstance(arg, np.ndarray):  # a device array: bound where it lives
                encoder.setBuffer_offset_atIndex_(arg.buffer, arg.offset, param.index)
                on_device = True
        encoder.dispatchThreadgroups_threadsPerThreadgroup_(
            Metal.MTLSizeMake(*grid), Metal.MTLSizeMake(*block)
        )
        encoder.endEncoding()
        command.commit()
        if on_device:
            self.memory.committed(command)
            if not copies:
                return  # asynchronous: .numpy() and rk.synchronize() wait
            self.memory.synchronize()
        else:
            command.waitUntilCompleted()
            if command.status() == Metal.MTLCommandBufferStatusError:
                raise RuntimeError(f"the Metal kernel failed: {describe(command.error())}")
        for span, buffer in copies:
            if span.nbytes:
                raw = buffer.contents().as_buffer(span.nbytes)
                span[:] = np.frombuffer(raw, dtype=np.uint8)

    def _buffer(self, array: np.ndarray) -> Any:
        """A shared-storage buffer holding a copy of ``array``'s bytes (4 bytes if empty)."""
        storage = self.Metal.MTLResourceStorageModeShared
        if array.nbytes == 0:
            return self.device.newBufferWithLength_options_(4, storage)
        return self.device.newBufferWithBytes_length_options_(
            array.tobytes(), array.nbytes, storage
        )


def array_spans(
    info: MslKernel, args: Sequence[Any]
) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
    """One uint8 span per group of numpy arrays sharing memory, with ``(buffer index,
    byte offset)`` of each array parameter in it; a misaligned member is a LaunchError.
    Device arrays are not copied and so are in no span."""
    positions = [k for k, p in enumerate(info.params) if p.is_array and isinstance(args[k], np.ndarray)]
    result = []
    for group in memory_groups(args, positions):
        members = []
        for k, offset in zip(group.members, group.offsets):
            param = info.params[k]
            if offset % args[k].itemsize:
                raise LaunchError(
                    f"argument '{param.name}' of kernel '{info.name}' overlaps another array "
                    f"at byte offset {offset}, which is not a multiple of its element size"
                )
            members.append((param.index, offset))
        result.append((group.span(args), members))
    return result

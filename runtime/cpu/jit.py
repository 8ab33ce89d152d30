"""JIT compilation of host kernels with llvmlite's MCJIT, cached per module and kernel.

The cache key is the SHA-256 of the module's canonical RingIR text (which
holds every callee) plus the kernel name, the barrier strategy and whether
array accesses are bounds-checked (a different build), so editing one kernel
never reuses another's machine code.  Engines live as long as the process.

A kernel with barriers is first offered to
:func:`~ringkernel.ringir.passes.workitem_loops.to_workitem_loops`; if that
cannot prove the rewrite right it runs one thread per work-item, and
``CompiledKernel.fallback_reason`` says why.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass

import llvmlite.binding as llvm

from ringkernel.lowering.llvm import HostTarget, build_ir_module, optimize, prepare
from ringkernel.lowering.llvm.bounds import BoundsSite
from ringkernel.lowering.llvm.codegen import host_machine
from ringkernel.lowering.llvm.host_entry import (
    LOOPS,
    PLAIN,
    THREADS,
    add_launch_wrapper,
    launch_symbol,
    uses_barrier,
)
from ringkernel.ringir import Module, verify
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.passes.workitem_loops import NotTransformable, to_workitem_loops
from ringkernel.runtime import module_digest

LaunchFn = ctypes.CFUNCTYPE(
    ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
    ctypes.c_void_p,
)
_NEVER_CANCELLED = ctypes.c_int32(0)


@dataclass
class CompiledKernel:
    """A kernel's launch wrapper in native code; ``engine`` keeps the code alive.

    ``mode`` is how a block's work-items run: ``"plain"`` (no barrier),
    ``"loops"`` (work-item loops) or ``"threads"`` (one OS thread each);
    ``fallback_reason`` says why a kernel with barriers got ``"threads"``.
    A bounds-checked build (``checked``) lists its checked accesses in
    ``bounds_sites``, indexed by the violation record's site number.
    """

    engine: llvm.ExecutionEngine
    native: ctypes._CFuncPtr
    mode: str
    fallback_reason: str = ""
    checked: bool = False
    bounds_sites: tuple[BoundsSite, ...] = ()

    @property
    def threaded(self) -> bool:
        return self.mode == THREADS

    def launch(self, argv: object, dims: object, first: int, end: int,
               cancel: object = None) -> int:
        """Runs blocks ``first .. end-1``; ``cancel`` (a ``c_int32``) stops it between blocks."""
        flag = _NEVER_CANCELLED if cancel is None else cancel
        return self.native(argv, dims, first, end, ctypes.byref(flag))


_cache: dict[tuple[str, str, bool, bool], CompiledKernel] = {}
_lock = threading.Lock()



def compile_kernel(
    module: Module, kernel_name: str, workitem_loops: bool = True, *, checked: bool = False
) -> CompiledKernel:
    """The JIT-compiled launch wrapper of ``kernel_name``, built once per module text.

    ``workitem_loops=False`` forces one thread per work-item for kernels with
    barriers; ``checked=True`` bounds-checks every array access.
    """
    with _lock:
        key = (module_digest(module), kernel_name, workitem_loops, checked)
        compiled = _cache.get(key)
        if compiled is None:
            compiled = _cache[key] = _build(module, kernel_name, workitem_loops, checked)
    return compiled


def _build(module: Module, kernel_name: str, workitem_loops: bool, checked: bool) -> CompiledKernel:
    """Verifies and optimizes the RingIR (as ``compile()`` does), then lowers and JITs it."""
    from ringkernel.compiler import optimize as optimize_ir

    module = optimize_ir(verify(module))
    mode, reason = PLAIN, ""
    if uses_barrier(module.get(kernel_name)):
        mode, reason = THREADS, "work-item loops were not requested"
        if workitem_loops:
            try:
                module = verify(to_workitem_loops(module, kernel_name))
                mode, reason = LOOPS, ""
            except NotTransformable as exc:
                reason = str(exc)
            except CompileError as exc:  # a bug in the rewrite must not cost correctness
                reason = f"internal error in the work-item loop rewrite: {exc}"
    fn = module.get(kernel_name)
    target = HostTarget(bounds_checks=checked)
    llmod = build_ir_module(module, target, name=f"ringkernel.{kernel_name}")
    add_launch_wrapper(llmod, fn, mode, checked)
    machine = host_machine()
    ref = optimize(prepare(llmod, machine), machine)
    _resolve_external_symbols(ref)
    engine = llvm.create_mcjit_compiler(ref, machine)
    engine.finalize_object()
    address = engine.get_function_address(launch_symbol(kernel_name))
    return CompiledKernel(
        engine, LaunchFn(address), mode, reason, checked, tuple(target.bounds_sites)
    )


def _system_libraries() -> list[ctypes.CDLL]:
    libs = [ctypes.CDLL(None)]
    for name in ("m", "pthread", "c"):
        path = ctypes.util.find_library(name)
        if path:
            try:
                libs.append(ctypes.CDLL(path))
            except OSError:
                continue
    return libs


def _resolve_external_symbols(ref: llvm.ModuleRef) -> None:
    """Makes libc/libm/pthread functions the module calls known to the JIT linker."""
    libs = None
    for fn in ref.functions:
        if not fn.is_declaration or fn.name.startswith("llvm.") or llvm.address_of_symbol(fn.name):
            continue
        libs = libs or _system_libraries()
        for lib in libs:
            try:
                address = ctypes.cast(getattr(lib, fn.name), ctypes.c_void_p).value
            except AttributeError:
                continue
            llvm.add_symbol(fn.name, address)
            break

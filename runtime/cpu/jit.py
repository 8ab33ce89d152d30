"""JIT compilation of host kernels with llvmlite's MCJIT, cached per compiled text.

The text is the ``host`` target's (:mod:`ringkernel.lowering.llvm.host`),
compiled by the facade: this module only parses and JITs it.  Its cache is
keyed by that text (one string object per compile-cache entry, so a warm
lookup hashes nothing) and the kernel name.  Engines live as long as the
process.

How a block's work-items run (``CompiledKernel.mode``) is recomputed from the
module by the same deterministic plan the lowering used
(:func:`~ringkernel.ringir.passes.workitem_loops.plan_block`), and the
bounds-check sites of a checked build are recomputed only when a launch needs
them for an error message.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import llvmlite.binding as llvm

from ringkernel.lowering.llvm.bounds import BoundsSite
from ringkernel.lowering.llvm.codegen import host_machine
from ringkernel.lowering.llvm.host import host_bounds_sites
from ringkernel.lowering.llvm.host_entry import launch_symbol
from ringkernel.ringir import Module, verify
from ringkernel.ringir.passes import run_default_pipeline
from ringkernel.ringir.passes.workitem_loops import GRID, THREADS, plan_block
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cpu.symbols import resolve_external_symbols

LaunchFn = ctypes.CFUNCTYPE(
    ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
    ctypes.c_void_p,
)
_NEVER_CANCELLED = ctypes.c_int32(0)


@dataclass
class CompiledKernel:
    """A kernel's launch wrapper in native code; ``engine`` keeps the code alive.

    ``mode`` is how a block's work-items run: ``"plain"`` (no barrier),
    ``"loops"`` (work-item loops), ``"coroutines"`` (one coroutine each),
    ``"threads"`` (one OS thread each) or ``"grid"`` (grid_sync: one OS thread
    per work-item of the whole grid, all at once); ``fallback_reason`` says why a kernel
    with barriers did not get ``"loops"``.
    A bounds-checked build (``checked``) lists its checked accesses in
    ``bounds_sites``, indexed by the violation record's site number.
    """

    engine: llvm.ExecutionEngine
    native: Callable[..., int]  # a ctypes function pointer
    address: int  # of the launch wrapper, for the worker pool
    mode: str
    fallback_reason: str = ""
    checked: bool = False
    _sites: Callable[[], tuple[BoundsSite, ...]] | None = field(default=None, repr=False)

    @property
    def threaded(self) -> bool:
        return self.mode in (THREADS, GRID)

    @property
    def cooperative(self) -> bool:
        """The kernel syncs the grid: one native call runs every block at once (never split)."""
        return self.mode == GRID

    @functools.cached_property
    def bounds_sites(self) -> tuple[BoundsSite, ...]:
        return self._sites() if self.checked and self._sites is not None else ()

    def launch(self, argv: object, dims: object, first: int, end: int,
               cancel: ctypes.c_int32 | None = None) -> int:
        """Runs blocks ``first .. end-1``; ``cancel`` (a ``c_int32``) stops it between blocks."""
        flag = _NEVER_CANCELLED if cancel is None else cancel
        return self.native(argv, dims, first, end, ctypes.byref(flag))


_cache: dict[tuple[str, str], CompiledKernel] = {}
_lock = threading.Lock()


class ObjectStore(Protocol):
    """Where compiled machine code is kept between processes."""

    def load(self, key: str) -> bytes | None: ...

    def store(self, key: str, data: bytes) -> None: ...


_object_store: ObjectStore | None = None


def use_object_store(store: ObjectStore | None) -> None:
    """Keeps each kernel's machine code in ``store``, so a new process skips LLVM's code
    generation (tens of ms a kernel).  The facade passes its disk cache (the runtime may not
    import it); the key covers the kernel's text, the target machine and LLVM's version."""
    global _object_store
    _object_store = store


def _object_key(text: str, triple: str, cpu: object, features: object) -> str:
    digest = hashlib.sha256()
    version = ".".join(map(str, llvm.llvm_version_info))
    for part in ("machine code", text, triple, str(cpu), str(features), version):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def jit_kernel(build: KernelBuild) -> CompiledKernel:
    """The JIT-compiled launch wrapper of a ``host`` build, made once per text."""
    key = (build.text, build.kernel_name)
    compiled = _cache.get(key)
    if compiled is None:
        with _lock:
            compiled = _cache.get(key)
            if compiled is None:
                compiled = _cache[key] = _build(build)
    return compiled


_plans: dict[tuple[int, str, bool], tuple[weakref.ref[Module], tuple[str, str]]] = {}


def block_plan(module: Module, kernel_name: str, workitem_loops: bool) -> tuple[str, str]:
    """(mode, reason) of ``kernel_name``, as the ``host`` lowering decided it.

    Remembered per module object: planning runs the pass pipeline (~15 ms for
    a tiled matmul), and a launch with a new block shape asks again."""
    key = (id(module), kernel_name, workitem_loops)
    known = _plans.get(key)
    if known is not None and known[0]() is module:
        return known[1]
    plan = plan_block(run_default_pipeline(verify(module)), kernel_name, workitem_loops)
    _plans[key] = (weakref.ref(module, lambda _ref: _plans.pop(key, None)), (plan.mode, plan.reason))
    return plan.mode, plan.reason


def _object_callbacks(
    store: ObjectStore, key: str
) -> tuple[Callable[..., None], Callable[..., bytes | None]]:
    """MCJIT's (notify, getbuffer) over ``store``; a failing store only costs the cache
    (an exception would be printed from inside the JIT and ignored)."""

    def notify(_module: object, data: bytes) -> None:
        try:
            store.store(key, data)
        except Exception:  # noqa: BLE001 - any failure of a cache is a miss
            pass

    def getbuffer(_module: object) -> bytes | None:
        try:
            return store.load(key)
        except Exception:  # noqa: BLE001
            return None

    return notify, getbuffer


def _build(build: KernelBuild) -> CompiledKernel:
    name = build.kernel_name
    loops = bool(build.options.get("workitem_loops", True))
    checked = bool(build.options.get("checked", False))
    noalias = bool(build.options.get("noalias", False))
    mode, reason = block_plan(build.module, name, loops)
    machine = host_machine(build.options.get("cpu"), build.options.get("features"))
    ref = llvm.parse_assembly(build.text)
    ref.verify()
    resolve_external_symbols(ref)
    engine = llvm.create_mcjit_compiler(ref, machine)
    store = _object_store
    if store is not None:
        key = _object_key(build.text, machine.triple, build.options.get("cpu"), build.options.get("features"))
        engine.set_object_cache(*_object_callbacks(store, key))
    engine.finalize_object()
    address = engine.get_function_address(launch_symbol(name))

    def sites() -> tuple[BoundsSite, ...]:
        return host_bounds_sites(run_default_pipeline(verify(build.module)), name, loops, noalias)

    return CompiledKernel(engine, LaunchFn(address), address, mode, reason, checked, sites)

"""The compile pipeline, top to bottom: verify, optimize, emit, cache.

Every target's text is reachable without a GPU.  Emitters live in
``ringkernel.lowering.<target>`` and are imported on first use, so importing
``ringkernel`` stays cheap.  Compiled text is cached in memory and on disk
(``ringkernel.cache``), keyed by the input module's fingerprint.
"""

from __future__ import annotations

import importlib
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from ringkernel import cache as disk_cache
from ringkernel.ringir import Module, verify
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.passes import run_default_pipeline
from ringkernel.ringir.passes.dynamic_shared import size_dynamic_shared
from ringkernel.ringir.passes.fingerprint import fingerprint

TARGETS = ("rir", "llvm", "ptx", "wgsl", "msl")
# Targets only runtimes ask for (through the facade): not offered by ringc or compile().
INTERNAL_TARGETS = ("host",)

# target -> (module, function) of its emitter: emit(module: Module, **options) -> str
_EMITTERS = {
    "llvm": ("ringkernel.lowering.llvm", "lower_module_to_llvm"),
    "llvm/nvptx": ("ringkernel.lowering.cuda", "lower_module_to_nvptx_llvm"),
    "ptx": ("ringkernel.lowering.cuda", "lower_module_to_ptx"),
    "wgsl": ("ringkernel.lowering.wgsl", "lower_module_to_wgsl"),
    "msl": ("ringkernel.lowering.msl", "lower_module_to_msl"),
    "host": ("ringkernel.lowering.llvm.host", "lower_module_to_host"),
}

_memory_cache: dict[str, str] = {}
# read at each call: the variables that join a key may change (tests patch them)
_fingerprint_module = importlib.import_module("ringkernel.ringir.passes.fingerprint")


def compile_module(module: Module, target: str, *, cache: bool = True, **options: Any) -> str:
    """Verifies, optimizes and lowers ``module`` to ``target`` text.

    The cache key is the fingerprint of the module as given (the passes are a
    pure function of it, and the disk cache's build id covers their code), so
    a hit skips the optimizer as well as the emitter.  ``cache=False`` skips
    both caches (the emitter always runs), as ``ringc --no-cache``.
    """
    if target not in TARGETS and target not in INTERNAL_TARGETS:
        raise CompileError(f"unknown target '{target}'; choose one of: {', '.join(TARGETS)}")
    verify(module)
    elements = options.pop("dynamic_shared", None)
    if target != "rir" or elements is not None:
        module = sized_module(module, elements)
    if target == "rir":
        return str(module)
    key = _cache_key(module, target, options) if cache else None
    text = _lookup(key)
    if text is None:
        emitter, emit_options = _route(target, options)
        text = _emitter(emitter)(optimize(module), **emit_options)
        _store(key, text)  # only reached when the emitter succeeded
    return text


# (id(module), elements) -> (the module, the sized module or None for "the module itself")
_sized: dict[tuple[int, int | None], tuple[weakref.ref[Module], Module | None]] = {}


def sized_module(module: Module, elements: int | None) -> Module:
    """``module`` with its dynamic shared arrays holding ``elements`` elements (remembered per
    module object, so a warm launch keeps one module and its cache key).

    A module without dynamic arrays is remembered too: finding that out walks
    every statement, most of a memory-cache hit's time before."""
    key = (id(module), elements)
    known = _sized.get(key)
    if known is not None and known[0]() is module:
        return module if known[1] is None else known[1]
    result = size_dynamic_shared(module, elements)
    ref = weakref.ref(module, lambda _ref: _sized.pop(key, None))
    _sized[key] = (ref, None if result is module else result)
    return result


def clear_memory_cache() -> None:
    """Forgets every compiled text held in memory (the disk cache is left alone)."""
    _memory_cache.clear()


def _lookup(key: str | None) -> str | None:
    if key is None:
        return None
    text = _memory_cache.get(key)
    if text is None:
        text = disk_cache.load(key)
        if text is not None:
            _memory_cache[key] = text
    return text


def _store(key: str | None, text: str) -> None:
    if key is not None:
        disk_cache.store(key, text)
        _memory_cache[key] = text


_runtime_uses_caches = False


def use_caches_in_runtime() -> None:
    """Hands the runtime this pipeline's caches for what it compiles itself: the cpu JIT keeps
    machine code on disk and the actor queue kernels come through :func:`compile_module`.
    (The runtime may not import the facade, so the facade passes them down; once per process.)"""
    global _runtime_uses_caches
    if _runtime_uses_caches:
        return
    from ringkernel.runtime import native_queue
    from ringkernel.runtime.cpu import jit

    jit.use_object_store(disk_cache.ObjectCache())
    native_queue.use_host_compiler(lambda module, options: compile_module(module, "host", **options))
    _runtime_uses_caches = True


def optimize(module: Module) -> Module:
    """Runs the standard pass pipeline (constant folding, dead-code elimination)."""
    return run_default_pipeline(module)


# id(module) -> (module, {(target, options, env): key}): printing a module for
# its fingerprint costs far more than a warm launch, which asks for the same
# module object again and again.
_keys: dict[int, tuple[weakref.ref[Module], dict[tuple[Any, ...], str]]] = {}
_keys_lock = threading.Lock()


def _cache_key(module: Module, target: str, options: dict[str, Any]) -> str:
    """``fingerprint(module, target, options)``, remembered per module object.

    The memo is keyed by the options as given (unsorted: a caller passes them
    in one order, and another order only costs one more fingerprint); the
    read takes no lock (one dict lookup is atomic).
    """
    env = _fingerprint_module.CODEGEN_ENV_VARS
    memo_key = (target, tuple(options.items()), tuple(map(os.environ.get, env)) if env else ())
    known = _keys.get(id(module))
    try:
        if known is not None and known[0]() is module:
            key = known[1].get(memo_key)
            if key is not None:
                return key
        hash(memo_key)
    except TypeError:  # an unhashable option value: no memo, still correct
        return fingerprint(module, target, options)
    key = fingerprint(module, target, options)
    mid = id(module)
    with _keys_lock:
        known = _keys.get(mid)
        if known is None or known[0]() is not module:
            known = _keys[mid] = (weakref.ref(module, lambda _ref: _keys.pop(mid, None)), {})
        known[1][memo_key] = key
    return key


def _route(target: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The emitter that makes ``target`` text: LLVM for the ``nvptx`` triple comes from the CUDA lowering."""
    if target == "llvm" and options.get("triple") == "nvptx":
        return "llvm/nvptx", {k: v for k, v in options.items() if k != "triple"}
    return target, options


def _emitter(target: str) -> Callable[..., str]:
    module_name, func_name = _EMITTERS[target]
    return getattr(importlib.import_module(module_name), func_name)

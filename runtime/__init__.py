"""Runtimes: each backend moves bytes to a device and launches compiled kernels.

A backend follows :class:`ringkernel.runtime.backend.Backend`: it names the
compile target it runs and the options its device needs, and launches the
compiled text the facade hands it; it never calls the compiler itself.
Backends are imported on first use.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import threading
import weakref
from typing import Any

# name -> "module:Class", in default-preference order
_BACKENDS = {
    "cuda": "ringkernel.runtime.cuda:CudaBackend",
    "metal": "ringkernel.runtime.metal:MetalBackend",
    "wgpu": "ringkernel.runtime.wgpu:WgpuBackend",
    "cpu": "ringkernel.runtime.cpu:CpuBackend",
}
_instances: dict[str, Any] = {}


_digests: dict[int, tuple[weakref.ref[Any], str]] = {}  # id(module) -> (module, digest)
_digest_lock = threading.Lock()


def module_digest(module: Any) -> str:
    """sha256 of ``module``'s RingIR text: the key runtimes cache compiled code under.

    Printing a module costs far more than a launch, so the digest is remembered
    per module object (kernels launch the same object again and again), for as
    long as that object lives.
    """
    key = id(module)
    with _digest_lock:
        known = _digests.get(key)
        if known is not None and known[0]() is module:
            return known[1]
    digest = hashlib.sha256(str(module).encode("utf-8")).hexdigest()
    with _digest_lock:
        _digests[key] = (weakref.ref(module, lambda _ref: _digests.pop(key, None)), digest)
    return digest


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run on this machine; the message says why."""


def _backend_class(name: str) -> Any:
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend '{name}'; choose one of: {', '.join(_BACKENDS)}")
    module_name, class_name = _BACKENDS[name].split(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise BackendUnavailable(f"backend '{name}' is not available: {exc}") from None


def _is_available(name: str) -> bool:
    try:
        return bool(_backend_class(name).available())
    except BackendUnavailable:
        return False


def backend_status(name: str) -> tuple[bool, str]:
    """Whether backend ``name`` can run here, and if not, why (for skips and error messages)."""
    try:
        cls = _backend_class(name)
    except BackendUnavailable as exc:
        return False, str(exc)
    if cls.available():
        return True, ""
    reason = getattr(cls, "unavailable_reason", lambda: "")() or "not usable here"
    return False, f"backend '{name}' unavailable here: {reason}"


def backends() -> list[str]:
    """Names of the backends usable on this machine, in preference order."""
    return [name for name in _BACKENDS if _is_available(name)]


def backend_reasons() -> dict[str, str]:
    """Every backend, mapped to why it cannot run here (``""`` when it can)."""
    reasons = {}
    for name in _BACKENDS:
        ok, reason = backend_status(name)
        reasons[name] = "" if ok else reason
    return reasons


def default_backend() -> str:
    """``RINGKERNEL_BACKEND`` if set, else cuda, then metal, then cpu.

    wgpu is used only when asked for: on machines without a GPU it runs on a
    software Vulkan driver, slower than the cpu backend.
    """
    chosen = os.environ.get("RINGKERNEL_BACKEND")
    if chosen:
        return chosen
    for name in ("cuda", "metal"):
        if _is_available(name):
            return name
    return "cpu"


def get_backend(name: str | None = None) -> Any:
    """The (shared) backend instance for ``name``; raises if it cannot run here."""
    name = name or default_backend()
    if name not in _instances:
        cls = _backend_class(name)
        if not cls.available():
            reason = getattr(cls, "unavailable_reason", lambda: "")() or "not usable here"
            raise BackendUnavailable(f"backend '{name}' is not available: {reason}")
        _instances[name] = cls()
    return _instances[name]

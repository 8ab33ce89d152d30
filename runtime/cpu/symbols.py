"""libc, libm and pthread functions made known to llvmlite's JIT linker.

Generated code calls a few C library functions (``malloc``, ``expf``,
``pthread_create``...); MCJIT finds only what the process exported, so each
missing one is looked up in the system libraries by name.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import llvmlite.binding as llvm


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


def resolve_external_symbols(ref: llvm.ModuleRef) -> None:
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

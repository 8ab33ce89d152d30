"""Native host helpers (LLVM modules of ``lowering/llvm``) JIT-compiled once per process.

The worker pool, the actor scheduler and the router are functions generated as LLVM IR
(``host_pool``, ``host_sched`` with ``host_router``); each module is compiled on its first
use and kept for the life of the process (its threads may run until then), so every caller
of one module shares one engine.  One cache here instead of one singleton per user.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any

import llvmlite.binding as llvm
from llvmlite import ir

from ringkernel.lowering.llvm.codegen import host_machine, optimize, prepare
from ringkernel.runtime.cpu.symbols import resolve_external_symbols


class NativeFunctions:
    """The functions of one compiled module, as ctypes callables named like the symbols."""

    def __init__(self, module: ir.Module, signatures: dict[str, Any]) -> None:
        machine = host_machine()
        ref = optimize(prepare(module, machine), machine)
        resolve_external_symbols(ref)
        self.engine = llvm.create_mcjit_compiler(ref, machine)
        self.engine.finalize_object()
        self._functions = {name: proto(self.engine.get_function_address(name))
                           for name, proto in signatures.items()}

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_functions"][name]
        except KeyError:
            raise AttributeError(name) from None

    def address(self, name: str) -> int:
        """The symbol's address (for native callers)."""
        return int(self.engine.get_function_address(name))


_compiled: dict[Callable[[], ir.Module], NativeFunctions] = {}
_lock = threading.Lock()


def native_functions(build: Callable[[], ir.Module], signatures: dict[str, Any]) -> NativeFunctions:
    """The module ``build()`` makes, compiled on the first call for ``build`` (``signatures``:
    symbol -> ``ctypes.CFUNCTYPE(...)``)."""
    with _lock:
        found = _compiled.get(build)
        if found is None:
            found = _compiled[build] = NativeFunctions(build(), signatures)
        return found


VP, I32, I64 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64

__all__ = ["NativeFunctions", "native_functions", "VP", "I32", "I64"]

"""Runs emitted MSL on the host: the shim's exec mode plus a per-kernel C driver.

This is a test harness, not a backend: it proves the *emitted MSL* computes
the right numbers without a Mac.  The shim (``RK_SHIM_EXEC``) erases address
spaces and makes atomics plain memory; a generated ``extern "C"`` driver loops
over blocks and threads one at a time and calls the kernel with each thread's
positions.  Threads never run concurrently, so only kernels without barriers
and shared memory are accepted (their results cannot depend on interleaving
except through atomics, which sequential execution serializes).
"""

from __future__ import annotations

import ctypes
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ringkernel.lowering.msl.check import find_clang, write_include_dir
from ringkernel.lowering.msl.emitter import (
    BUILTIN_NAMES,
    MslKernel,
    element_type_name,
    lower,
    template_macros,
    type_name,
)
from ringkernel.ringir import Module, hidden_extents
from ringkernel.ringir.diagnostics import CompileError

EXEC_FLAGS = (
    "-x", "c++", "-std=c++17", "-O1", "-fPIC", "-shared", "-fwrapv", "-ffp-contract=off",
    "-fno-math-errno", "-fno-strict-aliasing", "-DRK_SHIM_EXEC", "-Wno-unknown-attributes", "-w",
)

Dims = int | Sequence[int]


def _dims(value: Dims, what: str) -> tuple[int, int, int]:
    dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not 1 <= len(dims) <= 3 or any(int(d) < 1 for d in dims):
        raise ValueError(f"{what} must be 1 to 3 positive ints, got {value!r}")
    return tuple(int(d) for d in (*dims, 1, 1)[:3])  # type: ignore[return-value]


class MslCpuProgram:
    """A module's MSL compiled into a host shared library through the shim."""

    def __init__(self, module: Module, **options: Any) -> None:
        program = lower(module, **options)
        self.text = program.text
        self.kernels = program.kernels
        drivers = template_macros("exec_driver.j2")
        parts = [self.text]
        for info in self.kernels.values():
            if info.uses_barrier or info.uses_shared:
                continue
            params = [
                {"is_array": p.is_array, "index": p.index,
                 "type": element_type_name(p) if p.is_array else type_name(p.type)}
                for p in info.params
            ]
            builtins = [BUILTIN_NAMES[kind] for kind in info.builtins]
            parts.append(str(drivers.driver(info.entry, params, builtins)).strip("\n"))
        self.source = "\n\n".join(parts) + "\n"
        self._lib = _build(self.source)

    def launch(self, kernel: str, grid: Dims, block: Dims, args: Sequence[Any]) -> None:
        """Runs ``kernel`` over ``grid`` x ``block`` threads; arrays are updated in place."""
        info = self.kernels.get(kernel)
        if info is None:
            raise KeyError(f"no kernel named {kernel!r}")
        if info.uses_barrier or info.uses_shared:
            raise CompileError(
                f"kernel '{kernel}' uses barriers or shared memory; the sequential CPU "
                "harness runs only kernels without them"
            )
        args = _with_extents(info, args)
        if len(args) != len(info.params):
            raise ValueError(f"kernel '{kernel}' takes {len(info.params)} arguments")
        keep, pointers = _marshal(info, args)
        grid3 = (ctypes.c_uint * 3)(*_dims(grid, "grid"))
        block3 = (ctypes.c_uint * 3)(*_dims(block, "block"))
        argv = (ctypes.c_void_p * max(len(pointers), 1))(*pointers)
        getattr(self._lib, f"rk_exec_{info.entry}")(argv, grid3, block3)
        del keep


def _with_extents(info: MslKernel, args: Sequence[Any]) -> list[Any]:
    """``args`` for the declared parameters, followed by the hidden array extents (docs/layout.md)."""
    hidden = hidden_extents([p.name for p in info.params], {p.name for p in info.params if p.is_array})
    declared = [p.name for p, h in zip(info.params, hidden) if h is None]
    if len(args) != len(declared):
        return list(args)
    by_name = dict(zip(declared, args))
    extents = [
        by_name[array].shape[dim] if np.ndim(by_name[array]) > 1 else np.size(by_name[array])
        for array, dim in (h for h in hidden if h is not None)
    ]
    return [*args, *extents]


def _marshal(info: MslKernel, args: Sequence[Any]) -> tuple[list[np.ndarray], list[int]]:
    keep: list[np.ndarray] = []
    pointers: list[int] = []
    for param, arg in zip(info.params, args):
        dtype = np.dtype(param.type.numpy_dtype)
        if param.is_array:
            if not isinstance(arg, np.ndarray) or arg.dtype != dtype or not arg.flags.c_contiguous:
                raise TypeError(f"argument '{param.name}' must be a C-contiguous {dtype} array")
            value = arg
        else:
            value = np.array(arg, dtype=dtype)
        keep.append(value)
        pointers.append(value.ctypes.data)
    return keep, pointers


def _build(source: str) -> ctypes.CDLL:
    clang = find_clang()
    with tempfile.TemporaryDirectory(prefix="ringkernel-msl-exec-") as tmp:
        directory = Path(tmp)
        write_include_dir(directory)
        src = directory / "kernel.metal"
        src.write_text(source)
        lib = directory / "kernel.so"
        proc = subprocess.run(
            [clang, *EXEC_FLAGS, "-isystem", str(directory), str(src), "-o", str(lib), "-lm"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            raise CompileError(f"building MSL for the CPU failed:\n{proc.stderr.strip()}")
        return ctypes.CDLL(str(lib))

"""The warm-launch fast path of the cpu backend: one kernel, grid and block, checks made once.

A general launch normalizes the grid, binds and converts every argument,
asks the compiler for the (cached) text and the JIT for its code: about
15 us of Python before the kernel runs.  Once a kernel was launched with a
grid and block, :class:`FastLauncher` holds everything that does not depend
on the argument values (the native function, the dims, per-parameter
checkers), so a repeat launch only checks each argument's kind and fills
``argv``.

Device arrays of the cpu backend are host memory and go straight in.  The
hidden extent parameters of N-d arrays (and of arrays whose length the kernel
reads; docs/layout.md) are filled in from the arrays' shapes, as
``bind_arguments`` does on the general path.  An
argument the fast checks do not accept as is (another backend's array, a list, a
dtype the parameter does not have, an int for a float parameter...) makes
the launcher decline (it returns False, having run nothing); the caller then
takes the general path, which accepts it or raises the precise ``LaunchError``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

import numpy as np

from ringkernel.lowering.llvm.targets import memory_type_size
from ringkernel.ringir import Function
from ringkernel.ringir.types import ArrayType, ScalarType, as_scalar, hidden_extents
from ringkernel.runtime.cpu.bounds import BoundsRecord
from ringkernel.runtime.cpu.jit import CompiledKernel
from ringkernel.runtime.device_array import DeviceArray

_CTYPES = {
    "f32": ctypes.c_float, "f64": ctypes.c_double, "i32": ctypes.c_int32, "u32": ctypes.c_uint32,
    "i64": ctypes.c_int64, "u64": ctypes.c_uint64, "i16": ctypes.c_int16, "u16": ctypes.c_uint16,
    "i8": ctypes.c_int8, "u8": ctypes.c_uint8,
}


class FastLauncher:
    """Launches one compiled kernel over a fixed grid and block; ``launcher(args)`` runs it.

    ``run_blocks(compiled, argv, dims, blocks, keep)`` is the backend's way to
    run the blocks (inline or on the pool); ``finish(status, bounds)`` turns
    the statuses and the bounds record into errors.  ``inline`` says the
    blocks are few enough to run on the calling thread (no pool, no wait);
    a launch that turns out to take long anyway (few work-items that loop)
    switches the launcher to the pool.

    The ``argv`` arrays, scalar cells and bounds records of finished launches
    are reused (a free list: ``list.pop``/``append`` are atomic, so
    concurrent launches from several threads each get their own).
    """

    def __init__(self, fn: Function, compiled: CompiledKernel, grid: tuple[int, int, int],
                 block: tuple[int, int, int], inline: bool,
                 run_blocks: Callable[[CompiledKernel, Any, Any, int, list[Any]], list[int]],
                 finish: Callable[[list[int], BoundsRecord | None], None]) -> None:
        self.compiled = compiled
        self.params = [_param_kind(p.type) for p in fn.params]
        self.hidden = _hidden_slots(fn)
        self.count = len(fn.params) - len(self.hidden)  # what the caller passes
        # the caller's parameters split once, so a launch runs two tight loops
        self.arrays = [(i, k) for i, k in enumerate(self.params[: self.count]) if isinstance(k, _Array)]
        self.scalars = [(i, k) for i, k in enumerate(self.params[: self.count]) if not isinstance(k, _Array)]
        assert all(slot >= self.count for slot, _, _ in self.hidden), "hidden extents come last"
        self.dims = (ctypes.c_int32 * 6)(*grid, *block)
        self.blocks = grid[0] * grid[1] * grid[2]
        # the launch wrapper called with ctypes objects only, through a prototype without
        # argtypes: ctypes then passes each as its own C type and skips the per-argument
        # conversions of compiled.native (0.9 -> 0.3 us a call)
        self._native = _BARE_LAUNCH(compiled.address)
        self._first, self._end = ctypes.c_int64(0), ctypes.c_int64(self.blocks)
        self.checked = compiled.checked
        self.inline = inline
        self.run_blocks = run_blocks
        self.finish = finish
        self._free: list[_Frame] = []

    def __call__(self, args: Sequence[Any]) -> bool:
        """Runs the kernel and returns True, or returns False (nothing ran) to decline ``args``."""
        if len(args) != self.count:
            return False
        try:
            frame = self._free.pop()
        except IndexError:
            frame = _Frame(self.params)
        argv, lengths, views, cells = frame.argv, frame.record.lengths, [], frame.cells
        for i, kind in self.arrays:
            arg = args[i]
            if type(arg) is not np.ndarray:
                if type(arg) is not DeviceArray:
                    return self._decline(frame)
                arg = _host_view(arg)  # cpu device arrays are host memory: no copy
                if arg is None:
                    return self._decline(frame)
            if arg.dtype is not kind.dtype and arg.dtype != kind.dtype:
                return self._decline(frame)
            if kind.ndim > 1 and (arg.ndim != kind.ndim or arg.size > _I32_MAX):
                return self._decline(frame)  # the general path names the rank or the size
            # its address without numpy's slow .ctypes: numpy exports a writable buffer only
            # for a writeable C-contiguous array, and none for an empty one (so no .flags here)
            try:
                view = ctypes.c_char.from_buffer(arg)
            except (TypeError, ValueError):
                return self._decline(frame)  # the general path names what is wrong
            views.append(view)
            argv[i] = ctypes.addressof(view)
            lengths[i] = arg.nbytes // kind.size  # every build reads them (bounds, private copies)
        for i, kind in self.scalars:
            if not kind.store(cells[i], args[i]):
                return self._decline(frame)
        for slot, source, dim in self.hidden:
            array = args[source]
            frame.cells[slot].value = array.shape[dim] if self.params[source].ndim > 1 else array.size
        bounds = None
        if self.checked:
            bounds = frame.record
            bounds.record[0] = 0  # the site word: the kernel fills the others after claiming it
        if not self.inline:
            status = self.run_blocks(self.compiled, argv, self.dims, self.blocks, [args, views, frame])
            self._free.append(frame)
            if any(status) or bounds is not None and bounds.violated:
                self.finish(status, bounds)
            return True
        start = perf_counter() if self.blocks > 1 else 0.0
        code = self._native(argv, self.dims, self._first, self._end, _NOT_CANCELLED)
        if start and perf_counter() - start > INLINE_SECONDS:
            self.inline = False  # few work-items, but long ones: spread them from now on
        self._free.append(frame)
        if code or bounds is not None and bounds.violated:
            self.finish([code], bounds)
        return True

    def _decline(self, frame: _Frame) -> bool:
        self._free.append(frame)
        return False


def _host_view(array: DeviceArray) -> np.ndarray | None:
    """A cpu device array's memory, or None (another backend's, or freed: the general path says so)."""
    try:
        return array.host_view() if array.backend == "cpu" else None
    except (TypeError, ValueError, AttributeError):
        return None


class _Frame:
    """What one launch hands the native code: ``argv``, scalar cells, lengths and bounds record."""

    def __init__(self, params: list[Any]) -> None:
        self.argv = (ctypes.c_void_p * (len(params) + 2))()
        self.cells: list[Any] = [None if isinstance(k, _Array) else k.cell_type() for k in params]
        for i, cell in enumerate(self.cells):
            if cell is not None:
                self.argv[i] = ctypes.addressof(cell)
        self.record = BoundsRecord.from_sizes([0] * len(params))
        self.argv[len(params)], self.argv[len(params) + 1] = self.record.pointers


_NOT_CANCELLED = ctypes.byref(ctypes.c_int32(0))
_BARE_LAUNCH = ctypes.CFUNCTYPE(ctypes.c_int32)  # int32 (argv*, dims*, i64 first, i64 end, cancel*)
INLINE_SECONDS = 200e-6
"""A launch run on the calling thread that took longer uses the pool next time (if it has blocks to split)."""


class _Array:
    """An array parameter: its numpy dtype, element size (for the lengths table) and rank."""

    def __init__(self, dtype: np.dtype, size: int, ndim: int) -> None:
        self.dtype, self.size, self.ndim = dtype, size, ndim


class _Scalar:
    """A scalar parameter: which Python/numpy types go straight into its ctypes cell."""

    def __init__(self, cell_type: Any, accepted: tuple[type, ...], low: Any = None, high: Any = None):
        self.cell_type, self.accepted, self.low, self.high = cell_type, accepted, low, high

    def store(self, cell: Any, arg: Any) -> bool:
        if type(arg) not in self.accepted:
            return False
        if self.low is not None and not self.low <= arg <= self.high:
            return False
        cell.value = arg
        return True


_FLOATS = (float, np.float32, np.float64)
_INTS = (int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)


_I32_MAX = 2**31 - 1


def _hidden_slots(fn: Function) -> list[tuple[int, int, int]]:
    """``(parameter, array parameter, dim)`` of each hidden extent parameter of ``fn``."""
    names = [p.name for p in fn.params]
    arrays = {p.name for p in fn.params if isinstance(p.type, ArrayType)}
    return [(slot, names.index(where[0]), where[1])
            for slot, where in enumerate(hidden_extents(names, arrays)) if where is not None]


def _param_kind(ty: Any) -> Any:
    if isinstance(ty, ArrayType):
        elem = as_scalar(ty.elem)
        return _Array(np.dtype(elem.numpy_dtype), memory_type_size(elem), ty.ndim)
    assert isinstance(ty, ScalarType)
    if ty.is_bool:
        return _Scalar(ctypes.c_bool, (bool, np.bool_))
    cell = _CTYPES.get(str(ty))
    if cell is None:
        return _Scalar(ctypes.c_uint8, ())  # declines every value: the general path handles it
    if ty.is_float:
        return _Scalar(cell, _FLOATS)
    return _Scalar(cell, _INTS, ty.min_value, ty.max_value)



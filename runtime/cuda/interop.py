"""``__cuda_array_interface__`` (version 3), both ways, without the driver.

Export: a cuda device array describes itself as CuPy, PyTorch and Numba
expect (C-contiguous, so ``strides`` is None; ``stream`` is the stream its
pending launches run on, so the consumer waits for them).  Import: any
object exposing the interface is checked here (dtype a kernel can take,
C-contiguous, writable, no mask) before its pointer becomes a device array;
errors say what was wrong in the user's terms.  Plain functions over dicts,
so they are tested on a machine without a GPU.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ringkernel.runtime.cuda.driver import LEGACY_STREAM

VERSION = 3


class ForeignArray(NamedTuple):
    """What an imported interface describes: a device pointer, shape, dtype, stream to wait on."""

    pointer: int
    shape: tuple[int, ...]
    dtype: np.dtype
    stream: int | None


def export_interface(
    pointer: int, shape: tuple[int, ...], dtype: np.dtype, stream_handle: int | None
) -> dict[str, Any]:
    """The ``__cuda_array_interface__`` dict of a C-contiguous device array at ``pointer``.

    ``stream_handle`` is the stream whose queued work may still write the
    array (0, the legacy default stream's raw handle, is spelled 1 as v3 asks).
    """
    size = int(np.prod(shape, dtype=np.int64))
    return {
        "shape": tuple(shape),
        "typestr": dtype.str,
        "data": (pointer if size else 0, False),
        "strides": None,
        "version": VERSION,
        "stream": None if stream_handle is None else (stream_handle or LEGACY_STREAM),
    }


def parse_interface(obj: Any, allowed: set[np.dtype]) -> ForeignArray:
    """Checks ``obj.__cuda_array_interface__`` and returns what it describes; raises ``BufferError``."""
    try:
        desc = obj.__cuda_array_interface__
    except AttributeError:
        raise TypeError(f"{type(obj).__name__} has no __cuda_array_interface__") from None
    if not isinstance(desc, dict):
        raise BufferError(f"__cuda_array_interface__ of {type(obj).__name__} is not a dict")
    missing = [key for key in ("shape", "typestr", "data", "version") if key not in desc]
    if missing:
        raise BufferError(f"__cuda_array_interface__ lacks {', '.join(missing)}")
    shape = tuple(int(d) for d in desc["shape"])
    try:
        dtype = np.dtype(desc["typestr"])
    except TypeError:
        raise BufferError(f"__cuda_array_interface__ typestr {desc['typestr']!r} is not a dtype") from None
    if dtype not in allowed:
        kinds = ", ".join(sorted(str(d) for d in allowed))
        raise BufferError(f"a kernel array holds {kinds}; this CUDA array holds {dtype}")
    if desc.get("mask") is not None:
        raise BufferError("masked CUDA arrays are not supported (the interface's 'mask' is set)")
    pointer, readonly = desc["data"]
    if readonly:
        raise BufferError("the CUDA array is read-only; kernels may write their arrays")
    strides = desc.get("strides")
    if strides is not None and not _c_contiguous(shape, tuple(strides), dtype.itemsize):
        raise BufferError(
            f"kernels take C-contiguous arrays; this CUDA array has strides {tuple(strides)} "
            "(make it contiguous first, e.g. .contiguous() or cupy.ascontiguousarray)"
        )
    stream = desc.get("stream") if int(desc["version"]) >= 3 else None
    if stream == 0:
        raise BufferError("__cuda_array_interface__ stream 0 is not allowed by version 3 (use 1 or 2)")
    return ForeignArray(int(pointer or 0), shape, dtype, None if stream is None else int(stream))


def _c_contiguous(shape: tuple[int, ...], strides: tuple[int, ...], itemsize: int) -> bool:
    """Row-major without gaps; the stride of a dimension of size 1 does not matter (as numpy)."""
    if len(strides) != len(shape):
        return False
    step = itemsize
    for dim, stride in zip(reversed(shape), reversed(strides)):
        if dim != 1 and stride != step:
            return False
        step *= dim
    return True

"""The one small CUDA driver interface the cuda runtime uses, and how an adapter is chosen.

Two Python bindings reach NVIDIA's driver: pycuda (compiled against a CUDA
toolkit at install time, so it often cannot be installed) and NVIDIA's
``cuda-bindings`` (wheels for every platform, loading ``libcuda`` only at run
time).  The backend, device arrays and actors talk only to :class:`CudaDriver`;
``runtime/cuda/bindings_adapter.py`` and ``runtime/cuda/pycuda_adapter.py``
implement it, so neither binding leaks past them and a test can hand the
runtime an in-memory driver.

:func:`load_driver` picks ``cuda-bindings`` when it imports, else pycuda, or
the one ``RINGKERNEL_CUDA_DRIVER`` names; when none can run it raises
:class:`DriverUnavailable` saying precisely why (no binding, no driver
library, a driver too old for the binding, no device).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

ENV_VAR = "RINGKERNEL_CUDA_DRIVER"
# adapter name -> "module:loader"; the first that imports wins when none is named
ADAPTERS = {
    "cuda-bindings": "ringkernel.runtime.cuda.bindings_adapter:load",
    "pycuda": "ringkernel.runtime.cuda.pycuda_adapter:load",
}
INSTALL_HINT = "pip install 'ringkernel[nvidia]' (NVIDIA's cuda-bindings wheels; no compiler needed)"

# CU_STREAM_LEGACY / CU_STREAM_PER_THREAD: the handles __cuda_array_interface__ v3 names 1 and 2.
LEGACY_STREAM = 1
PER_THREAD_STREAM = 2


class DriverUnavailable(RuntimeError):
    """No CUDA driver can be used here; the message says which piece is missing and what to do."""


class CooperativeUnsupported(RuntimeError):
    """The driver adapter (or the device) cannot make a cooperative launch (``rk.grid_sync``)."""


class BindingMissing(DriverUnavailable):
    """The Python binding of an adapter is not installed."""


class CudaDriver(Protocol):
    """What the cuda runtime needs from the driver; device pointers are plain ints.

    Every call runs with the device's primary context current (the context
    CuPy, PyTorch and Numba use, so their pointers are valid in ours).
    Copies and launches are queued on ``stream`` (a handle from
    :meth:`new_stream`, or an int from ``__cuda_array_interface__``).
    """

    name: str
    min_driver_version: int  # e.g. 13000 for CUDA 13.0

    def driver_version(self) -> int: ...

    def device_count(self) -> int: ...

    def compute_capability(self) -> tuple[int, int]: ...

    def alloc(self, nbytes: int) -> int: ...

    def free(self, pointer: int) -> None: ...

    def copy_h2d(self, pointer: int, host: np.ndarray, stream: Any) -> None: ...

    def copy_d2h(self, host: np.ndarray, pointer: int, stream: Any) -> None: ...

    def copy_d2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None: ...

    def load_module(self, ptx: str) -> Any: ...

    def function(self, module: Any, symbol: str) -> Any: ...

    def launch(
        self,
        function: Any,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        args: Sequence[np.generic],
        stream: Any,
        *,
        shared_bytes: int = 0,
        cooperative: bool = False,
    ) -> None: ...

    def cooperative_grid_limit(self, function: Any, block_threads: int, shared_bytes: int) -> int:
        """The most blocks of ``block_threads`` threads a cooperative launch of ``function`` may have
        (all resident at once: blocks per SM at this occupancy x SMs); raises
        :class:`CooperativeUnsupported` when there can be no cooperative launch."""
        ...

    def new_stream(self) -> Any: ...

    def stream_handle(self, stream: Any) -> int: ...

    def synchronize(self, stream: Any) -> None: ...

    def stream_done(self, stream: Any) -> bool: ...

    def host_alloc_mapped(self, nbytes: int) -> tuple[np.ndarray, int]: ...

    def host_free(self, host: np.ndarray) -> None: ...


def requested_adapter() -> str | None:
    """The adapter ``RINGKERNEL_CUDA_DRIVER`` names (None: choose automatically)."""
    name = os.environ.get(ENV_VAR, "").strip()
    if not name or name == "auto":
        return None
    if name not in ADAPTERS:
        raise DriverUnavailable(
            f"{ENV_VAR}={name!r} is not a CUDA driver adapter; use one of: auto, {', '.join(ADAPTERS)}"
        )
    return name


def _loader(name: str) -> Callable[[], CudaDriver]:
    module, attr = ADAPTERS[name].split(":")
    loader: Callable[[], CudaDriver] = getattr(importlib.import_module(module), attr)
    return loader


def load_driver() -> CudaDriver:
    """The driver adapter to use, initialised and checked; raises :class:`DriverUnavailable`."""
    wanted = requested_adapter()
    names = [wanted] if wanted else list(ADAPTERS)
    missing = []
    for name in names:
        try:
            driver = _loader(name)()
        except BindingMissing as exc:
            missing.append(str(exc))
            continue
        check_driver(driver)
        return driver
    if wanted:
        raise DriverUnavailable(missing[0])
    raise DriverUnavailable(
        f"no CUDA binding is installed (neither cuda-bindings nor pycuda): {INSTALL_HINT}"
    )


def check_driver(driver: CudaDriver) -> None:
    """Raises :class:`DriverUnavailable` when the driver is too old for the binding or has no device."""
    version = driver.driver_version()
    if version < driver.min_driver_version:
        raise DriverUnavailable(
            f"the NVIDIA driver supports CUDA {_version(version)}, but {driver.name} needs CUDA "
            f"{_version(driver.min_driver_version)} or later: update the NVIDIA driver"
            + (" or pip install 'cuda-bindings<13'" if driver.name == "cuda-bindings" else "")
        )
    if driver.device_count() < 1:
        raise DriverUnavailable("the NVIDIA driver is loaded but reports no CUDA device")


def _version(code: int) -> str:
    return f"{code // 1000}.{code % 1000 // 10}"


def driver_library_missing(detail: str) -> DriverUnavailable:
    """The reason when the binding is installed but the driver library is not on this machine."""
    return DriverUnavailable(
        "the NVIDIA driver library (libcuda.so.1 / nvcuda.dll) was not found: install the NVIDIA "
        f"display driver (a GPU machine); the Python binding alone is not enough ({detail})"
    )

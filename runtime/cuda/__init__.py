"""The cuda backend: PTX from ``compile("ptx")`` loaded and launched with pycuda.

Needs the ``cuda`` extra (pycuda), an NVIDIA driver and a device;
``available()`` is False otherwise and ``unavailable_reason()`` says which is
missing.  One context on device 0 is created on first use; modules are cached
per PTX text (compiled by the facade for this device's compute capability).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ringkernel.ringir import Module
from ringkernel.ringir.types import ArrayType, as_scalar
from ringkernel.runtime.arguments import check_dims
from ringkernel.runtime.backend import KernelBuild

_probe: tuple[bool, str] | None = None


def _probe_cuda() -> tuple[bool, str]:
    global _probe
    if _probe is None:
        try:
            import pycuda.driver as drv
        except ImportError:
            _probe = (False, "pycuda is not installed (pip install 'ringkernel[cuda]')")
            return _probe
        try:
            drv.init()
            count = drv.Device.count()
        except Exception as exc:  # the driver library is missing or refuses to start
            _probe = (False, f"the CUDA driver is not usable: {exc}")
            return _probe
        _probe = (True, "") if count else (False, "no CUDA device found")
    return _probe


class CudaBackend:
    """Runs kernels on an NVIDIA GPU (device 0)."""

    name = "cuda"
    target = "ptx"

    @classmethod
    def available(cls) -> bool:
        return _probe_cuda()[0]

    @classmethod
    def unavailable_reason(cls) -> str:
        return _probe_cuda()[1]

    def __init__(self) -> None:
        import pycuda.driver as drv

        drv.init()
        self._drv = drv
        self._device = drv.Device(0)
        self._context = self._device.make_context()
        self._context.pop()
        major, minor = self._device.compute_capability()
        self.arch = f"sm_{major}{minor}"
        self._modules: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _function(self, build: KernelBuild) -> Any:
        from ringkernel.lowering.cuda import ptx_kernel_symbol

        cu_module = self._modules.get(build.text)
        if cu_module is None:
            cu_module = self._modules[build.text] = self._drv.module_from_buffer(build.text.encode())
        return cu_module.get_function(ptx_kernel_symbol(build.kernel_name))

    def compile_options(
        self,
        module: Module,
        kernel_name: str,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        args: Sequence[Any],
        *,
        checked: bool | None = None,
    ) -> dict[str, Any]:
        """PTX for this device's architecture."""
        check_dims(grid, block)
        return {"arch": self.arch}

    def launch(
        self,
        build: KernelBuild,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        args: Sequence[Any],
        *,
        checked: bool | None = None,
    ) -> None:
        """Copies arrays to the device, launches, and copies them back in place."""
        fn = build.module.get(build.kernel_name)
        with self._lock:
            self._context.push()
            try:
                function = self._function(build)
                launch_args = []
                for param, value in zip(fn.params, args):
                    if isinstance(param.type, ArrayType):
                        launch_args.append(self._drv.InOut(value))
                    elif as_scalar(param.type).is_bool:
                        launch_args.append(np.uint8(value))
                    else:
                        launch_args.append(value)
                function(*launch_args, block=tuple(block), grid=tuple(grid))
                self._context.synchronize()
            finally:
                self._context.pop()


__all__ = ["CudaBackend"]

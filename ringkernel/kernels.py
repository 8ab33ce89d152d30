"""``@rk.kernel`` and ``@rk.func``: the objects the decorators return.

A kernel builds its RingIR lazily (on first use, like Numba), compiles it for
any target without a GPU, and launches it on a backend.  Calling a kernel
like a plain Python function is an error: it would not run on a device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ringkernel.compiler import compile_module
from ringkernel.frontends.module import build_entry_module
from ringkernel.frontends.source import FunctionSource, enclosing_scope, source_of
from ringkernel.ringir import Module
from ringkernel.ringir.diagnostics import CompileError, debug_tracebacks


class _Decorated:
    """Shared by kernels and device functions: the Python function and its source."""

    ringkernel_kind = ""

    def __init__(self, pyfunc: Callable[..., Any]) -> None:
        self.py_func = pyfunc
        self.__name__ = getattr(pyfunc, "__name__", "kernel")
        self.__qualname__ = getattr(pyfunc, "__qualname__", self.__name__)
        self.__doc__ = getattr(pyfunc, "__doc__", None)
        self.__module__ = getattr(pyfunc, "__module__", None)  # type: ignore[assignment]
        self._source: FunctionSource | None = None
        self._ir: Module | None = None
        self._ir_name = ""  # this function's name inside its module (callees may be renamed)
        # String annotations may name the defining function's locals, gone after it returns.
        self._enclosing = enclosing_scope(pyfunc)

    @property
    def ringkernel_source(self) -> FunctionSource:
        if self._source is None:
            self._source = source_of(self.py_func, self._enclosing)
        return self._source

    @property
    def ir(self) -> Module:
        """The verified RingIR module: this function and every ``@rk.func`` it calls."""
        if self._ir is None:
            self._ir, self._ir_name = _user_errors(lambda: build_entry_module(self))
        return self._ir

    def compile(self, target: str = "rir", **options: Any) -> str:
        r"""Target text: ``"rir"``, ``"llvm"``, ``"ptx"``, ``"wgsl"`` or ``"msl"``; no GPU needed.

        ``dynamic_shared=N`` sizes the kernel's ``rk.dynamic_shared_array``\ s (elements)."""
        module = self.ir
        return _user_errors(lambda: compile_module(module, target, **options))


class Kernel(_Decorated):
    """A ``@rk.kernel``: launch with ``k[grid, block](*args)`` or ``k.launch(...)``."""

    ringkernel_kind = "kernel"

    def launch(
        self,
        grid: int | Sequence[int],
        block: int | Sequence[int],
        args: Sequence[Any] = (),
        backend: str | None = None,
        *,
        checked: bool | None = None,
        dynamic_shared: int | None = None,
    ) -> None:
        """Runs the kernel on ``backend`` (default: ``rk.default_backend()``).

        ``dynamic_shared`` is the element count of each ``rk.dynamic_shared_array``
        of the kernel (a LaunchError when the kernel has one and it is missing or
        out of range).

        numpy arrays passed for ``Array`` parameters hold what the device wrote
        when this returns; :class:`ringkernel.DeviceArray` arguments are used in
        place (no copies), and when every array argument is one the launch may
        return before the device finishes (``.numpy()`` and ``rk.synchronize()``
        wait).  ``checked`` turns array bounds checking on or off
        (``None``: the backend's default); an out-of-bounds index then raises
        :class:`ringkernel.BoundsError` instead of touching foreign memory.
        """
        from ringkernel.runtime.arguments import BoundsError, LaunchError, bind_arguments, launch_dims

        grid3, block3 = launch_dims(grid, block)
        module = _launch_sized(self.ir, dynamic_shared)
        fn = module.get(self._ir_name)
        bound = bind_arguments(fn, tuple(args))
        try:
            launch_module(module, fn.name, grid3, block3, bound, backend, checked=checked)
        except CompileError as exc:
            if dynamic_shared is None or "bytes of shared memory" not in exc.message:
                raise
            # the dynamic size took the block past the device's shared memory: a launch setting
            raise LaunchError(f"dynamic_shared={dynamic_shared}: {exc.message}") from None
        except BoundsError as exc:  # a bug in the kernel, not in the runtime: no runtime frames
            if debug_tracebacks():
                raise
            raise exc.with_traceback(None) from None

    def __getitem__(self, config: Any) -> Callable[..., None]:
        if not isinstance(config, tuple) or len(config) not in (2, 3, 4):
            raise TypeError(
                f"launch '{self.__name__}' as {self.__name__}[grid, block](args...), "
                f"{self.__name__}[grid, block, backend](args...) or, with a dynamic shared "
                f"array, {self.__name__}[grid, block, elements(, backend)](args...)"
            )
        grid, block, *rest = config
        dynamic = rest.pop(0) if rest and isinstance(rest[0], (int, np.integer)) else None
        backend = rest[0] if rest else None

        def launcher(*args: Any) -> None:
            self.launch(grid, block, args, backend=backend, dynamic_shared=dynamic)

        return launcher

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"kernel '{self.__name__}' cannot be called like a Python function; launch it with "
            f"{self.__name__}[grid, block](...) or {self.__name__}.launch(grid, block, args)"
        )

    def __repr__(self) -> str:
        return f"<ringkernel kernel {self.__qualname__}>"


class DeviceFunction(_Decorated):
    """A ``@rk.func``: callable from kernels and other device functions."""

    ringkernel_kind = "func"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"device function '{self.__name__}' can only be called from a @rk.kernel or another @rk.func"
        )

    def __repr__(self) -> str:
        return f"<ringkernel func {self.__qualname__}>"


def launch_module(
    module: Module,
    kernel_name: str,
    grid: tuple[int, int, int],
    block: tuple[int, int, int],
    args: Sequence[Any],
    backend: Any = None,
    *,
    checked: bool | None = None,
) -> None:
    """Launches ``kernel_name`` of ``module`` on ``backend`` (a name, an instance or None).

    The backend names its compile target and options (checking the launch);
    the compile goes through the one driver (verify, caches); the backend runs
    the result.  ``grid``/``block`` are 3-tuples, ``args`` from ``bind_arguments``.
    With no backend named, a launch runs where its device arrays live.
    """
    from ringkernel.runtime import get_backend
    from ringkernel.runtime.arguments import check_device_arrays, device_arrays_backend
    from ringkernel.runtime.backend import KernelBuild

    if backend is None:  # device arrays say where they live
        backend = device_arrays_backend(args)
    device = get_backend(backend) if backend is None or isinstance(backend, str) else backend
    check_device_arrays(module.get(kernel_name), args, device.name)
    options = device.compile_options(module, kernel_name, grid, block, args, checked=checked)
    text = compile_module(module, device.target, **options)
    build = KernelBuild(module, kernel_name, device.target, options, text)
    device.launch(build, grid, block, args, checked=checked)


def _launch_sized(module: Module, dynamic_shared: Any) -> Module:
    """The module a launch runs: dynamic shared arrays sized, or a LaunchError naming the range."""
    from ringkernel.compiler import sized_module
    from ringkernel.ringir.limits import MAX_ARRAY_BYTES
    from ringkernel.ringir.passes.dynamic_shared import dynamic_shared_arrays
    from ringkernel.runtime.arguments import LaunchError

    arrays = dynamic_shared_arrays(module)
    if not arrays:
        if dynamic_shared is not None:
            raise LaunchError("dynamic_shared was given, but the kernel has no rk.dynamic_shared_array")
        return module
    widest = max(s.result.type.elem.nbytes for s in arrays)  # type: ignore[attr-defined]
    most = MAX_ARRAY_BYTES // widest
    ok = isinstance(dynamic_shared, (int, np.integer)) and not isinstance(dynamic_shared, bool)
    if not ok or not 1 <= dynamic_shared <= most:
        raise LaunchError(
            f"the kernel uses rk.dynamic_shared_array(): dynamic_shared must be an element count "
            f"from 1 to {most}, got {dynamic_shared!r} (launch(..., dynamic_shared=N) or k[grid, block, N])"
        )
    return sized_module(module, int(dynamic_shared))


def kernel(pyfunc: Callable[..., Any]) -> Kernel:
    """Marks a Python function as a GPU kernel (translated lazily, on first use)."""
    return Kernel(pyfunc)


def func(pyfunc: Callable[..., Any]) -> DeviceFunction:
    """Marks a fully annotated Python function as a device function callable from kernels."""
    return DeviceFunction(pyfunc)


def _user_errors(action: Callable[[], Any]) -> Any:
    """Runs ``action``; a CompileError reaches the user without the compiler's traceback."""
    try:
        return action()
    except CompileError as exc:
        if debug_tracebacks():
            raise
        raise exc.with_traceback(None) from None

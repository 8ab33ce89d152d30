"""``@rk.kernel`` and ``@rk.func``: the objects the decorators return.

A kernel builds its RingIR lazily (on first use, like Numba), compiles it for
any target without a GPU, and launches it on a backend.  Calling a kernel
like a plain Python function is an error: it would not run on a device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ringkernel.compiler import compile_module
from ringkernel.frontends.aggregates import launch_layout
from ringkernel.frontends.module import build_entry_module
from ringkernel.frontends.python import signature_of
from ringkernel.frontends.source import FunctionSource, enclosing_scope, source_of
from ringkernel.frontends.structs import define_struct
from ringkernel.frontends.valuetypes import StructDef
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
        """Target text: ``"rir"``, ``"llvm"``, ``"ptx"``, ``"wgsl"`` or ``"msl"``; no GPU needed."""
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
    ) -> None:
        """Runs the kernel on ``backend`` (default: ``rk.default_backend()``).

        numpy arrays passed for ``Array`` parameters hold what the device wrote
        when this returns; :class:`ringkernel.DeviceArray` arguments are used in
        place (no copies), and when every array argument is one the launch may
        return before the device finishes (``.numpy()`` and ``rk.synchronize()``
        wait).  ``checked`` turns array bounds checking on or off
        (``None``: the backend's default); an out-of-bounds index then raises
        :class:`ringkernel.BoundsError` instead of touching foreign memory.
        """
        from ringkernel.runtime.arguments import BoundsError, bind_arguments, launch_dims

        grid3, block3 = launch_dims(grid, block)
        module = self.ir
        fn = module.get(self._ir_name)
        bound = bind_arguments(fn, self.ir_arguments(args))
        try:
            launch_module(module, fn.name, grid3, block3, bound, backend, checked=checked)
        except BoundsError as exc:  # a bug in the kernel, not in the runtime: no runtime frames
            if debug_tracebacks():
                raise
            raise exc.with_traceback(None) from None

    def ir_arguments(self, args: Sequence[Any]) -> tuple[Any, ...]:
        """``args`` as the RingIR kernel takes them: a struct record as its fields' scalars, an
        ``Array[S]`` as its 32-bit words (a view: what the kernel writes lands in the array)."""
        from ringkernel.runtime.arguments import flatten_struct_arguments

        layout = self._struct_layout()
        if layout is None:
            return tuple(args)
        return tuple(flatten_struct_arguments(self.__name__, layout, tuple(args)))

    def _struct_layout(self) -> tuple[tuple[str, Any, bool], ...] | None:
        """Per parameter, the numpy dtype of a struct (or struct array) parameter; None without any."""
        if not hasattr(self, "_layout"):
            params, _ = signature_of(self.ringkernel_source, "kernel")
            layout = launch_layout(params)
            self._layout = layout if any(dtype is not None for _, dtype, _ in layout) else None
        return self._layout

    def __getitem__(self, config: Any) -> Callable[..., None]:
        if not isinstance(config, tuple) or len(config) not in (2, 3):
            raise TypeError(
                f"launch '{self.__name__}' as {self.__name__}[grid, block](args...) "
                f"or {self.__name__}[grid, block, backend](args...)"
            )
        grid, block, *rest = config
        backend = rest[0] if rest else None

        def launcher(*args: Any) -> None:
            self.launch(grid, block, args, backend=backend)

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


def kernel(pyfunc: Callable[..., Any]) -> Kernel:
    """Marks a Python function as a GPU kernel (translated lazily, on first use)."""
    return Kernel(pyfunc)


def func(pyfunc: Callable[..., Any]) -> DeviceFunction:
    """Marks a fully annotated Python function as a device function callable from kernels."""
    return DeviceFunction(pyfunc)


def struct(cls: type) -> StructDef:
    """Makes ``cls`` (fields annotated f32, i32, u32 or ``Vec[T, N]`` of them) a struct value type.

    The result is used in kernels (``Body(x=1.0, y=2.0, m=3.0)``, ``p.x``,
    ``Array[Body]``) and on the host (``Body.dtype``, ``Body(...)`` gives a
    numpy record); the memory layout is in ``docs/layout.md``.
    """
    return _user_errors(lambda: define_struct(cls))


def _user_errors(action: Callable[[], Any]) -> Any:
    """Runs ``action``; a CompileError reaches the user without the compiler's traceback."""
    try:
        return action()
    except CompileError as exc:
        if debug_tracebacks():
            raise
        raise exc.with_traceback(None) from None

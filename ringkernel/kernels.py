"""``@rk.kernel`` and ``@rk.func``: the objects the decorators return.

A kernel builds its RingIR lazily (on first use, like Numba), compiles it for
any target without a GPU, and launches it on a backend.  Calling a kernel
like a plain Python function is an error: it would not run on a device.

A generic kernel (parameters typed with an ``rk.TypeVar``) is specialized per
binding of its type variables: ``k.specialize(T=f32)`` returns the kernel for
that binding, and a launch binds them from its arguments' dtypes.  Each
specialization is kept, so a signature compiles once per process (and its
text once per machine, through the compile cache).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ringkernel.compiler import compile_module
from ringkernel.frontends.aggregates import launch_layout
from ringkernel.frontends.dsl import TypeVar, scalar_type_of
from ringkernel.frontends.generics import bound_source, type_params
from ringkernel.frontends.module import build_entry_module
from ringkernel.frontends.python import signature_of
from ringkernel.frontends.source import FunctionSource, enclosing_scope, source_of
from ringkernel.frontends.structs import define_struct
from ringkernel.frontends.valuetypes import StructDef
from ringkernel.ringir import Module, ScalarType
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
        self._bindings: dict[str, ScalarType] = {}  # of a specialization's type variables
        self._specializations: dict[tuple[tuple[str, str], ...], Any] = {}
        self._generic: list[tuple[str, str, bool]] | None = None  # (param, variable, is_array)

    @property
    def ringkernel_source(self) -> FunctionSource:
        if self._source is None:
            source = source_of(self.py_func, self._enclosing)
            self._source = bound_source(source, self._bindings) if self._bindings else source
        return self._source

    @property
    def type_variables(self) -> list[str]:
        """The names of the type variables this function's parameters leave open."""
        return list(dict.fromkeys(var for _, var, _ in self.generic_params))

    @property
    def generic_params(self) -> list[tuple[str, str, bool]]:
        """``(parameter, type variable, is_array)`` of each generic parameter; read once, as
        every launch asks (an empty list for a plain kernel)."""
        if self._generic is None:
            params = _user_errors(lambda: type_params(self.ringkernel_source))
            self._generic = [(p.name, p.var, p.is_array) for p in params]
        return self._generic

    def specialize(self, **bindings: Any) -> Any:
        """This function with its type variables bound: ``k.specialize(T=f32)``.

        Values are scalar types (``rk.f32``, ``np.float32``, ``"f32"``); the
        result compiles and launches like a plain kernel.  Unknown variable
        names and non-scalar types raise ``TypeError`` naming the choices.
        """
        open_vars = self.type_variables
        types: dict[str, ScalarType] = {}
        for name, value in bindings.items():
            if name not in open_vars:
                choices = ", ".join(open_vars) if open_vars else "none: it is not generic"
                raise TypeError(
                    f"'{self.__name__}' has no type variable {name}; its type variables: {choices}"
                )
            ty = _scalar_binding(value)
            if ty is None:
                raise TypeError(
                    f"{name}={value!r} is not a scalar type; use f32, f64, i32, u32, i64, u64, bool, "
                    "i8, u8, i16, u16 or f16"
                )
            types[name] = ty
        if not types:
            return self
        key = tuple(sorted((k, str(v)) for k, v in types.items()))
        special = self._specializations.get(key)
        if special is None:
            special = type(self)(self.py_func)
            special._enclosing = self._enclosing
            special._bindings = {**self._bindings, **types}
            special.__name__ = self.__name__
            self._specializations[key] = special
        return special

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
        if self.generic_params:
            from ringkernel.runtime.arguments import infer_type_bindings

            params = self.generic_params
            names = [a.arg for a in self.ringkernel_source.node.args.args]
            bindings = infer_type_bindings(self.__name__, names, params, tuple(args))
            self.specialize(**bindings).launch(grid3, block3, args, backend, checked=checked)
            return
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


def _scalar_binding(value: Any) -> ScalarType | None:
    """A specialization's type: a RingIR scalar, a numpy type or dtype, or a name such as ``"f32"``."""
    from ringkernel.ringir import SCALAR_TYPES

    if isinstance(value, str):
        return SCALAR_TYPES.get(value)
    if isinstance(value, TypeVar):
        return None
    return scalar_type_of(value)


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

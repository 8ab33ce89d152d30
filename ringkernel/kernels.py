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

import os
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ringkernel.compiler import compile_module, use_caches_in_runtime
from ringkernel.frontends.aggregates import launch_layout
from ringkernel.frontends.dsl import TypeVar, scalar_type_of
from ringkernel.frontends.generics import bound_source, type_params
from ringkernel.frontends.module import build_entry_module
from ringkernel.frontends.python import signature_of
from ringkernel.frontends.source import FunctionSource, enclosing_scope, source_of
from ringkernel.frontends.structs import define_struct
from ringkernel.frontends.valuetypes import StructDef
from ringkernel.observability.launches import KERNEL_TRACERS, record_launch
from ringkernel.ringir import Module, ScalarType
from ringkernel.ringir.diagnostics import CompileError, debug_tracebacks

_MAX_LAUNCHERS = 64  # per kernel; launches with ever new grids start over
_ENV_BACKEND = "RINGKERNEL_BACKEND"
_RUNTIME: tuple[dict[str, Any], type[Exception]] | None = None
# os.environ's own dict and its key for RINGKERNEL_BACKEND: os.environ.get encodes the
# name and decodes the value (about 1 us, a third of a warm launch); this lookup is a
# dict hit.  It sees every change made through os.environ (as os.environ.get does).
_ENV_DATA: Any = getattr(os.environ, "_data", None)
_ENV_KEY: Any = os.environ.encodekey(_ENV_BACKEND) if hasattr(os.environ, "encodekey") else None


def _env_backend() -> Any:
    """RINGKERNEL_BACKEND as os.environ holds it (bytes on POSIX), or None: compared only
    with what it was when a fast launcher was made, so its encoding does not matter."""
    if _ENV_DATA is None or _ENV_KEY is None:
        return os.environ.get(_ENV_BACKEND)
    return _ENV_DATA.get(_ENV_KEY)


def _plain_dims(dims: Any) -> bool:
    """Whether ``dims`` is an int or a tuple of ints (exactly: no bools, floats or numpy ints)."""
    return type(dims) is int or (type(dims) is tuple and all(type(d) is int for d in dims))


def _runtime() -> tuple[dict[str, Any], type[Exception]]:
    """The backend instances and ``BoundsError`` (imported on the first launch, not at import)."""
    global _RUNTIME
    if _RUNTIME is None:
        from ringkernel.runtime import _instances
        from ringkernel.runtime.arguments import BoundsError

        _RUNTIME = (_instances, BoundsError)
    return _RUNTIME


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
        r"""Target text: ``"rir"``, ``"llvm"``, ``"ptx"``, ``"wgsl"`` or ``"msl"``; no GPU needed.

        ``dynamic_shared=N`` sizes the kernel's ``rk.dynamic_shared_array``\ s (elements)."""
        module = self.ir
        return _user_errors(lambda: compile_module(module, target, **options))


class Kernel(_Decorated):
    """A ``@rk.kernel``: launch with ``k[grid, block](*args)`` or ``k.launch(...)``."""

    ringkernel_kind = "kernel"

    def __init__(self, pyfunc: Callable[..., Any]) -> None:
        super().__init__(pyfunc)
        # (grid, block, backend, checked, dynamic_shared) -> (backend instance, launcher,
        # RINGKERNEL_BACKEND then, whether the arguments go in as given: no struct to flatten)
        self._launchers: dict[tuple[Any, ...], tuple[Any, Callable[[Sequence[Any]], bool], Any, bool]] = {}
        self._configured: dict[Any, Callable[..., None]] = {}  # k[grid, block] -> its launcher
        self._chosen: dict[tuple[Any, ...], Kernel] = {}  # argument dtypes -> specialization

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

        A change of ``RINGKERNEL_BACKEND`` (through ``os.environ``) is noticed
        by the next launch that uses the default backend.
        """
        started = time.time() if KERNEL_TRACERS else 0.0  # inside rk.trace(): timed on the host
        instances, bounds_error = _runtime()
        known = None
        # only plain ints: 1.0 or True would find the launcher of 1 (equal keys) yet are errors
        if (type(grid) is int or _plain_dims(grid)) and (type(block) is int or _plain_dims(block)) and (
            dynamic_shared is None or type(dynamic_shared) is int
        ):
            known = self._launchers.get((grid, block, backend, checked, dynamic_shared))
        if known is None and self.generic_params:  # each specialization keeps its own launchers
            self._specialization_for(args).launch(
                grid, block, args, backend, checked=checked, dynamic_shared=dynamic_shared
            )
            return
        try:
            if known is not None:
                device, launcher, env_backend, as_given = known
                if (backend is None or backend.__class__ is str) and (
                    instances.get(device.name) is not device
                    or backend is None and _env_backend() != env_backend
                ):
                    known = None  # the backend was replaced, or the default changed
                elif launcher(args if as_given else self.ir_arguments(args)):
                    if started:
                        record_launch(self.__name__, started)
                    return
            self._launch(grid, block, args, backend, checked, dynamic_shared)
            if started:
                record_launch(self.__name__, started)
        except bounds_error as exc:  # a bug in the kernel, not in the runtime: no runtime frames
            if debug_tracebacks():
                raise
            from ringkernel.runtime.arguments import in_struct_elements

            raise in_struct_elements(exc, self._struct_layout()).with_traceback(None) from None

    def _launch(self, grid: Any, block: Any, args: Sequence[Any], backend: Any,
                checked: bool | None, dynamic_shared: Any) -> None:
        """The general path; it leaves a fast launcher for the next launch like this one.

        A backend that offers ``launcher(build, grid, block)`` (cpu) returns
        an object that re-checks only the arguments (see
        :mod:`ringkernel.runtime.cpu.launcher`) and declines anything unusual,
        which then comes here and gets its precise error.  The launchers are
        keyed by the launch's grid, block, backend, ``checked`` and
        ``dynamic_shared`` as given.
        """
        from ringkernel.runtime.arguments import LaunchError, bind_arguments, launch_dims

        grid3, block3 = launch_dims(grid, block)
        module = _launch_sized(self.ir, dynamic_shared)
        fn = module.get(self._ir_name)
        bound = bind_arguments(fn, self.ir_arguments(args))
        try:
            device, build = _launch_build(module, fn.name, grid3, block3, bound, backend, checked)
        except CompileError as exc:
            if dynamic_shared is None or "bytes of shared memory" not in exc.message:
                raise
            # the dynamic size took the block past the device's shared memory: a launch setting
            raise LaunchError(f"dynamic_shared={dynamic_shared}: {exc.message}") from None
        make = getattr(device, "launcher", None)
        if make is None or not (_plain_dims(grid) and _plain_dims(block)):
            return
        key = (grid, block, backend, checked, dynamic_shared)
        try:
            hash(key)
        except TypeError:  # an unhashable backend object
            return
        if len(self._launchers) >= _MAX_LAUNCHERS:
            self._launchers.clear()
        as_given = self._struct_layout() is None
        self._launchers[key] = (device, make(build, grid3, block3), _env_backend(), as_given)

    def _specialization_for(self, args: Sequence[Any]) -> Kernel:
        """The specialization a launch's argument dtypes select; each has its own launchers, so
        a fast launcher never runs arguments of other dtypes through a wrong specialization.

        The choice depends only on the dtype (or Python type) of each argument, so it is
        remembered per such signature and a warm launch does not infer it again.
        """
        from ringkernel.runtime.arguments import infer_type_bindings

        names = [a.arg for a in self.ringkernel_source.node.args.args]
        signature = None
        if len(args) == len(names):
            signature = tuple((type(a), getattr(a, "dtype", None)) for a in args)
            known = self._chosen.get(signature)
            if known is not None:
                return known
        bindings = infer_type_bindings(self.__name__, names, self.generic_params, tuple(args))
        special: Kernel = self.specialize(**bindings)
        if signature is not None:
            if len(self._chosen) >= _MAX_LAUNCHERS:
                self._chosen.clear()
            self._chosen[signature] = special
        return special

    def ir_arguments(self, args: Sequence[Any]) -> Sequence[Any]:
        """``args`` as the RingIR kernel takes them: a struct record as its fields' scalars, an
        ``Array[S]`` as its 32-bit words (a view: what the kernel writes lands in the array)."""
        from ringkernel.runtime.arguments import flatten_struct_arguments

        layout = self._struct_layout()
        if layout is None:
            return args
        return tuple(flatten_struct_arguments(self.__name__, layout, tuple(args)))

    def _struct_layout(self) -> tuple[tuple[str, Any, int], ...] | None:
        """Per parameter, the numpy dtype of a struct (or struct array) parameter; None without any."""
        if not hasattr(self, "_layout"):
            params, _ = signature_of(self.ringkernel_source, "kernel")
            layout = launch_layout(params)
            self._layout = layout if any(dtype is not None for _, dtype, _ in layout) else None
        return self._layout

    def __getitem__(self, config: Any) -> Callable[..., None]:
        try:
            known = self._configured.get(config)
        except TypeError:  # a list inside: no memo
            known = None
        if known is not None:
            return known
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

        try:
            if len(self._configured) >= _MAX_LAUNCHERS:
                self._configured.clear()
            self._configured[config] = launcher  # k[grid, block] in a loop builds it once
        except TypeError:
            pass
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
    _launch_build(module, kernel_name, grid, block, args, backend, checked)


def _launch_build(
    module: Module,
    kernel_name: str,
    grid: tuple[int, int, int],
    block: tuple[int, int, int],
    args: Sequence[Any],
    backend: Any,
    checked: bool | None,
) -> tuple[Any, Any]:
    """:func:`launch_module`'s work; returns the backend instance and the build it ran."""
    from ringkernel.runtime import get_backend
    from ringkernel.runtime.arguments import check_device_arrays, device_arrays_backend
    from ringkernel.runtime.backend import KernelBuild

    use_caches_in_runtime()
    if backend is None:  # device arrays say where they live
        backend = device_arrays_backend(args)
    device = get_backend(backend) if backend is None or isinstance(backend, str) else backend
    check_device_arrays(module.get(kernel_name), args, device.name)
    options = device.compile_options(module, kernel_name, grid, block, args, checked=checked)
    text = compile_module(module, device.target, **options)
    build = KernelBuild(module, kernel_name, device.target, options, text)
    device.launch(build, grid, block, args, checked=checked)
    return device, build


_dynamic_arrays: dict[int, tuple[weakref.ref[Module], list[Any]]] = {}


def _dynamic_shared_of(module: Module) -> list[Any]:
    """The dynamic shared arrays of ``module``, found once per module object: finding them
    walks every statement, which a launch with a new grid or block paid each time."""
    from ringkernel.ringir.passes.dynamic_shared import dynamic_shared_arrays

    key = id(module)
    known = _dynamic_arrays.get(key)
    if known is not None and known[0]() is module:
        return known[1]
    arrays = dynamic_shared_arrays(module)
    _dynamic_arrays[key] = (weakref.ref(module, lambda _ref: _dynamic_arrays.pop(key, None)), arrays)
    return arrays


def _launch_sized(module: Module, dynamic_shared: Any) -> Module:
    """The module a launch runs: dynamic shared arrays sized, or a LaunchError naming the range."""
    from ringkernel.compiler import sized_module
    from ringkernel.ringir.limits import MAX_ARRAY_BYTES
    from ringkernel.runtime.arguments import LaunchError

    arrays = _dynamic_shared_of(module)
    if not arrays:
        if dynamic_shared is not None:
            raise LaunchError("dynamic_shared was given, but the kernel has no rk.dynamic_shared_array")
        return module
    widest = max(s.result.type.elem.nbytes for s in arrays)
    most = MAX_ARRAY_BYTES // widest
    ok = isinstance(dynamic_shared, (int, np.integer)) and not isinstance(dynamic_shared, bool)
    if not ok or not 1 <= dynamic_shared <= most:
        raise LaunchError(
            f"the kernel uses rk.dynamic_shared_array(): dynamic_shared must be an element count "
            f"from 1 to {most}, got {dynamic_shared!r} (launch(..., dynamic_shared=N) or k[grid, block, N])"
        )
    return sized_module(module, int(dynamic_shared))


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

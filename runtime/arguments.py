"""Launch-argument checking shared by every backend.

Errors name the kernel parameter and say what was expected, before any byte
moves to a device.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from ringkernel.ringir import SCALAR_TYPES, ArrayType, Function, ScalarType, hidden_extents
from ringkernel.ringir.types import float_overflows

Dim3 = tuple[int, int, int]

# CUDA's launch limits, enforced on every backend: a launch that runs on one
# backend runs on all, and no grid is so large that it never finishes.
MAX_GRID: Dim3 = (2**31 - 1, 65535, 65535)
MAX_BLOCK: Dim3 = (1024, 1024, 64)
MAX_BLOCK_THREADS = 1024


class LaunchError(TypeError):
    """A launch argument, grid or block that does not fit the kernel."""


class BoundsError(IndexError):
    """A kernel indexed an array outside its bounds (found by a checked launch).

    The message names the kernel, the array parameter, the index and the
    array's length; no byte outside the array was read or written.
    ``array``, ``index`` and ``length`` say the same for a kernel's array
    parameter (None elsewhere: shared arrays, device functions' parameters).
    """

    def __init__(
        self, message: str, *, array: str | None = None, index: int | None = None, length: int | None = None
    ) -> None:
        super().__init__(message)
        self.array, self.index, self.length = array, index, length


def in_struct_elements(exc: Exception, layout: Sequence[tuple[str, Any, int]] | None) -> Exception:
    """``exc`` restated for an ``Array[S]`` (or ``Array[Vec]``) parameter, whose index and length
    the checked build counts in 32-bit words (``docs/layout.md``): which element that word is in."""
    if not isinstance(exc, BoundsError) or exc.array is None or exc.index is None or exc.length is None:
        return exc
    if not layout:
        return exc
    for name, dtype, ndim in layout:
        if name == exc.array and ndim and dtype is not None:
            words = dtype.itemsize // 4
            element, word = divmod(exc.index, words)
            return BoundsError(
                f"{exc.args[0]}; '{name}' holds {exc.length // words} element(s) of {words} word(s) "
                f"each (index and length count words), so that is word {word} of element {element}",
                array=exc.array, index=exc.index, length=exc.length,
            )
    return exc


def normalize_dims(value: Any, what: str) -> Dim3:
    """An int or a tuple of up to three positive ints, as ``(x, y, z)``."""
    dims = (value,) if isinstance(value, (int, np.integer)) else value
    if not isinstance(dims, (tuple, list)) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in dims
    ):
        raise LaunchError(f"{what} must be an int or a tuple of up to 3 ints, got {value!r}")
    if not 1 <= len(dims) <= 3 or any(d < 1 for d in dims):
        raise LaunchError(f"{what} must be 1 to 3 positive ints, got {value!r}")
    return tuple(int(d) for d in (*dims, 1, 1)[:3])  # type: ignore[return-value]


def as_tuple(dims: Sequence[int]) -> Dim3:
    """Launch dimensions as a tuple (a caller may hand over a list): hashable, printed as one."""
    return cast(Dim3, tuple(dims))


def check_dims(grid: Dim3, block: Dim3) -> None:
    """Raises :class:`LaunchError` naming the limit when ``grid``/``block`` exceed CUDA's.

    Every backend calls it (and ``Kernel.launch`` before any of them), so the
    limits hold however a launch arrives; a backend with smaller limits of its
    own (wgpu, metal) checks those as well.
    """
    for what, dims, limits in (("grid", grid, MAX_GRID), ("block", block, MAX_BLOCK)):
        for axis, size, top in zip("xyz", dims, limits):
            if size > top:
                raise LaunchError(
                    f"{what} {tuple(dims)} is too large: {what} {axis} may be at most {top} "
                    f"(CUDA's limit, enforced on every backend)"
                )
    threads = block[0] * block[1] * block[2]
    if threads > MAX_BLOCK_THREADS:
        raise LaunchError(
            f"block {tuple(block)} has {threads} threads; at most {MAX_BLOCK_THREADS} "
            f"threads per block (CUDA's limit, enforced on every backend)"
        )


def launch_dims(grid: Any, block: Any) -> tuple[Dim3, Dim3]:
    """``grid`` and ``block`` as checked 3-tuples: :func:`normalize_dims`, then :func:`check_dims`."""
    grid3, block3 = normalize_dims(grid, "grid"), normalize_dims(block, "block")
    check_dims(grid3, block3)
    return grid3, block3


I32_MAX = 2**31 - 1


def bind_arguments(fn: Function, args: Sequence[Any]) -> list[Any]:
    """Checks ``args`` against ``fn``'s parameters; returns arrays and numpy scalars.

    The user passes the declared parameters; the hidden extent parameters
    that follow them (docs/layout.md) are filled in here from the arrays'
    shapes, so the result has one entry per parameter of ``fn``.
    """
    declared, hidden = _split_params(fn)
    if len(args) != len(declared):
        names = ", ".join(p.name for p in declared)
        raise LaunchError(f"kernel '{fn.name}' takes {len(declared)} argument(s) ({names}), got {len(args)}")
    bound = [_bind_one(fn, p.name, p.type, a) for p, a in zip(declared, args)]
    if hidden:
        by_name = {p.name: (p.type, a) for p, a in zip(declared, bound)}
        bound.extend(_extent(fn, *by_name[array], array, dim) for array, dim in hidden)
    return bound


def _split_params(fn: Function) -> tuple[list[Any], list[tuple[str, int]]]:
    """``fn``'s declared parameters, and (array, dim) of each hidden extent parameter after them."""
    arrays = {p.name for p in fn.params if isinstance(p.type, ArrayType)}
    hidden = hidden_extents([p.name for p in fn.params], arrays)
    declared = [p for p, h in zip(fn.params, hidden) if h is None]
    return declared, [h for h in hidden if h is not None]


def _extent(fn: Function, ty: ArrayType, arg: Any, name: str, dim: int) -> np.int32:
    """Extent ``dim`` of the array bound to ``name`` (a 1-D parameter sees its argument flat)."""
    shape = tuple(arg.shape)
    extent = int(np.prod(shape)) if ty.ndim == 1 else shape[dim]
    return np.int32(extent)


def _check_shape(fn: Function, name: str, ty: ArrayType, shape: tuple[int, ...]) -> None:
    """An N-d parameter needs an argument of N dimensions whose elements an i32 can count."""
    if ty.ndim > 1 and len(shape) != ty.ndim:
        raise LaunchError(
            f"{_where(fn, name)} must be a {ty.ndim}-D array (Array[{ty.elem}, {ty.ndim}]), got "
            f"{len(shape)}-D shape {shape}; reshape it with a.reshape(...) or change the annotation"
        )
    if ty.ndim > 1 and int(np.prod(shape)) > I32_MAX:
        raise LaunchError(
            f"{_where(fn, name)} has {int(np.prod(shape))} elements; an N-d array may hold at most "
            f"{I32_MAX} (its extents and flat indices are i32)"
        )


def flatten_struct_arguments(
    kernel: str, layout: Sequence[tuple[str, Any, int]], args: Sequence[Any]
) -> list[Any]:
    """Struct arguments as the scalars and words RingIR sees (see ``docs/layout.md``).

    ``layout`` has, per Python-level parameter, its name, the numpy dtype of a
    struct parameter or struct-array element (None: passed as it is; a
    subarray dtype for an ``Array[Vec[T, K]]``) and the dimensions of an
    array of them (0: a struct value).  A struct is passed as a numpy record
    of that dtype (``S(...)``, ``arr[i]``), an ``Array[S]`` as a C-contiguous
    numpy array of it, which the kernel reads and writes in place as 32-bit words.
    """
    if len(args) != len(layout):
        names = ", ".join(name for name, _, _ in layout)
        raise LaunchError(f"kernel '{kernel}' takes {len(layout)} argument(s) ({names}), got {len(args)}")
    flat: list[Any] = []
    for (name, dtype, ndim), arg in zip(layout, args):
        where = f"argument '{name}' of kernel '{kernel}'"
        if dtype is None:
            flat.append(arg)
        elif ndim:
            flat.append(_struct_words(where, dtype, int(ndim), arg))
        else:
            flat.extend(_struct_leaves(where, dtype, arg))
    return flat


def _struct_words(where: str, dtype: np.dtype, ndim: int, arg: Any) -> Any:
    """The u32 words of an array of ``dtype`` elements; an N-d one keeps its leading extents
    and counts words in its last (docs/layout.md)."""
    from ringkernel.runtime.device_array import DeviceArray

    words = dtype.itemsize // 4
    if isinstance(arg, DeviceArray):  # the words of its elements, kept on the device
        if arg.dtype == dtype or (dtype.subdtype is not None and arg.dtype == dtype.subdtype[0]):
            arg = arg.struct_words(dtype, ndim)
        if arg.dtype != np.uint32 or arg.ndim != ndim or arg.shape[-1] % words:
            raise LaunchError(
                f"{where} as a device array must hold elements of {dtype} (rk.to_device(a) for a "
                f"numpy array a of them) or be the uint32 words of elements of {dtype}: "
                f"rk.to_device(a.view(np.uint32)), got {arg!r}"
            )
        return arg
    if not isinstance(arg, np.ndarray):
        raise LaunchError(f"{where} must be a numpy array of dtype {dtype}, got {type(arg).__name__}")
    if dtype.subdtype is not None:  # Array[Vec[T, K]]: a numpy array of T whose last axis is K
        base, (length,) = dtype.subdtype
        if arg.dtype != base or arg.ndim != ndim + 1 or arg.shape[-1] != length:
            raise LaunchError(f"{where} must be a {ndim + 1}-D array of dtype {base} whose last axis "
                              f"has {length} elements (one Vec each), got {arg.dtype} of shape {arg.shape}")
    elif arg.dtype != dtype:
        raise LaunchError(f"{where} must have the struct's dtype {dtype}, got {arg.dtype}; "
                          "build it with np.zeros(n, dtype=S.dtype)")
    elif arg.ndim != ndim:
        raise LaunchError(f"{where} must be a {ndim}-D array of {dtype}, got {arg.ndim}-D shape {arg.shape}")
    if not arg.flags.c_contiguous:
        raise LaunchError(f"{where} must be a {ndim}-D C-contiguous array (use np.ascontiguousarray(a))")
    lead = arg.shape[: ndim - 1]
    if ndim > 1 and int(np.prod(arg.shape[:ndim], dtype=np.int64)) * words > I32_MAX:
        raise LaunchError(f"{where} has too many elements: an N-d array of structs may hold at most "
                          f"{I32_MAX // words} (its word indices are i32)")
    flat = arg.reshape(-1).view(np.uint32)  # a view: the kernel writes the caller's array
    rows = int(np.prod(lead, dtype=np.int64))
    return flat.reshape(*lead, flat.size // rows if rows else arg.shape[ndim - 1] * words)


def _struct_leaves(where: str, dtype: np.dtype, arg: Any) -> list[Any]:
    if isinstance(arg, np.ndarray) and arg.ndim == 0:
        arg = arg[()]
    if not isinstance(arg, np.void) or arg.dtype != dtype:
        got = arg.dtype if isinstance(arg, np.void) else type(arg).__name__
        raise LaunchError(f"{where} must be a record of the struct's dtype {dtype} (S(...) or "
                          f"an element of an array of S.dtype), got {got}")
    return _record_leaves(dtype, arg)


def _record_leaves(dtype: np.dtype, record: Any) -> list[Any]:
    """A record's scalars in leaf order: nested structs and Vec fields flattened."""
    leaves: list[Any] = []
    for name in dtype.names or ():
        field = dtype.fields[name][0]  # type: ignore[index]
        value = record[name]
        if field.names:  # a nested struct
            leaves.extend(_record_leaves(field, value))
        elif field.shape:  # a Vec field: one leaf per element
            leaves.extend(field.base.type(v) for v in np.asarray(value).ravel())
        else:
            leaves.append(field.type(value))
    return leaves


def _bind_one(fn: Function, name: str, ty: Any, arg: Any) -> Any:
    if isinstance(ty, ArrayType):
        if not isinstance(arg, np.ndarray):
            return _bind_device_array(fn, name, ty, arg)
        expected = _dtype(ty.elem.numpy_dtype)
        if arg.dtype != expected:
            raise LaunchError(f"{_where(fn, name)} must have dtype {expected}, got {arg.dtype}")
        _check_shape(fn, name, ty, arg.shape)
        if not arg.flags.c_contiguous:
            raise LaunchError(
                f"{_where(fn, name)} must be C-contiguous (row-major, no strides); "
                "pass np.ascontiguousarray(a)"
            )
        if not arg.flags.writeable:
            raise LaunchError(f"{_where(fn, name)} must be writeable")
        return arg
    assert isinstance(ty, ScalarType)
    return _scalar(fn, name, ty, arg)


def _bind_device_array(fn: Function, name: str, ty: ArrayType, arg: Any) -> Any:
    from ringkernel.runtime.device_array import DeviceArray, from_cuda_array_interface

    if not isinstance(arg, DeviceArray) and hasattr(arg, "__cuda_array_interface__"):
        try:  # CuPy, CUDA torch tensors, Numba device arrays: their memory, no copy
            arg = from_cuda_array_interface(arg)
        except (BufferError, ValueError) as exc:
            raise LaunchError(f"{_where(fn, name)}: {exc}") from None
    if not isinstance(arg, DeviceArray):
        got = type(arg).__name__
        raise LaunchError(
            f"{_where(fn, name)} must be a numpy array or an rk.DeviceArray of {ty.elem}, got {got}"
        )
    expected = _dtype(ty.elem.numpy_dtype)
    if arg.dtype != expected:
        raise LaunchError(f"{_where(fn, name)} must have dtype {expected}, got a device array of {arg.dtype}")
    _check_shape(fn, name, ty, tuple(arg.shape))
    return arg


def check_device_arrays(fn: Function, args: Sequence[Any], backend: str) -> None:
    """Raises :class:`LaunchError` naming the parameter when a device array lives on another backend."""
    for param, arg in zip(fn.params, args):
        where = getattr(arg, "backend", backend)
        if where != backend:
            raise LaunchError(
                f"{_where(fn, param.name)} is a device array on the '{where}' backend, but the "
                f"launch runs on '{backend}'; move it with rk.to_device(a.numpy(), '{backend}') "
                f"or launch on '{where}'"
            )


def device_arrays_backend(args: Sequence[Any]) -> str | None:
    """The backend of the first device array among ``args`` (where a launch with none named runs)."""
    for arg in args:
        where = getattr(arg, "backend", None)
        if isinstance(where, str):
            return where
    return None


def _where(fn: Function, name: str) -> str:
    """The argument named in an error (built only when there is one: launches are hot)."""
    return f"argument '{name}' of kernel '{fn.name}'"


@functools.cache
def _dtype(numpy_dtype: Any) -> np.dtype:
    return np.dtype(numpy_dtype)


def _scalar(fn: Function, name: str, ty: ScalarType, arg: Any) -> Any:
    if isinstance(arg, np.ndarray) and arg.ndim == 0:
        arg = arg[()]
    if ty.is_bool:
        if not isinstance(arg, (bool, np.bool_)):
            raise LaunchError(f"{_where(fn, name)} must be a bool, got {arg!r}")
        return np.bool_(arg)
    if isinstance(arg, (bool, np.bool_)) or not isinstance(arg, (int, float, np.number)):
        raise LaunchError(f"{_where(fn, name)} must be a number of type {ty}, got {arg!r}")
    dtype = _dtype(ty.numpy_dtype)
    if ty.is_float:
        if float_overflows(float(arg), ty):
            top = float(np.finfo(dtype).max)
            raise LaunchError(f"{_where(fn, name)} = {arg!r} is out of range for {ty} [{-top:g}, {top:g}]")
        return dtype.type(arg)
    if isinstance(arg, (float, np.floating)):
        raise LaunchError(f"{_where(fn, name)} has integer type {ty}; got the float {arg!r} (cast it)")
    low, high = ty.min_value, ty.max_value
    if not low <= int(arg) <= high:
        raise LaunchError(f"{_where(fn, name)} = {int(arg)} is out of range for {ty} [{low}, {high}]")
    return dtype.type(int(arg))


_BY_DTYPE = {np.dtype(t.numpy_dtype): t for t in SCALAR_TYPES.values()}


def infer_type_bindings(
    kernel: str, names: Sequence[str], params: Sequence[tuple[str, str, bool]], args: Sequence[Any]
) -> dict[str, ScalarType]:
    """The scalar types a generic kernel's type variables take from a launch's arguments.

    ``params`` lists ``(parameter, type variable, is_array)`` for each generic
    parameter; ``names`` every parameter in order.  Arrays and numpy scalars
    bind their dtype; a Python number binds only a variable nothing else
    binds (int → i32, float → f32, bool → bool).  Two arguments that bind one
    variable differently are a :class:`LaunchError` naming both.
    """
    if len(args) != len(names):
        raise LaunchError(
            f"kernel '{kernel}' takes {len(names)} argument(s) ({', '.join(names)}), got {len(args)}"
        )
    by_name = dict(zip(names, args))
    strong: dict[str, tuple[ScalarType, str]] = {}
    weak: dict[str, ScalarType] = {}
    for pname, var, is_array in params:
        arg = by_name[pname]
        dtype = getattr(arg, "dtype", None)
        if dtype is not None:
            ty = _BY_DTYPE.get(np.dtype(dtype))
            if ty is None:
                raise LaunchError(
                    f"argument '{pname}' of kernel '{kernel}' has dtype {dtype}, which binds no "
                    f"type of {var}; use one of {', '.join(SCALAR_TYPES)}"
                )
            known = strong.get(var)
            if known is not None and known[0] != ty:
                raise LaunchError(
                    f"type variable {var} of kernel '{kernel}' is bound to {known[0]} by argument "
                    f"'{known[1]}' ({known[0].numpy_dtype}) and to {ty} by argument '{pname}' "
                    f"({ty.numpy_dtype}); pass arguments of one dtype, e.g. "
                    f"{pname}.astype(np.{known[0].numpy_dtype})"
                )
            strong.setdefault(var, (ty, pname))
        elif is_array:
            raise LaunchError(
                f"argument '{pname}' of kernel '{kernel}' must be a numpy array or an rk.DeviceArray, "
                f"got {type(arg).__name__}"
            )
        elif isinstance(arg, (bool, int, float)):
            name = "bool" if isinstance(arg, bool) else "i32" if isinstance(arg, int) else "f32"
            weak.setdefault(var, SCALAR_TYPES[name])
        else:
            raise LaunchError(
                f"argument '{pname}' of kernel '{kernel}' must be a number, got {type(arg).__name__}"
            )
    return {**weak, **{var: ty for var, (ty, _) in strong.items()}}

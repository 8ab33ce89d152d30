"""The Python-visible names of the kernel language.

These objects do nothing when called from ordinary Python; the frontend
recognizes them by identity (under any alias) while translating a kernel.
The ``rk.<name>`` builtins are stubs of the entries of
:mod:`ringkernel.frontends.builtins`, which carry their rules and docs.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from ringkernel.frontends.builtins import BY_NAME
from ringkernel.frontends.valuetypes import StructArray, StructDef, VecType, array_element_problem
from ringkernel.ringir.types import (
    BOOL,
    F32,
    I32,
    MAX_NDIM,
    SCALAR_TYPES,
    AddressSpace,
    ArrayType,
    ScalarType,
)


class Intrinsic:
    """A kernel-language builtin such as ``rk.global_id`` or ``rk.atomic_add``."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.__name__ = name
        self.__qualname__ = name
        self.__doc__ = doc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"rk.{self.name}() can only be used inside a @rk.kernel or @rk.func function")

    def __repr__(self) -> str:
        return f"<ringkernel intrinsic {self.name}>"


def _intrinsic(name: str) -> Intrinsic:
    """The ``rk.<name>`` stub of the builtin table's entry ``name``, documented by its doc line."""
    return Intrinsic(name, BY_NAME[name].doc)


thread_id = _intrinsic("thread_id")
block_id = _intrinsic("block_id")
block_dim = _intrinsic("block_dim")
grid_dim = _intrinsic("grid_dim")
global_id = _intrinsic("global_id")
shared_array = _intrinsic("shared_array")
local_array = _intrinsic("local_array")
barrier = _intrinsic("barrier")
grid_sync = _intrinsic("grid_sync")
dynamic_shared_array = _intrinsic("dynamic_shared_array")
rsqrt = _intrinsic("rsqrt")
fma = _intrinsic("fma")
atomic_add = _intrinsic("atomic_add")
atomic_sub = _intrinsic("atomic_sub")
atomic_min = _intrinsic("atomic_min")
atomic_max = _intrinsic("atomic_max")
atomic_and = _intrinsic("atomic_and")
atomic_or = _intrinsic("atomic_or")
atomic_xor = _intrinsic("atomic_xor")
atomic_exchange = _intrinsic("atomic_exchange")
atomic_cas = _intrinsic("atomic_cas")
bitcast = _intrinsic("bitcast")
popc = _intrinsic("popc")
clz = _intrinsic("clz")
ffs = _intrinsic("ffs")
brev = _intrinsic("brev")
clamp = _intrinsic("clamp")
atomic_inc = _intrinsic("atomic_inc")
atomic_dec = _intrinsic("atomic_dec")
lane_id = _intrinsic("lane_id")
warp_size = _intrinsic("warp_size")
shfl = _intrinsic("shfl")
shfl_up = _intrinsic("shfl_up")
shfl_down = _intrinsic("shfl_down")
shfl_xor = _intrinsic("shfl_xor")
ballot = _intrinsic("ballot")
vote_any = _intrinsic("vote_any")
vote_all = _intrinsic("vote_all")
syncwarp = _intrinsic("syncwarp")
barrier_count = _intrinsic("barrier_count")
barrier_and = _intrinsic("barrier_and")
barrier_or = _intrinsic("barrier_or")

INTRINSICS: dict[str, Intrinsic] = {
    obj.name: obj
    for obj in (
        thread_id,
        block_id,
        block_dim,
        grid_dim,
        global_id,
        shared_array,
        local_array,
        barrier,
        grid_sync,
        rsqrt,
        fma,
        atomic_add,
        atomic_sub,
        atomic_min,
        atomic_max,
        atomic_and,
        atomic_or,
        atomic_xor,
        atomic_exchange,
        atomic_cas,
        bitcast,
        popc,
        clz,
        ffs,
        brev,
        clamp,
        atomic_inc,
        atomic_dec,
        lane_id,
        warp_size,
        shfl,
        shfl_up,
        shfl_down,
        shfl_xor,
        ballot,
        vote_any,
        vote_all,
        syncwarp,
        barrier_count,
        barrier_and,
        barrier_or,
        dynamic_shared_array,
    )
}
"""Every ``rk.<name>`` stub; tests check it holds exactly the table's ``stub`` entries."""

ATOMIC_INTRINSICS = {b.name: b.op for b in BY_NAME.values() if b.rule == "atomic" and b.op is not None}
"""``rk.atomic_<op>`` name -> its AtomicRMW op (atomic_cas is its own node)."""

_PYTHON_SCALARS: dict[Any, ScalarType] = {builtins.int: I32, builtins.float: F32, builtins.bool: BOOL}
# numpy's spellings of the IR scalars, by dtype name (np.float32, np.dtype("float32"), ...).
_NUMPY_NAMES = {t.numpy_dtype: t for t in SCALAR_TYPES.values()}
SUPPORTED_SCALARS = (
    "f32, f64, i32, u32, i64, u64, bool, i8, u8, i16, u16, f16 (or int, float, np.float32, np.int32, ...)"
)


def scalar_type_of(obj: Any) -> ScalarType | None:
    """The RingIR scalar an annotation object denotes, or None.

    Accepts the IR's own types (``rk.f32``), Python's ``int``/``float``/``bool``
    (i32, f32, bool, as Numba does for ``int``/``float`` literals), numpy
    scalar types (``np.float32``, ``np.bool_``) and dtypes (``np.dtype("f4")``).
    """
    if isinstance(obj, ScalarType):
        return obj
    if _hashable(obj) and obj in _PYTHON_SCALARS:
        return _PYTHON_SCALARS[obj]
    dtype = _numpy_dtype(obj)
    return None if dtype is None else _NUMPY_NAMES.get(dtype.name)


def unsupported_scalar_reason(obj: Any) -> str | None:
    """Why a numpy type that is a scalar type is still refused (``np.float16``), else None."""
    dtype = _numpy_dtype(obj)
    if dtype is None or dtype.name in _NUMPY_NAMES:
        return None
    return f"numpy dtype {dtype.name} has no RingIR type; use one of {SUPPORTED_SCALARS}"


def _numpy_dtype(obj: Any) -> np.dtype | None:
    if isinstance(obj, np.dtype):
        return obj
    if isinstance(obj, type) and issubclass(obj, np.generic):
        try:
            return np.dtype(obj)
        except TypeError:
            return None
    return None


def _hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


class TypeVar:
    """``T = rk.TypeVar("T")``: a type parameter of generic kernels and device functions.

    ``Array[T]``, scalar parameters of type ``T`` and ``T(x)`` casts in the body
    are completed per specialization: from the argument dtypes at launch, by
    ``kernel.specialize(T=f32)``, by ``ringc --specialize T=f32``, or, in a
    ``@rk.func``, from the types of the caller's arguments.  Specializations
    are told apart by the TypeVar's name.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(
                f"rk.TypeVar takes the variable's name as a string, e.g. TypeVar('T'), got {name!r}"
            )
        self.name = name
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self.name}(...) can only be used inside a @rk.kernel or @rk.func function")

    def __repr__(self) -> str:
        return f"TypeVar({self.name!r})"


class GenericArray:
    """``Array[T]`` / ``Array[T, N]`` of a :class:`TypeVar`: an array type completed when ``T``
    is bound."""

    def __init__(self, elem: TypeVar, ndim: int = 1) -> None:
        self.elem = elem
        self.ndim = ndim

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GenericArray) and other.elem is self.elem and other.ndim == self.ndim

    def __hash__(self) -> int:
        return hash(("GenericArray", id(self.elem), self.ndim))

    def __repr__(self) -> str:
        return f"Array[{self.elem.name}]" if self.ndim == 1 else f"Array[{self.elem.name}, {self.ndim}]"


def array_type(elem: ScalarType, ndim: int) -> ArrayType:
    """The global array type ``Array[elem, ndim]`` (extents known only at launch)."""
    return ArrayType(elem, AddressSpace.GLOBAL, None, None if ndim == 1 else (None,) * ndim)


def bind(obj: Any, bindings: dict[str, ScalarType]) -> Any:
    """``obj`` with its type variable replaced by the scalar ``bindings`` gives it, if any."""
    if isinstance(obj, TypeVar) and obj.name in bindings:
        return bindings[obj.name]
    if isinstance(obj, GenericArray) and obj.elem.name in bindings:
        return array_type(bindings[obj.elem.name], obj.ndim)
    if isinstance(obj, VecType) and isinstance(obj.elem, TypeVar) and obj.elem.name in bindings:
        return VecType(bindings[obj.elem.name], obj.length)  # Vec[T, 4]
    if getattr(obj, "__origin__", None) is tuple:  # tuple[T, T]: a func's results
        return tuple[tuple(bind(a, bindings) for a in getattr(obj, "__args__", ()))]  # type: ignore[misc]
    return obj


def type_variable_of(obj: Any) -> TypeVar | None:
    """The TypeVar an annotation object (``T``, ``Array[T]``, ``Vec[T, N]``, ``tuple[T, ...]``)
    leaves open, or None."""
    if isinstance(obj, TypeVar):
        return obj
    if isinstance(obj, (GenericArray, VecType)) and isinstance(obj.elem, TypeVar):
        return obj.elem
    if getattr(obj, "__origin__", None) is tuple:
        return next(filter(None, (type_variable_of(a) for a in getattr(obj, "__args__", ()))), None)
    return None


class Array:
    """``Array[T]`` / ``Array[T, N]``: a global (storage) buffer parameter of N = 1..3
    dimensions; pass a C-contiguous numpy array of dtype T and N dimensions."""

    def __class_getitem__(cls, params: Any) -> ArrayType:
        elem, ndim = params if isinstance(params, tuple) and len(params) == 2 else (params, 1)
        if isinstance(params, tuple) and len(params) != 2:
            raise TypeError(f"Array[...] takes an element type and a dimension count, got {params!r}")
        if isinstance(ndim, bool) or not isinstance(ndim, int) or not 1 <= ndim <= MAX_NDIM:
            raise TypeError(f"Array[T, N] takes N = 1 to {MAX_NDIM} dimensions, got {ndim!r}")
        if isinstance(elem, TypeVar):
            return GenericArray(elem, ndim)  # type: ignore[return-value]
        if isinstance(elem, (StructDef, VecType)):
            problem = elem.problem() if isinstance(elem, VecType) else None
            problem = problem or array_element_problem(elem)
            if problem is not None:
                raise TypeError(problem)
            return StructArray(elem, ndim)  # type: ignore[return-value]
        ty = scalar_type_of(elem)
        if ty is None:
            reason = unsupported_scalar_reason(elem)
            raise TypeError(
                reason or f"Array[...] takes a scalar element type ({SUPPORTED_SCALARS}), got {elem!r}"
            )
        return array_type(ty, ndim)

    def __init__(self) -> None:
        raise TypeError("Array[T] is a type annotation; pass a numpy array to the kernel")


class Vec:
    """``Vec[T, N]``: a fixed-length value array of N scalars of type T (1 <= N <= 65536; a local
    one longer than 64 lives in a per-work-item array instead of registers).

    ``Vec[f32, 4](a, b, c, d)`` and ``Vec[f32, 4].zeros()`` build one; a bad
    length is reported, with a caret, where the type is used in a kernel.
    """

    def __class_getitem__(cls, params: Any) -> VecType:
        if not isinstance(params, tuple) or len(params) != 2:
            raise TypeError("write Vec[T, N], e.g. Vec[f32, 4]")
        elem, length = params
        return VecType(scalar_type_of(elem) or elem, length)

    def __init__(self) -> None:
        raise TypeError("Vec[T, N] is a type; build a value with Vec[T, N](...) or Vec[T, N].zeros()")


class PortType:
    """``rk.Port[Msg]``: the annotation of an actor's typed output port (not state).

    A handler sends on it with ``self.<port>.send(Msg(...))``; the actor system
    wires it with ``system.connect(a, b, port="<port>")`` (``docs/actors.md``).
    """

    def __init__(self, message: Any) -> None:
        self.message = message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PortType) and other.message is self.message

    def __hash__(self) -> int:
        return hash((PortType, id(self.message)))

    def __repr__(self) -> str:
        return f"rk.Port[{getattr(self.message, '__name__', self.message)!r}]"


class Port:
    """``rk.Port[Msg]`` declares a typed output port on an actor class: ``out: rk.Port[Msg]``."""

    def __class_getitem__(cls, message: Any) -> PortType:
        return PortType(message)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("rk.Port is an annotation: declare a port as 'out: rk.Port[Msg]' in an actor class")

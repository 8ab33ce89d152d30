"""RingIR types: scalars, arrays with an address space, structs, void.

Types are frozen dataclasses compared structurally.  ``str(t)`` is the type's
spelling in the RingIR text form.
"""

from __future__ import annotations

import struct
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ringkernel.ringir.diagnostics import SourceLoc


class Type:
    """Base of every RingIR type."""

    __slots__ = ()


@dataclass(frozen=True)
class ScalarType(Type):
    """A scalar: ``f32 f64 i32 u32 i64 u64 bool`` and the small ``i8 u8 i16 u16 f16``.

    Small types are storage types: values of them are loaded, stored, passed
    and converted, but arithmetic, comparison and indexing take them only
    after promotion (i32 for the integers, f32 for f16), as C promotes
    integers; see :data:`PROMOTED`.
    """

    name: str

    def __post_init__(self) -> None:
        if self.name not in _SCALAR_INFO:
            raise ValueError(f"unknown scalar type {self.name!r}")

    @property
    def bits(self) -> int:
        return _SCALAR_INFO[self.name][1]

    @property
    def kind(self) -> str:
        """``"float"``, ``"int"`` (signed), ``"uint"`` or ``"bool"``."""
        return _SCALAR_INFO[self.name][0]

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_int(self) -> bool:
        """True for signed and unsigned integers (not bool)."""
        return self.kind in ("int", "uint")

    @property
    def is_signed(self) -> bool:
        return self.kind in ("int", "float")

    @property
    def is_bool(self) -> bool:
        return self.kind == "bool"

    @property
    def is_small(self) -> bool:
        """True for ``i8 u8 i16 u16 f16``: storage types that promote before arithmetic."""
        return self.name in _SMALL

    @property
    def nbytes(self) -> int:
        return 4 if self.kind == "bool" else self.bits // 8

    @property
    def min_value(self) -> int:
        """The smallest value of an integer type: every range check derives from this."""
        self._require_int()
        return -(1 << (self.bits - 1)) if self.kind == "int" else 0

    @property
    def max_value(self) -> int:
        """The largest value of an integer type."""
        self._require_int()
        return (1 << (self.bits - 1 if self.kind == "int" else self.bits)) - 1

    def _require_int(self) -> None:
        if not self.is_int:
            raise TypeError(f"{self.name} is not an integer type and has no integer range")

    @property
    def numpy_dtype(self) -> str:
        return _NUMPY_DTYPE[self.name]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name.upper()


_SCALAR_INFO = {
    "f32": ("float", 32),
    "f64": ("float", 64),
    "i32": ("int", 32),
    "u32": ("uint", 32),
    "i64": ("int", 64),
    "u64": ("uint", 64),
    "bool": ("bool", 1),
    "i8": ("int", 8),
    "u8": ("uint", 8),
    "i16": ("int", 16),
    "u16": ("uint", 16),
    "f16": ("float", 16),
}
_SMALL = frozenset({"i8", "u8", "i16", "u16", "f16"})

_NUMPY_DTYPE = {
    "f32": "float32",
    "f64": "float64",
    "i32": "int32",
    "u32": "uint32",
    "i64": "int64",
    "u64": "uint64",
    "bool": "bool",
    "i8": "int8",
    "u8": "uint8",
    "i16": "int16",
    "u16": "uint16",
    "f16": "float16",
}

def float_overflows(value: float, ty: ScalarType) -> bool:
    """True if a finite ``value`` becomes infinite when rounded to ``ty`` (f16, f32 or f64).

    Rounding is to nearest even, as every target converts an f32 constant, so
    values a little above the largest f32 that round down to it still fit.
    """
    if ty.bits == 64 or value != value or value in (float("inf"), float("-inf")):
        return False
    try:
        struct.pack("<e" if ty.bits == 16 else "<f", value)
    except OverflowError:
        return True
    return False


F32 = ScalarType("f32")
F64 = ScalarType("f64")
I32 = ScalarType("i32")
U32 = ScalarType("u32")
I64 = ScalarType("i64")
U64 = ScalarType("u64")
BOOL = ScalarType("bool")
I8 = ScalarType("i8")
U8 = ScalarType("u8")
I16 = ScalarType("i16")
U16 = ScalarType("u16")
F16 = ScalarType("f16")

SCALAR_TYPES: dict[str, ScalarType] = {
    t.name: t for t in (F32, F64, I32, U32, I64, U64, BOOL, I8, U8, I16, U16, F16)
}
SMALL_TYPES: tuple[ScalarType, ...] = (I8, U8, I16, U16, F16)

PROMOTED: dict[ScalarType, ScalarType] = {I8: I32, U8: I32, I16: I32, U16: I32, F16: F32}
"""The type a small scalar takes part in arithmetic as (C's integer promotion; f16 → f32)."""


class AddressSpace(str, Enum):
    """Where an array lives: device-global storage, per-block shared memory,
    per-work-item local (private) memory, or read-only data embedded in the
    program (module-level numpy arrays)."""

    GLOBAL = "global"
    SHARED = "shared"
    LOCAL = "local"
    CONSTANT = "constant"

    def __str__(self) -> str:
        return self.value


MAX_NDIM = 3


@dataclass(frozen=True)
class ArrayType(Type):
    """An array of scalars, stored flat (C order, row-major).

    Global arrays are kernel parameters of unknown length; shared, local and
    constant arrays have a constant ``size`` (the element count).  ``shape``
    is None for a one-dimensional array; an N-dimensional one (N = 2..3)
    lists its extents, ``None`` where the extent is known only at launch
    (global arrays, and array parameters of funcs).  Memory access is always
    by flat index: the frontend turns ``a[i, j]`` into ``i * extent1 + j``, so
    no backend needs to know about dimensions.
    """

    elem: ScalarType
    space: AddressSpace = AddressSpace.GLOBAL
    size: int | None = None
    shape: tuple[int | None, ...] | None = None

    @property
    def ndim(self) -> int:
        return 1 if self.shape is None else len(self.shape)

    def __str__(self) -> str:
        parts = [str(self.elem), str(self.space)]
        if self.size is not None:
            parts.append(str(self.size))
        if self.shape is not None:
            parts.append("[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]")
        return f"array<{', '.join(parts)}>"


EXTENT_SUFFIX = ".shape"


def extent_param_name(array: str, dim: int) -> str:
    """The hidden i32 parameter holding extent ``dim`` of array parameter ``array``.

    User names cannot contain a dot, so these never collide with them; the
    launch code finds them by :func:`extent_param_of` (docs/layout.md).
    """
    return f"{array}{EXTENT_SUFFIX}{dim}"


def extent_param_of(name: str) -> tuple[str, int] | None:
    """``(array, dim)`` when ``name`` is a hidden extent parameter's name, else None."""
    array, sep, dim = name.rpartition(EXTENT_SUFFIX)
    if not sep or not array or not dim.isdigit():
        return None
    return array, int(dim)


def hidden_extents(names: Sequence[str], arrays: Container[str]) -> list[tuple[str, int] | None]:
    """Per parameter name, ``(array, dim)`` if it is a hidden extent of the array parameter
    ``array`` (one of ``arrays``), else None.

    Checking the array part keeps a struct parameter's flattened field ``s.shape0``
    (a declared parameter) from passing for an extent of ``s``.
    """
    out: list[tuple[str, int] | None] = []
    for name in names:
        where = extent_param_of(name)
        out.append(where if where is not None and where[0] in arrays else None)
    return out


@dataclass(frozen=True)
class StructType(Type):
    """A named struct of scalar fields (messages, actor state)."""

    name: str
    fields: tuple[tuple[str, ScalarType], ...]
    loc: SourceLoc | None = field(default=None, compare=False, repr=False, kw_only=True)

    def field_type(self, field: str) -> ScalarType:
        for name, ty in self.fields:
            if name == field:
                return ty
        raise KeyError(field)

    def __str__(self) -> str:
        return f"struct {self.name}"


@dataclass(frozen=True)
class TupleType(Type):
    """The scalars a ``func`` returns together: ``tuple<f32, f32>``.

    Frontends flatten struct, ``Vec`` and tuple return values into one; only
    ``make_tuple`` builds it and only ``extract`` reads it, so it never
    reaches memory and no target needs a layout for it.
    """

    elems: tuple[ScalarType, ...]

    def __str__(self) -> str:
        return f"tuple<{', '.join(str(e) for e in self.elems)}>"


MAX_TUPLE_ELEMS = 64
"""The most scalars one ``func`` may return together (a register budget, not a layout limit)."""


@dataclass(frozen=True)
class VoidType(Type):
    """The return type of functions that return nothing."""

    def __str__(self) -> str:
        return "void"


VOID = VoidType()


def as_scalar(ty: Type) -> ScalarType:
    """``ty`` where the verifier already requires a scalar (operands of arithmetic,
    casts, indices, ...); anything else there is a compiler bug."""
    if not isinstance(ty, ScalarType):
        raise TypeError(f"expected a scalar type, got {ty}")
    return ty

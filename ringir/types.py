"""RingIR types: scalars, arrays with an address space, structs, void.

Types are frozen dataclasses compared structurally.  ``str(t)`` is the type's
spelling in the RingIR text form.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum

from ringkernel.ringir.diagnostics import SourceLoc


class Type:
    """Base of every RingIR type."""

    __slots__ = ()


@dataclass(frozen=True)
class ScalarType(Type):
    """A scalar: ``f32 f64 i32 u32 i64 u64 bool``."""

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
}

_NUMPY_DTYPE = {
    "f32": "float32",
    "f64": "float64",
    "i32": "int32",
    "u32": "uint32",
    "i64": "int64",
    "u64": "uint64",
    "bool": "bool",
}

def float_overflows(value: float, ty: ScalarType) -> bool:
    """True if a finite ``value`` becomes infinite when rounded to ``ty`` (f32 or f64).

    Rounding is to nearest even, as every target converts an f32 constant, so
    values a little above the largest f32 that round down to it still fit.
    """
    if ty.bits != 32 or value != value or value in (float("inf"), float("-inf")):
        return False
    try:
        struct.pack("<f", value)
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

SCALAR_TYPES: dict[str, ScalarType] = {t.name: t for t in (F32, F64, I32, U32, I64, U64, BOOL)}


class AddressSpace(str, Enum):
    """Where an array lives: device-global storage or per-block shared memory."""

    GLOBAL = "global"
    SHARED = "shared"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ArrayType(Type):
    """A one-dimensional array of scalars.

    Global arrays are kernel parameters of unknown length; shared arrays have a
    constant ``size`` and are created with the ``shared_array`` instruction.
    """

    elem: ScalarType
    space: AddressSpace = AddressSpace.GLOBAL
    size: int | None = None

    def __str__(self) -> str:
        if self.size is None:
            return f"array<{self.elem}, {self.space}>"
        return f"array<{self.elem}, {self.space}, {self.size}>"


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

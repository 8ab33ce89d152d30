"""Value types of the kernel language that RingIR does not have: structs, ``Vec`` and tuples.

The frontend *flattens* them: a struct, ``Vec[T, N]`` or tuple value is the
sequence of its scalar *leaves* (fields in declaration order, a Vec's
elements in index order), each a RingIR scalar, local or parameter.  So every
backend sees only scalars, and a ``func`` returning one returns a RingIR
``tuple<...>`` of the leaves.

In memory (``Array[S]``, host arguments) a struct has one fixed layout,
normative in ``docs/layout.md``: C's natural alignment, which is numpy's
aligned structured dtype (``np.dtype(..., align=True)``).  A field of any
scalar type (bool takes one byte), ``Vec`` or nested struct starts at the
next multiple of its alignment (a scalar's size; a Vec's element's; a
struct's largest field's), and the struct's size is rounded up to its own
alignment.  ``S.dtype`` spells it with explicit offsets and itemsize.  RingIR
sees an ``Array[S]`` (and an ``Array[Vec[T, N]]``) as the ``u32`` words of
its elements, so every element must be a whole number of words; the
frontend reads a sub-word field out of its word and writes it back with
atomic and/or, and a 64-bit field as two words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ringkernel.ringir.types import AddressSpace, ScalarType, Type

MAX_VEC_LEN = 64
"""The longest ``Vec`` held in registers (a dynamic index costs one test per element); a longer
local Vec lives in a per-work-item array (see :mod:`ringkernel.frontends.aggregates`)."""

MAX_VEC_MEMORY = 1 << 16
"""The longest ``Vec`` at all: in memory (array elements, struct fields, local arrays)."""

WORD_BYTES = 4


@dataclass(frozen=True)
class VecType(Type):
    """``Vec[T, N]``: N values of scalar type T, passed and assigned by value.

    In a kernel, ``Vec[f32, 4](a, b, c, d)`` builds one and ``Vec[f32, 4].zeros()``
    a zero-filled one; on the host the same calls give a numpy array.
    """

    elem: ScalarType
    length: int

    def __str__(self) -> str:
        return f"Vec[{self.elem}, {self.length}]"

    def problem(self) -> str | None:
        """Why this Vec type cannot be used, or None (checked where it is written, for a caret)."""
        if not isinstance(self.elem, ScalarType):
            return f"Vec elements must be scalars such as f32, not {self.elem}"
        if isinstance(self.length, bool) or not isinstance(self.length, int):
            return f"a Vec length must be a constant integer, not {self.length!r}"
        if not 1 <= self.length <= MAX_VEC_MEMORY:
            return f"Vec length {self.length} is out of range; use 1 to {MAX_VEC_MEMORY}"
        return None

    def __call__(self, *values: Any) -> np.ndarray:
        """On the host: a numpy array of the elements (in kernels the frontend builds a Vec)."""
        if len(values) != self.length:
            raise TypeError(f"{self} takes {self.length} values, got {len(values)}")
        return np.array(values, dtype=self.elem.numpy_dtype)

    def zeros(self) -> np.ndarray:
        """On the host: a zero-filled numpy array (in kernels, a zero Vec)."""
        return np.zeros(self.length, dtype=self.elem.numpy_dtype)


class StructDef(Type):
    """An ``@rk.struct`` value type: named scalar and ``Vec`` fields (compared by identity).

    Calling it on the host builds a numpy record of :attr:`dtype`, the form a
    kernel's struct parameter and the elements of an ``Array[S]`` take.
    """

    def __init__(self, name: str, fields: tuple[tuple[str, Any], ...], pyclass: Any) -> None:
        self.name = name
        self.fields = fields
        offsets: list[int] = []
        end = 0
        for _, ty in fields:
            offsets.append(_align_up(end, mem_align(ty)))
            end = offsets[-1] + mem_size(ty)
        self.offsets = tuple(offsets)
        """Byte offset of each field in memory (C's and numpy's aligned layout)."""
        self.align = max(mem_align(ty) for _, ty in fields)
        self.size = _align_up(end, self.align)
        self.pyclass = pyclass
        self.__name__ = name
        self.__qualname__ = getattr(pyclass, "__qualname__", name)
        self.__module__ = getattr(pyclass, "__module__", __name__)
        self.__doc__ = getattr(pyclass, "__doc__", None)
        self.dtype = struct_dtype(self)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<ringkernel struct {self.name}>"

    def field(self, name: str) -> tuple[int, Any, int] | None:
        """The first leaf index, the type and the byte offset of field ``name``, or None."""
        start = 0
        for (fname, ty), offset in zip(self.fields, self.offsets):
            if fname == name:
                return start, ty, offset
            start += len(leaves(ty))
        return None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """On the host: a record of :attr:`dtype` (positional or keyword fields)."""
        names = [n for n, _ in self.fields]
        if len(args) > len(names):
            raise TypeError(f"struct {self.name} has {len(names)} fields, got {len(args)} values")
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError(f"struct {self.name} has no field '{key}' (fields: {', '.join(names)})")
            if key in values:
                raise TypeError(f"field '{key}' of {self.name} is given twice")
            values[key] = value
        missing = [n for n in names if n not in values]
        if missing:
            raise TypeError(f"struct {self.name} needs field(s) {', '.join(missing)}")
        record = np.zeros((), dtype=self.dtype)
        for name in names:
            record[name] = values[name]
        return record[()]


@dataclass(frozen=True)
class TupleDef(Type):
    """``tuple[T1, T2, ...]``: what a ``func`` may return and ``a, b = f(...)`` unpacks."""

    elems: tuple[Any, ...]

    def __str__(self) -> str:
        return f"tuple[{', '.join(str(e) for e in self.elems)}]"


@dataclass(frozen=True)
class StructArray(Type):
    """``Array[S]`` / ``Array[S, N]`` / ``Array[Vec[T, K]]``: a global array of struct (or Vec)
    elements; a numpy array of ``S.dtype``, or of T with a last axis of K for Vecs."""

    struct: StructDef | VecType
    ndim: int = 1
    space: AddressSpace = AddressSpace.GLOBAL  # a func's parameter: the memory its argument is in

    def __str__(self) -> str:
        return f"Array[{self.struct}]" if self.ndim == 1 else f"Array[{self.struct}, {self.ndim}]"

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of one element (a subarray dtype for a Vec)."""
        return element_dtype(self.struct)


def is_aggregate(ty: Any) -> bool:
    return isinstance(ty, (VecType, StructDef, TupleDef))


def leaves(ty: Any) -> tuple[ScalarType, ...]:
    """The scalar types a value of ``ty`` flattens to, in order."""
    if isinstance(ty, ScalarType):
        return (ty,)
    if isinstance(ty, VecType):
        return (ty.elem,) * ty.length
    if isinstance(ty, StructDef):
        return tuple(t for _, f in ty.fields for t in leaves(f))
    if isinstance(ty, TupleDef):
        return tuple(t for e in ty.elems for t in leaves(e))
    raise TypeError(f"{ty} is not a value type")


def leaf_names(ty: Any) -> tuple[str, ...]:
    """Dotted paths of the leaves (``x``, ``v.0``, ``1.m``): IR names of flattened params and locals."""
    if isinstance(ty, ScalarType):
        return ("",)
    if isinstance(ty, VecType):
        parts: list[tuple[str, Any]] = [(str(i), ty.elem) for i in range(ty.length)]
    elif isinstance(ty, StructDef):
        parts = list(ty.fields)
    else:
        parts = [(str(i), e) for i, e in enumerate(ty.elems)]
    return tuple(f"{name}.{sub}" if sub else name for name, part in parts for sub in leaf_names(part))


def element_slice(ty: Any, index: int) -> tuple[int, Any]:
    """First leaf and type of element ``index`` of a Vec or tuple (``index`` already checked)."""
    if isinstance(ty, VecType):
        return index, ty.elem
    start = sum(len(leaves(e)) for e in ty.elems[:index])
    return start, ty.elems[index]


def _align_up(offset: int, align: int) -> int:
    return -(-offset // align) * align


def scalar_bytes(ty: ScalarType) -> int:
    """A scalar's size in memory: bool takes one byte, as in numpy and C."""
    return 1 if ty.is_bool else ty.nbytes


def mem_size(ty: Any) -> int:
    """Bytes a value of a scalar, Vec or struct type takes in memory."""
    if isinstance(ty, ScalarType):
        return scalar_bytes(ty)
    if isinstance(ty, VecType):
        return scalar_bytes(ty.elem) * ty.length
    assert isinstance(ty, StructDef)
    return ty.size


def mem_align(ty: Any) -> int:
    """A type's alignment in memory: a scalar's size, a Vec's element's, a struct's largest field's."""
    if isinstance(ty, ScalarType):
        return scalar_bytes(ty)
    if isinstance(ty, VecType):
        return scalar_bytes(ty.elem)
    assert isinstance(ty, StructDef)
    return ty.align


def leaf_offsets(ty: Any) -> tuple[int, ...]:
    """The byte offset of each leaf of a scalar, Vec or struct value laid out in memory."""
    if isinstance(ty, ScalarType):
        return (0,)
    if isinstance(ty, VecType):
        step = scalar_bytes(ty.elem)
        return tuple(k * step for k in range(ty.length))
    assert isinstance(ty, StructDef)
    return tuple(o + sub for (_, f), o in zip(ty.fields, ty.offsets) for sub in leaf_offsets(f))


def struct_words(struct: StructDef | VecType) -> int:
    """Words (4 bytes each) one element of ``Array[struct]`` (or ``Array[Vec]``) takes."""
    return mem_size(struct) // WORD_BYTES


def element_dtype(ty: Any) -> np.dtype:
    """The little-endian numpy dtype of a scalar, Vec (a subarray dtype) or struct in memory."""
    if isinstance(ty, ScalarType):
        return np.dtype(ty.numpy_dtype).newbyteorder("<")
    if isinstance(ty, VecType):
        return np.dtype((element_dtype(ty.elem), (ty.length,)))
    assert isinstance(ty, StructDef)
    return ty.dtype


def struct_dtype(struct: StructDef) -> np.dtype:
    """The numpy structured dtype of ``struct``'s memory layout (see the module docstring)."""
    return np.dtype({
        "names": [name for name, _ in struct.fields],
        "formats": [element_dtype(ty) for _, ty in struct.fields],
        "offsets": list(struct.offsets),
        "itemsize": struct.size,
    })


def array_element_problem(ty: StructDef | VecType) -> str | None:
    """Why ``Array[ty]`` cannot be: its elements must be whole 32-bit words (WGSL's unit)."""
    size = mem_size(ty)
    if size % WORD_BYTES == 0:
        return None
    if isinstance(ty, VecType):
        return (f"an Array[{ty}] element is {size} bytes; array elements are whole 4-byte words, so "
                f"use a length that makes a multiple of 4 bytes (e.g. Vec[{ty.elem}, "
                f"{_align_up(size, WORD_BYTES) // scalar_bytes(ty.elem)}])")
    missing = _align_up(size, WORD_BYTES) - size
    pad = "u8" if missing == 1 else f"Vec[u8, {missing}]"
    return (f"struct {ty} is {size} bytes; elements of an Array[{ty}] are whole 4-byte words, so pad "
            f"it to {size + missing} bytes with a last field such as 'pad: {pad}'")


def field_type_problem(ty: Any) -> str | None:
    """Why ``ty`` cannot be a struct field, or None."""
    if isinstance(ty, VecType):
        return ty.problem()
    if isinstance(ty, (ScalarType, StructDef)):
        return None
    return "struct fields are scalars (f32, f64, i32, u8, bool, ...), Vec[T, N] or structs"


__all__ = [
    "MAX_VEC_LEN", "MAX_VEC_MEMORY", "VecType", "StructDef", "TupleDef", "StructArray",
    "is_aggregate", "leaves", "leaf_names", "element_slice", "struct_words", "struct_dtype",
    "field_type_problem", "mem_size", "mem_align", "leaf_offsets", "element_dtype", "scalar_bytes",
    "array_element_problem",
]

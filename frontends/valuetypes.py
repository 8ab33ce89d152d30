"""Value types of the kernel language that RingIR does not have: structs, ``Vec`` and tuples.

The frontend *flattens* them: a struct, ``Vec[T, N]`` or tuple value is the
sequence of its scalar *leaves* (fields in declaration order, a Vec's
elements in index order), each a RingIR scalar, local or parameter.  So every
backend sees only scalars, and a ``func`` returning one returns a RingIR
``tuple<...>`` of the leaves.

In memory (``Array[S]``, host arguments) a struct has one fixed layout,
normative in ``docs/layout.md``: every field is a 4-byte scalar (f32, i32,
u32) or a ``Vec`` of them, fields follow each other without padding in
declaration order, a Vec's elements are 4 bytes apart, and the struct's size
is 4 bytes times its leaf count (alignment 4).  That is also WGSL's
storage-buffer layout of the same struct with ``array<T, N>`` for each Vec,
MSL's and C's; ``S.dtype`` spells it for numpy with explicit offsets and
itemsize.  RingIR sees an ``Array[S]`` as the ``u32`` words of those elements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ringkernel.ringir.types import F32, I32, U32, ScalarType, Type

MAX_VEC_LEN = 64
"""The longest ``Vec``: its elements live in registers, and a dynamic index costs one test per element."""

MEMORY_SCALARS = (F32, I32, U32)
"""Scalar types a struct field (or a struct field's Vec) may have: one 4-byte word each."""

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
        if not 1 <= self.length <= MAX_VEC_LEN:
            return f"Vec length {self.length} is out of range; use 1 to {MAX_VEC_LEN}"
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

    def __init__(self, name: str, fields: tuple[tuple[str, ScalarType | VecType], ...], pyclass: Any) -> None:
        self.name = name
        self.fields = fields
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

    def field(self, name: str) -> tuple[int, ScalarType | VecType] | None:
        """The first leaf index and the type of field ``name``, or None."""
        start = 0
        for fname, ty in self.fields:
            if fname == name:
                return start, ty
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
    """``Array[S]``: a global array of struct elements, a numpy array of ``S.dtype``."""

    struct: StructDef

    def __str__(self) -> str:
        return f"Array[{self.struct}]"


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


def struct_words(struct: StructDef) -> int:
    """Words (4 bytes each) one element of ``Array[struct]`` takes."""
    return len(leaves(struct))


def struct_dtype(struct: StructDef) -> np.dtype:
    """The numpy structured dtype of ``struct``'s memory layout (see the module docstring)."""
    names, formats, offsets = [], [], []
    offset = 0
    for name, ty in struct.fields:
        names.append(name)
        if isinstance(ty, VecType):
            formats.append((np.dtype(ty.elem.numpy_dtype).newbyteorder("<"), (ty.length,)))
        else:
            formats.append(np.dtype(ty.numpy_dtype).newbyteorder("<"))
        offsets.append(offset)
        offset += WORD_BYTES * len(leaves(ty))
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": offset})


def field_type_problem(ty: Any) -> str | None:
    """Why ``ty`` cannot be a struct field, or None."""
    if isinstance(ty, VecType):
        problem = ty.problem()
        if problem is not None:
            return problem
        ty = ty.elem
    if isinstance(ty, ScalarType):
        if ty in MEMORY_SCALARS:
            return None
        hint = "; store a bool as u32" if ty.is_bool else ""
        return f"struct fields are 4-byte scalars (f32, i32, u32) or Vecs of them, not {ty}{hint}"
    if isinstance(ty, StructDef):
        return f"struct fields are scalars or Vecs, not the struct {ty}; copy its fields in"
    return "struct fields are 4-byte scalars (f32, i32, u32) or Vec[T, N] of them"


__all__ = [
    "MAX_VEC_LEN", "MEMORY_SCALARS", "VecType", "StructDef", "TupleDef", "StructArray",
    "is_aggregate", "leaves", "leaf_names", "element_slice", "struct_words", "struct_dtype",
    "field_type_problem",
]

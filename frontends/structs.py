"""``@rk.struct``: a class of annotated fields → a :class:`StructDef` value type.

Fields are checked where they are declared (a located ``CompileError`` for
an unknown or unsupported type, a bad ``Vec`` length, a struct containing
itself), so a bad struct fails at its definition, not at the first kernel
that uses it.  Fields may be any scalar, a ``Vec`` or another struct.
"""

from __future__ import annotations

from typing import Any

from ringkernel.frontends.actors import _annotations, _resolve_annotation, field_error
from ringkernel.frontends.python import python_object_type
from ringkernel.frontends.valuetypes import StructDef, VecType, field_type_problem
from ringkernel.ringir.diagnostics import CompileError


def define_struct(cls: Any) -> StructDef:
    """The value type that the fields annotated in ``cls``'s body describe."""
    if not isinstance(cls, type):
        raise CompileError(f"@rk.struct decorates a class, not {type(cls).__name__}")
    fields: list[tuple[str, Any]] = []
    for name, annotation in _annotations(cls).items():
        if name.startswith("_"):
            raise field_error(cls, name, f"struct field names cannot start with '_' ('{name}')")
        resolved = _resolve_annotation(cls, annotation)
        if isinstance(resolved, str) and resolved.split("[")[0].strip() == cls.__name__:
            raise field_error(cls, name, f"struct {cls.__name__} cannot contain itself (field '{name}')")
        ty = python_object_type(resolved)
        if isinstance(resolved, VecType):
            ty = resolved
        problem = field_type_problem(ty) if ty is not None else (
            f"field '{name}' has unsupported type {annotation!r}; use a scalar such as f32, Vec[T, N] "
            "or an @rk.struct")
        if problem is not None:
            raise field_error(cls, name, f"struct {cls.__name__}: {problem}")
        fields.append((name, ty))
    if not fields:
        raise CompileError(f"struct {cls.__name__} has no fields; annotate at least one, e.g. 'x: f32'")
    return StructDef(cls.__name__, tuple(fields), cls)

"""What a target supports, as data, and one walk that finds the first use it lacks.

Each target declares a :class:`Capabilities` table: the scalar types its
values may have, the element types its atomics accept, whether it prints
struct declarations, and how it words a refusal.  :func:`check_module` walks a
module in one fixed order (structs, then per function its parameters, return
type and body in source order, a local where it is first touched) and raises
a located :class:`CompileError` for the first use the table rules out, before
any text is emitted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from ringkernel.lowering.common.atomics import atomic_array
from ringkernel.ringir import (
    VOID,
    ArrayType,
    Function,
    Module,
    ScalarType,
    Stmt,
    TupleType,
    Type,
    Value,
    walk,
)
from ringkernel.ringir.diagnostics import CompileError, SourceLoc


@dataclass(frozen=True)
class TypeUse:
    """One place a type appears: ``role`` says which (see :func:`type_uses`)."""

    role: str  # "field", "param", "return", "local", "value" or "atomic"
    ty: Type
    name: str  # the field, parameter, local or value name ("" for a return)
    owner: Function | None
    loc: SourceLoc | None
    stmt: Stmt | None = None
    struct: str = ""


@dataclass(frozen=True)
class Capabilities:
    """One target's support table and its wording for what it lacks."""

    target: str
    scalars: frozenset[str]
    """Scalar types values, parameters, locals and array elements may have."""
    atomic_elements: frozenset[str]
    """Element types an atomic operation may act on."""
    emits_structs: bool
    refusal: Callable[[TypeUse], str]
    """The message for a use this target lacks."""
    notes: tuple[str, ...] = ()

    def supports(self, use: TypeUse) -> bool:
        ty = element(use.ty)
        if not isinstance(ty, ScalarType):
            return True  # structs and void are not scalar uses
        return ty.name in (self.atomic_elements if use.role == "atomic" else self.scalars)


def check_module(module: Module, caps: Capabilities) -> None:
    """Raises :class:`CompileError` at the first use in ``module`` that ``caps`` rules out."""
    for use in type_uses(module, structs=caps.emits_structs):
        for part in _tuple_parts(use):
            if not caps.supports(part):
                raise CompileError.at(part.loc, caps.refusal(part), notes=caps.notes)


def _tuple_parts(use: TypeUse) -> tuple[TypeUse, ...]:
    """A ``tuple<...>`` use as one use per element: a target lacks an element type, not tuples."""
    if isinstance(use.ty, TupleType):
        return tuple(replace(use, ty=e) for e in use.ty.elems)
    return (use,)


def type_uses(module: Module, *, structs: bool = True) -> Iterator[TypeUse]:
    """Every type use of ``module`` in checking order."""
    if structs:
        for struct in module.structs:
            for field, ty in struct.fields:
                yield TypeUse("field", ty, field, None, None, struct=struct.name)
    for fn in module.functions:
        yield from _function_uses(fn)


def _function_uses(fn: Function) -> Iterator[TypeUse]:
    """Parameters, return type, then the body in source order: a local where first touched."""
    for p in fn.params:
        yield TypeUse("param", p.type, p.name, fn, fn.loc)
    if fn.return_type != VOID:
        yield TypeUse("return", fn.return_type, "", fn, fn.loc)
    seen: set[str] = set()
    for stmt in walk(fn.body):
        loc = getattr(stmt, "loc", None) or fn.loc
        var = getattr(stmt, "var", None)
        if var is not None and var.name not in seen:
            seen.add(var.name)
            yield TypeUse("local", var.type, var.name, fn, loc, stmt)
        result = getattr(stmt, "result", None)
        if isinstance(result, Value):
            yield TypeUse("value", result.type, result.name, fn, loc, stmt)
        array = atomic_array(stmt)
        if array is not None:
            yield TypeUse("atomic", array.type, array.name, fn, loc, stmt)
    for var in fn.locals:
        if var.name not in seen:
            yield TypeUse("local", var.type, var.name, fn, fn.loc)


def element(ty: Type) -> Type:
    """An array's element type; any other type itself."""
    return ty.elem if isinstance(ty, ArrayType) else ty

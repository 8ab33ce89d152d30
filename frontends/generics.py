"""Generic kernels and device functions: binding ``rk.TypeVar``s to scalar types.

A generic function is translated once per binding (``{"T": f32}``), from a
copy of its source whose resolver answers ``T`` with ``f32`` and ``Array[T]``
with ``Array[f32]``; the translator itself never sees a type variable.  This
module finds a function's type parameters and infers their binding from the
types of a call's arguments; the facade infers a kernel's from numpy dtypes.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ringkernel.frontends import dsl
from ringkernel.frontends.python import evaluate_static
from ringkernel.frontends.source import FunctionSource
from ringkernel.frontends.valuetypes import VecType
from ringkernel.ringir import ArrayType, ScalarType, Type
from ringkernel.ringir.diagnostics import CompileError

Bindings = dict[str, ScalarType]


class BoundResolver:
    """A resolver that answers type variables with the scalar types they are bound to."""

    def __init__(self, inner: Any, bindings: Bindings) -> None:
        self.inner = inner
        self.bindings = bindings

    def lookup(self, name: str) -> Any:
        return dsl.bind(self.inner.lookup(name), self.bindings)

    def lookup_annotation_name(self, name: str) -> Any:
        inner = getattr(self.inner, "lookup_annotation_name", self.inner.lookup)
        return dsl.bind(inner(name), self.bindings)

    def annotation(self, name: str) -> Any:
        inner = getattr(self.inner, "annotation", None)
        if inner is None:
            raise KeyError(name)
        return dsl.bind(inner(name), self.bindings)


def bound_source(source: FunctionSource, bindings: Bindings) -> FunctionSource:
    """``source`` translated with ``bindings`` in force (earlier bindings of a bound source kept)."""
    inner = source.resolver
    if isinstance(inner, BoundResolver):
        bindings = {**inner.bindings, **bindings}
        inner = inner.inner
    return replace(source, resolver=BoundResolver(inner, bindings))


def bindings_of(source: FunctionSource) -> Bindings:
    """The bindings a specialized function's source is translated with (none for a plain one)."""
    resolver = source.resolver
    return dict(resolver.bindings) if isinstance(resolver, BoundResolver) else {}


@dataclass(frozen=True)
class TypeParam:
    """A parameter whose annotation is ``T`` or ``Array[T]`` for an open type variable."""

    name: str
    var: str
    is_array: bool
    node: ast.AST


def type_params(source: FunctionSource) -> list[TypeParam]:
    """The parameters of ``source`` whose types are still open type variables."""
    out = []
    evaluated = getattr(source.resolver, "annotation", None)
    for arg in source.node.args.args:
        if arg.annotation is None:
            continue
        obj: Any = None
        if evaluated is not None:
            try:
                obj = evaluated(arg.arg)
            except KeyError:
                obj = None
        if obj is None:
            try:
                obj = evaluate_static(source, arg.annotation, annotation=True)
            except CompileError:
                continue  # reported, with its caret, when the function is translated
        var = dsl.type_variable_of(obj)
        if var is not None:
            out.append(TypeParam(arg.arg, var.name, isinstance(obj, dsl.GenericArray), arg))
    return out


def type_variables(source: FunctionSource) -> list[str]:
    """The names of the open type variables of ``source``'s parameters, in order of appearance."""
    names: list[str] = []
    for p in type_params(source):
        if p.var not in names:
            names.append(p.var)
    return names


def infer_from_operands(
    callee: FunctionSource, args: Sequence[tuple[Type | None, ast.AST]], caller: FunctionSource
) -> Bindings:
    """The binding a call with arguments of these types gives the generic function ``callee``.

    A ``None`` type is a literal argument: it binds nothing (a variable only
    literals meet defaults to the literal's type later).  Two arguments that
    bind one variable to different types are an error at the second, in
    ``caller``'s source, naming both.
    """
    bindings: Bindings = {}
    first: dict[str, str] = {}
    params = {p.name: p for p in type_params(callee)}
    names = [a.arg for a in callee.node.args.args]
    for pname, (ty, node) in zip(names, args):
        param = params.get(pname)
        if param is None or ty is None:
            continue
        scalar = ty.elem if isinstance(ty, (ArrayType, VecType)) else ty
        if not isinstance(scalar, ScalarType):
            continue
        known = bindings.get(param.var)
        if known is not None and known != scalar:
            raise caller.error(
                node,
                f"type variable {param.var} of '{callee.name}' is bound to {known} by argument "
                f"'{first[param.var]}' and to {scalar} by argument '{pname}'; convert one of them "
                f"with {known}(...)",
            )
        bindings[param.var] = scalar
        first.setdefault(param.var, pname)
    return bindings


def specialized_name(base: str, bindings: Bindings) -> str:
    """An IR name for one specialization: ``scale_f32``, ``pair_f32_i32`` (by variable name order)."""
    if not bindings:
        return base
    return base + "_" + "_".join(str(bindings[k]) for k in sorted(bindings))


__all__ = [
    "Bindings", "BoundResolver", "TypeParam", "bindings_of", "bound_source", "infer_from_operands",
    "specialized_name", "type_params", "type_variables",
]

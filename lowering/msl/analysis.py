"""Whole-module facts the MSL emitter needs before it prints anything.

Metal has no ``double``, so f64 anywhere is a :class:`CompileError` at the
node that introduced it.  An array touched by an atomic must be declared with
an atomic element type, and that type has to agree along every call edge, so
atomic-ness is propagated over the call graph with a union-find.
"""

from __future__ import annotations

from ringkernel.ringir import (
    F64,
    ArrayType,
    AtomicCAS,
    AtomicRMW,
    Call,
    Function,
    Module,
    ScalarType,
    Type,
    walk,
)
from ringkernel.ringir.diagnostics import CompileError, SourceLoc

ArrayKey = tuple[str, str]  # (function name, value name)


def check_supported(module: Module) -> None:
    """Raises :class:`CompileError` for types and operations Metal lacks."""
    for struct in module.structs:
        for field, ty in struct.fields:
            if ty == F64:
                raise CompileError(
                    f"field '{field}' of struct '{struct.name}' has type f64: {_NO_F64}"
                )
    for fn in module.functions:
        _check_function(fn)


_NO_F64 = "Metal has no 64-bit float (double); use f32"


def _element(ty: Type) -> Type:
    return ty.elem if isinstance(ty, ArrayType) else ty


def _check_function(fn: Function) -> None:
    for p in fn.params:
        if _element(p.type) == F64:
            raise CompileError.at(fn.loc, f"parameter '{p.name}' of '{fn.name}' is f64: {_NO_F64}")
    if fn.return_type == F64:
        raise CompileError.at(fn.loc, f"'{fn.name}' returns f64: {_NO_F64}")
    for var in fn.locals:
        if var.type == F64:
            loc = _first_store_loc(fn, var.name) or fn.loc
            raise CompileError.at(loc, f"variable '{var.name}' is f64: {_NO_F64}")
    for stmt in walk(fn.body):
        result = getattr(stmt, "result", None)
        loc = getattr(stmt, "loc", None) or fn.loc
        if result is not None and _element(result.type) == F64:
            raise CompileError.at(loc, f"this expression has type f64: {_NO_F64}")
        if isinstance(stmt, (AtomicRMW, AtomicCAS)):
            elem = stmt.array.type.elem
            if isinstance(elem, ScalarType) and elem.bits == 64:
                raise CompileError.at(
                    loc, f"Metal has no portable 64-bit atomics ({elem}); use i32, u32 or f32"
                )


def _first_store_loc(fn: Function, name: str) -> SourceLoc | None:
    for stmt in walk(fn.body):
        var = getattr(stmt, "var", None)
        if var is not None and var.name == name:
            return stmt.loc
    return None


def atomic_arrays(module: Module) -> frozenset[ArrayKey]:
    """The array values (params and shared arrays) that need an atomic element type."""
    parent: dict[ArrayKey, ArrayKey] = {}

    def find(key: ArrayKey) -> ArrayKey:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    marked: list[ArrayKey] = []
    functions = {fn.name: fn for fn in module.functions}
    for fn in module.functions:
        for stmt in walk(fn.body):
            if isinstance(stmt, (AtomicRMW, AtomicCAS)):
                marked.append((fn.name, stmt.array.name))
            elif isinstance(stmt, Call):
                callee = functions[stmt.callee]
                for arg, param in zip(stmt.args, callee.params):
                    if isinstance(arg.type, ArrayType):
                        parent[find((fn.name, arg.name))] = find((callee.name, param.name))
    roots = {find(key) for key in marked}
    return frozenset(key for key in list(parent) + marked if find(key) in roots)

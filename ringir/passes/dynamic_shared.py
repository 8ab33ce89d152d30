"""Sizing ``rk.dynamic_shared_array(T)`` for one launch.

A dynamic shared array is a ``shared_array`` whose type has no size; its
size (in elements) is a launch setting (``launch(..., dynamic_shared=N)``).
Every target gets a sized module from :func:`size_dynamic_shared`, so the
lowerings, the shared-memory limit checks and the runtimes see an ordinary
shared array: one build per size, as a per-launch specialization.
"""

from __future__ import annotations

from dataclasses import replace

from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.limits import array_size_problem
from ringkernel.ringir.nodes import (
    _OPERAND_FIELDS,
    ForRange,
    Function,
    If,
    Loop,
    Module,
    SharedArray,
    Stmt,
    Value,
    walk,
)
from ringkernel.ringir.types import AddressSpace, ArrayType


def is_dynamic_shared(stmt: Stmt) -> bool:
    """Whether ``stmt`` creates a dynamic (launch-sized) shared array."""
    ty = getattr(stmt, "result", None) and stmt.result.type  # type: ignore[attr-defined]
    return isinstance(stmt, SharedArray) and isinstance(ty, ArrayType) and ty.size is None


def dynamic_shared_arrays(module: Module) -> list[SharedArray]:
    """The dynamic shared arrays of ``module``, in program order."""
    return [s for fn in module.functions for s in walk(fn.body)
            if isinstance(s, SharedArray) and is_dynamic_shared(s)]


def size_dynamic_shared(module: Module, elements: int | None) -> Module:
    """``module`` with every dynamic shared array holding ``elements`` elements.

    Without dynamic arrays the module is returned as is (``elements`` unused).
    A missing or impossible size is a ``CompileError`` at the first array.
    """
    arrays = dynamic_shared_arrays(module)
    if not arrays:
        return module
    first = arrays[0]
    if elements is None:
        raise CompileError.at(
            first.loc,
            "this kernel uses rk.dynamic_shared_array(); give its size in elements with "
            "launch(..., dynamic_shared=N), k[grid, block, N](...), compile(..., dynamic_shared=N) "
            "or ringc --dynamic-shared N",
        )
    for s in arrays:
        problem = array_size_problem(_sized(s.result, elements).type)  # type: ignore[arg-type]
        if problem is not None:
            raise CompileError.at(s.loc, f"dynamic_shared={elements!r}: {problem}")
    return replace(module, functions=tuple(_size_function(fn, elements) for fn in module.functions))


def _sized(value: Value, elements: int) -> Value:
    ty = value.type
    assert isinstance(ty, ArrayType)
    return Value(value.name, ArrayType(ty.elem, AddressSpace.SHARED, elements))


def _size_function(fn: Function, elements: int) -> Function:
    mapping = {s.result: _sized(s.result, elements) for s in walk(fn.body)
               if isinstance(s, SharedArray) and is_dynamic_shared(s)}
    if not mapping:
        return fn
    return replace(fn, body=_rewrite(fn.body, mapping))


def _rewrite(body: tuple[Stmt, ...], mapping: dict[Value, Value]) -> tuple[Stmt, ...]:
    """``body`` with every use (and the definition) of a mapped value replaced."""
    out = []
    for stmt in body:
        changes: dict[str, object] = {}
        for name in _OPERAND_FIELDS[type(stmt)]:
            value = getattr(stmt, name)
            if isinstance(value, tuple):
                changes[name] = tuple(mapping.get(v, v) for v in value)
            elif value is not None:
                changes[name] = mapping.get(value, value)
        if isinstance(stmt, SharedArray):
            changes["result"] = mapping.get(stmt.result, stmt.result)
        if isinstance(stmt, If):
            changes["then_body"] = _rewrite(stmt.then_body, mapping)
            changes["else_body"] = _rewrite(stmt.else_body, mapping)
        elif isinstance(stmt, (Loop, ForRange)):
            changes["body"] = _rewrite(stmt.body, mapping)
        out.append(replace(stmt, **changes))  # type: ignore[type-var]
    return tuple(out)


__all__ = ["dynamic_shared_arrays", "is_dynamic_shared", "size_dynamic_shared"]

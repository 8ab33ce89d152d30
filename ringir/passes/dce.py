"""Dead-code elimination, repeated until nothing changes.

Removes pure instructions whose result is never used, statements after a
``break``/``continue``/``return`` in the same region, ``if``s with two empty
branches, locals that are never read (with their stores), and funcs that no
kernel reaches (all funcs stay when the module has no kernel).  Stores,
atomics, calls, barriers and loops always stay: they have effects or may not
terminate.
"""

from __future__ import annotations

from dataclasses import replace

from ringkernel.ringir.nodes import (
    Binary,
    Break,
    Call,
    Cast,
    Compare,
    Const,
    ConstArray,
    Continue,
    ForRange,
    Function,
    If,
    Load,
    LoadVar,
    LocalArray,
    Loop,
    MathCall,
    Module,
    Return,
    SharedArray,
    Stmt,
    StoreVar,
    ThreadIndex,
    Unary,
    operands,
    walk,
)

PURE = (
    Const, Unary, Binary, Compare, Cast, MathCall, ThreadIndex, SharedArray, LocalArray, ConstArray, Load,
    LoadVar,
)
"""Instructions without effects: removable when their result is unused."""

_TERMINATORS = (Break, Continue, Return)


def eliminate_dead_code(module: Module) -> Module:
    """Returns ``module`` without dead instructions, locals and functions."""
    while True:
        # Cleaning a body can drop the last call to a func, so repeat both steps.
        cleaned = replace(module, functions=tuple(_clean_function(fn) for fn in module.functions))
        cleaned = _drop_unreachable_functions(cleaned)
        if cleaned == module:
            return cleaned
        module = cleaned


def _clean_function(fn: Function) -> Function:
    while True:
        used = _used_values(fn.body)
        read_locals = {s.var.name for s in walk(fn.body) if isinstance(s, (LoadVar, ForRange))}
        body = _clean_block(fn.body, used, read_locals)
        new = replace(
            fn,
            body=body,
            locals=tuple(v for v in fn.locals if v.name in read_locals),
        )
        if new == fn:
            return new
        fn = new


def _clean_block(
    body: tuple[Stmt, ...], used: set[str], read_locals: set[str]
) -> tuple[Stmt, ...]:
    out: list[Stmt] = []
    for stmt in body:
        if isinstance(stmt, PURE) and stmt.result.name not in used:
            continue
        if isinstance(stmt, StoreVar) and stmt.var.name not in read_locals:
            continue
        if isinstance(stmt, If):
            stmt = replace(
                stmt,
                then_body=_clean_block(stmt.then_body, used, read_locals),
                else_body=_clean_block(stmt.else_body, used, read_locals),
            )
            if not stmt.then_body and not stmt.else_body:
                continue
        elif isinstance(stmt, (Loop, ForRange)):
            stmt = replace(stmt, body=_clean_block(stmt.body, used, read_locals))
        out.append(stmt)
        if isinstance(stmt, _TERMINATORS):
            break
    return tuple(out)


def _used_values(body: tuple[Stmt, ...]) -> set[str]:
    """Names of every value some statement reads."""
    used: set[str] = set()
    for stmt in walk(body):
        used.update(v.name for v in operands(stmt))
    return used


def _drop_unreachable_functions(module: Module) -> Module:
    if not module.kernels:
        return module
    calls = {
        fn.name: {s.callee for s in walk(fn.body) if isinstance(s, Call)}
        for fn in module.functions
    }
    reachable: set[str] = set()
    todo = [fn.name for fn in module.kernels]
    while todo:
        name = todo.pop()
        if name in reachable:
            continue
        reachable.add(name)
        todo.extend(calls.get(name, ()))
    return replace(
        module, functions=tuple(fn for fn in module.functions if fn.name in reachable)
    )

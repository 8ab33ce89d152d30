"""Subgroup operations on one-lane subgroups (the cpu backend's), as plain statements.

With one lane, ``lane_id`` is 0, ``size`` is 1, every shuffle returns its own
value (the source is itself or outside the subgroup), ``ballot(p)`` is
``u32(p)``, ``any(p)``/``all(p)`` are ``p`` and ``syncwarp`` waits for nobody.
Rewriting them before the work-item loop rewrite lets region functions (which
are funcs, where subgroup ops are not allowed) carry them.
"""

from __future__ import annotations

from dataclasses import replace

from ringkernel.ringir.nodes import (
    Cast,
    Const,
    ForRange,
    Function,
    If,
    Loop,
    Module,
    Stmt,
    Subgroup,
    SyncWarp,
    walk,
)


def one_lane_subgroups(module: Module) -> Module:
    """``module`` with every ``Subgroup``/``SyncWarp`` replaced by its one-lane meaning."""
    if not any(isinstance(s, (Subgroup, SyncWarp)) for fn in module.functions for s in walk(fn.body)):
        return module
    return replace(module, functions=tuple(_function(fn) for fn in module.functions))


def _function(fn: Function) -> Function:
    return replace(fn, body=_block(fn.body))


def _block(body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
    out: list[Stmt] = []
    for stmt in body:
        if isinstance(stmt, SyncWarp):
            continue
        if isinstance(stmt, Subgroup):
            if stmt.op in ("lane_id", "size"):
                out.append(Const(stmt.result, int(stmt.op == "size"), loc=stmt.loc))
            else:
                out.append(Cast(stmt.result, stmt.args[0], loc=stmt.loc))  # the own value or predicate
        elif isinstance(stmt, If):
            out.append(replace(stmt, then_body=_block(stmt.then_body), else_body=_block(stmt.else_body)))
        elif isinstance(stmt, (Loop, ForRange)):
            out.append(replace(stmt, body=_block(stmt.body)))
        else:
            out.append(stmt)
    return tuple(out)


__all__ = ["one_lane_subgroups"]

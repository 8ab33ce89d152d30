"""Inlining of funcs that use block-level statements into the kernel that calls them.

RingIR lets only kernels hold barriers, shared arrays, thread indices and
subgroup operations (not every target can pass them to a function).  A
cooperative actor handler (``@rk.actor(threads=N)``) uses them, so the actor
lowering builds it as a func like any handler and this pass then copies its
body into the loop kernel at each call: values and locals are renamed apart,
and each ``return`` becomes a store of the result and a ``break`` out of a
one-trip ``loop`` wrapped around the body (a return inside loops of the
callee also sets a flag that the enclosing loops look at after they end).
Funcs are inlined callees first, so a helper with a barrier is inlined into
its handler before the handler is inlined into the kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace

from ringkernel.ringir import (
    BOOL,
    Barrier,
    Break,
    Call,
    Const,
    Continue,
    ForRange,
    Function,
    If,
    LoadVar,
    LocalVar,
    Loop,
    Module,
    Return,
    SharedArray,
    Stmt,
    StoreVar,
    ThreadIndex,
    Value,
    result_of,
    walk,
)
from ringkernel.ringir.nodes import Subgroup, SyncWarp
from ringkernel.ringir.types import VOID, ScalarType

BLOCK_LEVEL = (Barrier, SharedArray, ThreadIndex, Subgroup, SyncWarp)


def block_level_funcs(module: Module) -> set[str]:
    """Funcs using a block-level statement, or calling (directly or not) one that does."""
    funcs = {fn.name: fn for fn in module.functions if fn.kind == "func"}
    found = {n for n, fn in funcs.items() if any(isinstance(s, BLOCK_LEVEL) for s in walk(fn.body))}
    grown = True
    while grown:
        more = {n for n, fn in funcs.items() if n not in found and any(
            isinstance(s, Call) and s.callee in found for s in walk(fn.body))}
        grown = bool(more)
        found |= more
    return found


def inline_block_level(module: Module, kernel: str) -> Module:
    """``module`` with every block-level func inlined into ``kernel`` (and dropped)."""
    inlined = block_level_funcs(module)
    if not inlined:
        return module
    done: dict[str, Function] = {}

    def resolve(name: str) -> Function:
        if name not in done:
            fn = module.get(name)
            done[name] = _Inliner(fn, inlined, resolve).run()
        return done[name]

    out = []
    for fn in module.functions:
        if fn.name == kernel:
            out.append(_Inliner(fn, inlined, resolve).run())
        elif fn.name not in inlined:
            out.append(fn)
    return Module(tuple(out), module.structs)


class _Inliner:
    """Rewrites one function, replacing calls of ``inlined`` funcs by their (resolved) bodies."""

    def __init__(self, fn: Function, inlined: set[str], resolve: Callable[[str], Function]) -> None:
        self.fn = fn
        self.inlined = inlined
        self.resolve = resolve
        self.used = {p.name for p in fn.params} | {v.name for v in fn.locals}
        for stmt in walk(fn.body):
            r = result_of(stmt)
            if r is not None:
                self.used.add(r.name)
            if isinstance(stmt, ForRange):
                self.used.add(stmt.var.name)
        self.locals = list(fn.locals)
        self.sites = 0

    def fresh(self, stem: str) -> str:
        n = 0
        while f"{stem}.{n}" in self.used:
            n += 1
        self.used.add(f"{stem}.{n}")
        return f"{stem}.{n}"

    def run(self) -> Function:
        body = self.block(self.fn.body)
        return replace(self.fn, body=body, locals=tuple(self.locals))

    def block(self, body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
        out: list[Stmt] = []
        for stmt in body:
            if isinstance(stmt, Call) and stmt.callee in self.inlined:
                out += self.expand(stmt)
            elif isinstance(stmt, If):
                then_body, else_body = self.block(stmt.then_body), self.block(stmt.else_body)
                out.append(replace(stmt, then_body=then_body, else_body=else_body))
            elif isinstance(stmt, (Loop, ForRange)):
                out.append(replace(stmt, body=self.block(stmt.body)))
            else:
                out.append(stmt)
        return tuple(out)

    def expand(self, call: Call) -> list[Stmt]:
        callee = self.resolve(call.callee)
        self.sites += 1
        site = _Site(self, callee, call)
        return site.statements()


class _Site:
    """One call's copy of the callee's body."""

    def __init__(self, owner: _Inliner, callee: Function, call: Call) -> None:
        self.owner = owner
        self.stem = f"in.{callee.name}"
        self.values: dict[str, Value] = {p.name: a for p, a in zip(callee.params, call.args)}
        self.vars: dict[str, LocalVar] = {}
        self.callee = callee
        self.call = call
        self.ret: LocalVar | None = None
        if callee.return_type != VOID:
            assert isinstance(callee.return_type, ScalarType), "only scalar results are inlined"
            self.ret = self.local(LocalVar("ret", callee.return_type))
        self.flag: LocalVar | None = None
        if any(isinstance(s, Return) for loop in walk(callee.body) if isinstance(loop, (Loop, ForRange))
               for s in walk(loop.body)):
            self.flag = self.local(LocalVar("returned", BOOL))

    def local(self, var: LocalVar) -> LocalVar:
        if var.name not in self.vars:
            made = LocalVar(self.owner.fresh(f"{self.stem}.{var.name}"), var.type)
            self.vars[var.name] = made
            self.owner.locals.append(made)
        return self.vars[var.name]

    def value(self, v: Value, define: bool = False) -> Value:
        if define or v.name not in self.values:
            self.values[v.name] = Value(self.owner.fresh(f"{self.stem}.{v.name}"), v.type)
        return self.values[v.name]

    def const(self, value: bool) -> tuple[Stmt, Value]:
        v = Value(self.owner.fresh(f"{self.stem}.c"), BOOL)
        return Const(v, value), v

    def statements(self) -> list[Stmt]:
        out: list[Stmt] = []
        if self.flag is not None:
            init, false = self.const(False)
            out += [init, StoreVar(self.flag, false)]
        body = list(self.body(self.callee.body, 0))
        if not body or not isinstance(body[-1], (Break, Continue)):
            body.append(Break())
        out.append(Loop(tuple(body)))
        if self.call.result is not None:
            assert self.ret is not None
            out.append(LoadVar(self.call.result, self.ret))
        return out

    def body(self, stmts: tuple[Stmt, ...], depth: int) -> list[Stmt]:
        out: list[Stmt] = []
        for stmt in stmts:
            if isinstance(stmt, Return):
                if stmt.value is not None:
                    assert self.ret is not None
                    out.append(StoreVar(self.ret, self.value(stmt.value)))
                if depth and self.flag is not None:
                    set_, true = self.const(True)
                    out += [set_, StoreVar(self.flag, true)]
                out.append(Break())
                break  # what follows a return never runs
            copied = self.stmt(stmt, depth)
            out.append(copied)
            if isinstance(stmt, (Loop, ForRange)) and self.flag is not None and any(
                isinstance(s, Return) for s in walk(stmt.body)
            ):
                seen = Value(self.owner.fresh(f"{self.stem}.r"), BOOL)
                out += [LoadVar(seen, self.flag), If(seen, (Break(),))]
        return out

    def stmt(self, stmt: Stmt, depth: int) -> Stmt:
        changes: dict[str, object] = {}
        inner = depth + 1 if isinstance(stmt, (Loop, ForRange)) else depth
        for f in fields(stmt):  # type: ignore[arg-type]
            if f.name == "loc":
                continue
            v = getattr(stmt, f.name)
            if f.name == "result" and isinstance(v, Value):
                changes[f.name] = self.value(v, define=True)
            elif isinstance(v, Value):
                changes[f.name] = self.value(v)
            elif isinstance(v, LocalVar):
                changes[f.name] = self.local(v)
            elif isinstance(v, tuple) and v and isinstance(v[0], Value):
                changes[f.name] = tuple(self.value(x) for x in v)
            elif isinstance(v, tuple) and v and isinstance(v[0], Stmt):
                changes[f.name] = tuple(self.body(v, inner))
        return replace(stmt, **changes) if changes else stmt  # type: ignore[type-var]


__all__ = ["inline_block_level", "block_level_funcs", "BLOCK_LEVEL"]

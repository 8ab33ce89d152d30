"""Budget checks: every loop a handler runs can be cut short, so no handler holds its actor.

Tokio inserts a budget check where a task may run on; this pass does the
same for actor handlers.  Every loop back-edge (the end of a ``loop`` or
``for`` body, and each ``continue``) in a handler, and in every device
function a handler calls (directly or not) that loops, gets a *check*: one
more iteration on a counter kept in a local (a register), and every
``POLL_EVERY`` iterations, or just past the budget, a *poll*: the count is
added to ``ctrl.ticks`` and the budget, the watchdog's ``abort_at`` and the
``stop`` flag are looked at.  When one says so the poll writes the reason
to ``ctrl.aborting`` and returns; every call of a checked function is
followed by a look at ``aborting`` that returns too, so the abort unwinds
to the loop, which rolls the state back (``actor_lowering``).
``docs/layout.md`` ("Budget checks") is normative.

Checked functions get two more parameters: the first word of their
actor's control block, ``%rk.cbase`` (an instance's ``i * CONTROL_WORDS`` in
a group, 0 for a single actor), and the control block array, ``%rk.ctrl``;
the group-wide ``stop`` flag is read from block 0.  Functions without loops
(and all other kernels) are left exactly as they were.  A checked function returns a zero of its type when
it aborts: nothing, a scalar zero, or a tuple of zeros (a func returning
several values).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ringkernel.ringir import (
    U32,
    ArrayType,
    Break,
    Call,
    Continue,
    ForRange,
    Function,
    FunctionBuilder,
    If,
    LocalVar,
    Loop,
    Module,
    Return,
    ScalarType,
    Stmt,
    TupleType,
    Value,
    walk,
)
from ringkernel.ringir import layout as L
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.types import VOID

CTRL_PARAM = "rk.ctrl"
CBASE_PARAM = "rk.cbase"


def checked_functions(module: Module, roots: list[str]) -> set[str]:
    """The funcs reachable from ``roots`` that loop, and every func that calls one (so may abort)."""
    funcs = {fn.name: fn for fn in module.functions}
    callees = {name: {s.callee for s in walk(fn.body) if isinstance(s, Call)} for name, fn in funcs.items()}
    reachable: set[str] = set()
    todo = [r for r in roots if r in funcs]
    while todo:
        name = todo.pop()
        if name not in reachable:
            reachable.add(name)
            todo += [c for c in callees[name] if c in funcs]
    checked = {n for n in reachable if any(isinstance(s, (Loop, ForRange)) for s in walk(funcs[n].body))}
    grown = True
    while grown:  # every caller, reachable or not, since a checked function takes one more argument
        more = {n for n in set(funcs) - checked if callees[n] & checked and funcs[n].kind == "func"}
        grown = bool(more)
        checked |= more
    return checked


def insert_budget_checks(module: Module, roots: list[str], ctrl_of: dict[str, tuple[Value, Value]]) -> Module:
    """``module`` with budget checks in every checked function reachable from ``roots``.

    ``ctrl_of`` names, for functions that call checked ones without being
    checked themselves (the actor's loop kernel), the control block array and
    the (u32) first word of the control block to pass.
    """
    checked = checked_functions(module, roots)
    if not checked:
        return module
    out = []
    for fn in module.functions:
        if fn.name in checked:
            out.append(_Rewriter(fn, checked, None).function())
        elif fn.name in ctrl_of:
            out.append(_Rewriter(fn, checked, ctrl_of[fn.name]).function())
        else:
            out.append(fn)
    return Module(tuple(out), module.structs)


class _Rewriter:
    """Rewrites one function: checks at loop heads, unwinding after checked calls."""

    def __init__(self, fn: Function, checked: set[str], ctrl: tuple[Value, Value] | None) -> None:
        self.fn = fn
        self.checked = checked
        self.own = ctrl is None  # a checked function: it gets the ctrl parameters and checks
        if ctrl is None:
            ctrl = Value(CTRL_PARAM, ArrayType(U32)), Value(CBASE_PARAM, U32)
        self.ctrl, self.cbase = ctrl
        if self.own and not (fn.return_type == VOID or isinstance(fn.return_type, (ScalarType, TupleType))):
            raise CompileError.at(
                fn.loc,
                f"'{fn.name}' loops and returns {fn.return_type}: a handler's budget check can only "
                "unwind functions returning nothing, a scalar or a tuple of them",
            )
        numbers = [int(v.name) for v in _values(fn) if v.name.isdigit()]
        self.counter = max(numbers, default=-1) + 1
        self.locals: list[LocalVar] = list(fn.locals)

    def function(self) -> Function:
        body = self.block(self.fn.body)
        if self.own:
            head = self.snippet(self.quota)
            tail = () if body and isinstance(body[-1], Return) else self.snippet(self.flush)
            body = (*head, *body, *tail)
        params = (*self.fn.params, self.cbase, self.ctrl) if self.own else self.fn.params
        return replace(self.fn, params=params, body=body, locals=tuple(self.locals))

    def snippet(self, emit: Callable[[FunctionBuilder], None]) -> tuple[Stmt, ...]:
        """The statements ``emit`` builds, with value numbers after the function's own."""
        b = FunctionBuilder("rk.check", "func", (), self.fn.return_type)
        b._counter = self.counter
        emit(b)
        self.counter = b._counter
        fn = b.finish()
        self.locals += [v for v in fn.locals if v not in self.locals]
        return fn.body

    def block(self, body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
        out: list[Stmt] = []
        for stmt in body:
            if isinstance(stmt, If):
                then_body, else_body = self.block(stmt.then_body), self.block(stmt.else_body)
                out.append(replace(stmt, then_body=then_body, else_body=else_body))
            elif isinstance(stmt, (Loop, ForRange)):
                inner = self.block(stmt.body)
                if self.own and not (inner and isinstance(inner[-1], (Break, Continue, Return))):
                    inner = (*inner, *self.snippet(self.check))  # the back-edge at the end of the body
                out.append(replace(stmt, body=inner))
            elif isinstance(stmt, Continue) and self.own:
                out += [*self.snippet(self.check), stmt]  # a back-edge too
            elif isinstance(stmt, Return) and self.own:
                out += [*self.snippet(self.flush), stmt]
            elif isinstance(stmt, Call) and stmt.callee in self.checked:
                if self.own:
                    out += self.snippet(self.flush)  # the callee counts on from our iterations
                out.append(replace(stmt, args=(*stmt.args, self.cbase, self.ctrl)))
                if self.own:
                    out += self.snippet(self.after_call)
            else:
                out.append(stmt)
        return tuple(out)

    # --- the snippets (ctrl words: docs/layout.md, "Budget checks") ---

    def word(self, b: FunctionBuilder, name: str) -> Value:
        """The index of this actor's control word ``name`` (the group-wide ``stop``: block 0's)."""
        if name == "stop":
            return b.const(L.C[name], U32)
        return b.binary("add", self.cbase, b.const(L.C[name], U32))

    def counters(self, b: FunctionBuilder) -> tuple[LocalVar, LocalVar]:
        """``$rk.n``: iterations since the last flush; ``$rk.quota``: how many before the next poll."""
        return b.local("rk.n", U32), b.local("rk.quota", U32)

    def quota(self, b: FunctionBuilder) -> None:
        """``POLL_EVERY`` iterations, or fewer: just past the budget."""
        n, quota = self.counters(b)
        b.store_var(n, b.const(0, U32))
        b.store_var(quota, b.const(L.POLL_EVERY, U32))
        budget = b.load(self.ctrl, self.word(b, "budget"))
        with b.if_(b.compare("ne", budget, b.const(0, U32))):
            left = b.binary(
                "sub", b.binary("add", budget, b.const(1, U32)), b.load(self.ctrl, self.word(b, "ticks"))
            )
            b.store_var(quota, b.binary("min", left, b.const(L.POLL_EVERY, U32)))

    def flush(self, b: FunctionBuilder) -> None:
        """Adds this function's uncounted iterations to ``ctrl.ticks``."""
        n, _ = self.counters(b)
        ticks = b.binary("add", b.load(self.ctrl, self.word(b, "ticks")), b.load_var(n))
        b.store(self.ctrl, self.word(b, "ticks"), ticks)
        b.store_var(n, b.const(0, U32))

    def unwind(self, b: FunctionBuilder) -> None:
        ty = self.fn.return_type
        if ty == VOID:
            b.return_()
        elif isinstance(ty, TupleType):  # the caller takes the values apart, then unwinds too
            b.return_(b.make_tuple(tuple(b.const(0, elem) for elem in ty.elems)))
        else:
            assert isinstance(ty, ScalarType)
            b.return_(b.const(0, ty))

    def after_call(self, b: FunctionBuilder) -> None:
        """After a checked call: unwind if it aborted, else a fresh quota (it used some budget)."""
        aborting = b.load(self.ctrl, self.word(b, "aborting"))
        with b.if_(b.compare("ne", aborting, b.const(0, U32))):
            self.unwind(b)
        self.quota(b)

    def check(self, b: FunctionBuilder) -> None:
        """One iteration in registers; at the quota, a flush and a look at budget and flags."""
        n, quota = self.counters(b)
        ctrl = self.ctrl

        def c(v: int) -> Value:
            return b.const(v, U32)

        count = b.binary("add", b.load_var(n), c(1))
        b.store_var(n, count)
        with b.if_(b.compare("ge", count, b.load_var(quota))):
            self.flush(b)
            ticks = b.load(ctrl, self.word(b, "ticks"))
            reason = b.local("rk.reason", U32)
            b.store_var(reason, c(0))
            budget = b.load(ctrl, self.word(b, "budget"))
            with b.if_(b.binary("and", b.compare("ne", budget, c(0)), b.compare("gt", ticks, budget))):
                b.store_var(reason, c(L.ABORT_BUDGET))
            stop = b.atomic("or", ctrl, self.word(b, "stop"), c(0))
            with b.if_(b.compare("eq", stop, c(L.STOP_NOW))):  # (STOP_PAUSE lets the handler finish)
                b.store_var(reason, c(L.ABORT_STOPPED))
            with b.if_(b.compare("eq", stop, c(L.STOP_WATCHDOG))):  # a restart: stopped as hung
                b.store_var(reason, c(L.ABORT_WATCHDOG))
            watched = b.atomic("or", ctrl, self.word(b, "abort_at"), c(0))
            aimed = b.compare("eq", watched, b.load(ctrl, self.word(b, "serial")))
            with b.if_(b.binary("and", aimed, b.compare("ne", watched, c(0)))):
                b.store_var(reason, c(L.ABORT_WATCHDOG))
            why = b.load_var(reason)
            with b.if_(b.compare("ne", why, c(0))):
                b.store(ctrl, self.word(b, "aborting"), why)
                self.unwind(b)
            self.quota(b)


def _values(fn: Function) -> list[Value]:
    found = list(fn.params)
    for stmt in walk(fn.body):
        result = getattr(stmt, "result", None)
        if isinstance(result, Value):
            found.append(result)
    return found


__all__ = ["insert_budget_checks", "checked_functions", "CTRL_PARAM", "CBASE_PARAM"]

"""Python source (``ast``) → RingIR for ``@rk.kernel`` and ``@rk.func`` functions.

One ``ast.NodeVisitor`` with a ``visit_<Node>`` method per supported construct,
as Triton's code generator does.  ``visit`` remembers the node being
translated so every error points at it; ``generic_visit`` names the
unsupported construct.  Types are inferred forward while building: a local
keeps the type of its first assignment, literals take the type of the other
operand, and mixed types need a cast except int→float promotion.
"""

from __future__ import annotations

import ast
import builtins
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ringkernel.frontends import builtins as table
from ringkernel.frontends import dsl
from ringkernel.frontends.aggregates import (
    AggOperand,
    AggregateRules,
    agg_operand,
    ir_params,
    ir_type,
    type_problem,
)
from ringkernel.frontends.arrays import ArrayRef, ArrayTranslation, array_shape
from ringkernel.frontends.builtins import Builtin
from ringkernel.frontends.limits import check_nesting
from ringkernel.frontends.semantic import Operand, Semantic
from ringkernel.frontends.source import FunctionSource
from ringkernel.frontends.valuetypes import StructArray, StructDef, TupleDef, VecType, is_aggregate, leaves
from ringkernel.ringir import (
    BOOL,
    F16,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    SCALAR_TYPES,
    U8,
    U16,
    U32,
    U64,
    VOID,
    AddressSpace,
    ArrayType,
    Function,
    FunctionBuilder,
    LocalVar,
    ScalarType,
    Type,
    Value,
    atomic_applies,
    extent_param_of,
)
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.limits import array_size_problem, const_array_problem

# --- operands ---------------------------------------------------------------------------


_NUMPY_SCALARS = {
    np.float32: F32,
    np.float64: F64,
    np.int32: I32,
    np.uint32: U32,
    np.int64: I64,
    np.uint64: U64,
    np.bool_: BOOL,
    np.int8: I8,
    np.uint8: U8,
    np.int16: I16,
    np.uint16: U16,
    np.float16: F16,
}


_UNSUPPORTED = {
    "ListComp": "list comprehensions",
    "SetComp": "set comprehensions",
    "DictComp": "dict comprehensions",
    "GeneratorExp": "generator expressions",
    "Lambda": "lambda expressions",
    "ClassDef": "class definitions",
    "FunctionDef": "nested function definitions",
    "AsyncFunctionDef": "async functions",
    "Try": "try statements",
    "TryStar": "try statements",
    "With": "with statements",
    "AsyncWith": "with statements",
    "AsyncFor": "async for loops",
    "Await": "await",
    "Raise": "raise statements",
    "Assert": "assert statements",
    "Import": "import statements",
    "ImportFrom": "import statements",
    "Global": "global declarations",
    "Nonlocal": "nonlocal declarations",
    "Delete": "del statements",
    "Yield": "yield",
    "YieldFrom": "yield",
    "JoinedStr": "strings",
    "FormattedValue": "strings",
    "List": "list literals",
    "Tuple": "tuples",
    "Set": "set literals",
    "Dict": "dict literals",
    "Starred": "starred expressions",
    "Slice": "slices",
    "NamedExpr": "the walrus operator (:=)",
    "Match": "match statements",
}


class _Unreachable:
    """Marker for 'this path has left the region' in definite-assignment tracking."""


UNREACHABLE = _Unreachable()


# --- signatures ---------------------------------------------------------------------------


def evaluate_static(source: FunctionSource, node: ast.expr, annotation: bool = False) -> Any:
    """Evaluates a name, attribute chain or subscript of names with the source's resolver.

    With ``annotation``, names resolve as in an annotation: also against the
    enclosing function's locals (see :mod:`ringkernel.frontends.source`).  No
    ``eval``: only these node forms are walked, so nothing of the user's runs.
    """
    if isinstance(node, ast.Name):
        lookup = source.resolver.lookup
        if annotation:
            lookup = getattr(source.resolver, "lookup_annotation_name", lookup)
        try:
            return lookup(node.id)
        except KeyError:
            raise source.error(node, f"name '{node.id}' is not defined") from None
    if isinstance(node, ast.Attribute):
        base = evaluate_static(source, node.value, annotation)
        try:
            return getattr(base, node.attr)
        except AttributeError:
            raise source.error(node, f"'{_describe(base)}' has no attribute '{node.attr}'") from None
    if isinstance(node, ast.Subscript):
        base = evaluate_static(source, node.value, annotation)
        index = evaluate_static(source, node.slice, annotation)
        try:
            return base[index]
        except (TypeError, KeyError, IndexError) as exc:
            raise source.error(node, f"invalid type expression: {exc}") from None
    if isinstance(node, ast.Tuple):  # Array[f32, 2], Vec[f32, 4], tuple[f32, f32]
        return tuple(evaluate_static(source, e, annotation) for e in node.elts)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            try:
                inner = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                raise source.error(node, f"cannot read the annotation {node.value!r}") from None
            ast.copy_location(inner, node)
            for child in ast.walk(inner):
                ast.copy_location(child, node)
            return evaluate_static(source, inner, annotation)
        return node.value
    raise source.error(node, "expected a name here (a type, a module attribute or a constant)")


def resolve_type(source: FunctionSource, node: ast.expr, what: str) -> Type:
    """An annotation (parameter, return or variable) as a RingIR type."""
    obj = evaluate_static(source, node, annotation=True)
    return annotation_type(source, node, obj, what)


def _signature_type(source: FunctionSource, key: str, node: ast.expr, what: str) -> Type:
    """A signature annotation: the object Python evaluated, else the annotation's syntax.

    Python evaluated a nested function's annotations in the enclosing scope;
    using that object is exact even for forms this module cannot walk.
    """
    evaluated = getattr(source.resolver, "annotation", None)
    if evaluated is not None:
        try:
            return annotation_type(source, node, evaluated(key), what)
        except KeyError:
            pass
    return resolve_type(source, node, what)


def annotation_type(source: FunctionSource, node: ast.expr, obj: Any, what: str) -> Type:
    """The RingIR type of the annotation object ``obj`` written at ``node``."""
    ty = python_object_type(obj)
    var = dsl.type_variable_of(obj)
    if var is not None:
        raise source.error(node, unbound_message(var, what))
    problem = type_problem(ty)
    if problem is not None:
        raise source.error(node, f"{what}: {problem}")
    if ty is None:
        reason = dsl.unsupported_scalar_reason(obj)
        raise source.error(
            node,
            f"{what}: {reason}" if reason else
            f"{what} has an unsupported type annotation {_describe(obj)}; use {dsl.SUPPORTED_SCALARS} "
            "or Array[T]",
        )
    return ty


def unbound_message(var: dsl.TypeVar, what: str) -> str:
    """The error for a type variable that no specialization has bound."""
    return (
        f"{what} has the generic type {var.name}, which is not bound here; launch the kernel "
        f"(the arguments' dtypes bind it) or specialize it first: kernel.specialize({var.name}=f32), "
        f"ringc --specialize {var.name}=f32"
    )


def python_object_type(obj: Any) -> Type | None:
    """The RingIR type an annotation object denotes, or None."""
    if isinstance(obj, (ArrayType, StructArray)) or is_aggregate(obj):
        return obj
    if getattr(obj, "__origin__", None) is tuple:  # tuple[f32, f32]
        elems = tuple(python_object_type(a) for a in getattr(obj, "__args__", ()))
        return None if any(e is None or e == VOID for e in elems) else TupleDef(elems)
    if obj is None or obj is type(None):
        return VOID
    return dsl.scalar_type_of(obj)


def signature_of(source: FunctionSource, kind: str) -> tuple[list[tuple[str, Type]], Type]:
    """Parameter names/types and return type, read from the annotations only."""
    fn = source.node
    args = fn.args
    for bad, what in (
        (args.vararg, "*args"),
        (args.kwarg, "**kwargs"),
    ):
        if bad is not None:
            raise source.error(bad, f"{what} parameters are not supported in kernels")
    if args.posonlyargs or args.kwonlyargs:
        node = (args.posonlyargs or args.kwonlyargs)[0]
        raise source.error(node, "positional-only and keyword-only parameters are not supported")
    if args.defaults or args.kw_defaults:
        first = next(d for d in (*args.defaults, *args.kw_defaults) if d is not None)
        raise source.error(first, "default parameter values are not supported")
    params: list[tuple[str, Type]] = []
    for arg in args.args:
        if arg.annotation is None:
            raise source.error(
                arg,
                f"parameter '{arg.arg}' of {kind} '{fn.name}' needs a type annotation, "
                f"e.g. '{arg.arg}: f32' or '{arg.arg}: Array[f32]'",
            )
        ty = _signature_type(source, arg.arg, arg.annotation, f"parameter '{arg.arg}'")
        if ty == VOID:
            raise source.error(arg.annotation, f"parameter '{arg.arg}' cannot be None")
        if kind == "kernel" and isinstance(ty, TupleDef):
            raise source.error(
                arg.annotation, f"kernel parameter '{arg.arg}' cannot be a tuple; pass its parts"
            )
        params.append((arg.arg, ty))
    ret: Type = VOID
    if fn.returns is not None:
        ret = _signature_type(source, "return", fn.returns, "the return value")
        if kind == "kernel" and ret != VOID:
            raise source.error(fn.returns, "kernels cannot return a value; write into an Array")
        if isinstance(ret, (ArrayType, StructArray)):
            raise source.error(fn.returns, "functions cannot return arrays")
    return params, ret


# --- the translator -----------------------------------------------------------------------

CalleeResolver = Callable[
    [Any, ast.AST, tuple[AddressSpace, ...], dict[str, ScalarType]], tuple[str, list[tuple[str, Type]], Type]
]


def specialize_params(
    params: list[tuple[str, Type]], spaces: tuple[AddressSpace, ...] | None
) -> list[tuple[str, Type]]:
    """``params`` with each array parameter in the memory space its argument lives in."""
    if spaces is None:
        return params
    it = iter(spaces)
    arrays = (ArrayType, StructArray)
    return [(n, replace(t, space=next(it)) if isinstance(t, arrays) else t) for n, t in params]


class FunctionTranslator(ArrayTranslation, ast.NodeVisitor):
    """Translates one Python function into a RingIR :class:`Function`.

    ``callee`` maps a ``@rk.func`` object (found while translating a call) and
    the memory spaces of its array arguments to the IR name and signature of
    that specialization; the module builder supplies it.  ``spaces`` gives
    this function's own array parameters their memory (global by default).
    """

    def __init__(
        self,
        source: FunctionSource,
        kind: str,
        ir_name: str,
        callee: CalleeResolver,
        spaces: tuple[AddressSpace, ...] | None = None,
    ):
        self.source = source
        self.kind = kind
        self.callee = callee
        params, ret = signature_of(source, kind)
        self.params = specialize_params(params, spaces)
        self.b = FunctionBuilder(
            ir_name, kind, ir_params(self.params), ir_type(ret), loc=source.loc(source.node)
        )
        self.sem = Semantic(source, self.b)
        self.return_type = ret
        self.node: ast.AST = source.node
        self.assigned_names = _assigned_names(source.node)
        self.arrays: dict[str, ArrayRef] = {}
        self.init_array_state(source.node)
        self.embedded: dict[int, tuple[np.ndarray, Value]] = {}
        self.scalar_params: dict[str, Value] = {}
        self.vars: dict[str, LocalVar] = {}
        self.assigned: set[str] | _Unreachable = set()
        self.loop_depth = 0
        self.temp_counter = 0
        self.void_ok: ast.AST | None = None  # the one call whose missing value is fine
        self.probed: dict[int, tuple[ast.AST, Operand]] = {}  # see probe()
        self.agg = AggregateRules(self)  # struct, Vec and tuple values

    # --- infrastructure ---

    def error(self, message: str, node: ast.AST | None = None) -> CompileError:
        return self.source.error(node if node is not None else self.node, message)

    def visit(self, node: ast.AST) -> Any:
        saved_node, saved_loc = self.node, self.b.loc
        self.node = node
        if hasattr(node, "lineno"):
            self.b.loc = self.source.loc(node)
        try:
            result = super().visit(node)
        finally:
            self.node, self.b.loc = saved_node, saved_loc
        if result is VOID_RESULT and node is not self.void_ok:
            raise self.error(f"'{ast.unparse(node)}' returns no value", node)
        if isinstance(result, Operand) and result.node is None:
            result = replace(result, node=node)
        return result

    def generic_visit(self, node: ast.AST) -> Any:
        name = type(node).__name__
        what = _UNSUPPORTED.get(name, f"'{name}'")
        verb = "are" if what.endswith("s") and what not in ("await", "yield") else "is"
        raise self.error(f"{what} {verb} not supported in kernels")

    def translate(self) -> Function:
        fn = self.source.node
        values = iter(self.b.params)
        for name, ty in signature_of(self.source, self.kind)[0]:
            if self.agg.bind_param(name, ty, values, fn):
                continue
            value = next(values)
            if isinstance(value.type, ArrayType):
                self.bind_array_param(name, value, fn)
            elif name in self.assigned_names:
                var = self.declare(name, value.type, fn)
                self.b.store_var(var, value)
                self.mark_assigned(name)
            else:
                self.scalar_params[name] = value
        body = fn.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]  # the docstring
        check_nesting(self.source)
        self.visit_body(body)
        if self.return_type != VOID and self.assigned is not UNREACHABLE:
            raise self.error(
                f"function '{fn.name}' may reach its end without returning a {self.return_type} value", fn
            )
        result = self.b.finish()
        return replace(result, params=self.ordered_params(result.params))

    def visit_body(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            if self.assigned is UNREACHABLE:
                return  # code after break/continue/return never runs
            self.visit(stmt)

    # --- locals and definite assignment ---

    def declare(self, name: str, ty: Type, node: ast.AST) -> LocalVar:
        if not isinstance(ty, ScalarType):
            raise self.error(f"'{name}' must hold a scalar, not {ty}", node)
        var = self.vars.get(name)
        if var is None:
            var = self.vars[name] = self.b.local(name, ty)
        return var

    def mark_assigned(self, name: str) -> None:
        if not isinstance(self.assigned, _Unreachable):
            self.assigned.add(name)

    def element_words(self, array: Value) -> int:
        return self.agg.element_words(array)

    def temp(self, prefix: str, ty: ScalarType) -> LocalVar:
        self.temp_counter += 1
        return self.b.local(f"{prefix}.{self.temp_counter}", ty)

    def branch(self, body: Callable[[], None]) -> set[str] | _Unreachable:
        """Runs ``body`` on a copy of the assignment state; returns the state after it."""
        saved = self.assigned
        self.assigned = UNREACHABLE if isinstance(saved, _Unreachable) else set(saved)
        body()
        after = self.assigned
        self.assigned = saved
        return after

    # --- materializing operands ---

    # --- statements ---

    def visit_Pass(self, node: ast.Pass) -> None:
        return None

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a string used as a comment
        self.void_ok = node.value
        self.visit(node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple):
            self.assign_tuple(node.targets[0], node.value)
            return
        value = self.visit(node.value)
        for target in node.targets:
            self.assign(target, value, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if not isinstance(node.target, ast.Name):
            raise self.error("only plain names can be annotated", node.target)
        name = node.target.id
        ty = resolve_type(self.source, node.annotation, f"variable '{name}'")
        if isinstance(ty, (VecType, StructDef, TupleDef)):
            self.agg.declare(name, ty, node)
            if node.value is not None:
                self.assign(node.target, self.visit(node.value), node.value)
            return
        if not isinstance(ty, ScalarType):
            raise self.error(f"local variables hold scalars; '{name}' cannot be {ty}", node)
        existing = self.vars.get(name)
        if existing is not None and existing.type != ty:
            raise self.error(f"'{name}' already has type {existing.type}, not {ty}", node)
        self.declare(name, ty, node)
        if node.value is not None:
            self.assign(node.target, self.visit(node.value), node.value)

    def assign_tuple(self, target: ast.Tuple, value: ast.expr) -> None:
        if not isinstance(value, ast.Tuple):  # a, b = f(x) / a, b = v
            parts = self.agg.unpack(self.visit(value), len(target.elts), target)
            for t, op in zip(target.elts, parts):
                self.assign(t, op, value)
            return
        if len(value.elts) != len(target.elts):
            raise self.error(
                "tuple assignment needs a tuple of the same length on the right, e.g. a, b = b, a", target
            )
        # SSA values are immutable, so every right-hand side is read before any store
        operands = [self.visit(v) for v in value.elts]
        for t, op, v in zip(target.elts, operands, value.elts):
            self.assign(t, op, v)

    def assign(self, target: ast.expr, op: Operand, value_node: ast.AST) -> None:
        place = self.agg.place_of(target) if isinstance(target, (ast.Attribute, ast.Subscript)) else None
        if place is not None:
            self.agg.store(place, op, value_node)
        elif isinstance(target, ast.Name):
            self.assign_name(target, op, value_node)
        elif isinstance(target, ast.Subscript):
            ref, indices = self.element(target, store=True)

            def store(array: Value) -> None:
                index = self.flat_index(array, indices)
                self.b.store(array, index, self.sem.coerce(op, ref.type.elem, value_node))

            self.dispatch(ref, store, None)
        elif isinstance(target, ast.Attribute):
            raise self.error("assigning to attributes is not supported in kernels", target)
        else:
            raise self.error("cannot assign to this expression", target)

    def assign_name(self, target: ast.Name, op: Operand, value_node: ast.AST) -> None:
        name = target.id
        is_array = not op.is_literal and isinstance(op.type, ArrayType)
        if name in self.arrays and not is_array:
            raise self.error(f"'{name}' is an array and cannot be reassigned to a number", target)
        if name in self.arrays and name not in self.rebindable:
            raise self.error(f"'{name}' is an array and cannot be reassigned", target)
        if self.agg.assign_name(target, op, value_node):
            return
        if is_array:
            self.agg.refuse_rebinding(name, op, target)
            if name in self.vars or name in self.scalar_params:
                raise self.error(f"'{name}' holds a number and cannot become an array", target)
            self.bind_array_name(name, op.array or ArrayRef((op.value,)), value_node)  # type: ignore[arg-type]
            self.mark_assigned(name)
            return
        var = self.vars.get(name)
        if var is None:
            ty = self.sem.scalar_type(op, value_node)
            var = self.declare(name, ty, target)
        self.b.store_var(var, self.sem.coerce(op, var.type, value_node, f"the value assigned to '{name}'"))
        self.mark_assigned(name)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        target = node.target
        place = self.agg.place_of(target) if isinstance(target, (ast.Attribute, ast.Subscript)) else None
        if place is not None:  # p.x += v, v[i] *= 2, a[i].m -= 1: the place is found once
            current = self.agg.load(place, target)
            result = self.binary_operands(node.op, current, self.visit(node.value), node)
            self.agg.store(place, result, node)
        elif isinstance(target, ast.Name):
            current = self.visit(ast.copy_location(ast.Name(target.id, ast.Load()), target))
            result = self.binary_operands(node.op, current, self.visit(node.value), node)
            self.assign_name(target, result, node)
        elif isinstance(target, ast.Subscript):
            ref, indices = self.element(target, store=True)
            # evaluated once, before the branches, when the array is one of several
            rhs = self.visit(node.value) if ref.selector is not None else None

            def update(array: Value) -> None:
                index = self.flat_index(array, indices)
                current = Operand(self.b.load(array, index))
                operand = rhs if rhs is not None else self.visit(node.value)
                result = self.sem.binary(node.op, current, operand, node)
                self.b.store(array, index, self.sem.coerce(result, ref.type.elem, node))

            self.dispatch(ref, update, None)
        else:
            raise self.error("cannot assign to this expression", target)

    def visit_If(self, node: ast.If) -> None:
        cond = self.sem.truth(self.visit(node.test), node.test)
        if cond.is_literal:  # `if DEBUG:` on a constant: translate one side only
            self.visit_body(node.body if cond.literal else node.orelse)
            return
        with self.b.if_(cond.value):  # type: ignore[arg-type]
            after_then = self.branch(lambda: self.visit_body(node.body))
        after_else: set[str] | _Unreachable = self.assigned
        if node.orelse:
            with self.b.else_():
                after_else = self.branch(lambda: self.visit_body(node.orelse))
        self.assigned = _meet(after_then, after_else)

    def visit_While(self, node: ast.While) -> None:
        if node.orelse:
            raise self.error("while/else is not supported in kernels", node.orelse[0])
        before = self.assigned

        def body() -> None:
            cond = self.sem.truth(self.visit(node.test), node.test)
            if cond.is_literal and not cond.literal:
                self.b.break_()
                return
            if not cond.is_literal:
                with self.b.if_(self.b.unary("not", cond.value)):  # type: ignore[arg-type]
                    self.b.break_()
            self.visit_body(node.body)

        self.loop_depth += 1
        with self.b.loop():
            self.branch(body)
        self.loop_depth -= 1
        self.assigned = before

    def visit_For(self, node: ast.For) -> None:
        if node.orelse:
            raise self.error("for/else is not supported in kernels", node.orelse[0])
        if not isinstance(node.target, ast.Name):
            raise self.error("the loop variable must be a single name", node.target)
        over_vec = self.agg.vec_loop(node)
        if over_vec is not None:  # for x in v: a range loop over v's indices
            self.visit_For(over_vec)
            return
        call = node.iter
        if not (isinstance(call, ast.Call) and self.static_callee(call.func) is builtins.range):
            raise self.error(
                "kernels loop with 'for i in range(...)'; to walk an array, loop over its "
                "indices and pass its length as a parameter",
                node.iter,
            )
        if call.keywords or not 1 <= len(call.args) <= 3:
            raise self.error("range() takes 1 to 3 positional arguments", call)
        ops = [self.sem.promote(self.visit(a)) for a in call.args]
        if len(ops) == 1:
            ops = [Operand(literal=0), ops[0], Operand(literal=1)]
        elif len(ops) == 2:
            ops.append(Operand(literal=1))
        if ops[2].is_literal and ops[2].literal == 0:
            raise self.error("range() step must not be zero", call.args[2])
        name = node.target.id
        typed = [op.type for op in ops if not op.is_literal]
        ty = self.vars[name].type if name in self.vars else typed[0] if typed else I32
        if not isinstance(ty, ScalarType) or not ty.is_int:
            raise self.error(f"range() needs integer arguments, got {ty}", call)
        for op, arg in zip(ops, call.args if len(call.args) == 3 else [call] * 3):
            if not op.is_literal and op.type != ty:
                raise self.error(
                    f"range() arguments must share the loop variable's type {ty}, got {op.type}",
                    arg,
                )
        start, stop, step = (self.sem.coerce(op, ty, call, "range() argument") for op in ops)
        user_var = self.declare(name, ty, node.target)
        counter = self.temp("for", ty)
        before = self.assigned

        def body() -> None:
            self.b.store_var(user_var, self.b.load_var(counter))
            self.mark_assigned(name)
            self.visit_body(node.body)

        self.loop_depth += 1
        with self.b.for_range(counter, start, stop, step):
            self.branch(body)
        self.loop_depth -= 1
        self.assigned = before

    def visit_Break(self, node: ast.Break) -> None:
        if not self.loop_depth:
            raise self.error("'break' outside a loop", node)
        self.b.break_()
        self.assigned = UNREACHABLE

    def visit_Continue(self, node: ast.Continue) -> None:
        if not self.loop_depth:
            raise self.error("'continue' outside a loop", node)
        self.b.continue_()
        self.assigned = UNREACHABLE

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None):
            if self.return_type != VOID:
                raise self.error(f"this function must return a {self.return_type} value", node)
            self.b.return_()
        else:
            if self.kind == "kernel":
                raise self.error("kernels cannot return a value; write results into an Array parameter", node)
            if self.return_type == VOID:
                raise self.error(
                    "returning a value needs a return annotation, e.g. 'def f(x: f32) -> f32:'",
                    node,
                )
            if is_aggregate(self.return_type):
                self.agg.return_(node)
            else:
                op = self.visit(node.value)
                self.b.return_(self.sem.coerce(op, self.return_type, node.value, "the returned value"))
        self.assigned = UNREACHABLE

    # --- expressions ---

    def visit_Constant(self, node: ast.Constant) -> Operand:
        v = node.value
        if isinstance(v, (bool, int, float)):
            return Operand(literal=v)
        if isinstance(v, str):
            raise self.error("strings are not supported in kernels", node)
        if v is None:
            raise self.error("None is not a value in kernels", node)
        raise self.error(f"{type(v).__name__} literals are not supported in kernels", node)

    def check_assigned(self, node: ast.Name, example: str = "0") -> None:
        """Raises if ``node``'s variable may not have a value yet at this point."""
        name = node.id
        maybe_unset = not isinstance(self.assigned, _Unreachable) and name not in self.assigned
        if maybe_unset:
            raise self.error(
                f"'{name}' may be used before it is assigned; give it a value first "
                f"(e.g. '{name} = {example}' before the loop or branch)",
                node,
            )

    def visit_Name(self, node: ast.Name) -> Operand:
        name = node.id
        if name in self.agg.vars:
            return self.agg.load(self.agg.place_of(node), node)  # type: ignore[arg-type]
        if name in self.arrays:
            maybe_unset = not isinstance(self.assigned, _Unreachable) and name not in self.assigned
            if name in self.slots and maybe_unset:
                raise self.error(
                    f"'{name}' may be used before it is assigned an array; bind it first", node
                )
            return self.array_operand(name)
        if name in self.scalar_params:
            return Operand(self.scalar_params[name])
        if name in self.assigned_names:
            maybe_unset = not isinstance(self.assigned, _Unreachable) and name not in self.assigned
            if name not in self.vars or maybe_unset:
                raise self.error(
                    f"'{name}' may be used before it is assigned; give it a value first "
                    f"(e.g. '{name} = 0' before the loop or branch)",
                    node,
                )
            return Operand(self.b.load_var(self.vars[name]))
        return self.constant_operand(self.static_callee(node), node)

    def visit_Attribute(self, node: ast.Attribute) -> Operand:
        place = self.agg.place_of(node)
        if place is not None:
            return self.agg.load(place, node)
        base = node.value
        if isinstance(base, ast.Name) and base.id in self.arrays:
            return self.array_attribute(node)
        if isinstance(base, ast.Name) and (base.id in self.scalar_params or base.id in self.assigned_names):
            raise self.error("attributes of kernel values are not supported", node)
        return self.constant_operand(self.static_callee(node), node)

    def constant_operand(self, obj: Any, node: ast.AST) -> Operand:
        """A module-level Python number used in a kernel becomes a compile-time constant."""
        if isinstance(obj, (bool, int, float)):
            return Operand(literal=obj)
        if isinstance(obj, np.generic) and type(obj) in _NUMPY_SCALARS:
            ty = _NUMPY_SCALARS[type(obj)]
            return Operand(self.b.const(self.sem.literal_as(obj.item(), ty, node, "constant"), ty))
        if isinstance(obj, np.ndarray):
            return self.embedded_array(obj, node)
        raise self.error(
            f"'{ast.unparse(node)}' is {_describe(obj)}; kernels can only use numbers from "
            "the enclosing scope (compile-time constants)",
            node,
        )

    def embedded_array(self, obj: np.ndarray, node: ast.AST) -> Operand:
        """A module-level numpy array read by the kernel: embedded read-only, once per function.

        Its values are taken when the kernel is first compiled.
        """
        known = self.embedded.get(id(obj))
        if known is not None and known[0] is obj:
            return Operand(known[1], array=ArrayRef((known[1],)))
        elem = dsl.scalar_type_of(obj.dtype)
        if elem is None:
            reason = dsl.unsupported_scalar_reason(obj.dtype) or f"numpy dtype {obj.dtype} has no RingIR type"
            raise self.error(f"'{ast.unparse(node)}' cannot be embedded: {reason}", node)
        if not 1 <= obj.ndim <= 3 or obj.size == 0:
            raise self.error(
                f"'{ast.unparse(node)}' has shape {obj.shape}; kernels embed non-empty arrays of 1 to 3 "
                "dimensions (pass other data as an Array parameter)",
                node,
            )
        ty = ArrayType(elem, AddressSpace.CONSTANT, int(obj.size), tuple(obj.shape) if obj.ndim > 1 else None)
        problem = array_size_problem(ty) or const_array_problem(ty)
        if problem is not None:
            raise self.error(
                f"'{ast.unparse(node)}' is too large to embed: {problem}; pass it as an Array parameter", node
            )
        value = self.b.const_array(ty, tuple(v.item() for v in obj.ravel(order="C")))
        self.embedded[id(obj)] = (obj, value)
        return Operand(value, array=ArrayRef((value,)))

    def static_callee(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Name) and (
            node.id in self.arrays or node.id in self.scalar_params or node.id in self.assigned_names
        ):
            raise self.error(f"'{node.id}' is a kernel value, not a function or constant", node)
        if isinstance(node, (ast.Name, ast.Attribute)) or (
            isinstance(node, ast.Subscript) and not self.agg.is_runtime(node)
        ):  # Vec[f32, 4](...) names its type with a subscript
            return evaluate_static(self.source, node)
        raise self.error("expected a function name here", node)

    def visit_BinOp(self, node: ast.BinOp) -> Operand:
        return self.binary_operands(node.op, self.visit(node.left), self.visit(node.right), node)

    def binary_operands(self, op: ast.operator, left: Operand, right: Operand, node: ast.AST) -> Operand:
        if isinstance(left, AggOperand) or isinstance(right, AggOperand):
            return self.agg.binary(op, left, right, node)  # type: ignore[arg-type]
        return self.sem.binary(op, left, right, node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Operand:
        operand = self.visit(node.operand)
        if isinstance(operand, AggOperand):
            return self.agg.negate(node, operand)
        return self.sem.unary(node, operand)

    def visit_BoolOp(self, node: ast.BoolOp) -> Operand:
        is_and = isinstance(node.op, ast.And)
        result = self.sem.truth(self.visit(node.values[0]), node.values[0])
        for value_node in node.values[1:]:
            result = self.short_circuit(result, value_node, is_and)
        return result

    def short_circuit(self, lhs: Operand, rhs_node: ast.expr, is_and: bool) -> Operand:
        """``lhs and rhs`` / ``lhs or rhs``: rhs is evaluated only when Python would."""
        if lhs.is_literal:
            if bool(lhs.literal) != is_and:
                return lhs
            return self.sem.truth(self.visit(rhs_node), rhs_node)
        tmp = self.temp("and" if is_and else "or", BOOL)
        assert lhs.value is not None  # a literal left operand was decided above
        self.b.store_var(tmp, lhs.value)
        cond = lhs.value if is_and else self.b.unary("not", lhs.value)
        with self.b.if_(cond):
            rhs = self.sem.truth(self.visit(rhs_node), rhs_node)
            self.b.store_var(tmp, self.sem.coerce(rhs, BOOL, rhs_node))
        return Operand(self.b.load_var(tmp))

    def visit_Compare(self, node: ast.Compare) -> Operand:
        left = self.visit(node.left)
        if len(node.ops) == 1:
            return self.sem.compare(node.ops[0], left, self.visit(node.comparators[0]), node)
        tmp = self.temp("cmp", BOOL)
        self.chain_compare(tmp, left, list(zip(node.ops, node.comparators)), node)
        return Operand(self.b.load_var(tmp))

    def chain_compare(
        self, tmp: LocalVar, left: Operand, pairs: list[tuple[ast.cmpop, ast.expr]], node: ast.AST
    ) -> None:
        """``a < b < c``: each link is evaluated only if the previous one held."""
        op_node, right_node = pairs[0]
        right = self.visit(right_node)
        current = self.sem.coerce(self.sem.compare(op_node, left, right, node), BOOL, node)
        self.b.store_var(tmp, current)
        if len(pairs) > 1:
            with self.b.if_(current):
                self.chain_compare(tmp, right, pairs[1:], node)

    def visit_IfExp(self, node: ast.IfExp) -> Operand:
        cond = self.sem.truth(self.visit(node.test), node.test)
        if cond.is_literal:
            return self.visit(node.body if cond.literal else node.orelse)
        body, orelse = self.probe(node.body), self.probe(node.orelse)
        if isinstance(body.type, ArrayType) or isinstance(orelse.type, ArrayType):
            raise self.error(
                "a conditional expression cannot choose between arrays; write "
                "'if c:' / 'else:' statements that each assign the array name",
                node,
            )
        ty = self.sem.unify(body, orelse, node)
        tmp = self.temp("sel", ty)
        with self.b.if_(cond.value):  # type: ignore[arg-type]
            self.b.store_var(tmp, self.sem.coerce(self.visit(node.body), ty, node.body))
        with self.b.else_():
            self.b.store_var(tmp, self.sem.coerce(self.visit(node.orelse), ty, node.orelse))
        return Operand(self.b.load_var(tmp))

    def probe(self, node: ast.expr) -> Operand:
        """Translates ``node`` into a discarded region just to learn its type.

        Remembered per node: nested conditional expressions probe their
        branches again at every level, which without it takes 2**depth time.
        """
        known = self.probed.get(id(node))
        if known is not None and known[0] is node:
            return known[1]
        saved_counter = self.temp_counter
        with self.b.discarded():
            op = self.visit(node)
        self.temp_counter = saved_counter
        self.probed[id(node)] = (node, op)
        return op

    def visit_Subscript(self, node: ast.Subscript) -> Operand:
        place = self.agg.place_of(node)
        if place is not None:
            return self.agg.load(place, node)
        value = node.value
        if (
            isinstance(value, ast.Attribute)
            and value.attr == "shape"
            and isinstance(value.value, ast.Name)
            and value.value.id in self.arrays
        ):
            return self.shape_subscript(node)
        if isinstance(value, ast.Attribute) and value.attr == "shape":  # TABLE.shape[d]: a constant
            shape = self.static_callee(value)
            if isinstance(shape, tuple):
                dim = self.static_int(node.slice, "the dimension of a.shape[d]")
                if not 0 <= dim < len(shape):
                    raise self.error(f"dimension {dim} is out of range for shape {shape}", node.slice)
                return self.constant_operand(shape[dim], node)
        ref, indices = self.element(node)
        loaded = self.dispatch(ref, lambda a: self.b.load(a, self.flat_index(a, indices)), ref.type.elem)
        assert loaded is not None
        return Operand(loaded)

    def element(
        self, node: ast.Subscript, store: bool = False
    ) -> tuple[ArrayRef, list[tuple[Operand, ast.expr]]]:
        """The array and the index operands of ``a[i]`` / ``a[i, j(, k)]``."""
        base = self.visit(node.value)
        if base.is_literal or not isinstance(base.type, ArrayType):
            raise self.error("only arrays can be indexed", node.value)
        if isinstance(node.slice, ast.Slice) or (
            isinstance(node.slice, ast.Tuple) and any(isinstance(e, ast.Slice) for e in node.slice.elts)
        ):
            raise self.error("slices are not supported; index one element at a time", node.slice)
        ref: ArrayRef = base.array or ArrayRef((base.value,))
        if store and ref.type.space == AddressSpace.CONSTANT:
            raise self.error(
                f"'{ast.unparse(node.value)}' is a module-level numpy array, embedded read-only; "
                "pass it as an Array parameter to write it",
                node,
            )
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        ops = self.array_indices(ref, node.slice)
        return ref, list(zip(ops, elts))

    # --- calls ---

    def visit_Call(self, node: ast.Call) -> Operand:
        callee = self.static_callee(node.func)
        if isinstance(callee, (StructDef, VecType)) or isinstance(getattr(callee, "__self__", None), VecType):
            return self.agg.construct(callee, node)
        if node.keywords:
            raise self.error("keyword arguments are not supported in kernels", node.keywords[0])
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error("*args in calls are not supported in kernels", arg)
        if isinstance(callee, dsl.Intrinsic):
            entry = table.BY_NAME[callee.name]
            return getattr(self, f"call_{entry.rule}")(entry, node)
        if isinstance(callee, ScalarType):
            return self.cast_call(callee, node)
        if isinstance(callee, dsl.TypeVar):
            raise self.error(unbound_message(callee, f"'{ast.unparse(node)}'"), node.func)
        if isinstance(callee, type) and callee in _NUMPY_SCALARS:
            return self.cast_call(_NUMPY_SCALARS[callee], node)
        builtin = table.builtin_of(callee)
        if builtin is not None:
            return getattr(self, f"call_{builtin.rule}")(builtin, node)
        kind = getattr(callee, "ringkernel_kind", None)
        if kind == "func":
            return self.func_call(callee, node)
        if kind == "kernel":
            raise self.error(
                f"kernel '{ast.unparse(node.func)}' cannot be called from device code; "
                "make the shared code a @rk.func",
                node,
            )
        raise self.error(
            f"'{ast.unparse(node.func)}' ({_describe(callee)}) cannot be called in kernels", node.func
        )

    def args_of(self, node: ast.Call, count: table.Arity, name: str) -> list[Operand]:
        lo, hi = (count, count) if isinstance(count, int) else count
        if not lo <= len(node.args) <= (len(node.args) if hi is None else hi):
            expected = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.error(f"{name}() takes {expected} argument(s), got {len(node.args)}", node)
        return [self.visit(a) for a in node.args]

    def static_int(self, node: ast.expr, what: str) -> int:
        op = self.visit(node)
        if not op.is_literal or isinstance(op.literal, (bool, float)):
            raise self.error(f"{what} must be a constant integer", node)
        return op.literal

    def func_call(self, callee: Any, node: ast.Call) -> Operand:
        """A call of an ``@rk.func``: specialized for the binding of its type variables and for
        the memory of its array arguments; struct, Vec and tuple values travel as their leaves."""
        ops = [self.visit(a) for a in node.args]
        bindings = self.generic_bindings(callee, ops, node)
        declared, ret = signature_of(self.bound_callee_source(callee, bindings), "func")
        if len(node.args) != len(declared):
            raise self.error(
                f"'{ast.unparse(node.func)}' takes {len(declared)} argument(s), got {len(node.args)}",
                node,
            )
        args: list[Value | ArrayRef] = []
        position: dict[str, int] = {}  # an array parameter's argument, by its place in ``args``
        for (pname, pty), arg_node, op in zip(declared, node.args, ops):
            if isinstance(pty, (ArrayType, StructArray)):
                position[pname] = len(args)
            if self.agg.call_arg(pname, pty, op, arg_node, args):
                continue
            if isinstance(pty, ArrayType):
                self.agg.refuse_struct_array(op, arg_node, f"passing it as argument '{pname}'")
                args.append(self.array_argument(op, pname, pty, arg_node))
            else:
                args.append(self.sem.coerce(op, pty, arg_node, f"argument '{pname}'"))
        spaces = tuple(a.type.space for a in args if isinstance(a, ArrayRef))
        ir_name, params, ir_ret = self.callee(callee, node, spaces, bindings)
        hidden = [extent_param_of(name) for name, _ in params[len(ir_params(declared)):]]
        # a struct or tuple result of a call made once per candidate of a rebound array name
        selected = any(isinstance(a, ArrayRef) and a.selector is not None for a in args)
        spill = [self.temp("ret", t) for t in leaves(ret)] if selected and is_aggregate(ret) else None

        def call(chosen: dict[int, Value]) -> Value | None:
            values = [chosen[i] if isinstance(a, ArrayRef) else a for i, a in enumerate(args)]
            for array_name, dim in hidden:  # type: ignore[misc]
                at = position[array_name]
                array = chosen[at] if at in chosen else args[at]  # an Array[S] is never rebound
                values.append(self.extent_value(self.extents_of(array)[dim]))  # type: ignore[arg-type]
            result = self.b.call(ir_name, tuple(values), ir_ret)
            for k, var in enumerate(spill or ()):
                self.b.store_var(var, self.b.extract(result, k))  # type: ignore[arg-type]
            return result

        def choose(k: int, chosen: dict[int, Value]) -> Value | None:
            if k == len(args):
                return call(chosen)
            arg = args[k]
            if not isinstance(arg, ArrayRef):
                return choose(k + 1, chosen)
            result_type = ir_ret if isinstance(ir_ret, ScalarType) else None
            return self.dispatch(arg, lambda a: choose(k + 1, {**chosen, k: a}), result_type)

        result = choose(0, {})
        if spill is not None:
            return agg_operand(ret, [self.b.load_var(v) for v in spill])
        if result is not None and is_aggregate(ret):
            return self.agg.call_result(result, ret)
        return VOID_RESULT if result is None else Operand(result)

    def array_argument(self, op: Operand, pname: str, pty: ArrayType, node: ast.expr) -> ArrayRef:
        """The array passed for the func's array parameter ``pname``: any memory, same elements and rank."""
        if op.is_literal or not isinstance(op.type, ArrayType) or op.type.elem != pty.elem:
            raise self.error(f"argument '{pname}' must be an array of {pty.elem}", node)
        if op.type.ndim != pty.ndim:
            raise self.error(
                f"argument '{pname}' must be a {pty.ndim}-D array, got a {op.type.ndim}-D one", node
            )
        return op.array or ArrayRef((op.value,))  # type: ignore[arg-type]

    def generic_bindings(self, callee: Any, ops: list[Operand], node: ast.Call) -> dict[str, ScalarType]:
        """The binding of a generic ``@rk.func``'s type variables from the call's arguments
        (empty for a plain one); a variable only literals meet takes the literal's type."""
        from ringkernel.frontends import generics  # generics reads annotations through this module
        from ringkernel.frontends.semantic import literal_default_type

        source = callee.ringkernel_source
        params = generics.type_params(source)
        if not params:
            return {}
        typed = [(None if op.is_literal else op.type, a) for op, a in zip(ops, node.args)]
        bindings = generics.infer_from_operands(source, typed, self.source)
        by_name = dict(zip((a.arg for a in source.node.args.args), ops))
        for p in params:
            op = by_name.get(p.name)
            if p.var not in bindings and op is not None and op.is_literal and op.literal is not None:
                bindings[p.var] = literal_default_type(op.literal)
        return bindings

    def bound_callee_source(self, callee: Any, bindings: dict[str, ScalarType]) -> FunctionSource:
        """The source of ``callee`` with ``bindings`` in force (itself for a plain func)."""
        from ringkernel.frontends.generics import bound_source

        source: FunctionSource = callee.ringkernel_source
        return bound_source(source, bindings) if bindings else source

    def cast_call(self, ty: ScalarType, node: ast.Call) -> Operand:
        (op,) = self.args_of(node, 1, str(ty))
        return self.sem.cast(op, ty, node, node.args[0])

    def call_abs(self, entry: Builtin, node: ast.Call) -> Operand:
        (op,) = self.args_of(node, entry.arity, entry.name)
        return self.sem.abs(op, node)

    def call_cast(self, entry: Builtin, node: ast.Call) -> Operand:
        return self.cast_call(SCALAR_TYPES[entry.op], node)  # type: ignore[index]

    def call_refused(self, entry: Builtin, node: ast.Call) -> Operand:
        raise self.error(entry.op, node)  # type: ignore[arg-type]

    def call_min_max(self, entry: Builtin, node: ast.Call) -> Operand:
        op = entry.name
        if len(node.args) < 2:
            raise self.error(f"{op}() in kernels takes at least 2 arguments", node)
        return self.sem.min_max(op, [self.visit(a) for a in node.args], node)

    def call_subgroup(self, entry: Builtin, node: ast.Call) -> Operand:
        """``rk.lane_id()`` ... ``rk.vote_all(p)``: a Subgroup op; kernels only (lanes are per launch)."""
        if self.kind != "kernel":
            raise self.error(f"rk.{entry.name}() is only available in kernels", node)
        ops = self.args_of(node, entry.arity, entry.name)
        return self.sem.subgroup(entry.op, entry.name, ops, node)  # type: ignore[arg-type]

    def call_syncwarp(self, entry: Builtin, node: ast.Call) -> Operand:
        if self.kind != "kernel":
            raise self.error("syncwarp() can only be used in kernels", node)
        self.args_of(node, 0, "syncwarp")
        self.b.syncwarp()
        return VOID_RESULT

    def call_grid_sync(self, entry: Builtin, node: ast.Call) -> Operand:
        """``rk.grid_sync()``: a grid-wide barrier; the verifier checks it is grid-uniform."""
        if self.kind != "kernel":
            raise self.error("grid_sync() can only be used in kernels", node)
        self.args_of(node, 0, "grid_sync")
        self.b.grid_sync()
        return VOID_RESULT

    def call_barrier_vote(self, entry: Builtin, node: ast.Call) -> Operand:
        """``rk.barrier_count(p)`` and friends, built from a shared counter and three barriers.

        The first barrier keeps the reset from racing the previous read, the
        second publishes the reset, the third the votes; every target runs the
        same statements, so the result is the same everywhere.
        """
        if self.kind != "kernel":
            raise self.error(f"{entry.name}() can only be used in kernels", node)
        (arg,) = self.args_of(node, 1, entry.name)
        pred = self.sem.truth(arg, node.args[0])
        b = self.b
        counter = b.shared_array(I32, 1)
        zero, one = b.const(0, I32), b.const(1, I32)
        b.barrier()
        first = None
        for dim in range(3):
            is_zero = b.compare("eq", b.thread_index("thread_id", dim), zero)
            first = is_zero if first is None else b.binary("and", first, is_zero)
        assert first is not None
        with b.if_(first):
            b.store(counter, zero, one if entry.op == "and" else zero)
        b.barrier()
        op = entry.op
        assert op is not None
        vote = self.sem.coerce(pred, BOOL, node.args[0])
        if op == "and":
            vote = b.unary("not", vote)
        with b.if_(vote):
            rmw = {"count": "add", "or": "or", "and": "and"}[op]
            b.atomic(rmw, counter, zero, zero if op == "and" else one)
        b.barrier()
        result = b.load(counter, zero)
        if op == "count":
            return Operand(result)
        return Operand(b.compare("ne", result, zero))

    def call_clamp(self, entry: Builtin, node: ast.Call) -> Operand:
        return self.sem.clamp(self.args_of(node, entry.arity, entry.name), node)

    def call_math(self, entry: Builtin, node: ast.Call) -> Operand:
        func = entry.op
        assert func is not None
        return self.sem.math(func, self.args_of(node, entry.arity, func), node)

    def call_atomic(self, entry: Builtin, node: ast.Call) -> Operand:
        name, count = entry.name, entry.arity
        if len(node.args) != count:
            raise self.error(f"{name}() takes {count} arguments, got {len(node.args)}", node)
        array = self.visit(node.args[0])
        if array.is_literal or not isinstance(array.type, ArrayType):
            raise self.error(f"the first argument of {name}() must be an array", node.args[0])
        self.agg.refuse_struct_array(array, node.args[0], f"{name}() on its words")
        ref: ArrayRef = array.array or ArrayRef((array.value,))
        elem = ref.type.elem
        if elem.is_small:
            raise self.error(
                f"{name}() does not apply to {elem} arrays: no target has {elem} atomics; count in "
                "an i32 or u32 array (a shared one per block keeps it cheap)",
                node.args[0],
            )
        if ref.type.space in (AddressSpace.CONSTANT, AddressSpace.LOCAL):
            what = "a read-only module-level array" if ref.type.space == AddressSpace.CONSTANT else (
                "a per-work-item local array"
            )
            raise self.error(f"{name}() needs a global or shared array; this is {what}", node.args[0])
        index_node = node.args[1]
        elts = index_node.elts if isinstance(index_node, ast.Tuple) else [index_node]
        indices = list(zip(self.array_indices(ref, index_node), elts))
        # one array: the index is computed before the operands, as for any call
        fixed = self.flat_index(ref.candidates[0], indices) if ref.selector is None else None
        value_ops = [self.visit(a) for a in node.args[2:]] if fixed is None else []
        if name == "atomic_cas" and (not (elem.is_int or elem.is_float) or elem.is_small):
            raise self.error(f"atomic_cas() needs an i32, u32, i64, u64, f32 or f64 array, not {elem}", node)
        op = entry.op
        if name != "atomic_cas" and not atomic_applies(op, elem):  # type: ignore[arg-type]
            hint = "; float arrays support add, sub, min, max and exchange" if elem.is_float else ""
            raise self.error(f"{name}() does not apply to {elem} arrays{hint}", node)

        def apply(target: Value) -> Value:
            index = fixed if fixed is not None else self.flat_index(target, indices)
            values = [
                self.sem.coerce(
                    value_ops[k] if value_ops else self.visit(a), elem, a, f"the operand of {name}()"
                )
                for k, a in enumerate(node.args[2:])
            ]
            if name == "atomic_cas":
                return self.b.atomic_cas(target, index, values[0], values[1])
            return self.b.atomic(op, target, index, values[0])  # type: ignore[arg-type]

        result = self.dispatch(ref, apply, elem)
        assert result is not None
        return Operand(result)

    def call_thread_index(self, entry: Builtin, node: ast.Call) -> Operand:
        kind = entry.name
        if self.kind != "kernel":
            raise self.error(
                f"rk.{kind}() is only available in kernels; pass the index to the function",
                node,
            )
        if len(node.args) > 1:
            raise self.error(f"{kind}() takes one argument, the dimension 0, 1 or 2", node)
        dim = self.static_int(node.args[0], "the dimension") if node.args else 0
        if dim not in (0, 1, 2):
            raise self.error(f"the dimension must be 0, 1 or 2, got {dim}", node.args[0])
        return Operand(self.b.thread_index(kind, dim))

    def call_shared_array(self, entry: Builtin, node: ast.Call) -> Operand:
        if self.kind != "kernel":
            raise self.error("shared arrays can only be created in kernels", node)
        struct = self.agg.allocation_element(node)
        ty, size, shape = self.array_allocation(node, "shared", AddressSpace.SHARED, struct)
        return self.agg.allocated(self.b.shared_array(ty, size, shape), struct)

    def call_local_array(self, entry: Builtin, node: ast.Call) -> Operand:
        struct = self.agg.allocation_element(node)
        ty, size, shape = self.array_allocation(node, "local", AddressSpace.LOCAL, struct)
        return self.agg.allocated(self.b.local_array(ty, size, shape), struct)

    def array_allocation(
        self, node: ast.Call, what: str, space: AddressSpace, struct: Any = None
    ) -> tuple[ScalarType, int, tuple[int, ...] | None]:
        """The element type, size and shape of ``rk.shared_array(T, n | (r, c))`` / ``rk.local_array``.

        With ``struct`` (an ``@rk.struct`` or ``Vec`` element) they are those of its u32
        words: the last extent counts words, as for a global ``Array[S, N]``.
        """
        if len(node.args) != 2:
            raise self.error(
                f"{what}_array() takes a type and a constant size or shape, "
                f"e.g. rk.{what}_array(f32, (16, 16))",
                node,
            )
        ty = U32 if struct is not None else python_object_type(self.static_callee(node.args[0]))
        if not isinstance(ty, ScalarType):
            raise self.error("the element type must be a scalar type such as f32 (or an @rk.struct)",
                             node.args[0])
        size_node = node.args[1]
        dims_nodes = size_node.elts if isinstance(size_node, ast.Tuple) else [size_node]
        dims = tuple(self.static_int(d, f"the {what} array size") for d in dims_nodes)
        if len(dims) == 1 and dims[0] <= 0 and not isinstance(size_node, ast.Tuple):
            raise self.error(f"the {what} array size must be positive, got {dims[0]}", size_node)
        if struct is not None:  # its words: scale the last extent
            dims = (*dims[:-1], dims[-1] * self.agg.words_of(struct))
        spelled = dims if isinstance(size_node, ast.Tuple) else dims[0]
        size, shape = array_shape(lambda m, n: self.error(m, n), spelled, size_node, what)
        problem = array_size_problem(ArrayType(ty, space, size, shape))
        if problem is not None:
            raise self.error(f"{what}_array(): {problem}", node)
        return ty, size, shape

    def call_len(self, entry: Builtin, node: ast.Call) -> Operand:
        """``len(a)``: the extent of the first dimension, an i32."""
        (op,) = self.args_of(node, 1, "len")
        if op.is_literal or not isinstance(op.type, ArrayType):
            raise self.error("len() in kernels takes an array", node.args[0])
        return self.extent_operand(op.array or ArrayRef((op.value,)), 0)  # type: ignore[arg-type]

    def call_dynamic_shared_array(self, entry: Builtin, node: ast.Call) -> Operand:
        """``rk.dynamic_shared_array(T)``: a shared array without a size; the launch gives it."""
        if self.kind != "kernel":
            raise self.error("shared arrays can only be created in kernels", node)
        if len(node.args) != 1:
            raise self.error("dynamic_shared_array() takes the element type, e.g. "
                             "dynamic_shared_array(f32)", node)
        ty = python_object_type(self.static_callee(node.args[0]))
        if not isinstance(ty, ScalarType):
            raise self.error("the element type must be a scalar type such as f32", node.args[0])
        return Operand(self.b.shared_array(ty, None))

    def call_bitcast(self, entry: Builtin, node: ast.Call) -> Operand:
        """``rk.bitcast(v, T)``: ``v``'s bits as ``T``; both scalar types have one size."""
        if len(node.args) != 2:
            raise self.error("bitcast() takes a value and a type, e.g. rk.bitcast(x, u32)", node)
        type_node = node.args[1]
        named = isinstance(type_node, (ast.Name, ast.Attribute))
        target = python_object_type(self.static_callee(type_node)) if named else None
        if not isinstance(target, ScalarType) or target.is_bool:
            raise self.error(
                "the second argument of bitcast() must be a non-bool scalar type such as u32 or f32",
                node.args[1],
            )
        op = self.visit(node.args[0])
        src = self.sem.bitcast_source_type(op, target, node.args[0])
        if src.bits != target.bits:
            raise self.error(
                f"bitcast() needs types of one size: {src} has {src.bits} bits, {target} has "
                f"{target.bits}; convert with {target}(...) instead to change the value",
                node,
            )
        value = self.sem.coerce(op, src, node.args[0], "the argument of bitcast()")
        return Operand(value if src == target else self.b.bitcast(value, target))

    def call_barrier(self, entry: Builtin, node: ast.Call) -> Operand:
        if self.kind != "kernel":
            raise self.error("barrier() can only be used in kernels", node)
        if node.args:
            raise self.error("barrier() takes no arguments", node)
        self.b.barrier()
        return VOID_RESULT


VOID_RESULT = Operand(literal=None)  # what a call to a void function evaluates to


def _meet(a: set[str] | _Unreachable, b: set[str] | _Unreachable) -> set[str] | _Unreachable:
    if a is UNREACHABLE:
        return b
    if b is UNREACHABLE:
        return a
    return a & b  # type: ignore[operator]


def _assigned_names(fn: ast.FunctionDef) -> set[str]:
    """Names a function assigns anywhere: Python makes them local to it."""
    names: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _is_hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def _describe(obj: Any) -> str:
    if isinstance(obj, type(math)):
        return f"module '{obj.__name__}'"
    if callable(obj):
        return f"the function '{getattr(obj, '__name__', repr(obj))}'"
    return f"a value of type {type(obj).__name__}"


__all__ = ["FunctionTranslator", "signature_of", "evaluate_static", "python_object_type", "SCALAR_TYPES"]

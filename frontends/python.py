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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ringkernel.frontends import consteval, dsl
from ringkernel.frontends.limits import check_nesting
from ringkernel.frontends.source import FunctionSource
from ringkernel.ringir import (
    BOOL,
    F32,
    F64,
    I32,
    I64,
    MATH_FUNCS,
    SCALAR_TYPES,
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
)
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.limits import array_size_problem

# --- operands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Operand:
    """An expression's result: an SSA value, or a literal still waiting for its type."""

    value: Value | None = None
    literal: bool | int | float | None = None
    node: ast.AST | None = field(default=None, compare=False)  # where it came from, for carets

    @property
    def is_literal(self) -> bool:
        return self.value is None

    @property
    def type(self) -> Type | None:
        return None if self.value is None else self.value.type


def literal_default_type(lit: bool | int | float) -> ScalarType:
    if isinstance(lit, bool):
        return BOOL
    if isinstance(lit, int):
        return I32
    return F32


_NUMPY_SCALARS = {
    np.float32: F32,
    np.float64: F64,
    np.int32: I32,
    np.uint32: U32,
    np.int64: I64,
    np.uint64: U64,
    np.bool_: BOOL,
}

_MATH_FUNCTIONS: dict[Any, str] = {
    math.sqrt: "sqrt",
    math.exp: "exp",
    math.log: "log",
    math.sin: "sin",
    math.cos: "cos",
    math.tan: "tan",
    math.tanh: "tanh",
    math.pow: "pow",
    math.floor: "floor",
    math.ceil: "ceil",
    math.fabs: "fabs",
    np.sqrt: "sqrt",
    np.exp: "exp",
    np.log: "log",
    np.sin: "sin",
    np.cos: "cos",
    np.tan: "tan",
    np.tanh: "tanh",
    np.power: "pow",
    np.floor: "floor",
    np.ceil: "ceil",
    np.fabs: "fabs",
    np.abs: "abs",
    dsl.rsqrt: "rsqrt",
    dsl.fma: "fma",
}

_BINARY_OPS = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "div",
    ast.FloorDiv: "floordiv",
    ast.Mod: "floormod",
    ast.BitAnd: "and",
    ast.BitOr: "or",
    ast.BitXor: "xor",
    ast.LShift: "shl",
    ast.RShift: "shr",
    ast.Pow: "pow",
}
_COMPARE_OPS = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.Gt: "gt",
    ast.GtE: "ge",
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
    if ty is None:
        reason = dsl.unsupported_scalar_reason(obj)
        raise source.error(
            node,
            f"{what}: {reason}" if reason else
            f"{what} has an unsupported type annotation {_describe(obj)}; use f32, f64, i32, "
            "u32, i64, u64, bool (or int, float, np.float32, ...) or Array[T]",
        )
    return ty


def python_object_type(obj: Any) -> Type | None:
    """The RingIR type an annotation object denotes, or None."""
    if isinstance(obj, ArrayType):
        return obj
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
        raise source.error(
            (args.defaults or args.kw_defaults)[0], "default parameter values are not supported"
        )
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
        params.append((arg.arg, ty))
    ret: Type = VOID
    if fn.returns is not None:
        ret = _signature_type(source, "return", fn.returns, "the return value")
        if kind == "kernel" and ret != VOID:
            raise source.error(fn.returns, "kernels cannot return a value; write into an Array")
        if isinstance(ret, ArrayType):
            raise source.error(fn.returns, "functions cannot return arrays")
    return params, ret


# --- the translator -----------------------------------------------------------------------

CalleeResolver = Callable[[Any, ast.AST], tuple[str, list[tuple[str, Type]], Type]]


class FunctionTranslator(ast.NodeVisitor):
    """Translates one Python function into a RingIR :class:`Function`.

    ``callee`` maps a ``@rk.func`` object (found while translating a call) to
    its IR name and signature; the module builder supplies it and collects
    the callees to translate next.
    """

    def __init__(self, source: FunctionSource, kind: str, ir_name: str, callee: CalleeResolver):
        self.source = source
        self.kind = kind
        self.callee = callee
        params, ret = signature_of(source, kind)
        self.b = FunctionBuilder(ir_name, kind, params, ret, loc=source.loc(source.node))
        self.return_type = ret
        self.node: ast.AST = source.node
        self.assigned_names = _assigned_names(source.node)
        self.arrays: dict[str, Value] = {}
        self.scalar_params: dict[str, Value] = {}
        self.vars: dict[str, LocalVar] = {}
        self.assigned: set[str] | _Unreachable = set()
        self.loop_depth = 0
        self.temp_counter = 0
        self.void_ok: ast.AST | None = None  # the one call whose missing value is fine
        self.probed: dict[int, tuple[ast.AST, Operand]] = {}  # see probe()

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
        for (name, _), value in zip(signature_of(self.source, self.kind)[0], self.b.params):
            if isinstance(value.type, ArrayType):
                self.arrays[name] = value
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
        return self.b.finish()

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
        if self.assigned is not UNREACHABLE:
            self.assigned.add(name)

    def temp(self, prefix: str, ty: ScalarType) -> LocalVar:
        self.temp_counter += 1
        return self.b.local(f"{prefix}.{self.temp_counter}", ty)

    def branch(self, body: Callable[[], None]) -> set[str] | _Unreachable:
        """Runs ``body`` on a copy of the assignment state; returns the state after it."""
        saved = self.assigned
        self.assigned = set(saved) if saved is not UNREACHABLE else UNREACHABLE
        body()
        after = self.assigned
        self.assigned = saved
        return after

    # --- materializing operands ---

    def coerce(self, op: Operand, ty: Type, node: ast.AST, what: str = "value") -> Value:
        """``op`` as a value of type ``ty``: literals adopt it; ints promote to floats."""
        node = op.node or node
        if op.is_literal:
            return self.b.const(self.literal_as(op.literal, ty, node, what), ty)  # type: ignore
        assert op.value is not None
        if op.value.type == ty:
            return op.value
        src = op.value.type
        if isinstance(src, ScalarType) and isinstance(ty, ScalarType) and src.is_int and ty.is_float:
            return self.b.cast(op.value, ty)
        raise self.error(
            f"{what} has type {src} but {ty} is needed here; convert it explicitly with {ty}(...)"
            if isinstance(ty, ScalarType)
            else f"{what} has type {src}, expected {ty}",
            node,
        )

    def literal_as(self, lit: bool | int | float, ty: Type, node: ast.AST, what: str) -> Any:
        if not isinstance(ty, ScalarType):
            raise self.error(f"a number cannot be used where {ty} is needed", node)
        if ty.is_bool:
            if isinstance(lit, bool):
                return lit
            raise self.error(f"{what} {lit!r} is not a bool; write a comparison such as x != 0", node)
        if isinstance(lit, bool):
            raise self.error(f"the bool {lit} cannot be used as {ty}; write {ty}({lit})", node)
        if ty.is_int:
            if isinstance(lit, float):
                raise self.error(
                    f"the float {lit!r} cannot be used as {ty}; write {ty}({lit!r}) to truncate", node
                )
            lo, hi = ty.min_value, ty.max_value
            if not lo <= lit <= hi:
                raise self.error(f"the integer {lit} does not fit in {ty}", node)
            return int(lit)
        try:
            value = float(lit)
        except OverflowError:
            raise self.error(f"the integer {lit} is too large for {ty}", node) from None
        if ty == F32:
            with np.errstate(over="ignore"):
                rounded = float(np.float32(value))
            if math.isinf(rounded) and not math.isinf(value):
                raise self.error(f"{lit!r} is too large for f32", node)
            return rounded
        return value

    def value_of(self, op: Operand, node: ast.AST) -> Value:
        """A literal materialized with its default type (int→i32, float→f32)."""
        if op.is_literal:
            return self.coerce(op, literal_default_type(op.literal), node, "literal")  # type: ignore
        assert op.value is not None
        return op.value

    def scalar_type(self, op: Operand, node: ast.AST) -> ScalarType:
        ty = op.type if not op.is_literal else literal_default_type(op.literal)  # type: ignore
        if not isinstance(ty, ScalarType):
            raise self.error(f"an array cannot be used as a number here (it has type {ty})", node)
        return ty

    def unify(self, a: Operand, b: Operand, node: ast.AST) -> ScalarType:
        """The common type of two operands for arithmetic and comparison."""
        if a.is_literal and b.is_literal:
            ta, tb = literal_default_type(a.literal), literal_default_type(b.literal)  # type: ignore
            return ta if ta == tb or tb.is_bool else tb if ta.is_bool else F32
        if a.is_literal or b.is_literal:
            typed, lit = (b, a) if a.is_literal else (a, b)
            ty = self.scalar_type(typed, node)
            if isinstance(lit.literal, float) and not isinstance(lit.literal, bool) and ty.is_int:
                return F32
            return ty
        ta, tb = self.scalar_type(a, node), self.scalar_type(b, node)
        if ta == tb:
            return ta
        if ta.is_int and tb.is_float:
            return tb
        if tb.is_int and ta.is_float:
            return ta
        raise self.error(
            f"operands have different types {ta} and {tb}; convert one of them, e.g. {ta}(...)",
            node,
        )

    def truth(self, op: Operand, node: ast.AST) -> Operand:
        """Python truthiness as a bool operand."""
        if op.is_literal:
            return Operand(literal=bool(op.literal))
        ty = self.scalar_type(op, node)
        if ty.is_bool:
            return op
        zero = self.b.const(0.0 if ty.is_float else 0, ty)
        return Operand(self.b.compare("ne", op.value, zero))  # type: ignore[arg-type]

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
        if not isinstance(ty, ScalarType):
            raise self.error(f"local variables hold scalars; '{name}' cannot be {ty}", node)
        existing = self.vars.get(name)
        if existing is not None and existing.type != ty:
            raise self.error(f"'{name}' already has type {existing.type}, not {ty}", node)
        self.declare(name, ty, node)
        if node.value is not None:
            self.assign(node.target, self.visit(node.value), node.value)

    def assign_tuple(self, target: ast.Tuple, value: ast.expr) -> None:
        if not isinstance(value, ast.Tuple) or len(value.elts) != len(target.elts):
            raise self.error(
                "tuple assignment needs a tuple of the same length on the right, e.g. a, b = b, a", target
            )
        # SSA values are immutable, so every right-hand side is read before any store
        operands = [self.visit(v) for v in value.elts]
        for t, op, v in zip(target.elts, operands, value.elts):
            self.assign(t, op, v)

    def assign(self, target: ast.expr, op: Operand, value_node: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self.assign_name(target, op, value_node)
        elif isinstance(target, ast.Subscript):
            array, index = self.subscript_parts(target)
            assert isinstance(array.type, ArrayType)
            self.b.store(array, index, self.coerce(op, array.type.elem, value_node))
        elif isinstance(target, ast.Attribute):
            raise self.error("assigning to attributes is not supported in kernels", target)
        else:
            raise self.error("cannot assign to this expression", target)

    def assign_name(self, target: ast.Name, op: Operand, value_node: ast.AST) -> None:
        name = target.id
        if name in self.arrays:
            raise self.error(f"'{name}' is an array and cannot be reassigned", target)
        if not op.is_literal and isinstance(op.type, ArrayType):
            if name in self.vars:
                raise self.error(f"'{name}' holds a number and cannot become an array", target)
            self.arrays[name] = op.value  # type: ignore[assignment]
            return
        var = self.vars.get(name)
        if var is None:
            ty = self.scalar_type(op, value_node)
            var = self.declare(name, ty, target)
        self.b.store_var(var, self.coerce(op, var.type, value_node, f"the value assigned to '{name}'"))
        self.mark_assigned(name)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        target = node.target
        if isinstance(target, ast.Name):
            current = self.visit(ast.copy_location(ast.Name(target.id, ast.Load()), target))
            result = self.binary(node.op, current, self.visit(node.value), node)
            self.assign_name(target, result, node)
        elif isinstance(target, ast.Subscript):
            array, index = self.subscript_parts(target)
            current = Operand(self.b.load(array, index))
            result = self.binary(node.op, current, self.visit(node.value), node)
            assert isinstance(array.type, ArrayType)
            self.b.store(array, index, self.coerce(result, array.type.elem, node))
        else:
            raise self.error("cannot assign to this expression", target)

    def visit_If(self, node: ast.If) -> None:
        cond = self.truth(self.visit(node.test), node.test)
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
            cond = self.truth(self.visit(node.test), node.test)
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
        call = node.iter
        if not (isinstance(call, ast.Call) and self.static_callee(call.func) is builtins.range):
            raise self.error(
                "kernels loop with 'for i in range(...)'; to walk an array, loop over its "
                "indices and pass its length as a parameter",
                node.iter,
            )
        if call.keywords or not 1 <= len(call.args) <= 3:
            raise self.error("range() takes 1 to 3 positional arguments", call)
        ops = [self.visit(a) for a in call.args]
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
        start, stop, step = (self.coerce(op, ty, call, "range() argument") for op in ops)
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
            op = self.visit(node.value)
            self.b.return_(self.coerce(op, self.return_type, node.value, "the returned value"))
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

    def visit_Name(self, node: ast.Name) -> Operand:
        name = node.id
        if name in self.arrays:
            return Operand(self.arrays[name])
        if name in self.scalar_params:
            return Operand(self.scalar_params[name])
        if name in self.assigned_names:
            if name not in self.vars or (self.assigned is not UNREACHABLE and name not in self.assigned):
                raise self.error(
                    f"'{name}' may be used before it is assigned; give it a value first "
                    f"(e.g. '{name} = 0' before the loop or branch)",
                    node,
                )
            return Operand(self.b.load_var(self.vars[name]))
        return self.constant_operand(self.static_callee(node), node)

    def visit_Attribute(self, node: ast.Attribute) -> Operand:
        base = node.value
        if isinstance(base, ast.Name) and (
            base.id in self.arrays or base.id in self.scalar_params or base.id in self.assigned_names
        ):
            hint = (
                "; arrays carry no shape or length on the device: pass sizes as parameters"
                if base.id in self.arrays
                else ""
            )
            raise self.error(f"attributes of kernel values are not supported{hint}", node)
        return self.constant_operand(self.static_callee(node), node)

    def constant_operand(self, obj: Any, node: ast.AST) -> Operand:
        """A module-level Python number used in a kernel becomes a compile-time constant."""
        if isinstance(obj, (bool, int, float)):
            return Operand(literal=obj)
        if isinstance(obj, np.generic) and type(obj) in _NUMPY_SCALARS:
            ty = _NUMPY_SCALARS[type(obj)]
            return Operand(self.b.const(self.literal_as(obj.item(), ty, node, "constant"), ty))
        if isinstance(obj, np.ndarray):
            raise self.error(
                "kernels cannot capture numpy arrays; pass the array as an Array[T] parameter",
                node,
            )
        raise self.error(
            f"'{ast.unparse(node)}' is {_describe(obj)}; kernels can only use numbers from "
            "the enclosing scope (compile-time constants)",
            node,
        )

    def static_callee(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Name) and (
            node.id in self.arrays or node.id in self.scalar_params or node.id in self.assigned_names
        ):
            raise self.error(f"'{node.id}' is a kernel value, not a function or constant", node)
        if isinstance(node, (ast.Name, ast.Attribute)):
            return evaluate_static(self.source, node)
        raise self.error("expected a function name here", node)

    def visit_BinOp(self, node: ast.BinOp) -> Operand:
        return self.binary(node.op, self.visit(node.left), self.visit(node.right), node)

    def binary(self, op_node: ast.operator, a: Operand, b: Operand, node: ast.AST) -> Operand:
        op = _BINARY_OPS.get(type(op_node))
        if op is None:
            raise self.error(f"the operator '{_op_symbol(op_node)}' is not supported", node)
        if a.is_literal and b.is_literal:
            return self.fold_literals(op_node, a.literal, b.literal, node)
        if op == "pow":
            return self.power(a, b, node)
        ty = self.unify(a, b, node)
        if op == "div" and ty.is_int:
            ty = F32  # Python's / is true division
        if op in ("and", "or", "xor") and not (ty.is_int or ty.is_bool):
            raise self.error(f"'{_op_symbol(op_node)}' needs integer or bool operands, not {ty}", node)
        if op in ("shl", "shr") and not ty.is_int:
            raise self.error(f"'{_op_symbol(op_node)}' needs integer operands, not {ty}", node)
        if ty.is_bool and op not in ("and", "or", "xor"):
            raise self.error(f"'{_op_symbol(op_node)}' does not apply to bool values", node)
        lhs = self.coerce(a, ty, node, "the left operand")
        rhs = self.coerce(b, ty, node, "the right operand")
        return Operand(self.b.binary(op, lhs, rhs))

    def power(self, a: Operand, b: Operand, node: ast.AST) -> Operand:
        if (
            b.is_literal
            and isinstance(b.literal, int)
            and not isinstance(b.literal, bool)
            and 0 <= b.literal <= 8
            and not a.is_literal
        ):
            ty = self.scalar_type(a, node)
            base = self.coerce(a, ty, node)
            result = self.b.const(1.0 if ty.is_float else 1, ty)
            for _ in range(b.literal):
                result = self.b.binary("mul", result, base)
            return Operand(result)
        ty = self.unify(a, b, node)
        if not ty.is_float:
            ty = F32
        return Operand(self.b.math("pow", self.coerce(a, ty, node), self.coerce(b, ty, node)))

    def fold_literals(self, op_node: ast.operator, a: Any, b: Any, node: ast.AST) -> Operand:
        try:
            result = consteval.fold_binary(op_node, a, b)
        except consteval.ConstantTooLarge:
            raise self.error("this constant expression is too large for any integer type", node) from None
        except ZeroDivisionError:
            raise self.error("division by zero in a constant expression", node) from None
        except (OverflowError, ValueError) as exc:
            raise self.error(f"invalid constant expression: {exc}", node) from None
        except TypeError:
            raise self.error(
                "invalid constant expression: bitwise operators and shifts need integer operands", node
            ) from None
        if isinstance(result, complex) or not isinstance(result, (bool, int, float)):
            raise self.error("this constant expression has no real value", node)
        return Operand(literal=result)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Operand:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            t = self.truth(operand, node.operand)
            if t.is_literal:
                return Operand(literal=not t.literal)
            return Operand(self.b.unary("not", t.value))  # type: ignore[arg-type]
        if isinstance(node.op, ast.UAdd):
            return operand
        if operand.is_literal:
            lit = operand.literal
            if isinstance(node.op, ast.USub):
                return Operand(literal=-lit)  # type: ignore[operator]
            if isinstance(lit, float):
                raise self.error("'~' needs an integer operand", node)
            return Operand(literal=~lit)  # type: ignore[operator]
        ty = self.scalar_type(operand, node)
        if isinstance(node.op, ast.USub):
            if ty.is_bool:
                raise self.error("'-' does not apply to bool values", node)
            return Operand(self.b.unary("neg", operand.value))  # type: ignore[arg-type]
        if not ty.is_int:
            raise self.error(f"'~' needs an integer operand, not {ty}", node)
        return Operand(self.b.unary("bitnot", operand.value))  # type: ignore[arg-type]

    def visit_BoolOp(self, node: ast.BoolOp) -> Operand:
        is_and = isinstance(node.op, ast.And)
        result = self.truth(self.visit(node.values[0]), node.values[0])
        for value_node in node.values[1:]:
            result = self.short_circuit(result, value_node, is_and)
        return result

    def short_circuit(self, lhs: Operand, rhs_node: ast.expr, is_and: bool) -> Operand:
        """``lhs and rhs`` / ``lhs or rhs``: rhs is evaluated only when Python would."""
        if lhs.is_literal:
            if bool(lhs.literal) != is_and:
                return lhs
            return self.truth(self.visit(rhs_node), rhs_node)
        tmp = self.temp("and" if is_and else "or", BOOL)
        self.b.store_var(tmp, lhs.value)  # type: ignore[arg-type]
        cond = lhs.value if is_and else self.b.unary("not", lhs.value)  # type: ignore[arg-type]
        with self.b.if_(cond):
            rhs = self.truth(self.visit(rhs_node), rhs_node)
            self.b.store_var(tmp, self.coerce(rhs, BOOL, rhs_node))
        return Operand(self.b.load_var(tmp))

    def visit_Compare(self, node: ast.Compare) -> Operand:
        left = self.visit(node.left)
        if len(node.ops) == 1:
            return self.compare(node.ops[0], left, self.visit(node.comparators[0]), node)
        tmp = self.temp("cmp", BOOL)
        self.chain_compare(tmp, left, list(zip(node.ops, node.comparators)), node)
        return Operand(self.b.load_var(tmp))

    def chain_compare(
        self, tmp: LocalVar, left: Operand, pairs: list[tuple[ast.cmpop, ast.expr]], node: ast.AST
    ) -> None:
        """``a < b < c``: each link is evaluated only if the previous one held."""
        op_node, right_node = pairs[0]
        right = self.visit(right_node)
        current = self.coerce(self.compare(op_node, left, right, node), BOOL, node)
        self.b.store_var(tmp, current)
        if len(pairs) > 1:
            with self.b.if_(current):
                self.chain_compare(tmp, right, pairs[1:], node)

    def compare(self, op_node: ast.cmpop, a: Operand, b: Operand, node: ast.AST) -> Operand:
        op = _COMPARE_OPS.get(type(op_node))
        if op is None:
            raise self.error(f"the comparison '{_op_symbol(op_node)}' is not supported", node)
        if a.is_literal and b.is_literal:
            return Operand(literal=bool(consteval.COMPARE_OPS[op](a.literal, b.literal)))
        ty = self.unify(a, b, node)
        if ty.is_bool and op not in ("eq", "ne"):
            raise self.error("bool values can only be compared with == and !=", node)
        lhs = self.coerce(a, ty, node, "the left operand")
        rhs = self.coerce(b, ty, node, "the right operand")
        return Operand(self.b.compare(op, lhs, rhs))

    def visit_IfExp(self, node: ast.IfExp) -> Operand:
        cond = self.truth(self.visit(node.test), node.test)
        if cond.is_literal:
            return self.visit(node.body if cond.literal else node.orelse)
        ty = self.unify(self.probe(node.body), self.probe(node.orelse), node)
        tmp = self.temp("sel", ty)
        with self.b.if_(cond.value):  # type: ignore[arg-type]
            self.b.store_var(tmp, self.coerce(self.visit(node.body), ty, node.body))
        with self.b.else_():
            self.b.store_var(tmp, self.coerce(self.visit(node.orelse), ty, node.orelse))
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
        array, index = self.subscript_parts(node)
        return Operand(self.b.load(array, index))

    def subscript_parts(self, node: ast.Subscript) -> tuple[Value, Value]:
        base = self.visit(node.value)
        if base.is_literal or not isinstance(base.type, ArrayType):
            raise self.error("only arrays can be indexed", node.value)
        if isinstance(node.slice, ast.Slice):
            raise self.error("slices are not supported; index one element at a time", node.slice)
        if isinstance(node.slice, ast.Tuple):
            raise self.error("arrays are one-dimensional; index 2-D data as a[row * width + col]", node.slice)
        index = self.visit(node.slice)
        ty = self.scalar_type(index, node.slice)
        if not ty.is_int:
            raise self.error(f"array indices must be integers, not {ty}", node.slice)
        return base.value, self.coerce(index, ty, node.slice, "the index")  # type: ignore

    # --- calls ---

    def visit_Call(self, node: ast.Call) -> Operand:
        callee = self.static_callee(node.func)
        if node.keywords:
            raise self.error("keyword arguments are not supported in kernels", node.keywords[0])
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error("*args in calls are not supported in kernels", arg)
        if isinstance(callee, dsl.Intrinsic):
            if callee in _MATH_FUNCTIONS:
                return self.math_call(_MATH_FUNCTIONS[callee], node)
            if callee.name in dsl.ATOMIC_INTRINSICS or callee.name == "atomic_cas":
                return self.atomic_call(callee.name, node)
            return getattr(self, f"intrinsic_{callee.name}")(node)
        if isinstance(callee, ScalarType):
            return self.cast_call(callee, node)
        if isinstance(callee, type) and callee in _NUMPY_SCALARS:
            return self.cast_call(_NUMPY_SCALARS[callee], node)
        if _is_hashable(callee) and callee in _MATH_FUNCTIONS:
            return self.math_call(_MATH_FUNCTIONS[callee], node)
        builtin = _BUILTIN_CALLS.get(callee) if _is_hashable(callee) else None
        if builtin is not None:
            return getattr(self, builtin)(node)
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

    def args_of(self, node: ast.Call, count: int | tuple[int, int], name: str) -> list[Operand]:
        lo, hi = (count, count) if isinstance(count, int) else count
        if not lo <= len(node.args) <= hi:
            expected = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.error(f"{name}() takes {expected} argument(s), got {len(node.args)}", node)
        return [self.visit(a) for a in node.args]

    def static_int(self, node: ast.expr, what: str) -> int:
        op = self.visit(node)
        if not op.is_literal or isinstance(op.literal, (bool, float)):
            raise self.error(f"{what} must be a constant integer", node)
        return op.literal  # type: ignore[return-value]

    def func_call(self, callee: Any, node: ast.Call) -> Operand:
        ir_name, params, ret = self.callee(callee, node)
        if len(node.args) != len(params):
            raise self.error(
                f"'{ast.unparse(node.func)}' takes {len(params)} argument(s), got {len(node.args)}",
                node,
            )
        args = []
        for (pname, pty), arg_node in zip(params, node.args):
            op = self.visit(arg_node)
            if isinstance(pty, ArrayType):
                if op.is_literal or not isinstance(op.type, ArrayType) or op.type.elem != pty.elem:
                    raise self.error(f"argument '{pname}' must be an array of {pty.elem}", arg_node)
                if op.type.space != pty.space:
                    raise self.error(
                        f"argument '{pname}' is a shared array; device functions take global "
                        "arrays only (index the shared array in the kernel instead)",
                        arg_node,
                    )
                args.append(op.value)
            else:
                args.append(self.coerce(op, pty, arg_node, f"argument '{pname}'"))
        result = self.b.call(ir_name, tuple(args), ret)  # type: ignore[arg-type]
        return VOID_RESULT if result is None else Operand(result)

    def cast_call(self, ty: ScalarType, node: ast.Call) -> Operand:
        (op,) = self.args_of(node, 1, str(ty))
        if ty.is_bool:
            return self.truth(op, node.args[0])
        if op.is_literal:
            return Operand(self.b.const(_cast_literal(self, op.literal, ty, node), ty))
        src = self.scalar_type(op, node.args[0])
        if src == ty:
            return op
        return Operand(self.b.cast(op.value, ty))  # type: ignore[arg-type]

    def builtin_int(self, node: ast.Call) -> Operand:
        return self.cast_call(I32, node)

    def builtin_float(self, node: ast.Call) -> Operand:
        return self.cast_call(F32, node)

    def builtin_bool(self, node: ast.Call) -> Operand:
        return self.cast_call(BOOL, node)

    def builtin_abs(self, node: ast.Call) -> Operand:
        (op,) = self.args_of(node, 1, "abs")
        if op.is_literal:
            return Operand(literal=abs(op.literal))  # type: ignore[arg-type]
        ty = self.scalar_type(op, node)
        if ty.is_bool:
            raise self.error("abs() does not apply to bool", node)
        if ty.kind == "uint":
            return op
        return Operand(self.b.math("abs", op.value))  # type: ignore[arg-type]

    def builtin_min(self, node: ast.Call) -> Operand:
        return self.min_max("min", node)

    def builtin_max(self, node: ast.Call) -> Operand:
        return self.min_max("max", node)

    def min_max(self, op: str, node: ast.Call) -> Operand:
        if len(node.args) < 2:
            raise self.error(f"{op}() in kernels takes at least 2 arguments", node)
        ops = [self.visit(a) for a in node.args]
        result = ops[0]
        for other in ops[1:]:
            if result.is_literal and other.is_literal:
                result = Operand(literal=(min if op == "min" else max)(result.literal, other.literal))
                continue
            ty = self.unify(result, other, node)
            if ty.is_bool:
                raise self.error(f"{op}() does not apply to bool", node)
            result = Operand(self.b.binary(op, self.coerce(result, ty, node), self.coerce(other, ty, node)))
        return result

    def builtin_range(self, node: ast.Call) -> Operand:
        raise self.error("range() can only be used as 'for i in range(...)'", node)

    def builtin_len(self, node: ast.Call) -> Operand:
        raise self.error("arrays carry no length on the device; pass the length as a parameter", node)

    def builtin_print(self, node: ast.Call) -> Operand:
        raise self.error("print() is not supported in kernels; write values into an Array", node)

    def math_call(self, func: str, node: ast.Call) -> Operand:
        ops = self.args_of(node, MATH_FUNCS[func], func)
        if func == "abs":
            return self.builtin_abs(node)
        ty: ScalarType | None = None
        for op in ops:
            if not op.is_literal:
                t = self.scalar_type(op, node)
                if t.is_bool:
                    raise self.error(f"{func}() needs numbers, not bool", node)
                if t.is_float:
                    if ty is not None and ty != t:
                        raise self.error(f"{func}() arguments have different types {ty} and {t}", node)
                    ty = t
        ty = ty or F32
        args = [self.coerce(op, ty, a, f"argument of {func}()") for op, a in zip(ops, node.args)]
        return Operand(self.b.math(func, *args))

    def atomic_call(self, name: str, node: ast.Call) -> Operand:
        count = 4 if name == "atomic_cas" else 3
        if len(node.args) != count:
            raise self.error(f"{name}() takes {count} arguments, got {len(node.args)}", node)
        array = self.visit(node.args[0])
        if array.is_literal or not isinstance(array.type, ArrayType):
            raise self.error(f"the first argument of {name}() must be an array", node.args[0])
        elem = array.type.elem
        index_op = self.visit(node.args[1])
        ity = self.scalar_type(index_op, node.args[1])
        if not ity.is_int:
            raise self.error(f"array indices must be integers, not {ity}", node.args[1])
        index = self.coerce(index_op, ity, node.args[1])
        values = [self.coerce(self.visit(a), elem, a, f"the operand of {name}()") for a in node.args[2:]]
        if name == "atomic_cas":
            if not elem.is_int:
                raise self.error(
                    f"atomic_cas() needs an integer array, not {elem}; keep the bits in a "
                    f"{'u64' if elem.bits == 64 else 'u32'} array and use rk.bitcast(v, T)",
                    node,
                )
            return Operand(self.b.atomic_cas(array.value, index, values[0], values[1]))  # type: ignore
        op = dsl.ATOMIC_INTRINSICS[name]
        if not atomic_applies(op, elem):
            hint = "; float arrays support add, sub, min, max and exchange" if elem.is_float else ""
            raise self.error(f"{name}() does not apply to {elem} arrays{hint}", node)
        return Operand(self.b.atomic(op, array.value, index, values[0]))  # type: ignore

    def thread_index(self, kind: str, node: ast.Call) -> Operand:
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

    def intrinsic_thread_id(self, node: ast.Call) -> Operand:
        return self.thread_index("thread_id", node)

    def intrinsic_block_id(self, node: ast.Call) -> Operand:
        return self.thread_index("block_id", node)

    def intrinsic_block_dim(self, node: ast.Call) -> Operand:
        return self.thread_index("block_dim", node)

    def intrinsic_grid_dim(self, node: ast.Call) -> Operand:
        return self.thread_index("grid_dim", node)

    def intrinsic_global_id(self, node: ast.Call) -> Operand:
        return self.thread_index("global_id", node)

    def intrinsic_shared_array(self, node: ast.Call) -> Operand:
        if self.kind != "kernel":
            raise self.error("shared arrays can only be created in kernels", node)
        if len(node.args) != 2:
            raise self.error("shared_array() takes a type and a constant size", node)
        ty = python_object_type(self.static_callee(node.args[0]))
        if not isinstance(ty, ScalarType):
            raise self.error("the element type must be a scalar type such as f32", node.args[0])
        size = self.static_int(node.args[1], "the shared array size")
        if size <= 0:
            raise self.error(f"the shared array size must be positive, got {size}", node.args[1])
        problem = array_size_problem(ArrayType(ty, AddressSpace.SHARED, size))
        if problem is not None:
            raise self.error(f"shared_array(): {problem}", node)
        return Operand(self.b.shared_array(ty, size))

    def intrinsic_bitcast(self, node: ast.Call) -> Operand:
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
        src = self.bitcast_source_type(op, target, node.args[0])
        if src.bits != target.bits:
            raise self.error(
                f"bitcast() needs types of one size: {src} has {src.bits} bits, {target} has "
                f"{target.bits}; convert with {target}(...) instead to change the value",
                node,
            )
        value = self.coerce(op, src, node.args[0], "the argument of bitcast()")
        return Operand(value if src == target else self.b.bitcast(value, target))

    def bitcast_source_type(self, op: Operand, target: ScalarType, node: ast.AST) -> ScalarType:
        """The type of bitcast's operand; a literal takes the target's size (a float → f32/f64)."""
        if not op.is_literal:
            ty = self.scalar_type(op, node)
        elif isinstance(op.literal, bool):
            ty = BOOL
        elif isinstance(op.literal, float):
            ty = F32 if target.bits == 32 else F64
        else:
            unsigned = op.literal >= 0  # type: ignore[operator]
            ty = {(32, True): U32, (32, False): I32, (64, True): U64, (64, False): I64}[
                (target.bits, unsigned)
            ]
        if ty.is_bool:
            raise self.error("bitcast() does not apply to bool values", node)
        return ty

    def intrinsic_barrier(self, node: ast.Call) -> Operand:
        if self.kind != "kernel":
            raise self.error("barrier() can only be used in kernels", node)
        if node.args:
            raise self.error("barrier() takes no arguments", node)
        self.b.barrier()
        return VOID_RESULT


VOID_RESULT = Operand(literal=None)  # what a call to a void function evaluates to

_BUILTIN_CALLS: dict[Any, str] = {
    builtins.int: "builtin_int",
    builtins.float: "builtin_float",
    builtins.bool: "builtin_bool",
    builtins.abs: "builtin_abs",
    builtins.min: "builtin_min",
    builtins.max: "builtin_max",
    builtins.range: "builtin_range",
    builtins.len: "builtin_len",
    builtins.print: "builtin_print",
}

def _cast_literal(t: FunctionTranslator, lit: Any, ty: ScalarType, node: ast.AST) -> Any:
    if ty.is_float:
        return t.literal_as(float(lit), ty, node, "value")
    if isinstance(lit, float):
        if math.isnan(lit) or math.isinf(lit):
            raise t.error(f"{lit} cannot be converted to {ty}", node)
        lit = int(lit)
    lo, hi = ty.min_value, ty.max_value
    return ((int(lit) - lo) % (hi - lo + 1)) + lo  # wraps like the hardware


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


def _op_symbol(op: ast.AST) -> str:
    return {
        "MatMult": "@",
        "Is": "is",
        "IsNot": "is not",
        "In": "in",
        "NotIn": "not in",
    }.get(type(op).__name__, type(op).__name__)


__all__ = ["FunctionTranslator", "signature_of", "evaluate_static", "python_object_type", "SCALAR_TYPES"]

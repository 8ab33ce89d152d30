"""RingIR -> Metal Shading Language.

Python decides (types, helpers, atomic-ness, names); the jinja2 templates in
``templates/`` hold every piece of MSL syntax.  Every user identifier is
mangled by a :class:`~ringkernel.lowering.common.Namer` fed
:mod:`ringkernel.lowering.msl.target`'s reserved words before it reaches a template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ringkernel.lowering.common import Macros, Namer, Statement, atomic_arrays, check_module, macros, render
from ringkernel.lowering.common.grid_sync import refuse_grid_sync
from ringkernel.lowering.msl.limits import check_threadgroup_memory
from ringkernel.lowering.msl.target import CAPABILITIES, NAMES, value_name
from ringkernel.ringir import (
    MATH_PREDICATES,
    VOID,
    AddressSpace,
    ArrayType,
    AtomicCAS,
    AtomicRMW,
    Barrier,
    Binary,
    Bitcast,
    Break,
    Call,
    Cast,
    Compare,
    Const,
    ConstArray,
    Continue,
    Extract,
    ForRange,
    Function,
    If,
    Load,
    LoadVar,
    LocalArray,
    Loop,
    MakeTuple,
    MathCall,
    Module,
    NodeVisitor,
    Return,
    ScalarType,
    SharedArray,
    Stmt,
    Store,
    StoreVar,
    Subgroup,
    SyncWarp,
    ThreadIndex,
    Type,
    Unary,
    Value,
    result_of,
    walk,
)
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.types import F16, F32, PROMOTED, TupleType, as_scalar

MATH_MODES = ("precise", "fast", "default")
_IGNORED_OPTIONS = ("arch",)

_TYPE_NAMES = {
    "f32": "float", "i32": "int", "u32": "uint", "i64": "long", "u64": "ulong", "bool": "bool",
    "i8": "char", "u8": "uchar", "i16": "short", "u16": "ushort", "f16": "half",
}
_ATOMIC_TYPE_NAMES = {"f32": "atomic_float", "i32": "atomic_int", "u32": "atomic_uint"}
_UNSIGNED_TWIN = {"i32": "u32", "i64": "u64", "u32": "u32", "u64": "u64"}
_INT_SUFFIX = {"i32": "", "u32": "u", "i64": "L", "u64": "UL"}

# Thread-index kinds in the order their builtin arguments follow the buffers.
BUILTIN_ORDER = ("global_id", "thread_id", "block_id", "block_dim", "grid_dim")
BUILTIN_NAMES = {
    "global_id": "rk_gid", "thread_id": "rk_tid", "block_id": "rk_bid",
    "block_dim": "rk_bdim", "grid_dim": "rk_gdim",
}
_TRANSCENDENTAL = ("sqrt", "rsqrt", "exp", "log", "sin", "cos", "tan", "tanh", "pow", "atan2")
# Math functions the Metal library lacks: a helper of helpers.j2 each (``math_<func>``).
_MATH_HELPERS = ("hypot", "erf", "erfc", "lgamma", "log1p", "expm1", "cbrt")
_BIT_FUNCS = {"popc": "popcount", "clz": "clz", "brev": "reverse_bits"}
_MATH_NAMESPACE = {"precise": "metal::precise::", "fast": "metal::fast::", "default": "metal::"}

_PACKAGE = "ringkernel.lowering.msl"


def template_macros(template: str) -> Macros:
    """The macros of one MSL template."""
    return macros(_PACKAGE, template)


@dataclass(frozen=True)
class MslParam:
    """One kernel parameter as the runtime binds it: ``[[buffer(index)]]``."""

    name: str
    msl_name: str
    index: int
    is_array: bool
    type: ScalarType
    atomic: bool = False


@dataclass(frozen=True)
class MslKernel:
    """How to call one emitted kernel: its entry-point name and argument layout."""

    name: str
    entry: str
    params: tuple[MslParam, ...]
    builtins: tuple[str, ...]
    uses_barrier: bool
    uses_shared: bool


@dataclass(frozen=True)
class MslProgram:
    text: str
    kernels: dict[str, MslKernel]


def lower(module: Module, **options: Any) -> MslProgram:
    """Emits MSL plus the per-kernel argument layout of a verified ``module``."""
    math = options.pop("math", "precise")
    for name in _IGNORED_OPTIONS:
        options.pop(name, None)
    if options:
        raise CompileError(f"unknown MSL option(s): {', '.join(sorted(options))}")
    if math not in MATH_MODES:
        raise CompileError(f"MSL option math must be one of {', '.join(MATH_MODES)}, got {math!r}")
    check_module(module, CAPABILITIES)
    refuse_grid_sync(module, "MSL", "Metal")
    check_threadgroup_memory(module)
    return _ModuleEmitter(module, math).emit()


def type_name(ty: Type) -> str:
    if ty == VOID:
        return "void"
    assert isinstance(ty, ScalarType)
    return _TYPE_NAMES[ty.name]


def element_type_name(param: MslParam) -> str:
    """The MSL element type of an array parameter (atomic if used atomically)."""
    return _ATOMIC_TYPE_NAMES[param.type.name] if param.atomic else type_name(param.type)


def _float_literal(value: float, expr: Macros) -> str:
    with np.errstate(over="ignore"):
        f = np.float32(value)
    if not np.isfinite(f):
        return expr.bits_to_float(f"0x{int(f.view(np.uint32)):08x}")
    magnitude = abs(float(f))
    if 1.0 <= magnitude < 2.0**64 and float(f).is_integer():
        text = f"{int(f)}.0"
    elif magnitude == 0.0 or 1e-4 <= magnitude < 1e7:
        text = np.format_float_positional(f, unique=True, trim="0")
    else:
        text = np.format_float_scientific(f, unique=True, trim="0")
    return text + "f"


def literal(value: bool | int | float, ty: ScalarType, expr: Macros) -> str:
    """The MSL spelling of a constant of type ``ty``, exact for every value."""
    if ty.is_bool:
        return "true" if value else "false"
    if ty.is_small:  # C has no literals of these types: a converted int or float literal
        inner = literal(value, PROMOTED[ty], expr)
        return expr.convert(_TYPE_NAMES[ty.name], inner)
    if ty.is_float:
        return _float_literal(float(value), expr)
    suffix = _INT_SUFFIX[ty.name]
    low, high = ty.min_value, ty.max_value
    if ty.is_signed and value == low:
        return expr.int_min(f"{high}{suffix}", f"1{suffix}")
    return f"{int(value)}{suffix}"


class _ModuleEmitter:
    def __init__(self, module: Module, math: str) -> None:
        self.module = module
        self.math = math
        self.expr = template_macros("expressions.j2")
        self.stmt = template_macros("statements.j2")
        self.helper_macros = template_macros("helpers.j2")
        self.function_macros = template_macros("function.j2")
        self.atomic = atomic_arrays(module)
        self.helpers: dict[str, str] = {}
        self.globals = Namer(NAMES)
        ordered = [f for f in module.functions if f.is_kernel] + [
            f for f in module.functions if not f.is_kernel
        ]
        self.function_names = {f.name: self.globals.name("function", f.name) for f in ordered}
        self.struct_names = {s.name: self.globals.name("struct", s.name) for s in module.structs}
        # embedded read-only arrays live at program scope, in the constant address space
        self.constant_names = {
            (f.name, s.result.name): self.globals.fresh(f"{f.name}_{s.result.name}", "c_")
            for f in ordered for s in walk(f.body) if isinstance(s, ConstArray)
        }
        self.constants: list[str] = []
        self.tuple_names: dict[TupleType, str] = {}
        for fn in module.functions:
            for stmt in walk(fn.body):
                ty = getattr(result_of(stmt), "type", None)
                if isinstance(ty, TupleType) and ty not in self.tuple_names:
                    self.tuple_names[ty] = self.globals.fresh("", "RkTuple_")

    def value_type_name(self, ty: Type) -> str:
        """A value's MSL type: its scalar, or the struct declared for a ``tuple<...>``."""
        return self.tuple_names[ty] if isinstance(ty, TupleType) else type_name(ty)

    def helper(self, name: str, macro: str, *args: str) -> str:
        """Registers helper ``name`` (rendered by ``macro``) once; returns its name."""
        if name not in self.helpers:
            self.helpers[name] = getattr(self.helper_macros, macro)(*args).strip("\n")
        return name

    def emit(self) -> MslProgram:
        prototypes: list[str] = []
        functions: list[str] = []
        kernels: dict[str, MslKernel] = {}
        for fn in self.module.functions:
            emitter = _FunctionEmitter(self, fn)
            text, signature = emitter.emit()
            functions.append(text)
            if fn.is_kernel:
                kernels[fn.name] = emitter.kernel_info()
            else:
                prototypes.append(signature)
        module_macros = template_macros("declarations.j2")
        chunks: list[str] = []
        for struct in self.module.structs:
            fields = Namer(NAMES)
            chunks.append(_strip(module_macros.struct({
                "name": self.struct_names[struct.name],
                "fields": [
                    {"type": type_name(ty), "name": fields.name("field", n)}
                    for n, ty in struct.fields
                ],
            })))
        for ty, name in self.tuple_names.items():
            chunks.append(_strip(module_macros.struct({
                "name": name,
                "fields": [{"type": type_name(e), "name": f"e{i}"} for i, e in enumerate(ty.elems)],
            })))
        chunks.extend(self.helpers[name] for name in sorted(self.helpers))
        chunks.extend(self.constants)
        if prototypes:
            chunks.append(_strip(module_macros.prototypes(prototypes)))
        chunks.extend(functions)
        text = render(_PACKAGE, "module.j2", chunks=chunks)
        return MslProgram(text, kernels)


def _strip(text: str) -> str:
    return str(text).strip("\n")


class _FunctionEmitter(NodeVisitor):
    """Renders one function; statements become ``kind``-tagged dicts that ``statements.j2`` prints."""

    def __init__(self, parent: _ModuleEmitter, fn: Function) -> None:
        self.parent = parent
        self.fn = fn
        self.expr = parent.expr
        self.stmt = parent.stmt
        self.names = parent.globals.scope()
        self.values: dict[str, str] = {}
        for p in fn.params:
            self.values[p.name] = self.names.name("param", p.name)
        self.locals = {var.name: self.names.name("local", var.name) for var in fn.locals}
        self.shared_decls: list[Statement] = []
        self.loop_counter = 0
        body = fn.body
        used = {s.kind for s in walk(body) if isinstance(s, ThreadIndex)}
        self.builtins = tuple(kind for kind in BUILTIN_ORDER if kind in used)
        self.uses_simd = any(isinstance(s, (Subgroup, SyncWarp)) for s in walk(body))

    def generic_visit(self, node: object) -> Statement:
        """A statement this target has no lowering for is a user-facing error, not a crash."""
        raise CompileError.at(
            getattr(node, "loc", None), f"the msl target cannot lower {type(node).__name__} statements"
        )

    # --- names and types ---

    def ref(self, value: Value) -> str:
        return self.values[value.name]

    def bind(self, value: Value) -> str:
        ident = self.names.name("value", value_name(value.name))
        self.values[value.name] = ident
        return ident

    def is_atomic(self, array: Value) -> bool:
        return (self.fn.name, array.name) in self.parent.atomic

    def element_type(self, array: Value) -> str:
        ty = array.type
        assert isinstance(ty, ArrayType)
        if self.is_atomic(array):
            return _ATOMIC_TYPE_NAMES[ty.elem.name]
        return type_name(ty.elem)

    def lit(self, value: bool | int | float, ty: ScalarType) -> str:
        return literal(value, ty, self.expr)

    # --- function ---

    def params(self) -> list[dict[str, Any]]:
        params: list[dict[str, Any]] = []
        for index, p in enumerate(self.fn.params):
            is_array = isinstance(p.type, ArrayType)
            entry: dict[str, Any] = {
                "name": self.ref(p),
                "index": index,
                "type": self.element_type(p) if is_array else type_name(p.type),
                "space": p.type.space.value if isinstance(p.type, ArrayType) else "",
            }
            if self.fn.is_kernel:
                entry["kind"] = "buffer_array" if is_array else "buffer_scalar"
            else:
                entry["kind"] = "array" if is_array else "scalar"
            params.append(entry)
        for kind in self.builtins:
            params.append({
                "kind": "builtin",
                "name": BUILTIN_NAMES[kind],
                "attribute": self.expr.builtin_attribute(kind),
            })
        if self.fn.is_kernel and self.uses_simd:
            for name, attribute in (("rk_lane", "thread_index_in_simdgroup"),
                                    ("rk_simd", "threads_per_simdgroup")):
                params.append({"kind": "simd_builtin", "name": name, "attribute": attribute})
        return params

    def emit(self) -> tuple[str, str]:
        body = self.stmt.block(self.region(self.fn.body))
        declarations = list(self.shared_decls)
        for var in self.fn.locals:
            declarations.append({"kind": "declare_local", "type": type_name(var.type),
                                 "name": self.locals[var.name], "zero": self.lit(0, var.type)})
        declared = [_strip(self.stmt.stmt(d)) for d in declarations]
        context = {
            "is_kernel": self.fn.is_kernel,
            "name": self.parent.function_names[self.fn.name],
            "return_type": self.parent.value_type_name(self.fn.return_type),
            "params": self.params(),
        }
        macros = self.parent.function_macros
        text = _strip(macros.definition(context, declared, body))
        return text, _strip(macros.signature(context))

    def kernel_info(self) -> MslKernel:
        params = tuple(
            MslParam(
                name=p.name,
                msl_name=self.ref(p),
                index=index,
                is_array=isinstance(p.type, ArrayType),
                type=p.type.elem if isinstance(p.type, ArrayType) else as_scalar(p.type),
                atomic=isinstance(p.type, ArrayType) and self.is_atomic(p),
            )
            for index, p in enumerate(self.fn.params)
        )
        stmts = list(walk(self.fn.body))
        return MslKernel(
            name=self.fn.name,
            entry=self.parent.function_names[self.fn.name],
            params=params,
            builtins=self.builtins,
            uses_barrier=any(isinstance(s, (Barrier, Subgroup, SyncWarp)) for s in stmts),
            uses_shared=any(isinstance(s, SharedArray) for s in stmts),
        )

    def region(self, body: tuple[Stmt, ...]) -> list[Statement]:
        """The statements of ``body`` (each visit returns its statement, or None)."""
        return [s for s in (self.visit(stmt) for stmt in body) if s is not None]

    def define(self, result: Value, expression: str) -> Statement:
        return {"kind": "define", "type": self.parent.value_type_name(result.type), "name": self.bind(result),
                "expr": expression}

    # --- instructions ---

    def visit_Const(self, s: Const) -> Statement:
        assert isinstance(s.result.type, ScalarType)
        return self.define(s.result, self.lit(s.value, s.result.type))

    def visit_Unary(self, s: Unary) -> Statement:
        return self.define(s.result, self.expr.prefix(s.op, self.ref(s.operand)))

    def visit_Binary(self, s: Binary) -> Statement:
        ty = s.lhs.type
        assert isinstance(ty, ScalarType)
        a, b = self.ref(s.lhs), self.ref(s.rhs)
        return self.define(s.result, self.binary(s.op, ty, a, b))

    def binary(self, op: str, ty: ScalarType, a: str, b: str) -> str:
        t = type_name(ty)
        if op in ("add", "sub", "mul") or (op == "div" and ty.is_float):
            return self.expr.infix(op, a, b)
        if op in ("div", "rem", "floordiv", "floormod"):
            return self.expr.call(self.divmod_helper(op, ty), [a, b])
        if op in ("and", "or", "xor"):
            return self.expr.infix("l" + op if ty.is_bool else op, a, b)
        if op in ("min", "max"):
            return self.expr.call(f"metal::{op}", [a, b])
        mask = self.lit(ty.bits - 1, ty)
        if op == "shl":
            twin = _UNSIGNED_TWIN[ty.name]
            unsigned_mask = self.lit(ty.bits - 1, ScalarType(twin))
            return self.expr.shift_left(t, _TYPE_NAMES[twin], a, b, unsigned_mask)
        assert op == "shr"
        return self.expr.shift_right(a, b, mask)

    def divmod_helper(self, op: str, ty: ScalarType) -> str:
        t = type_name(ty)
        name = f"rk_{op}_{t}"
        if ty.is_float:
            macro = {"rem": "float_rem", "floordiv": "float_floordiv", "floormod": "float_floormod"}
            return self.parent.helper(name, macro[op], t)
        if ty.kind == "uint":
            operator = "/" if op in ("div", "floordiv") else "%"
            return self.parent.helper(name, "unsigned_divmod", op, t, operator)
        twin = _TYPE_NAMES[_UNSIGNED_TWIN[ty.name]]
        return self.parent.helper(name, f"signed_{op}", t, twin)

    def visit_Compare(self, s: Compare) -> Statement:
        return self.define(s.result, self.expr.infix(s.op, self.ref(s.lhs), self.ref(s.rhs)))

    def visit_Cast(self, s: Cast) -> Statement:
        src, dst = s.value.type, s.result.type
        assert isinstance(src, ScalarType) and isinstance(dst, ScalarType)
        a = self.ref(s.value)
        # f16 <-> integers go through f32, as on every target (exact for every f16 integer)
        if src == F16 and not dst.is_float:
            a, src = self.expr.convert("float", a), F32
        if dst == F16 and not src.is_float:
            return self.define(s.result, self.expr.convert("half", self.expr.convert("float", a)))
        if src == dst:
            expression = a
        elif dst.is_bool:
            expression = self.expr.nonzero(a, self.lit(0, src))
        elif src.is_float and dst.is_int:
            expression = self.expr.call(self.float_to_int_helper(src, dst), [a])
        else:
            expression = self.expr.convert(type_name(dst), a)
        return self.define(s.result, expression)

    def visit_Bitcast(self, s: Bitcast) -> Statement:
        dst = s.result.type
        assert isinstance(dst, ScalarType)
        return self.define(s.result, self.expr.bitcast(type_name(dst), self.ref(s.value)))

    def float_to_int_helper(self, src: ScalarType, dst: ScalarType) -> str:
        """Saturating conversion, NaN -> 0 (the cpu backend's semantics)."""
        f, t = type_name(src), type_name(dst)
        name = f"rk_cast_{f}_to_{t}"
        low, high = dst.min_value, dst.max_value
        upper = self.lit(float(high + 1), src)
        if dst.is_signed:
            return self.parent.helper(
                name, "float_to_signed", f, t, self.lit(float(low), src), upper,
                self.lit(low, dst), self.lit(high, dst),
            )
        return self.parent.helper(name, "float_to_unsigned", f, t, upper, self.lit(high, dst))

    def visit_MathCall(self, s: MathCall) -> Statement:
        ty = s.result.type
        assert isinstance(ty, ScalarType)
        func = s.func
        special = self.special_math(s)
        if special is not None:
            return self.define(s.result, special)
        if func == "abs" and ty.is_float:
            func = "fabs"
        namespace = _MATH_NAMESPACE[self.parent.math] if func in _TRANSCENDENTAL else "metal::"
        args = [self.ref(a) for a in s.args]
        return self.define(s.result, self.expr.call(namespace + func, args))

    def special_math(self, s: MathCall) -> str | None:
        """The expression of a math function that is no plain Metal library call, else None."""
        args = [self.ref(a) for a in s.args]
        if s.func in _MATH_HELPERS:
            if s.func == "erf":
                self.parent.helper("rk_erfc_float", "math_erfc")
            return self.expr.call(self.parent.helper(f"rk_{s.func}_float", f"math_{s.func}"), args)
        if s.func in MATH_PREDICATES:
            return self.expr.float_class(s.func, args[0])
        if s.func == "ffs":
            ty = as_scalar(s.result.type)
            return self.expr.ffs(args[0], literal(0, ty, self.expr), literal(1, ty, self.expr))
        if s.func in _BIT_FUNCS:
            return self.expr.call("metal::" + _BIT_FUNCS[s.func], args)
        return None

    def visit_Call(self, s: Call) -> Statement:
        callee = self.parent.function_names[s.callee]
        expression = self.expr.call(callee, [self.ref(a) for a in s.args])
        if s.result is None:
            return {"kind": "expression", "expr": expression}
        return self.define(s.result, expression)

    def visit_MakeTuple(self, s: MakeTuple) -> Statement:
        name = self.parent.value_type_name(s.result.type)
        return self.define(s.result, self.expr.aggregate(name, [self.ref(e) for e in s.elems]))

    def visit_Extract(self, s: Extract) -> Statement:
        return self.define(s.result, self.expr.member(self.ref(s.tuple), f"e{s.index}"))

    def visit_ThreadIndex(self, s: ThreadIndex) -> Statement:
        builtin = BUILTIN_NAMES[s.kind]
        return self.define(s.result, self.expr.thread_index(builtin, s.dim))

    def visit_SharedArray(self, s: SharedArray) -> None:
        ty = s.result.type
        assert isinstance(ty, ArrayType) and ty.space == AddressSpace.SHARED
        name = self.bind(s.result)
        self.shared_decls.append({"kind": "declare_shared", "type": self.element_type(s.result),
                                  "name": name, "size": str(ty.size)})

    def visit_LocalArray(self, s: LocalArray) -> None:
        ty = s.result.type
        assert isinstance(ty, ArrayType) and ty.space == AddressSpace.LOCAL
        self.shared_decls.append({"kind": "declare_local_array", "type": self.element_type(s.result),
                                  "name": self.bind(s.result), "size": str(ty.size)})

    def visit_ConstArray(self, s: ConstArray) -> None:
        ty = s.result.type
        assert isinstance(ty, ArrayType) and ty.space == AddressSpace.CONSTANT
        name = self.parent.constant_names[(self.fn.name, s.result.name)]
        self.values[s.result.name] = name
        values = [self.lit(v, ty.elem) for v in s.data]
        macros = template_macros("declarations.j2")
        self.parent.constants.append(_strip(macros.constant_array(type_name(ty.elem), name, ty.size, values)))

    def visit_Load(self, s: Load) -> Statement:
        array, index = self.ref(s.array), self.ref(s.index)
        if self.is_atomic(s.array):
            return self.define(s.result, self.expr.atomic_load(array, index))
        return self.define(s.result, self.expr.element(array, index))

    def visit_Store(self, s: Store) -> Statement:
        array, index, value = self.ref(s.array), self.ref(s.index), self.ref(s.value)
        if self.is_atomic(s.array):
            return {"kind": "atomic_store", "array": array, "index": index, "value": value}
        return {"kind": "assign", "target": self.expr.element(array, index), "expr": value}

    def visit_AtomicRMW(self, s: AtomicRMW) -> Statement:
        array_type = s.array.type
        assert isinstance(array_type, ArrayType)
        if array_type.elem.is_float and s.op in ("min", "max"):
            space = "threadgroup" if array_type.space == AddressSpace.SHARED else "device"
            name = self.bind(s.result)  # unique, never rk_-prefixed: rk_<name>_* are free
            return {"kind": "atomic_float_minmax", "op": s.op, "name": name, "tmp": f"rk_{name}",
                    "space": space, "array": self.ref(s.array), "index": self.ref(s.index),
                    "value": self.ref(s.value)}
        if s.op in ("inc", "dec"):
            name = self.bind(s.result)
            return {"kind": "atomic_wrap", "op": s.op, "type": type_name(s.result.type), "name": name,
                    "tmp": f"rk_{name}", "array": self.ref(s.array), "index": self.ref(s.index),
                    "value": self.ref(s.value)}
        expression = self.expr.atomic_rmw(
            s.op, self.ref(s.array), self.ref(s.index), self.ref(s.value)
        )
        return self.define(s.result, expression)

    def visit_AtomicCAS(self, s: AtomicCAS) -> Statement:
        array_type = s.array.type
        assert isinstance(array_type, ArrayType)
        if array_type.elem.is_float:  # Metal's atomic_float has no compare-exchange: swap the bits
            space = "threadgroup" if array_type.space == AddressSpace.SHARED else "device"
            name = self.bind(s.result)
            return {"kind": "atomic_float_cas", "name": name, "tmp": f"rk_{name}", "space": space,
                    "array": self.ref(s.array), "index": self.ref(s.index),
                    "expected": self.ref(s.expected), "desired": self.ref(s.desired)}
        return {"kind": "atomic_cas", "type": type_name(s.result.type), "name": self.bind(s.result),
                "array": self.ref(s.array), "index": self.ref(s.index),
                "expected": self.ref(s.expected), "desired": self.ref(s.desired)}

    def visit_LoadVar(self, s: LoadVar) -> Statement:
        return self.define(s.result, self.locals[s.var.name])

    # --- statements ---

    def visit_StoreVar(self, s: StoreVar) -> Statement:
        return {"kind": "assign", "target": self.locals[s.var.name], "expr": self.ref(s.value)}

    def visit_Subgroup(self, s: Subgroup) -> Statement:
        """Metal SIMD-group functions; the lane and group size are kernel attributes."""
        return self.define(s.result, self.expr.simd(s.op, [self.ref(a) for a in s.args]))

    def visit_SyncWarp(self, s: SyncWarp) -> Statement:
        return {"kind": "expression", "expr": self.expr.simd_barrier()}

    def visit_Barrier(self, s: Barrier) -> Statement:
        return {"kind": "barrier"}

    def visit_If(self, s: If) -> Statement:
        return {"kind": "if", "cond": self.ref(s.cond), "then": self.region(s.then_body),
                "else_": self.region(s.else_body)}

    def visit_Loop(self, s: Loop) -> Statement:
        return {"kind": "loop", "body": self.region(s.body)}

    def visit_ForRange(self, s: ForRange) -> Statement:
        counter = f"rk_i{self.loop_counter}"
        self.loop_counter += 1
        ty = s.var.type
        assert isinstance(ty, ScalarType)
        e = self.expr
        unsigned = ScalarType(f"u{ty.bits}")
        utype = type_name(unsigned)
        start, stop, step = (e.bitcast(utype, self.ref(v)) for v in (s.start, s.stop, s.step))
        below = e.infix("lt", self.ref(s.start), self.ref(s.stop))
        if ty.kind == "uint":
            distance, magnitude = e.infix("sub", stop, start), step
            enter = e.infix("land", e.infix("ne", step, self.lit(0, unsigned)), below)
        else:
            up = e.infix("gt", self.ref(s.step), self.lit(0, ty))
            down = e.infix("lt", self.ref(s.step), self.lit(0, ty))
            above = e.infix("gt", self.ref(s.start), self.ref(s.stop))
            distance = e.choose(up, e.infix("sub", stop, start), e.infix("sub", start, stop))
            magnitude = e.choose(up, step, e.prefix("neg", step))
            enter = e.infix("lor", e.infix("land", up, below), e.infix("land", down, above))
        return {"kind": "for_range", "type": type_name(ty), "utype": utype, "counter": counter,
                "remaining": f"{counter}_left", "stride": f"{counter}_stride", "go": f"{counter}_go",
                "var": self.locals[s.var.name], "start": start, "step": step, "distance": distance,
                "magnitude": magnitude, "enter": enter, "body": self.region(s.body)}

    def visit_Break(self, s: Break) -> Statement:
        return {"kind": "break"}

    def visit_Continue(self, s: Continue) -> Statement:
        return {"kind": "continue"}

    def visit_Return(self, s: Return) -> Statement:
        return {"kind": "return", "value": self.ref(s.value) if s.value is not None else ""}

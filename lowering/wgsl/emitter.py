"""RingIR -> WGSL: a visitor decides what each statement becomes; templates print it.

Every SSA value becomes a ``let t<n>`` (named by the emitter, never by the
user), every local a function-scope ``var v_<name>``.  Array values resolve
to module-scope variables through :mod:`plan`.  Expression syntax comes
from ``templates/expressions.j2`` macros, statement and module syntax from
``statements.j2``, ``helpers.j2`` and ``module.j2``.

Two options add run-time checks whose findings the shader reports in a small
status buffer at ``@group(1) @binding(0)`` (layout: :data:`STATUS_WORDS`):

- ``checked=True``: every array access is tested against the array's length
  (storage arrays: ``rk_lengths`` at ``@group(1) @binding(1)``, filled by the
  host; shared arrays: their constant size).  A bad access is skipped (a read
  yields 0) and the first one is recorded, so the host can raise
  ``BoundsError``.
- ``loop_guard=True``: every loop notes when it leaves through its own exit
  (the condition or a ``break``); a loop that ends any other way was stopped
  by the driver (Mesa's llvmpipe/lavapipe ends shader loops after 65,535
  iterations in total), and the shader flags it so the host can raise
  instead of returning a truncated result.

Without them the output is exactly the unchecked WGSL.

WGSL has no 8- or 16-bit integers, so they are emulated exactly: an i8/i16
value is a sign-extended i32 and a u8/u16 value a zero-extended u32 (a
conversion to one wraps, from a float saturates, as on the cpu backend), and
their storage and workgroup arrays are ``array<u32>`` with four (two)
elements per word, little endian as numpy lays them out.  A load extracts
its element's bits; a store clears them with ``atomicAnd`` and sets them
with ``atomicOr``, so threads storing neighbouring elements of one word never
lose each other's bytes (two threads storing the *same* element at once race,
as on any GPU, and may leave a mix of both values).  Local and embedded
arrays, which no other invocation sees, hold one i32/u32 per element.
"""

from __future__ import annotations

import math
from typing import Any

import jinja2
import numpy as np

from ringkernel.lowering.common import Macros, Namer, Statement, check_module, macros
from ringkernel.lowering.common import environment as template_environment
from ringkernel.lowering.common.capabilities import element, type_uses
from ringkernel.lowering.common.grid_sync import refuse_grid_sync
from ringkernel.lowering.wgsl.bindings import HOST_SHAREABLE, PACKED, Aliases, plan_kernel_bindings
from ringkernel.lowering.wgsl.plan import GlobalArray, Instance, ModulePlan, plan_module
from ringkernel.lowering.wgsl.target import (
    CAPABILITIES,
    F16_CAPABILITIES,
    F16_SCALARS,
    NAMES,
    SUPPORTED,
    kernel_entry_name,
)
from ringkernel.ringir import I32 as _I32
from ringkernel.ringir import (
    MATH_PREDICATES,
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
    walk,
)
from ringkernel.ringir import VOID as _VOID
from ringkernel.ringir.diagnostics import CompileError, SourceLoc
from ringkernel.ringir.types import F16, F32, I32, SCALAR_TYPES, U32, TupleType, as_scalar

Dim3 = tuple[int, int, int]

# Order in which helper functions are printed (deterministic output).
_HELPER_ORDER = tuple(
    f"rk_{op}_{ty}"
    for ty in ("i32", "u32", "f32")
    for op in ("div", "rem", "floordiv", "floormod")
) + ("rk_cast_f32_i32", "rk_cast_f32_u32", "rk_index_i32", "rk_index_u32",
     "rk_loop_cut", "rk_oob") + tuple(f"rk_{f}_f32" for f in ("hypot", "erfc", "erf", "lgamma", "log1p",
                                                                  "expm1", "cbrt"))
# Math functions WGSL lacks, computed by a helper of helpers.j2 (docs/backends-wgsl.md lists
# the formulas and their errors); a helper's value is the helpers it calls.
_MATH_HELPERS = {"hypot": (), "erfc": (), "erf": ("erfc",), "lgamma": (), "log1p": (), "expm1": (),
                 "cbrt": ()}

STATUS_WORDS = 8
"""Words of the status buffer: [0] flags (:data:`STATUS_LOOP_CUT`, :data:`STATUS_OUT_OF_BOUNDS`),
[1] claim of the first bad access, then its [2] array id, [3] index bits,
[4] length and [5] 1 if the index is signed."""
STATUS_LOOP_CUT = 1
STATUS_OUT_OF_BOUNDS = 2
SHARED_ARRAY_ID = 0x10000
"""Array ids below this are storage-buffer binding numbers; shared arrays count up from it."""


def environment() -> jinja2.Environment:
    """The jinja2 environment of the WGSL templates."""
    return template_environment("ringkernel.lowering.wgsl")


def normalize_block(block: Any) -> Dim3:
    """``block`` as a 3-tuple of positive ints, or a ``CompileError``."""
    dims = (block,) if isinstance(block, (int, np.integer)) else block
    ok = (
        isinstance(dims, (tuple, list))
        and 1 <= len(dims) <= 3
        and all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1
                for d in dims)
    )
    if not ok:
        raise CompileError(f"block must be an int or a tuple of 1 to 3 positive ints, got {block!r}")
    return tuple(int(d) for d in (*dims, 1, 1)[:3])  # type: ignore[return-value]


def wgsl_scalar(ty: Type, what: str, loc: SourceLoc | None) -> str:
    """The WGSL spelling of a scalar value type; 64-bit types are a ``CompileError``."""
    if not isinstance(ty, ScalarType) or ty.name not in F16_SCALARS:  # f16: checked by the table
        raise CompileError.at(
            loc,
            f"{what} has type {ty}, which WGSL does not support "
            f"({SUPPORTED})",
            notes=("cast to a 32-bit type, or compile for another target",),
        )
    return register_type(ty).name


def register_type(ty: ScalarType) -> ScalarType:
    """The WGSL type holding a value of ``ty``: i32/u32 for the emulated small integers."""
    if ty.name in PACKED:
        return I32 if ty.is_signed else U32
    return ty


def literal(value: bool | int | float, ty: ScalarType, expr: Macros) -> str:
    """A WGSL literal for ``value`` of RingIR type ``ty``."""
    if ty.is_bool:
        return "true" if value else "false"
    if ty.name in PACKED:
        return literal(value, register_type(ty), expr)
    if ty.name == "u32":
        return f"{int(value)}u"
    if ty.name == "i32":
        return expr.int_min() if value == ty.min_value else f"{int(value)}i"
    if ty.name == "f16":
        h = np.float16(value)
        if not math.isfinite(float(h)):
            return expr.convert("f16", literal(float(h), F32, expr))
        return f"{h}h"
    f = np.float32(value)
    if not math.isfinite(float(f)):
        return expr.float_bits(int(f.view(np.uint32)))
    text = str(f)
    return text + "f"


class Lowering:
    """Lowers a whole module (or selected kernels) for one workgroup size."""

    def __init__(
        self,
        module: Module,
        block: Dim3,
        kernels: tuple[Function, ...],
        *,
        aliases: Aliases = (),
        checked: bool = False,
        loop_guard: bool = False,
        f16: bool = False,
    ) -> None:
        self.f16 = f16
        self.module = module
        self.block = block
        self.kernels = kernels
        self.aliases = aliases
        self.checked = checked
        self.loop_guard = loop_guard
        self.env = environment()
        self.expr = macros("ringkernel.lowering.wgsl", "expressions.j2")
        self.namer = Namer(NAMES)
        self.helpers: set[str] = set()
        self.tuples: dict[TupleType, str] = {}  # a struct per tuple type funcs return

    def tuple_struct(self, ty: TupleType) -> str:
        """The WGSL struct that carries ``ty`` (fields ``e0``, ``e1``, ...), declared once."""
        name = self.tuples.get(ty)
        if name is None:
            name = self.tuples[ty] = self.namer.fresh("", "RkTuple_")
        return name

    def run(self) -> str:
        check_module(self.module, F16_CAPABILITIES if self.f16 else CAPABILITIES)
        refuse_grid_sync(self.module, "WGSL", "WebGPU")
        kernel_names = {}
        for k in self.kernels:
            kernel_names[k.name] = kernel_entry_name(k.name)
            self.namer.reserve(kernel_names[k.name])
        plan = plan_module(self.module, self.kernels, self.namer, kernel_names, self.aliases)
        uniforms = []
        kernels = []
        for inst in plan.kernels:
            uniform = self._uniform(inst)
            if uniform is not None:
                uniforms.append(uniform)
            emitter = _FunctionEmitter(self, plan, inst, uniform)
            kernels.append({"name": inst.wgsl_name, "body": emitter.run()})
        functions = []
        for inst in plan.funcs:
            emitter = _FunctionEmitter(self, plan, inst, None)
            body = emitter.run()
            functions.append({
                "name": inst.wgsl_name,
                "params": emitter.params,
                "return_type": emitter.return_type,
                "body": body,
            })
        tuples = [
            {"name": name, "fields": [{"name": f"e{i}", "type": wgsl_scalar(e, "value", None)}
                                      for i, e in enumerate(ty.elems)]}
            for ty, name in self.tuples.items()
        ]
        return self.env.get_template("module.j2").render(
            tuples=tuples,
            helpers=[h for h in _HELPER_ORDER if h in self.helpers],
            uniforms=uniforms,
            globals=[_global_view(g, self.expr) for g in plan.globals.values()],
            functions=functions,
            kernels=kernels,
            enable_f16=self.f16 and uses_f16(self.module),
            block=self.block,
            status=self.checked or self.loop_guard,
            subgroups=any(isinstance(s, (Subgroup, SyncWarp)) for fn in self.module.functions
                          for s in walk(fn.body)),
            lengths=self.checked,
        )

    def _uniform(self, inst: Instance) -> dict[str, Any] | None:
        bindings = plan_kernel_bindings(inst.fn, self.aliases)
        if bindings.uniform_binding is None:
            return None
        return {
            "struct": self.namer.fresh(inst.fn.name, "P_"),
            "name": self.namer.fresh(inst.fn.name, "u_"),
            "binding": bindings.uniform_binding,
            "fields": [],  # filled by the kernel's emitter, which names the params
        }


def _global_view(g: GlobalArray, expr: Macros) -> dict[str, Any]:
    ty = HOST_SHAREABLE[g.elem][0]
    size = g.size
    if g.packed:  # u32 words, each holding 32 / bits elements
        ty = "u32"
        per_word = 32 // PACKED[g.elem]
        size = None if size is None else (size + per_word - 1) // per_word
    if g.atomic:
        ty = f"atomic<{'u32' if g.elem == 'f32' else ty}>"
    # bool elements are u32 in memory, as in storage buffers
    memory = SCALAR_TYPES["u32" if g.elem == "bool" else g.elem]
    data = [literal(int(v) if g.elem == "bool" else v, memory, expr) for v in g.data]
    if g.as_bits:  # inf or NaN in the table: their bit patterns
        ty = "u32"
        dtype = np.float32 if g.elem == "f32" else np.float16
        data = [literal(int(np.array(v, dtype).view(f"u{dtype().itemsize}")), U32, expr) for v in g.data]
    return {"name": g.name, "space": g.space, "binding": g.binding, "size": size, "type": ty, "data": data}


class _FunctionEmitter(NodeVisitor):
    """Turns one function instance into statement dicts for ``statements.j2``."""

    def __init__(
        self, lowering: Lowering, plan: ModulePlan, inst: Instance, uniform: dict[str, Any] | None
    ) -> None:
        self.lowering = lowering
        self.x = lowering.expr
        self.plan = plan
        self.inst = inst
        self.fn = inst.fn
        self.uniform = uniform
        self.namer = Namer(NAMES)
        self.values: dict[str, str] = {}
        self.consts: dict[str, bool | int | float] = {}
        self.locals: dict[str, str] = {}
        self.counter = 0
        self.decls: list[Statement] = []
        self.blocks: list[list[Statement]] = [[]]
        self.loc: SourceLoc | None = self.fn.loc
        self.params: list[Statement] = []
        self.return_type: str | None = None
        # Per enclosing loop: its "left normally" flag (None without the loop guard).
        self.loop_exits: list[str | None] = []

    # --- helpers ---

    def temp(self) -> str:
        name = f"t{self.counter}"
        self.counter += 1
        return name

    def out(self, **stmt: Any) -> None:
        self.blocks[-1].append(stmt)

    def let(self, result: Value, expr: str) -> None:
        name = self.temp()
        self.values[result.name] = name
        self.out(kind="let", name=name, type=self.value_type(result.type), expr=expr)

    def scalar(self, ty: Type) -> str:
        return wgsl_scalar(ty, "value", self.loc)

    def value_type(self, ty: Type) -> str:
        """A value's WGSL type: its scalar, or the struct of a ``tuple<...>``."""
        if isinstance(ty, TupleType):
            return self.lowering.tuple_struct(ty)
        return self.scalar(ty)

    def val(self, v: Value) -> str:
        return self.values[v.name]

    def array(self, v: Value) -> GlobalArray:
        return self.plan.globals[self.inst.arrays[v.name]]

    def index(self, g: GlobalArray, index: Value) -> str:
        """The index expression; a constant out of bounds goes through an opaque helper.

        naga rejects a shader that indexes with a constant it can prove out of
        bounds, but the access may sit on a path that never runs; hiding the
        constant keeps the run-time (bounds-checked) behaviour instead.
        """
        value = self.consts.get(index.name)
        if isinstance(value, int) and (value < 0 or (g.size is not None and value >= g.size)):
            return self.x.call(self.helper("index", as_scalar(index.type)), [self.val(index)])
        return self.val(index)

    def guarded(self, g: GlobalArray, index: Value, i: str, stmts: list[Statement]) -> None:
        """Emits ``stmts`` (an access of ``g`` at ``i``), bounds-checked when asked."""
        if not self.lowering.checked:
            self.blocks[-1].extend(stmts)
            return
        if g.space == "storage":
            length = self.x.index("rk_lengths", f"{g.binding}u")
            ident = g.binding
        else:
            length = f"{g.size}u"
            ident = SHARED_ARRAY_ID + block_arrays(self.plan).index(g.name)
        signed = as_scalar(index.type).is_signed
        bits = self.x.bitcast("u32", i) if signed else i
        report = self.x.call(
            self.helper_named("rk_oob"), [f"{ident}u", bits, length, "1u" if signed else "0u"]
        )
        self.out(
            kind="if", cond=self.x.compare("lt", bits, length), then=stmts,
            else_=[{"kind": "call", "expr": report}],
        )

    def guarded_value(self, result: Value, g: GlobalArray, index: Value, i: str,
                      expr: str) -> None:
        """``result = expr`` (an access of ``g`` at ``i``); 0 when the check fails."""
        if not self.lowering.checked:
            self.let(result, expr)
            return
        name = self.temp()
        self.values[result.name] = name
        self.out(kind="var", name=name, type=self.scalar(result.type))
        self.guarded(g, index, i, [{"kind": "assign", "target": name, "expr": expr}])

    def helper_named(self, name: str) -> str:
        self.lowering.helpers.add(name)
        return name

    def loop(self, body: list[Statement], continuing: list[Statement], flag: str | None) -> None:
        """A ``loop``; with the loop guard, one that reports leaving it without its exit."""
        self.out(kind="loop", body=body, continuing=continuing)
        if flag is not None:
            report = {"kind": "call", "expr": self.x.call(self.helper_named("rk_loop_cut"), [])}
            self.out(kind="if", cond=self.x.negation(flag), then=[report], else_=[])

    def enter_loop(self) -> str | None:
        """The new loop's exit flag (set false here), or None without the loop guard."""
        if not self.lowering.loop_guard:
            return None
        flag = self.temp()
        self.decls.append({"kind": "var", "name": flag, "type": "bool"})
        self.out(kind="assign", target=flag, expr="false")
        return flag

    def leave(self) -> list[Statement]:
        """A ``break`` out of the innermost loop, noting that the loop ended by itself."""
        if self.loop_exits and self.loop_exits[-1] is not None:
            return [{"kind": "assign", "target": self.loop_exits[-1], "expr": "true"},
                    {"kind": "break"}]
        return [{"kind": "break"}]

    def region(self, body: tuple[Stmt, ...]) -> list[Statement]:
        self.blocks.append([])
        self.visit_block(body)
        return self.blocks.pop()

    def helper(self, op: str, ty: ScalarType) -> str:
        name = f"rk_{op}_{ty.name}"
        self.lowering.helpers.add(name)
        return name

    def zero(self, ty: ScalarType) -> str:
        return literal(False if ty.is_bool else 0.0 if ty.is_float else 0, ty, self.x)

    def visit(self, node: Stmt) -> None:
        self.loc = getattr(node, "loc", None) or self.loc
        super().visit(node)

    def generic_visit(self, node: object) -> None:
        raise CompileError.at(
            self.loc, f"the wgsl target cannot lower {type(node).__name__} statements"
        )

    # --- function ---

    def run(self) -> list[Statement]:
        fn = self.fn
        prologue: list[Statement] = []
        for p in fn.params:
            if isinstance(p.type, ArrayType):
                continue
            name = self.namer.fresh(p.name, "v_")
            self.values[p.name] = name
            ty = self.scalar(p.type)
            if fn.is_kernel:
                assert self.uniform is not None
                stored = HOST_SHAREABLE[ty][0]
                self.uniform["fields"].append({"name": name, "type": stored})
                expr = self.x.field(self.uniform["name"], name)
                if ty == "bool":
                    expr = self.x.u32_to_bool(expr)
                prologue.append({"kind": "let", "name": name, "type": ty, "expr": expr})
            else:
                self.params.append({"name": name, "type": ty})
        if fn.return_type != _VOID:
            self.return_type = self.value_type(fn.return_type)
        for var in fn.locals:
            name = self.namer.fresh(var.name, "v_")
            self.locals[var.name] = name
            self.decls.append({"kind": "var", "name": name, "type": self.scalar(var.type)})
        self.visit_block(fn.body)
        body = self.blocks.pop()
        if self.return_type is not None and not (body and body[-1]["kind"] == "return"):
            # naga wants a final return even after a loop that always returns.
            zero = (self.x.call(self.return_type, []) if isinstance(fn.return_type, TupleType)
                    else self.zero(as_scalar(fn.return_type)))
            body.append({"kind": "return", "value": zero})
        return prologue + self.decls + body

    # --- instructions ---

    def visit_Const(self, s: Const) -> None:
        self.consts[s.result.name] = s.value
        self.let(s.result, literal(s.value, as_scalar(s.result.type), self.x))

    def visit_Unary(self, s: Unary) -> None:
        a = self.val(s.operand)
        if s.op == "neg" and as_scalar(s.operand.type).name == "u32":
            self.let(s.result, self.x.negate_unsigned(a))
        else:
            self.let(s.result, self.x.unary(s.op, a))

    def visit_Binary(self, s: Binary) -> None:
        ty = as_scalar(s.lhs.type)
        a, b = self.val(s.lhs), self.val(s.rhs)
        op = s.op
        if ty.is_bool:
            expr = self.x.bool_binary(op, a, b)
        elif op in ("shl", "shr"):
            expr = self.x.shift(op, a, b)
        elif op in ("min", "max"):
            expr = self.x.math(op, [a, b])
        elif op in ("floordiv", "floormod") or (op in ("div", "rem") and ty.is_int):
            expr = self.x.call(self.helper(op, ty), [a, b])
        else:
            expr = self.x.binary(op, a, b)
        self.let(s.result, expr)

    def visit_Compare(self, s: Compare) -> None:
        self.let(s.result, self.x.compare(s.op, self.val(s.lhs), self.val(s.rhs)))

    def visit_Cast(self, s: Cast) -> None:
        a = self.val(s.value)
        src, dst = as_scalar(s.value.type), as_scalar(s.result.type)
        # f16 <-> integers go through f32, as on every target (exact for every f16 integer)
        if src == F16 and not dst.is_float:
            a, src = self.x.convert("f32", a), F32
        if dst == F16 and not src.is_float:
            a, src = self.x.convert("f32", a), F32
        if src == dst:
            self.let(s.result, a)
        elif src.is_float and dst.is_int:
            # WGSL clamps in the float domain and leaves NaN open; match the cpu backend.
            wide = register_type(dst)
            self.lowering.helpers.add(f"rk_cast_f32_{wide.name}")
            expr = self.x.call(f"rk_cast_f32_{wide.name}", [a])
            if wide != dst:  # saturates to the small type's range, as fptosi.sat does
                lo, hi = (literal(v, dst, self.x) for v in (dst.min_value, dst.max_value))
                expr = self.x.clamp_int(expr, lo, hi)
            self.let(s.result, expr)
        elif dst.name in PACKED:
            self.let(s.result, self.wrap(a, dst))
        else:
            self.let(s.result, self.x.convert(self.scalar(s.result.type), a))

    def visit_Bitcast(self, s: Bitcast) -> None:
        src, dst = as_scalar(s.value.type), as_scalar(s.result.type)
        a = self.val(s.value)
        if dst.name in PACKED:  # i8 <-> u8, i16 <-> u16, f16 -> i16/u16: the low bits, rewrapped
            self.let(s.result, self.wrap(self.x.half_bits(a) if src == F16 else a, dst))
        elif src.name in PACKED:  # i16/u16 -> f16
            self.let(s.result, self.x.bits_half(a))
        else:
            self.let(s.result, self.x.bitcast(self.scalar(dst), a))

    def visit_MathCall(self, s: MathCall) -> None:
        args = [self.val(a) for a in s.args]
        if s.func in _MATH_HELPERS:
            for needed in _MATH_HELPERS[s.func]:
                self.helper_named(f"rk_{needed}_f32")
            expr = self.x.call(self.helper_named(f"rk_{s.func}_f32"), args)
        elif s.func in MATH_PREDICATES:
            expr = self.x.float_class(s.func, args[0])
        elif s.func == "copysign":
            expr = self.x.copysign(*args)
        elif s.func == "ffs":
            ty = as_scalar(s.result.type)
            expr = self.x.ffs(args[0], self.zero(ty), literal(1, ty, self.x))
        else:
            expr = self.x.math(s.func, args)
        self.let(s.result, expr)

    def visit_Subgroup(self, s: Subgroup) -> None:
        """Subgroup builtins (``enable subgroups;``, added by :meth:`Lowering.run`)."""
        self.let(s.result, self.x.subgroup(s.op, [self.val(a) for a in s.args]))

    def visit_SyncWarp(self, s: SyncWarp) -> None:
        self.out(kind="call", expr=self.x.subgroup_barrier())

    def visit_Call(self, s: Call) -> None:
        args = [self.val(a) for a in s.args if not isinstance(a.type, ArrayType)]
        expr = self.x.call(self.inst.calls[id(s)], args)
        if s.result is None:
            self.out(kind="call", expr=expr)
        else:
            self.let(s.result, expr)

    def visit_MakeTuple(self, s: MakeTuple) -> None:
        self.let(s.result, self.x.call(self.value_type(s.result.type), [self.val(e) for e in s.elems]))

    def visit_Extract(self, s: Extract) -> None:
        self.let(s.result, self.x.field(self.val(s.tuple), f"e{s.index}"))

    def visit_ThreadIndex(self, s: ThreadIndex) -> None:
        size = literal(self.lowering.block[s.dim], _I32, self.x)
        if s.kind == "block_dim":
            self.let(s.result, size)
        elif s.kind == "global_id":
            self.let(s.result, self.x.global_id(s.dim, size))
        else:
            self.let(s.result, self.x.thread_index(s.kind, s.dim))

    def visit_SharedArray(self, s: SharedArray) -> None:
        """Hoisted to a module-scope ``var<workgroup>`` by the analysis."""

    def visit_LocalArray(self, s: LocalArray) -> None:
        """Hoisted to a module-scope ``var<private>`` (per invocation) by the analysis."""

    def visit_ConstArray(self, s: ConstArray) -> None:
        """Hoisted to a module-scope ``const`` array by the analysis."""

    def visit_Load(self, s: Load) -> None:
        g = self.array(s.array)
        i = self.index(g, s.index)
        if g.packed:
            self.guarded_value(s.result, g, s.index, i, self.packed_load(g, i))
            return
        if g.atomic:
            expr = self.x.atomic_load(g.name, i)
            if g.elem == "f32":
                expr = self.x.bitcast("f32", expr)
        else:
            expr = self.x.index(g.name, i)
            if g.elem == "bool":
                expr = self.x.u32_to_bool(expr)
            elif g.as_bits:
                expr = self.x.bitcast("f32", expr) if g.elem == "f32" else self.x.bits_half(expr)
        self.guarded_value(s.result, g, s.index, i, expr)

    def visit_Store(self, s: Store) -> None:
        g = self.array(s.array)
        i, v = self.index(g, s.index), self.val(s.value)
        if g.packed:
            self.guarded(g, s.index, i, self.packed_store(g, i, v))
            return
        if g.elem == "bool":
            v = self.x.bool_to_u32(v)
        if g.atomic:
            if g.elem == "f32":
                v = self.x.bitcast("u32", v)
            stmt = {"kind": "call", "expr": self.x.atomic_store(g.name, i, v)}
        else:
            stmt = {"kind": "assign", "target": self.x.index(g.name, i), "expr": v}
        self.guarded(g, s.index, i, [stmt])

    def packed_parts(self, g: GlobalArray, i: str) -> tuple[str, str, int]:
        """The word index, bit shift and mask of element ``i`` of a packed array."""
        bits = PACKED[g.elem]
        per_word = 32 // bits
        word = self.x.packed_word(i, per_word.bit_length() - 1)
        return word, self.x.packed_shift(i, per_word, bits), (1 << bits) - 1

    def packed_load(self, g: GlobalArray, i: str) -> str:
        """Element ``i`` of a packed array, as its register type (sign-extended when signed)."""
        word, shift, mask = self.packed_parts(g, i)
        raw = self.x.atomic_load(g.name, word) if g.atomic else self.x.index(g.name, word)
        value = self.x.packed_extract(raw, shift, mask)
        return self.wrap(value, SCALAR_TYPES[g.elem]) if g.elem.startswith("i") else value

    def packed_store(self, g: GlobalArray, i: str, v: str) -> list[Statement]:
        """Stores into element ``i`` of a packed array: its bits of the word, atomically."""
        word, shift, mask = self.packed_parts(g, i)
        clear = self.x.atomic_rmw("and", g.name, word, self.x.packed_clear(shift, mask))
        put = self.x.atomic_rmw("or", g.name, word, self.x.packed_bits(v, shift, mask))
        return [{"kind": "call", "expr": clear}, {"kind": "call", "expr": put}]

    def wrap(self, a: str, ty: ScalarType) -> str:
        """An integer register value converted to the emulated ``ty`` (two's complement wrap)."""
        mask = (1 << ty.bits) - 1
        if ty.is_signed:
            return self.x.wrap_signed(a, mask, 1 << (ty.bits - 1))
        return self.x.wrap_unsigned(a, mask)

    def visit_AtomicRMW(self, s: AtomicRMW) -> None:
        g = self.array(s.array)
        i, v = self.index(g, s.index), self.val(s.value)
        if s.op in ("inc", "dec"):
            name = self.temp()
            self.values[s.result.name] = name
            stmt = dict(
                kind="atomic_wrap", op=s.op, name=name, type=g.elem, old=f"{name}_old",
                bits=f"{name}_limit", next=f"{name}_next", swap=f"{name}_swap",
                ptr=self.x.pointer(g.name, i), value=v,
            )
            self.declare_guarded(stmt, g.elem, g, s.index, i)
        elif g.elem != "f32":
            self.guarded_value(s.result, g, s.index, i, self.x.atomic_rmw(s.op, g.name, i, v))
        elif s.op == "exchange":
            bits = self.x.atomic_rmw("exchange", g.name, i, self.x.bitcast("u32", v))
            self.guarded_value(s.result, g, s.index, i, self.x.bitcast("f32", bits))
        else:
            # f32 has no WGSL atomics: a compare-exchange loop on the u32 bits.
            name = self.temp()
            self.values[s.result.name] = name
            stmt = dict(
                kind="atomic_float_minmax" if s.op in ("min", "max") else "atomic_float",
                op=s.op, name=name, old=f"{name}_old", bits=f"{name}_bits",
                swap=f"{name}_swap", ptr=self.x.pointer(g.name, i), value=v,
            )
            self.declare_guarded(stmt, "f32", g, s.index, i)

    def visit_AtomicCAS(self, s: AtomicCAS) -> None:
        g = self.array(s.array)
        name = self.temp()
        i = self.index(g, s.index)
        ty = self.scalar(s.result.type)
        expected, desired = self.val(s.expected), self.val(s.desired)
        if ty == "f32":  # the array is atomic<u32> (WGSL has no f32 atomics): swap the bits
            ty, expected, desired = "u32", self.x.bitcast("u32", expected), self.x.bitcast("u32", desired)
            self.values[s.result.name] = self.x.bitcast("f32", name)
        else:
            self.values[s.result.name] = name
        stmt = dict(
            kind="atomic_cas", name=name, type=ty, swap=f"{name}_swap",
            ptr=self.x.pointer(g.name, i), expected=expected, desired=desired,
        )
        self.declare_guarded(stmt, ty, g, s.index, i)

    def declare_guarded(self, stmt: Statement, ty: str, g: GlobalArray, index: Value, i: str) -> None:
        """A statement that declares its own result ``var``; checked, the var moves out."""
        if not self.lowering.checked:
            self.blocks[-1].append(stmt)
            return
        self.out(kind="var", name=stmt["name"], type=ty)
        self.guarded(g, index, i, [{**stmt, "declared": True}])

    def visit_LoadVar(self, s: LoadVar) -> None:
        self.let(s.result, self.locals[s.var.name])

    # --- statements ---

    def visit_StoreVar(self, s: StoreVar) -> None:
        self.out(kind="assign", target=self.locals[s.var.name], expr=self.val(s.value))

    def visit_Barrier(self, s: Barrier) -> None:
        self.out(kind="barrier")

    def visit_If(self, s: If) -> None:
        cond = self.val(s.cond)
        then = self.region(s.then_body)
        else_ = self.region(s.else_body)
        self.out(kind="if", cond=cond, then=then, else_=else_)

    def visit_Loop(self, s: Loop) -> None:
        flag = self.enter_loop()
        self.loop_exits.append(flag)
        body = self.region(s.body)
        self.loop_exits.pop()
        self.loop(body, [], flag)

    def visit_ForRange(self, s: ForRange) -> None:
        """Python's ``range`` counting the unsigned distance left to ``stop`` down (as the
        LLVM lowering does): ``counter + step`` may overflow, the distance cannot."""
        ty = s.var.type
        assert isinstance(ty, ScalarType)
        x = self.x
        start, stop, step = self.val(s.start), self.val(s.stop), self.val(s.step)
        sign = self._static_sign(s.step)
        if sign == 0:
            return  # range(..., 0) runs no iteration

        def bits(v: str) -> str:
            return x.bitcast("u32", v) if ty.is_signed else v

        rising = (x.binary("sub", bits(stop), bits(start)), bits(step), x.compare("lt", start, stop))
        falling = (
            x.binary("sub", bits(start), bits(stop)),
            x.negate_unsigned(bits(step)),
            x.compare("gt", start, stop),
        )
        if sign == 1 or not ty.is_signed:
            distance, magnitude, enter = rising
            if sign is None:
                enter = x.all_of([x.compare("ne", step, self.zero(ty)), enter])
        elif sign == -1:
            distance, magnitude, enter = falling
        else:
            up = x.compare("gt", step, self.zero(ty))
            distance, magnitude, enter = (x.choose(up, a, b) for a, b in zip(rising, falling))
        counter, remaining, stride, go = (self.temp() for _ in range(4))
        for name, wgsl_type, value in (
            (counter, self.scalar(ty), start),
            (remaining, "u32", distance),
            (stride, "u32", magnitude),
            (go, "bool", enter),
        ):
            self.decls.append({"kind": "var", "name": name, "type": wgsl_type})
            self.out(kind="assign", target=name, expr=value)
        flag = self.enter_loop()
        self.loop_exits.append(flag)
        body: list[Statement] = [
            {"kind": "if", "cond": x.negation(go), "then": self.leave(), "else_": []},
            {"kind": "assign", "target": self.locals[s.var.name], "expr": counter},
            *self.region(s.body),
        ]
        self.loop_exits.pop()
        continuing: list[Statement] = [
            {"kind": "assign", "target": go, "expr": x.compare("gt", remaining, stride)},
            {"kind": "assign", "target": remaining, "expr": x.binary("sub", remaining, stride)},
            {"kind": "assign", "target": counter, "expr": x.binary("add", counter, step)},
        ]
        self.loop(body, continuing, flag)

    def _static_sign(self, step: Value) -> int | None:
        value = self.consts.get(step.name)
        if value is None:
            return None
        return (value > 0) - (value < 0)

    def visit_Break(self, s: Break) -> None:
        self.blocks[-1].extend(self.leave())

    def visit_Continue(self, s: Continue) -> None:
        self.out(kind="continue")

    def visit_Return(self, s: Return) -> None:
        self.out(kind="return", value=self.val(s.value) if s.value is not None else "")


def block_arrays(plan: ModulePlan) -> list[str]:
    """The fixed-size arrays (shared, local, constant) that checked WGSL numbers, in order."""
    return [n for n, a in plan.globals.items() if a.space != "storage"]


def shared_array_labels(module: Module, kernel: str) -> tuple[str, ...]:
    """The descriptions of ``kernel``'s fixed-size arrays, in the order checked WGSL numbers them.

    Shared arrays are described by their type and place; local and constant
    arrays say which they are.
    """
    fn = module.get(kernel)
    plan = plan_module(module, (fn,), Namer(NAMES), {kernel: kernel_entry_name(kernel)})
    return tuple(plan.globals[n].label for n in block_arrays(plan))


def lower_module_to_wgsl(
    module: Module,
    *,
    block: Any = (64, 1, 1),
    kernels: Any = None,
    aliases: Aliases = (),
    checked: bool = False,
    loop_guard: bool = False,
    f16: bool = False,
    **options: Any,
) -> str:
    """WGSL text for ``module``: every kernel an ``@compute`` entry point of ``block`` size.

    ``kernels`` (a name or a sequence of names) restricts the output to those
    kernels and the funcs they call.  ``aliases`` (``(kernel, param,
    earlier_param)`` triples) makes array parameters share one buffer;
    ``checked`` and ``loop_guard`` add the run-time checks described in this
    module's docstring.  ``f16`` allows f16 (``enable f16;``, for an adapter
    with the ``shader-f16`` feature); without it f16 is a ``CompileError``.
    Other options are accepted and ignored, so one option set can serve
    every target.
    """
    dims = normalize_block(block)
    if kernels is None:
        selected = module.kernels
    else:
        names = (kernels,) if isinstance(kernels, str) else tuple(kernels)
        by_name = {k.name: k for k in module.kernels}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise CompileError(f"no kernel named '{missing[0]}' in this module")
        selected = tuple(by_name[n] for n in names)
    return Lowering(
        module, dims, selected, aliases=tuple(aliases), checked=bool(checked),
        loop_guard=bool(loop_guard), f16=bool(f16),
    ).run()


def uses_f16(module: Module) -> bool:
    """Whether any value, local, parameter or array of ``module`` has type f16."""
    return any(element(use.ty) == F16 for use in type_uses(module, structs=False))

"""Hypothesis strategies that generate random *valid* RingIR modules.

``modules()`` draws structs, funcs and kernels with scalar and array
parameters, locals, nested if/loop/for-range with break and continue, every
instruction kind and calls between functions (a function only calls ones
defined before it, so there is no recursion).  Every module it yields passes
``verify``; the fuzz work reuses it.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ringkernel.ringir import (
    ATOMIC_OPS,
    BINARY_OPS,
    BOOL,
    COMPARE_OPS,
    F32,
    F64,
    FLOAT_ATOMIC_OPS,
    I32,
    I64,
    SCALAR_TYPES,
    THREAD_INDEX_KINDS,
    U32,
    U64,
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
    Continue,
    ForRange,
    Function,
    If,
    Load,
    LoadVar,
    LocalVar,
    Loop,
    MathCall,
    Module,
    Return,
    ScalarType,
    SharedArray,
    Store,
    StoreVar,
    StructType,
    ThreadIndex,
    Unary,
    Value,
)

SCALARS = tuple(SCALAR_TYPES.values())
NUMERIC = (F32, F64, I32, U32, I64, U64)
INTS = (I32, U32, I64, U64)
FLOATS = (F32, F64)
_INT_BOUNDS = {"i32": 31, "u32": 32, "i64": 63, "u64": 64}
_NAME_STEMS = ("", "x", "tmp.", "a_b", "v.1.")

UNARY_FOR = {"neg": lambda t: not t.is_bool, "not": lambda t: t.is_bool, "bitnot": lambda t: t.is_int}
MATH_FLOAT = ("sqrt", "rsqrt", "exp", "log", "sin", "cos", "tan", "tanh", "floor", "ceil", "fabs")


def literals(ty: ScalarType) -> st.SearchStrategy:
    """Constants of ``ty``, including the float edge cases the text form must keep."""
    if ty.is_bool:
        return st.booleans()
    if ty.is_int:
        bits = _INT_BOUNDS[ty.name]
        lo, hi = (-(2**bits), 2**bits - 1) if ty.kind == "int" else (0, 2**bits - 1)
        return st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0, 1]))
    return st.one_of(
        st.floats(width=32 if ty.bits == 32 else 64),
        st.sampled_from([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 5e-324, 1e16]),
    )


class _Gen:
    """Draws one function's statements, tracking which values are in scope."""

    def __init__(self, draw, fn_kind: str, callees: list[Function], max_depth: int) -> None:
        self.draw = draw
        self.kernel = fn_kind == "kernel"
        self.callees = callees
        self.max_depth = max_depth
        self.scopes: list[list[Value]] = [[]]
        self.counter = 0
        self.locals: list[LocalVar] = []

    # --- values ---

    def fresh(self, ty) -> Value:
        stem = self.draw(st.sampled_from(_NAME_STEMS))
        self.counter += 1
        return Value(f"{stem}{self.counter}", ty)

    def visible(self, pred) -> list[Value]:
        return [v for scope in self.scopes for v in scope if pred(v.type)]

    def define(self, out: list, stmt) -> Value:
        out.append(stmt)
        self.scopes[-1].append(stmt.result)
        return stmt.result

    def value(self, out: list, ty: ScalarType) -> Value:
        """A visible value of type ``ty``, or a new constant."""
        candidates = self.visible(lambda t: t == ty)
        if candidates and self.draw(st.booleans()):
            return self.draw(st.sampled_from(candidates))
        return self.define(out, Const(self.fresh(ty), self.draw(literals(ty))))

    def array(self, pred=lambda t: True) -> Value | None:
        arrays = self.visible(lambda t: isinstance(t, ArrayType) and pred(t))
        return self.draw(st.sampled_from(arrays)) if arrays else None

    def local(self, ty: ScalarType | None = None) -> LocalVar:
        fitting = [v for v in self.locals if ty is None or v.type == ty]
        if fitting and self.draw(st.booleans()):
            return self.draw(st.sampled_from(fitting))
        var = LocalVar(f"l{len(self.locals)}", ty or self.draw(st.sampled_from(SCALARS)))
        self.locals.append(var)
        return var

    # --- statements ---

    def block(self, depth: int, in_loop: bool, return_type) -> tuple:
        out: list = []
        self.scopes.append([])
        for _ in range(self.draw(st.integers(0, 5))):
            self.stmt(out, depth, in_loop, return_type)
        self.scopes.pop()
        return tuple(out)

    def stmt(self, out: list, depth: int, in_loop: bool, return_type) -> None:
        kinds = ["const", "unary", "binary", "compare", "cast", "bitcast", "math", "load_var",
                 "store_var", "array"]
        if self.callees:
            kinds.append("call")
        if self.kernel:
            kinds += ["thread", "shared", "barrier"]
        if depth < self.max_depth:
            kinds += ["if", "loop", "for"]
        if in_loop:
            kinds += ["break", "continue"]
        kinds.append("return")
        getattr(self, "s_" + self.draw(st.sampled_from(kinds)))(out, depth, in_loop, return_type)

    def s_const(self, out, *_):
        ty = self.draw(st.sampled_from(SCALARS))
        self.define(out, Const(self.fresh(ty), self.draw(literals(ty))))

    def s_unary(self, out, *_):
        op = self.draw(st.sampled_from(sorted(UNARY_FOR)))
        ty = self.draw(st.sampled_from([t for t in SCALARS if UNARY_FOR[op](t)]))
        self.define(out, Unary(self.fresh(ty), op, self.value(out, ty)))

    def s_binary(self, out, *_):
        op = self.draw(st.sampled_from(BINARY_OPS))
        if op in ("and", "or", "xor"):
            types = (*INTS, BOOL)
        elif op in ("shl", "shr"):
            types = INTS
        else:
            types = NUMERIC
        ty = self.draw(st.sampled_from(types))
        self.define(out, Binary(self.fresh(ty), op, self.value(out, ty), self.value(out, ty)))

    def s_compare(self, out, *_):
        op = self.draw(st.sampled_from(COMPARE_OPS))
        ty = self.draw(st.sampled_from(SCALARS if op in ("eq", "ne") else NUMERIC))
        self.define(out, Compare(self.fresh(BOOL), op, self.value(out, ty), self.value(out, ty)))

    def s_cast(self, out, *_):
        src, dst = self.draw(st.sampled_from(SCALARS)), self.draw(st.sampled_from(SCALARS))
        self.define(out, Cast(self.fresh(dst), self.value(out, src)))

    def s_bitcast(self, out, *_):
        src = self.draw(st.sampled_from(NUMERIC))
        same_width = [t for t in NUMERIC if t.bits == src.bits]
        self.define(out, Bitcast(self.fresh(self.draw(st.sampled_from(same_width))), self.value(out, src)))

    def s_math(self, out, *_):
        func = self.draw(st.sampled_from([*MATH_FLOAT, "abs", "pow", "fma"]))
        ty = self.draw(st.sampled_from(NUMERIC if func == "abs" else FLOATS))
        n = {"pow": 2, "fma": 3}.get(func, 1)
        args = tuple(self.value(out, ty) for _ in range(n))
        self.define(out, MathCall(self.fresh(ty), func, args))

    def s_load_var(self, out, *_):
        var = self.local()
        self.define(out, LoadVar(self.fresh(var.type), var))

    def s_store_var(self, out, *_):
        var = self.local()
        out.append(StoreVar(var, self.value(out, var.type)))

    def s_array(self, out, *_):
        arr = self.array()
        if arr is None:
            return self.s_const(out)
        elem = arr.type.elem
        index = self.value(out, self.draw(st.sampled_from(INTS)))
        ops = ["load", "store"]
        if not elem.is_bool:
            ops.append("atomic")
        if elem.is_int:
            ops.append("cas")
        what = self.draw(st.sampled_from(ops))
        if what == "load":
            self.define(out, Load(self.fresh(elem), arr, index))
        elif what == "store":
            out.append(Store(arr, index, self.value(out, elem)))
        elif what == "atomic":
            allowed = ATOMIC_OPS if elem.is_int else FLOAT_ATOMIC_OPS
            op = self.draw(st.sampled_from(allowed))
            self.define(out, AtomicRMW(self.fresh(elem), op, arr, index, self.value(out, elem)))
        else:
            self.define(out, AtomicCAS(
                self.fresh(elem), arr, index, self.value(out, elem), self.value(out, elem)
            ))

    def s_call(self, out, *_):
        callee = self.draw(st.sampled_from(self.callees))
        args = []
        for p in callee.params:
            if isinstance(p.type, ArrayType):
                arr = self.array(lambda t, p=p: t.elem == p.type.elem and t.space == p.type.space)
                if arr is None:
                    return self.s_const(out)
                args.append(arr)
            else:
                args.append(self.value(out, p.type))
        if callee.return_type == VOID:
            out.append(Call(None, callee.name, tuple(args)))
        else:
            self.define(out, Call(self.fresh(callee.return_type), callee.name, tuple(args)))

    def s_thread(self, out, *_):
        kind = self.draw(st.sampled_from(THREAD_INDEX_KINDS))
        self.define(out, ThreadIndex(self.fresh(I32), kind, self.draw(st.integers(0, 2))))

    def s_shared(self, out, *_):
        elem = self.draw(st.sampled_from(SCALARS))
        size = self.draw(st.integers(1, 256))
        self.define(out, SharedArray(self.fresh(ArrayType(elem, AddressSpace.SHARED, size))))

    def s_barrier(self, out, *_):
        out.append(Barrier())

    def s_if(self, out, depth, in_loop, return_type):
        cond = self.value(out, BOOL)
        then_body = self.block(depth + 1, in_loop, return_type)
        else_body = self.block(depth + 1, in_loop, return_type) if self.draw(st.booleans()) else ()
        out.append(If(cond, then_body, else_body))

    def s_loop(self, out, depth, in_loop, return_type):
        out.append(Loop(self.block(depth + 1, True, return_type)))

    def s_for(self, out, depth, in_loop, return_type):
        var = self.local(self.draw(st.sampled_from(INTS)))
        start, stop, step = (self.value(out, var.type) for _ in range(3))
        out.append(ForRange(var, start, stop, step, self.block(depth + 1, True, return_type)))

    def s_break(self, out, *_):
        out.append(Break())

    def s_continue(self, out, *_):
        out.append(Continue())

    def s_return(self, out, depth, in_loop, return_type):
        if return_type == VOID:
            out.append(Return())
        else:
            out.append(Return(self.value(out, return_type)))


def _param_types(draw, kernel: bool) -> list:
    types = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            types.append(draw(st.sampled_from(SCALARS)))
        else:
            elem = draw(st.sampled_from(SCALARS))
            space = AddressSpace.GLOBAL
            if not kernel and draw(st.booleans()):
                space = AddressSpace.SHARED
            types.append(ArrayType(elem, space))
    return types


@st.composite
def functions(draw, name: str, kind: str, callees: list[Function], max_depth: int = 3):
    """One valid function that may call ``callees``."""
    gen = _Gen(draw, kind, callees, max_depth)
    params = tuple(gen.fresh(ty) for ty in _param_types(draw, kind == "kernel"))
    gen.scopes[0].extend(params)
    return_type = VOID if kind == "kernel" else draw(st.sampled_from((VOID, *SCALARS)))
    body = gen.block(0, False, return_type)
    if return_type != VOID:
        tail: list = []
        value = gen.value(tail, return_type)
        body = (*body, *tail, Return(value))
    return Function(name, kind, params, return_type, tuple(gen.locals), body)


@st.composite
def structs(draw):
    fields = draw(st.lists(st.sampled_from(["a", "b", "value", "id", "count"]),
                           min_size=1, max_size=4, unique=True))
    return [(f, draw(st.sampled_from(SCALARS))) for f in fields]


@st.composite
def modules(draw, max_funcs: int = 3, max_kernels: int = 2, max_depth: int = 3):
    """A random valid module: structs, funcs (each calling only earlier ones), kernels."""
    struct_types = tuple(
        StructType(f"S{i}", tuple(draw(structs())))
        for i in range(draw(st.integers(0, 2)))
    )
    fns: list[Function] = []
    for i in range(draw(st.integers(0, max_funcs))):
        fns.append(draw(functions(f"f{i}.{i}" if i % 2 else f"f_{i}", "func", list(fns), max_depth)))
    kernels = [
        draw(functions(f"k{i}", "kernel", list(fns), max_depth))
        for i in range(draw(st.integers(0, max_kernels)))
    ]
    order = draw(st.permutations(fns + kernels))
    return Module(tuple(order), struct_types)

"""Random *valid* RingIR modules, the one generator behind fuzzing and property tests.

``generate(data, profile)`` turns bytes into a module that passes ``verify``:
every choice (statement kind, type, operand, constant, name) is drawn from
an ``atheris.FuzzedDataProvider`` over ``data``, so libFuzzer's coverage
feedback steers the *shape* of the program and no input is wasted on
modules the verifier would reject.  Values are tracked by scope, callees are
defined before their callers (no recursion), loops hold ``break``/``continue``,
and non-void functions end in a ``return``.

Every choice goes through a :class:`Draw`; the hypothesis strategy in
``tests/ringir/ir_strategies.py`` supplies one that draws from hypothesis, so
both explore the same statements, ops and types, and a new node is added
here only (``tests/fuzz/test_ir_generator_coverage.py`` checks that every
statement class comes out).

A :class:`Profile` limits the generator to what a target can express (WGSL
has no 64-bit types, only the cpu/PTX path has a device clock), so the
validator behind each target sees programs it must accept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ringkernel.ringir import (
    ATOMIC_OPS,
    BINARY_OPS,
    BOOL,
    COMPARE_OPS,
    F32,
    F64,
    FLOAT_ATOMIC_OPS,
    I8,
    I16,
    I32,
    I64,
    INT_MATH_FUNCS,
    MATH_FUNCS,
    MATH_PREDICATES,
    SMALL_TYPES,
    SUBGROUP_OPS,
    THREAD_INDEX_KINDS,
    U8,
    U16,
    U32,
    U64,
    VOID,
    AddressSpace,
    ArrayType,
    AtomicCAS,
    AtomicRMW,
    Backoff,
    Barrier,
    Binary,
    Bitcast,
    Break,
    Call,
    Cast,
    Clock,
    Compare,
    Const,
    ConstArray,
    Continue,
    Extract,
    Fence,
    ForRange,
    Function,
    GridSync,
    If,
    Load,
    LoadVar,
    LocalArray,
    LocalVar,
    Loop,
    MakeTuple,
    MathCall,
    Module,
    Return,
    ScalarType,
    SharedArray,
    Store,
    StoreVar,
    StructType,
    Subgroup,
    SyncWarp,
    ThreadIndex,
    TupleType,
    Unary,
    Value,
    Wake,
)

T = TypeVar("T")

UNARY_FOR: dict[str, Callable[[ScalarType], bool]] = {
    "neg": lambda t: not t.is_bool,
    "not": lambda t: t.is_bool,
    "bitnot": lambda t: t.is_int,
}
_FLOAT_EDGES = (0.0, -0.0, 1.0, -1.0, 0.5, float("inf"), float("-inf"), float("nan"),
                5e-324, 1e-45, 3.4028234663852886e38, 1e16, 1.7976931348623157e308)

# Names that collide with keywords, builtins or types of some target language, and
# non-ASCII ones: each emitter must mangle them into valid, distinct identifiers.
HOSTILE_NAMES = (
    "x", "tmp.", "a_b", "v.1.", "fn", "let", "var", "loop", "main", "kernel", "float", "int",
    "uint", "bool", "half", "device", "thread", "metal", "struct", "return", "select", "min",
    "max", "abs", "sqrt", "atomic", "ptr", "array", "f32", "i32", "u32", "_", "__x", "é", "变量",
    "ß.ü", "gl_Position", "threadgroup", "constant", "static", "this", "template", "NULL",
)


@dataclass(frozen=True)
class Profile:
    """What a target can express; the generator draws only from it."""

    scalars: tuple[ScalarType, ...] = (BOOL, F32, F64, I32, U32, I64, U64)
    storage: tuple[ScalarType, ...] = SMALL_TYPES  # small types: constants, casts, memory; no arithmetic
    clock: bool = True
    bitcast: bool = True
    fence: bool = True
    backoff: bool = True
    wake: bool = True
    subgroups: bool = True
    grid_sync: bool = True  # WGSL and MSL refuse it (no grid-wide barrier)
    max_funcs: int = 3
    min_kernels: int = 1
    max_kernels: int = 2
    max_depth: int = 3
    max_block: int = 5

    @property
    def ints(self) -> tuple[ScalarType, ...]:
        return tuple(t for t in self.scalars if t.is_int)

    @property
    def floats(self) -> tuple[ScalarType, ...]:
        return tuple(t for t in self.scalars if t.is_float)

    @property
    def numeric(self) -> tuple[ScalarType, ...]:
        return tuple(t for t in self.scalars if not t.is_bool)

    @property
    def held(self) -> tuple[ScalarType, ...]:
        """Every type a value, local, parameter or array element may have (small ones too)."""
        return (*self.scalars, *self.storage)


FULL = Profile()
# WGSL: 32-bit types (8/16-bit integers emulated; f16 only with shader-f16), no device clock.
WGSL = Profile(scalars=(BOOL, F32, I32, U32), storage=(I8, U8, I16, U16), clock=False, grid_sync=False)
# MSL: no f64 on Metal, no device clock.
MSL = Profile(scalars=(BOOL, F32, I32, U32, I64, U64), clock=False, grid_sync=False)


class Draw:
    """The fuzzer's choices: every decision of the generator is one call here."""

    def __init__(self, provider: Any) -> None:
        self.fdp = provider

    def int(self, lo: int, hi: int) -> int:
        return self.fdp.ConsumeIntInRange(lo, hi)

    def bool(self) -> bool:
        return self.fdp.ConsumeBool()

    def pick(self, options: Sequence[T]) -> T:
        return options[self.fdp.ConsumeIntInRange(0, len(options) - 1)]

    def float(self) -> float:
        return self.fdp.ConsumeRegularFloat()

    def literal(self, ty: ScalarType) -> bool | int | float:
        """A constant of ``ty``: edge cases often, arbitrary bits otherwise."""
        if ty.is_bool:
            return self.bool()
        if ty.is_int:
            lo, hi = ty.min_value, ty.max_value
            if self.bool():
                return self.pick((lo, hi, 0, 1, -1 if lo < 0 else 2, 31, 32, 63, 64))
            return self.int(lo, hi)
        if self.bool():
            value = self.pick(_FLOAT_EDGES)
        else:
            value = self.float() if self.bool() else float(self.int(-1000, 1000))
        if ty.bits == 32:
            value = _to_f32(value)
        if ty.bits == 16:
            value = _to_f16(value)
        return value


def _to_f16(value: float) -> float:
    """``value`` rounded to f16; too large for it, the largest f16 of its sign (constants must fit)."""
    import struct

    try:
        return struct.unpack("<e", struct.pack("<e", value))[0]
    except OverflowError:
        return 65504.0 if value > 0 else -65504.0


def _to_f32(value: float) -> float:
    import struct

    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


class _FunctionGen:
    """Draws one function's statements, tracking which values are in scope."""

    def __init__(self, draw: Draw, profile: Profile, kind: str, callees: list[Function]) -> None:
        self.d = draw
        self.p = profile
        self.kernel = kind == "kernel"
        self.callees = callees
        self.scopes: list[list[Value]] = [[]]
        self.counter = 0
        self.locals: list[LocalVar] = []
        self.sinking = False

    # --- values ---

    def fresh(self, ty: Any) -> Value:
        self.counter += 1
        stem = self.d.pick(HOSTILE_NAMES) if self.d.int(0, 3) == 0 else ""
        return Value(f"{stem}{self.counter}", ty)

    def visible(self, pred: Callable[[Any], bool]) -> list[Value]:
        return [v for scope in self.scopes for v in scope if pred(v.type)]

    def define(self, out: list, stmt: Any) -> Value:
        out.append(stmt)
        self.scopes[-1].append(stmt.result)
        self.sink(out, stmt.result)
        return stmt.result

    def sink(self, out: list, value: Value) -> None:
        """Often stores ``value`` (cast if needed) to a global array, so DCE keeps it."""
        ty = value.type
        if self.sinking or not isinstance(ty, ScalarType):
            return
        arrays = self.visible(lambda t: isinstance(t, ArrayType) and t.space == AddressSpace.GLOBAL)
        if not arrays or self.d.int(0, 2) == 0:
            return
        self.sinking = True
        target = self.d.pick(arrays)
        if target.type.elem != ty:
            value = self.define(out, Cast(self.fresh(target.type.elem), value))
        index = self.define(out, Const(self.fresh(I32), self.d.int(0, 3)))
        out.append(Store(target, index, value))
        self.sinking = False

    def value(self, out: list, ty: ScalarType) -> Value:
        """A visible value of ``ty``, or a new constant."""
        candidates = self.visible(lambda t: t == ty)
        if candidates and self.d.bool():
            return self.d.pick(candidates)
        return self.define(out, Const(self.fresh(ty), self.d.literal(ty)))

    def array(self, pred: Callable[[ArrayType], bool] = lambda t: True) -> Value | None:
        arrays = self.visible(lambda t: isinstance(t, ArrayType) and pred(t))
        return self.d.pick(arrays) if arrays else None

    def local(self, ty: ScalarType | None = None) -> LocalVar:
        fitting = [v for v in self.locals if ty is None or v.type == ty]
        if fitting and self.d.bool():
            return self.d.pick(fitting)
        stem = self.d.pick(HOSTILE_NAMES) if self.d.int(0, 3) == 0 else "l"
        var = LocalVar(f"{stem}{len(self.locals)}", ty or self.d.pick(self.p.held))
        self.locals.append(var)
        return var

    # --- statements ---

    def block(self, depth: int, in_loop: bool, return_type: Any) -> tuple:
        out: list = []
        self.scopes.append([])
        for _ in range(self.d.int(0, self.p.max_block)):
            self.stmt(out, depth, in_loop, return_type)
        self.scopes.pop()
        return tuple(out)

    def stmt(self, out: list, depth: int, in_loop: bool, return_type: Any) -> None:
        kinds = ["const", "unary", "binary", "compare", "cast", "math", "load_var", "store_var",
                 "array", "array", "array"]  # memory statements are the most varied
        if self.p.bitcast:
            kinds.append("bitcast")
        if self.p.fence:
            kinds.append("fence")
        if self.callees:
            kinds += ["call", "call"]
        kinds.append("tuple")
        if self.kernel:
            kinds += ["thread", "shared", "barrier"]
            if self.p.subgroups:
                kinds.append("subgroup")
        kinds += ["local", "const_array"]
        if self.p.clock:
            kinds.append("clock")
        if self.p.backoff:
            kinds.append("backoff")
        if depth < self.p.max_depth:
            kinds += ["if", "loop", "for"]
        if in_loop:
            kinds += ["break", "continue"]
        kinds.append("return")
        getattr(self, "s_" + self.d.pick(kinds))(out, depth, in_loop, return_type)

    def s_const(self, out: list, *_: Any) -> None:
        ty = self.d.pick(self.p.held)
        self.define(out, Const(self.fresh(ty), self.d.literal(ty)))

    def s_unary(self, out: list, *_: Any) -> None:
        op = self.d.pick(sorted(UNARY_FOR))
        ty = self.d.pick([t for t in self.p.scalars if UNARY_FOR[op](t)])
        self.define(out, Unary(self.fresh(ty), op, self.value(out, ty)))

    def s_binary(self, out: list, *_: Any) -> None:
        op = self.d.pick(BINARY_OPS)
        if op in ("and", "or", "xor"):
            types = (*self.p.ints, BOOL)
        elif op in ("shl", "shr"):
            types = self.p.ints
        else:
            types = self.p.numeric
        ty = self.d.pick(types)
        self.define(out, Binary(self.fresh(ty), op, self.value(out, ty), self.value(out, ty)))

    def s_compare(self, out: list, *_: Any) -> None:
        op = self.d.pick(COMPARE_OPS)
        ty = self.d.pick(self.p.scalars if op in ("eq", "ne") else self.p.numeric)
        self.define(out, Compare(self.fresh(BOOL), op, self.value(out, ty), self.value(out, ty)))

    def s_cast(self, out: list, *_: Any) -> None:
        src, dst = self.d.pick(self.p.held), self.d.pick(self.p.held)
        self.define(out, Cast(self.fresh(dst), self.value(out, src)))

    def s_bitcast(self, out: list, *_: Any) -> None:
        numeric = [t for t in self.p.held if not t.is_bool]
        src = self.d.pick(numeric)
        same_width = [t for t in numeric if t.bits == src.bits]
        self.define(out, Bitcast(self.fresh(self.d.pick(same_width)), self.value(out, src)))

    def s_math(self, out: list, *_: Any) -> None:
        func = self.d.pick(tuple(MATH_FUNCS))
        if func == "abs":
            ty = self.d.pick(self.p.numeric)
        else:
            ty = self.d.pick(self.p.ints if func in INT_MATH_FUNCS else self.p.floats)
        args = tuple(self.value(out, ty) for _ in range(MATH_FUNCS[func]))
        result = BOOL if func in MATH_PREDICATES else ty
        self.define(out, MathCall(self.fresh(result), func, args))

    def s_load_var(self, out: list, *_: Any) -> None:
        var = self.local()
        self.define(out, LoadVar(self.fresh(var.type), var))

    def s_store_var(self, out: list, *_: Any) -> None:
        var = self.local()
        out.append(StoreVar(var, self.value(out, var.type)))

    def s_array(self, out: list, *_: Any) -> None:
        # half the time an array atomics can update, so local and constant arrays
        # do not crowd the read-modify-write ops out
        shared_memory = (AddressSpace.GLOBAL, AddressSpace.SHARED)
        # half the time an array atomics apply to, and then mostly an atomic: the many other
        # statement kinds (tuples, local and constant arrays) would leave some op/type pairs undrawn
        prefer_atomic = self.d.bool()
        arr = self.array(
            lambda t: t.space in shared_memory and not t.elem.is_bool and not t.elem.is_small
        ) if prefer_atomic else None
        arr = arr or self.array()
        if arr is None:
            return self.s_const(out)
        elem, space = arr.type.elem, arr.type.space
        index = self.value(out, self.d.pick(self.p.ints))
        ops = ["load"]
        if space != AddressSpace.CONSTANT:  # embedded tables are read-only
            ops.append("store")
        if space in (AddressSpace.GLOBAL, AddressSpace.SHARED) and not elem.is_bool and not elem.is_small:
            ops.append("atomic")
        if space in (AddressSpace.GLOBAL, AddressSpace.SHARED) and elem.is_int and not elem.is_small:
            ops.append("cas")
        if prefer_atomic and "atomic" in ops:
            ops += ["atomic", "atomic"]
        what = self.d.pick(ops)
        if what == "load":
            self.define(out, Load(self.fresh(elem), arr, index))
        elif what == "store":
            out.append(Store(arr, index, self.value(out, elem)))
        elif what == "atomic":
            op = self.d.pick(ATOMIC_OPS if elem.is_int else FLOAT_ATOMIC_OPS)
            self.define(out, AtomicRMW(self.fresh(elem), op, arr, index, self.value(out, elem)))
        else:
            self.define(out, AtomicCAS(
                self.fresh(elem), arr, index, self.value(out, elem), self.value(out, elem)
            ))
        return None

    def s_call(self, out: list, *_: Any) -> None:
        callee = self.d.pick(self.callees)
        args = []
        for p in callee.params:
            if isinstance(p.type, ArrayType):
                arr = self.array(
                    lambda t, p=p: t.elem == p.type.elem and t.space == p.type.space and t.ndim == p.type.ndim
                )
                if arr is None:
                    return self.s_const(out)
                args.append(arr)
            else:
                args.append(self.value(out, p.type))
        if callee.return_type == VOID:
            out.append(Call(None, callee.name, tuple(args)))
        else:
            result = self.define(out, Call(self.fresh(callee.return_type), callee.name, tuple(args)))
            if isinstance(result.type, TupleType):
                self.extract(out, result)
        return None

    def make_tuple(self, out: list, ty: TupleType) -> Value:
        return self.define(out, MakeTuple(self.fresh(ty), tuple(self.value(out, e) for e in ty.elems)))

    def extract(self, out: list, tup: Value) -> Value:
        assert isinstance(tup.type, TupleType)
        index = self.d.int(0, len(tup.type.elems) - 1)
        return self.define(out, Extract(self.fresh(tup.type.elems[index]), tup, index))

    def s_tuple(self, out: list, *_: Any) -> None:
        self.extract(out, self.make_tuple(out, tuple_type(self.d, self.p)))

    def s_thread(self, out: list, *_: Any) -> None:
        kind = self.d.pick(THREAD_INDEX_KINDS)
        self.define(out, ThreadIndex(self.fresh(I32), kind, self.d.int(0, 2)))

    def s_shared(self, out: list, *_: Any) -> None:
        self.define(out, SharedArray(self.fresh(self.sized_array(self.element(), AddressSpace.SHARED))))

    def s_local(self, out: list, *_: Any) -> None:
        self.define(out, LocalArray(self.fresh(self.sized_array(self.element(), AddressSpace.LOCAL))))

    def s_const_array(self, out: list, *_: Any) -> None:
        elem = self.element()
        ty = self.sized_array(elem, AddressSpace.CONSTANT, max_size=16)
        data = tuple(self.d.literal(elem) for _ in range(ty.size or 0))
        self.define(out, ConstArray(self.fresh(ty), data))

    def element(self) -> ScalarType:
        """An array element type: now and then one of the small types only memory holds."""
        return self.d.pick(self.p.held if self.d.int(0, 3) == 0 else self.p.scalars)

    def sized_array(self, elem: ScalarType, space: AddressSpace, max_size: int = 256) -> ArrayType:
        """A 1-D array of 1..max_size elements, or an N-d one (N = 2..3) of small extents."""
        if self.d.bool():
            return ArrayType(elem, space, self.d.int(1, max_size))
        shape = tuple(self.d.int(1, 4) for _ in range(self.d.int(2, 3)))
        size = 1
        for extent in shape:
            size *= extent
        return ArrayType(elem, space, size, shape)

    def s_barrier(self, out: list, *_: Any) -> None:
        out.append(Barrier())

    def s_subgroup(self, out: list, *_: Any) -> None:
        op = self.d.pick((*SUBGROUP_OPS, "sync"))
        if op == "sync":
            out.append(SyncWarp())
        elif op in ("lane_id", "size"):
            self.define(out, Subgroup(self.fresh(I32), op, ()))
        elif op.startswith("shfl"):
            ty = self.d.pick(self.p.numeric)
            self.define(out, Subgroup(self.fresh(ty), op, (self.value(out, ty), self.value(out, I32))))
        else:
            result = U32 if op == "ballot" else BOOL
            self.define(out, Subgroup(self.fresh(result), op, (self.value(out, BOOL),)))

    def s_fence(self, out: list, *_: Any) -> None:
        out.append(Fence())

    def s_clock(self, out: list, *_: Any) -> None:
        self.define(out, Clock(self.fresh(U64)))

    def s_backoff(self, out: list, *_: Any) -> None:
        out.append(Backoff(self.value(out, U32)))
        if self.p.wake:
            self.wake(out)

    def wake(self, out: list) -> None:
        """A backoff's other half: wakes the threads parked on a u32 word (if one is in reach)."""
        arr = self.array(lambda t: t.elem == U32 and t.space == AddressSpace.GLOBAL)
        if arr is not None:
            out.append(Wake(arr, self.value(out, self.d.pick((I32, U32)))))

    def s_if(self, out: list, depth: int, in_loop: bool, return_type: Any) -> None:
        cond = self.value(out, BOOL)
        then_body = self.block(depth + 1, in_loop, return_type)
        else_body = self.block(depth + 1, in_loop, return_type) if self.d.bool() else ()
        out.append(If(cond, then_body, else_body))

    def s_loop(self, out: list, depth: int, in_loop: bool, return_type: Any) -> None:
        out.append(Loop(self.block(depth + 1, True, return_type)))

    def s_for(self, out: list, depth: int, in_loop: bool, return_type: Any) -> None:
        var = self.local(self.d.pick(self.p.ints))
        start, stop, step = (self.value(out, var.type) for _ in range(3))
        out.append(ForRange(var, start, stop, step, self.block(depth + 1, True, return_type)))

    def s_break(self, out: list, *_: Any) -> None:
        out.append(Break())

    def s_continue(self, out: list, *_: Any) -> None:
        out.append(Continue())

    def s_return(self, out: list, depth: int, in_loop: bool, return_type: Any) -> None:
        out.append(Return() if return_type == VOID else Return(self.result(out, return_type)))

    def result(self, out: list, return_type: Any) -> Value:
        """A value to return: a scalar, or a tuple made of fresh scalars."""
        if isinstance(return_type, TupleType):
            return self.make_tuple(out, return_type)
        return self.value(out, return_type)


def tuple_type(draw: Draw, profile: Profile) -> TupleType:
    """A ``tuple<...>`` of 1 to 3 of the profile's scalars."""
    return TupleType(tuple(draw.pick(profile.scalars) for _ in range(draw.int(1, 3))))


def _function(draw: Draw, profile: Profile, name: str, kind: str, callees: list[Function]) -> Function:
    gen = _FunctionGen(draw, profile, kind, callees)
    types: list[Any] = []
    for i in range(draw.int(1 if kind == "kernel" else 0, 4)):
        elem = draw.pick(profile.held if draw.int(0, 3) == 0 else profile.scalars)
        if draw.bool() and not (kind == "kernel" and i == 0):
            types.append(elem)
        else:
            spaces = [AddressSpace.GLOBAL] if kind == "kernel" else list(AddressSpace)
            space = draw.pick(spaces) if draw.int(0, 3) == 0 else AddressSpace.GLOBAL
            ndim = draw.pick((1, 1, 2, 3))
            types.append(ArrayType(elem, space, None, None if ndim == 1 else (None,) * ndim))
    params = tuple(gen.fresh(ty) for ty in types)
    gen.scopes[0].extend(params)
    return_type: Any = VOID if kind == "kernel" else draw.pick((VOID, *profile.held, "tuple"))
    if return_type == "tuple":
        return_type = tuple_type(draw, profile)
    body = gen.block(0, False, return_type)
    if kind == "kernel" and profile.grid_sync and draw.int(0, 3) == 0:
        # first in the kernel: grid-uniform, and no work-item can have returned before it
        body = (GridSync(), *body)
    if return_type != VOID:
        tail: list = []
        value = gen.result(tail, return_type)
        body = (*body, *tail, Return(value))
    return Function(name, kind, params, return_type, tuple(gen.locals), body)


def _function_name(draw: Draw, prefix: str, index: int) -> str:
    """A distinct name; sometimes one a target language reserves."""
    if draw.int(0, 2) == 0:
        stem = draw.pick(HOSTILE_NAMES).lstrip("_.0123456789") or "f"
        return f"{stem}{prefix}{index}" if draw.bool() else f"{stem}.{prefix}{index}"
    return f"{prefix}{index}"


def generate_module(draw: Draw, profile: Profile = FULL) -> Module:
    """A valid module: structs, funcs (each calling only earlier ones), kernels, shuffled."""
    structs = []
    for i in range(draw.int(0, 2)):
        names = [n for n in ("a", "b", "value", "id", "count") if draw.bool()] or ["a"]
        structs.append(StructType(f"S{i}", tuple((n, draw.pick(profile.scalars)) for n in names)))
    funcs: list[Function] = []
    for i in range(draw.int(0, profile.max_funcs)):
        funcs.append(_function(draw, profile, _function_name(draw, "f", i), "func", list(funcs)))
    kernels = [
        _function(draw, profile, _function_name(draw, "k", i), "kernel", list(funcs))
        for i in range(draw.int(profile.min_kernels, profile.max_kernels))
    ]
    order = funcs + kernels
    for i in range(len(order) - 1, 0, -1):  # Fisher-Yates, drawn from the input
        j = draw.int(0, i)
        order[i], order[j] = order[j], order[i]
    return Module(tuple(order), tuple(structs))


def generate(data: bytes, profile: Profile = FULL) -> Module:
    """The module ``data`` encodes under ``profile`` (deterministic in ``data``)."""
    import atheris

    return generate_module(Draw(atheris.FuzzedDataProvider(data)), profile)


__all__ = ["Profile", "FULL", "WGSL", "MSL", "Draw", "generate_module", "generate", "HOSTILE_NAMES"]

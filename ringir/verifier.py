"""The RingIR verifier: every module passes it before any lowering runs.

It checks that types agree, that every value is defined once and before its
use in an enclosing region, that ``break``/``continue`` sit inside loops, that
barriers, shared arrays and thread indices appear only in kernels, that
returns match signatures, and that calls name an existing ``func`` without
recursion (no GPU target supports it).
"""

from __future__ import annotations

import re
import weakref

from ringkernel.ringir.diagnostics import CompileError, SourceLoc
from ringkernel.ringir.limits import (
    MAX_LOCAL_BYTES,
    MAX_NESTING,
    array_bytes,
    array_size_problem,
    check_nesting,
    const_array_problem,
)
from ringkernel.ringir.nodes import (
    ATOMIC_OPS,
    BINARY_OPS,
    COMPARE_OPS,
    FUNCTION_KINDS,
    INT_MATH_FUNCS,
    MATH_FUNCS,
    MATH_PREDICATES,
    SUBGROUP_OPS,
    THREAD_INDEX_KINDS,
    UNARY_OPS,
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
    NodeVisitor,
    Return,
    SharedArray,
    Stmt,
    Store,
    StoreVar,
    Subgroup,
    SyncWarp,
    ThreadIndex,
    Unary,
    Value,
    Wake,
    atomic_applies,
    walk,
)
from ringkernel.ringir.types import (
    BOOL,
    I32,
    MAX_TUPLE_ELEMS,
    PROMOTED,
    U32,
    U64,
    VOID,
    AddressSpace,
    ArrayType,
    ScalarType,
    StructType,
    TupleType,
    float_overflows,
)

# Names must be spellable in the text form (see grammar.lark), so "verifies" implies "round-trips".
_VALUE_NAME = re.compile(r"[\w.]+")
_FUNCTION_NAME = re.compile(r"[^\W\d][\w.]*")
_PLAIN_NAME = re.compile(r"[^\W\d]\w*")

# A chain of calls deeper than this is rejected: the verifier's and emitters'
# call-graph walks recurse once per call level, as regions do.
MAX_CALL_DEPTH = MAX_NESTING


_verified: weakref.WeakValueDictionary[int, Module] = weakref.WeakValueDictionary()


def verify(module: Module) -> Module:
    """Checks ``module`` and returns it unchanged; raises :class:`CompileError`.

    Modules are immutable, so each module object is checked once however many
    stages (frontend, driver, passes) hand it on.
    """
    if _verified.get(id(module)) is module:
        return module
    _ModuleVerifier(module).run()
    _verified[id(module)] = module
    return module


class _ModuleVerifier:
    def __init__(self, module: Module) -> None:
        self.module = module
        self.functions: dict[str, Function] = {}

    def run(self) -> None:
        seen_structs: set[str] = set()
        for struct in self.module.structs:
            if struct.name in seen_structs:
                raise CompileError.at(struct.loc, f"struct '{struct.name}' is defined twice")
            seen_structs.add(struct.name)
            for name in (struct.name, *(n for n, _ in struct.fields)):
                if not _PLAIN_NAME.fullmatch(name):
                    raise CompileError.at(
                        struct.loc, f"struct '{struct.name}': '{name}' is not a valid name"
                    )
            if not struct.fields:
                raise CompileError.at(struct.loc, f"struct '{struct.name}' has no fields")
            names = [n for n, _ in struct.fields]
            if len(set(names)) != len(names):
                raise CompileError.at(struct.loc, f"struct '{struct.name}' has a duplicate field")
        for fn in self.module.functions:
            if not _FUNCTION_NAME.fullmatch(fn.name):
                raise CompileError.at(fn.loc, f"'{fn.name}' is not a valid function name")
            if fn.name in self.functions:
                raise CompileError.at(fn.loc, f"function '@{fn.name}' is defined twice")
            self.functions[fn.name] = fn
        for fn in self.module.functions:
            _FunctionVerifier(self, fn).run()
        self._check_no_recursion()
        self._check_local_memory()

    def _check_local_memory(self) -> None:
        """Local arrays of a function and the deepest call chain below it fit :data:`MAX_LOCAL_BYTES`.

        They live on a work-item's stack (the cpu backend's threads have 256 KiB).
        """
        totals: dict[str, int] = {}

        def total(fn: Function) -> int:
            known = totals.get(fn.name)
            if known is not None:
                return known
            own = sum(array_bytes(s.result.type) or 0 for s in walk(fn.body)
                      if isinstance(s, LocalArray) and isinstance(s.result.type, ArrayType))
            below = [total(self.functions[c.callee]) for c in walk(fn.body) if isinstance(c, Call)]
            totals[fn.name] = own + max(below, default=0)
            if totals[fn.name] > MAX_LOCAL_BYTES:
                first = next((s for s in walk(fn.body) if isinstance(s, (LocalArray, Call))), None)
                raise CompileError.at(
                    getattr(first, "loc", None) or fn.loc,
                    f"'{fn.name}' needs {totals[fn.name]} bytes of local arrays (with the functions it "
                    f"calls); at most {MAX_LOCAL_BYTES} bytes per work-item fit; use a shared or "
                    "global array",
                )
            return totals[fn.name]

        for fn in self.module.functions:
            total(fn)

    def _check_no_recursion(self) -> None:
        """No call cycles, and no call chain deeper than :data:`MAX_CALL_DEPTH` (iteratively)."""
        callees = {fn.name: [s for s in walk(fn.body) if isinstance(s, Call)] for fn in self.module.functions}
        done: set[str] = set()
        for fn in self.module.functions:
            if fn.name in done:
                continue
            path = [fn.name]  # the chain of calls being followed
            pending = [iter(callees[fn.name])]
            while pending:
                call = next(pending[-1], None)
                if call is None:
                    done.add(path.pop())
                    pending.pop()
                    continue
                if call.callee in done:
                    continue
                if call.callee in path:
                    cycle = " -> ".join([*path[path.index(call.callee):], call.callee])
                    raise CompileError.at(call.loc, f"recursion is not supported on GPU targets ({cycle})")
                if len(path) > MAX_CALL_DEPTH:
                    raise CompileError.at(
                        call.loc, f"calls nested too deeply (limit {MAX_CALL_DEPTH} levels): "
                        f"{' -> '.join(path[:3])} -> ... -> {call.callee}"
                    )
                path.append(call.callee)
                pending.append(iter(callees[call.callee]))


class _FunctionVerifier(NodeVisitor):
    def __init__(self, parent: _ModuleVerifier, fn: Function) -> None:
        self.parent = parent
        self.fn = fn
        self.scopes: list[set[str]] = [set()]
        self.all_names: set[str] = set()
        self.locals: dict[str, LocalVar] = {}
        self.loop_depth = 0
        self.loc: SourceLoc | None = fn.loc

    def error(self, message: str) -> CompileError:
        return CompileError.at(self.loc, f"in '@{self.fn.name}': {message}")

    # --- scoping ---

    def define(self, value: Value) -> None:
        if not _VALUE_NAME.fullmatch(value.name):
            raise self.error(f"'%{value.name}' is not a valid value name")
        if value.name in self.all_names:
            raise self.error(f"value '%{value.name}' is defined more than once")
        self.all_names.add(value.name)
        self.scopes[-1].add(value.name)

    def use(self, value: Value) -> None:
        if not any(value.name in scope for scope in self.scopes):
            raise self.error(f"value '%{value.name}' is used before it is defined")

    def region(self, body: tuple[Stmt, ...], in_loop: bool = False) -> None:
        self.scopes.append(set())
        self.loop_depth += in_loop
        self.visit_block(body)
        self.loop_depth -= in_loop
        self.scopes.pop()

    def visit(self, node: Stmt) -> None:
        self.loc = getattr(node, "loc", None) or self.loc
        super().visit(node)

    def generic_visit(self, node: object) -> None:
        raise self.error(f"unknown statement {type(node).__name__}")

    # --- function ---

    def check_grid_sync(self) -> None:
        """Every ``grid_sync`` (and, with one, every ``return``) is in grid-uniform control flow."""
        from ringkernel.ringir.passes.uniformity import grid_sync_problem  # passes import this module

        problem = grid_sync_problem(self.fn)
        if problem is None:
            return
        stmt, why = problem
        self.loc = getattr(stmt, "loc", None) or self.loc
        if isinstance(stmt, GridSync):
            raise self.error(
                f"grid_sync under {why}: every work-item of the grid must reach it together, "
                "or the launch would wait forever; move it to where every work-item arrives"
            )
        raise self.error(
            f"return under {why} in a kernel that calls grid_sync: the work-items that returned "
            "would never arrive at the grid barrier; guard the work with 'if' instead of returning"
        )

    def run(self) -> None:
        fn = self.fn
        if fn.kind not in FUNCTION_KINDS:
            raise self.error(f"unknown function kind '{fn.kind}'")
        if fn.is_kernel and fn.return_type != VOID:
            raise self.error("a kernel cannot return a value")
        if not isinstance(fn.return_type, (ScalarType, TupleType)) and fn.return_type != VOID:
            raise self.error(f"functions return a scalar, a tuple or void, not {fn.return_type}")
        if isinstance(fn.return_type, TupleType):
            self.check_tuple_type(fn.return_type)
        check_nesting(fn)
        for p in fn.params:
            self.check_param_type(p)
            self.define(p)
        for var in fn.locals:
            if not _VALUE_NAME.fullmatch(var.name):
                raise self.error(f"'${var.name}' is not a valid local name")
            if var.name in self.locals:
                raise self.error(f"local '${var.name}' is declared twice")
            if not isinstance(var.type, ScalarType):
                raise self.error(f"local '${var.name}' must have a scalar type")
            self.locals[var.name] = var
        self.region(fn.body)
        if fn.is_kernel:
            self.check_grid_sync()
        if fn.return_type != VOID and not _always_returns(fn.body):
            self.loc = fn.loc
            raise self.error("function may reach its end without returning a value")

    def check_param_type(self, p: Value) -> None:
        ty = p.type
        problem = array_size_problem(ty) if isinstance(ty, ArrayType) else None
        if problem is not None:
            raise self.error(f"parameter '%{p.name}': {problem}")
        if isinstance(ty, ScalarType):
            return
        if isinstance(ty, ArrayType) and ty.space == AddressSpace.GLOBAL and ty.size is None:
            return
        if isinstance(ty, ArrayType) and not self.fn.is_kernel:
            return
        raise self.error(f"parameter '%{p.name}' cannot have type {ty}")

    def check_tuple_type(self, ty: TupleType) -> None:
        if not 1 <= len(ty.elems) <= MAX_TUPLE_ELEMS:
            raise self.error(f"{ty} must hold 1 to {MAX_TUPLE_ELEMS} scalars")
        if not all(isinstance(e, ScalarType) for e in ty.elems):
            raise self.error(f"tuple elements must be scalars: {ty}")

    # --- helpers ---

    def scalar(self, v: Value, what: str) -> ScalarType:
        self.use(v)
        if not isinstance(v.type, ScalarType):
            raise self.error(f"{what} must be a scalar, got {v.type}")
        return v.type

    def same_type(self, a: Value, b: Value, what: str) -> None:
        if a.type != b.type:
            raise self.error(f"{what}: operand types differ ({a.type} and {b.type})")

    def integer(self, v: Value, what: str) -> ScalarType:
        ty = self.scalar(v, what)
        if not ty.is_int:
            raise self.error(f"{what} must be an integer, got {ty}")
        self.not_small(ty, what)
        return ty

    def not_small(self, ty: ScalarType, what: str) -> None:
        """Small types are storage types: arithmetic takes them promoted (docs/ir.md)."""
        if ty.is_small:
            raise self.error(
                f"{what} cannot be {ty}: {ty} values take part in arithmetic only after "
                f"promotion; cast to {PROMOTED[ty]} first"
            )

    def array(self, v: Value) -> ArrayType:
        self.use(v)
        if not isinstance(v.type, ArrayType):
            raise self.error(f"'%{v.name}' is not an array (type {v.type})")
        return v.type

    def kernel_only(self, what: str) -> None:
        if not self.fn.is_kernel:
            raise self.error(f"{what} is only allowed in kernels")

    def var(self, var: LocalVar) -> None:
        declared = self.locals.get(var.name)
        if declared is None:
            raise self.error(f"local '${var.name}' is not declared")
        if declared != var:
            raise self.error(f"local '${var.name}' used with type {var.type}, declared {declared.type}")

    # --- instructions ---

    def visit_Const(self, s: Const) -> None:
        ty = s.result.type
        v = s.value
        if not isinstance(ty, ScalarType):
            raise self.error(f"constant of non-scalar type {ty}")
        if not _fits(v, ty):
            raise self.error(f"constant {_show(v)} does not fit type {ty}")
        self.define(s.result)

    def visit_Unary(self, s: Unary) -> None:
        ty = self.scalar(s.operand, f"operand of '{s.op}'")
        self.not_small(ty, f"the operand of '{s.op}'")
        if s.op not in UNARY_OPS:
            raise self.error(f"unknown unary operator '{s.op}'")
        ok = {
            "neg": not ty.is_bool,
            "not": ty.is_bool,
            "bitnot": ty.is_int,
        }[s.op]
        if not ok:
            raise self.error(f"'{s.op}' does not apply to {ty}")
        if s.result.type != ty:
            raise self.error(f"'{s.op}' result must have type {ty}")
        self.define(s.result)

    def visit_Binary(self, s: Binary) -> None:
        if s.op not in BINARY_OPS:
            raise self.error(f"unknown binary operator '{s.op}'")
        ty = self.scalar(s.lhs, f"left operand of '{s.op}'")
        self.scalar(s.rhs, f"right operand of '{s.op}'")
        self.same_type(s.lhs, s.rhs, f"'{s.op}'")
        self.not_small(ty, f"an operand of '{s.op}'")
        if s.op in ("and", "or", "xor"):
            ok = ty.is_int or ty.is_bool
        elif s.op in ("shl", "shr"):
            ok = ty.is_int
        else:
            ok = not ty.is_bool
        if not ok:
            raise self.error(f"'{s.op}' does not apply to {ty}")
        if s.result.type != ty:
            raise self.error(f"'{s.op}' result must have type {ty}")
        self.define(s.result)

    def visit_Compare(self, s: Compare) -> None:
        if s.op not in COMPARE_OPS:
            raise self.error(f"unknown comparison '{s.op}'")
        ty = self.scalar(s.lhs, f"left operand of '{s.op}'")
        self.scalar(s.rhs, f"right operand of '{s.op}'")
        self.same_type(s.lhs, s.rhs, f"'{s.op}'")
        self.not_small(ty, f"an operand of '{s.op}'")
        if ty.is_bool and s.op not in ("eq", "ne"):
            raise self.error(f"'{s.op}' does not apply to bool")
        if s.result.type != BOOL:
            raise self.error("comparison result must be bool")
        self.define(s.result)

    def visit_Cast(self, s: Cast) -> None:
        self.scalar(s.value, "cast operand")
        if not isinstance(s.result.type, ScalarType):
            raise self.error(f"cannot cast to {s.result.type}")
        self.define(s.result)

    def visit_MathCall(self, s: MathCall) -> None:
        arity = MATH_FUNCS.get(s.func)
        if arity is None:
            raise self.error(f"unknown math function '{s.func}'")
        if len(s.args) != arity:
            raise self.error(f"'{s.func}' takes {arity} argument(s), got {len(s.args)}")
        if s.func in MATH_PREDICATES or s.func in INT_MATH_FUNCS:
            self.math_special(s)
            return
        for a in s.args:
            ty = self.scalar(a, f"argument of '{s.func}'")
            self.not_small(ty, f"an argument of '{s.func}'")
            if a.type != s.result.type:
                raise self.error(f"'{s.func}' arguments and result must share one type")
            if s.func == "abs":
                if ty.is_bool:
                    raise self.error("'abs' does not apply to bool")
            elif not ty.is_float:
                raise self.error(f"'{s.func}' needs a floating-point argument, got {ty}")
        self.define(s.result)

    def math_special(self, s: MathCall) -> None:
        """``isnan``-style tests (float -> bool) and bit counts (integer -> same integer)."""
        ty = self.scalar(s.args[0], f"argument of '{s.func}'")
        self.not_small(ty, f"the argument of '{s.func}'")
        if s.func in MATH_PREDICATES:
            if not ty.is_float:
                raise self.error(f"'{s.func}' needs a floating-point argument, got {ty}")
            if s.result.type != BOOL:
                raise self.error(f"'{s.func}' returns bool, not {s.result.type}")
        else:
            if not ty.is_int:
                raise self.error(f"'{s.func}' needs an integer argument, got {ty}")
            if s.result.type != ty:
                raise self.error(f"'{s.func}' argument and result must share one type")
        self.define(s.result)

    def visit_Call(self, s: Call) -> None:
        callee = self.parent.functions.get(s.callee)
        if callee is None:
            raise self.error(f"call to unknown function '@{s.callee}'")
        if callee.is_kernel:
            raise self.error(f"kernel '@{s.callee}' cannot be called; only funcs can")
        if len(s.args) != len(callee.params):
            raise self.error(f"'@{s.callee}' takes {len(callee.params)} argument(s), got {len(s.args)}")
        for arg, param in zip(s.args, callee.params):
            self.use(arg)
            if arg.type != param.type and not _array_compatible(arg.type, param.type):
                raise self.error(
                    f"argument '%{arg.name}' of '@{s.callee}' has type {arg.type}, expected {param.type}"
                )
        if s.result is None:
            if callee.return_type != VOID:
                raise self.error(f"result of '@{s.callee}' must be named")
        else:
            if s.result.type != callee.return_type:
                raise self.error(f"'@{s.callee}' returns {callee.return_type}, not {s.result.type}")
            self.define(s.result)

    def visit_ThreadIndex(self, s: ThreadIndex) -> None:
        self.kernel_only(f"'{s.kind}'")
        if s.kind not in THREAD_INDEX_KINDS:
            raise self.error(f"unknown thread index '{s.kind}'")
        if s.dim not in (0, 1, 2):
            raise self.error(f"dimension must be 0, 1 or 2, got {s.dim}")
        if s.result.type != I32:
            raise self.error("thread indices have type i32")
        self.define(s.result)

    def visit_SharedArray(self, s: SharedArray) -> None:
        """A constant size, or none: a dynamic array, sized per launch (passes/dynamic_shared.py)."""
        self.kernel_only("a shared array")
        ty = s.result.type
        if not (isinstance(ty, ArrayType) and ty.space == AddressSpace.SHARED):
            raise self.error(f"shared_array must have a shared array type, not {ty}")
        problem = array_size_problem(ty)
        if problem is not None:
            raise self.error(f"shared array '%{s.result.name}': {problem}")
        self.define(s.result)

    def visit_LocalArray(self, s: LocalArray) -> None:
        ty = s.result.type
        if not (isinstance(ty, ArrayType) and ty.space == AddressSpace.LOCAL and ty.size is not None):
            raise self.error(f"local_array must have a sized local array type, not {ty}")
        problem = array_size_problem(ty)
        if problem is not None:
            raise self.error(f"local array '%{s.result.name}': {problem}")
        self.define(s.result)

    def visit_ConstArray(self, s: ConstArray) -> None:
        ty = s.result.type
        if not (isinstance(ty, ArrayType) and ty.space == AddressSpace.CONSTANT and ty.size is not None):
            raise self.error(f"const_array must have a sized constant array type, not {ty}")
        problem = array_size_problem(ty) or const_array_problem(ty)
        if problem is not None:
            raise self.error(f"constant array '%{s.result.name}': {problem}")
        if len(s.data) != ty.size:
            raise self.error(
                f"constant array '%{s.result.name}' has {len(s.data)} values; its type holds {ty.size}"
            )
        for v in s.data:
            if not _fits(v, ty.elem):
                raise self.error(f"constant {_show(v)} does not fit type {ty.elem}")
        self.define(s.result)

    def writable(self, v: Value, what: str) -> ArrayType:
        """The array ``v`` that ``what`` writes; constant arrays are read-only."""
        arr = self.array(v)
        if arr.space == AddressSpace.CONSTANT:
            raise self.error(f"{what} writes the read-only constant array '%{v.name}'")
        return arr

    def atomic_target(self, v: Value, what: str) -> ArrayType:
        arr = self.writable(v, what)
        if arr.space == AddressSpace.LOCAL:
            raise self.error(
                f"{what} on the per-work-item local array '%{v.name}'; atomics need global or shared memory"
            )
        return arr

    def visit_Load(self, s: Load) -> None:
        arr = self.array(s.array)
        self.integer(s.index, "array index")
        if s.result.type != arr.elem:
            raise self.error(f"load from {arr} yields {arr.elem}, not {s.result.type}")
        self.define(s.result)

    def visit_Store(self, s: Store) -> None:
        arr = self.writable(s.array, "store")
        self.integer(s.index, "array index")
        self.scalar(s.value, "stored value")
        if s.value.type != arr.elem:
            raise self.error(f"cannot store {s.value.type} into {arr}")

    def visit_AtomicRMW(self, s: AtomicRMW) -> None:
        if s.op not in ATOMIC_OPS:
            raise self.error(f"unknown atomic operation '{s.op}'")
        arr = self.atomic_target(s.array, f"atomic_{s.op}")
        self.integer(s.index, "array index")
        self.scalar(s.value, "atomic operand")
        self.not_small(arr.elem, f"the element of an atomic_{s.op} array")
        if not atomic_applies(s.op, arr.elem):
            raise self.error(f"atomic_{s.op} does not apply to {arr.elem} elements")
        if s.value.type != arr.elem or s.result.type != arr.elem:
            raise self.error(f"atomic_{s.op} on {arr} needs {arr.elem} operands")
        self.define(s.result)

    def visit_AtomicCAS(self, s: AtomicCAS) -> None:
        arr = self.atomic_target(s.array, "atomic_cas")
        self.integer(s.index, "array index")
        self.scalar(s.expected, "expected value")
        self.scalar(s.desired, "desired value")
        if not (arr.elem.is_int or arr.elem.is_float):
            raise self.error(f"atomic_cas needs integer or float elements, not {arr.elem}")
        self.not_small(arr.elem, "the element of an atomic_cas array")
        for v in (s.expected, s.desired, s.result):
            if v.type != arr.elem:
                raise self.error(f"atomic_cas on {arr} needs {arr.elem} operands")
        self.define(s.result)

    def visit_LoadVar(self, s: LoadVar) -> None:
        self.var(s.var)
        if s.result.type != s.var.type:
            raise self.error(f"load_var of ${s.var.name} yields {s.var.type}")
        self.define(s.result)

    def visit_StoreVar(self, s: StoreVar) -> None:
        self.var(s.var)
        self.scalar(s.value, "stored value")
        if s.value.type != s.var.type:
            raise self.error(f"cannot store {s.value.type} into ${s.var.name}: {s.var.type}")

    def visit_Barrier(self, s: Barrier) -> None:
        self.kernel_only("barrier")

    def visit_Bitcast(self, s: Bitcast) -> None:
        src = self.scalar(s.value, "bitcast operand")
        dst = s.result.type
        if not isinstance(dst, ScalarType) or src.is_bool or dst.is_bool or src.bits != dst.bits:
            raise self.error(f"bitcast needs two non-bool scalars of one width, not {src} -> {dst}")
        self.define(s.result)

    def visit_Subgroup(self, s: Subgroup) -> None:
        self.kernel_only(f"'subgroup_{s.op}'")
        arity = SUBGROUP_OPS.get(s.op)
        if arity is None:
            raise self.error(f"unknown subgroup operation '{s.op}'")
        if len(s.args) != arity:
            raise self.error(f"'subgroup_{s.op}' takes {arity} operand(s), got {len(s.args)}")
        types = [self.scalar(a, f"operand of 'subgroup_{s.op}'") for a in s.args]
        if s.op in ("lane_id", "size"):
            want = I32
        elif s.op.startswith("shfl"):
            if types[0].is_bool or types[1] != I32:
                raise self.error(f"'subgroup_{s.op}' shuffles a number by an i32 lane, not {types}")
            self.not_small(types[0], f"the value of 'subgroup_{s.op}'")
            want = types[0]
        else:
            if types[0] != BOOL:
                raise self.error(f"'subgroup_{s.op}' takes a bool, not {types[0]}")
            want = U32 if s.op == "ballot" else BOOL
        if s.result.type != want:
            raise self.error(f"'subgroup_{s.op}' yields {want}, not {s.result.type}")
        self.define(s.result)

    def visit_SyncWarp(self, s: SyncWarp) -> None:
        self.kernel_only("syncwarp")

    def visit_GridSync(self, s: GridSync) -> None:
        self.kernel_only("grid_sync")

    def visit_Clock(self, s: Clock) -> None:
        if s.result.type != U64:
            raise self.error("clock yields u64 microseconds")
        self.define(s.result)

    def visit_MakeTuple(self, s: MakeTuple) -> None:
        ty = s.result.type
        if not isinstance(ty, TupleType):
            raise self.error(f"make_tuple defines a tuple, not {ty}")
        self.check_tuple_type(ty)
        got = tuple(self.scalar(v, "a tuple element") for v in s.elems)
        if got != ty.elems:
            raise self.error(f"make_tuple of ({', '.join(map(str, got))}) does not give {ty}")
        self.define(s.result)

    def visit_Extract(self, s: Extract) -> None:
        self.use(s.tuple)
        ty = s.tuple.type
        if not isinstance(ty, TupleType):
            raise self.error(f"extract needs a tuple, got {ty}")
        if not 0 <= s.index < len(ty.elems):
            raise self.error(f"extract index {s.index} is out of range for {ty}")
        if s.result.type != ty.elems[s.index]:
            raise self.error(f"element {s.index} of {ty} is {ty.elems[s.index]}, not {s.result.type}")
        self.define(s.result)

    def visit_Fence(self, s: Fence) -> None:
        return None

    def visit_Backoff(self, s: Backoff) -> None:
        if self.scalar(s.nanos, "backoff duration") != U32:
            raise self.error("backoff takes a u32 number of nanoseconds")
        if s.doorbell is not None:
            assert s.word is not None and s.expected is not None
            array = s.doorbell.type
            if not (
                isinstance(array, ArrayType) and array.elem == U32 and array.space == AddressSpace.GLOBAL
            ):
                raise self.error("a backoff's doorbell is a word of an array<u32, global>")
            if self.scalar(s.word, "doorbell index") not in (I32, U32):
                raise self.error("a backoff's doorbell index is an i32 or u32")
            if self.scalar(s.expected, "doorbell value") != U32:
                raise self.error("a backoff's expected doorbell value is a u32")

    def visit_Wake(self, s: Wake) -> None:
        array = s.array.type
        if not (isinstance(array, ArrayType) and array.elem == U32 and array.space == AddressSpace.GLOBAL):
            raise self.error("a wake's doorbell is a word of an array<u32, global>")
        if self.scalar(s.word, "doorbell index") not in (I32, U32):
            raise self.error("a wake's doorbell index is an i32 or u32")

    # --- control flow ---

    def visit_If(self, s: If) -> None:
        if self.scalar(s.cond, "if condition") != BOOL:
            raise self.error(f"if condition must be bool, got {s.cond.type}")
        self.region(s.then_body)
        self.region(s.else_body)

    def visit_Loop(self, s: Loop) -> None:
        self.region(s.body, in_loop=True)

    def visit_ForRange(self, s: ForRange) -> None:
        self.var(s.var)
        if not s.var.type.is_int:
            raise self.error(f"loop variable ${s.var.name} must be an integer")
        self.not_small(s.var.type, f"loop variable ${s.var.name}")
        for v, what in ((s.start, "start"), (s.stop, "stop"), (s.step, "step")):
            self.scalar(v, f"range {what}")
            if v.type != s.var.type:
                raise self.error(f"range {what} has type {v.type}, loop variable {s.var.type}")
        self.region(s.body, in_loop=True)

    def visit_Break(self, s: Break) -> None:
        if not self.loop_depth:
            raise self.error("'break' outside a loop")

    def visit_Continue(self, s: Continue) -> None:
        if not self.loop_depth:
            raise self.error("'continue' outside a loop")

    def visit_Return(self, s: Return) -> None:
        expected = self.fn.return_type
        if s.value is None:
            if expected != VOID:
                raise self.error(f"return without a value in a function returning {expected}")
            return
        if isinstance(expected, TupleType):
            self.use(s.value)
        else:
            self.scalar(s.value, "returned value")
        if s.value.type != expected:
            raise self.error(f"returns {s.value.type}, but the function returns {expected}")


def _fits(v: object, ty: ScalarType) -> bool:
    """Whether the literal ``v`` is a value of ``ty`` (range included)."""
    if ty.is_bool:
        return isinstance(v, bool)
    if ty.is_int:
        return isinstance(v, int) and not isinstance(v, bool) and ty.min_value <= v <= ty.max_value
    return isinstance(v, float) and not float_overflows(v, ty)


def _show(value: object) -> str:
    """A constant for a message; huge integers by size (``repr`` refuses 4300+ digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"{'-' if value < 0 else ''}(an integer of {value.bit_length()} bits)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _array_compatible(arg: object, param: object) -> bool:
    """Arrays pass to funcs by reference; a func's array parameter accepts any size."""
    return (
        isinstance(arg, ArrayType)
        and isinstance(param, ArrayType)
        and arg.elem == param.elem
        and arg.space == param.space
        and param.size is None
        and arg.ndim == param.ndim
    )


def _always_returns(body: tuple[Stmt, ...]) -> bool:
    for stmt in body:
        if isinstance(stmt, Return):
            return True
        if isinstance(stmt, If) and _always_returns(stmt.then_body) and _always_returns(stmt.else_body):
            return True
        if isinstance(stmt, Loop) and not _breaks_out(stmt.body):
            return True
    return False


def _breaks_out(body: tuple[Stmt, ...]) -> bool:
    """True if a ``break`` in ``body`` (outside nested loops) leaves the loop."""
    for stmt in body:
        if isinstance(stmt, Break):
            return True
        if isinstance(stmt, If) and (_breaks_out(stmt.then_body) or _breaks_out(stmt.else_body)):
            return True
    return False


__all__ = ["verify", "StructType"]

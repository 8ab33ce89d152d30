"""A builder for RingIR functions: append statements, open regions with ``with``.

    fb = FunctionBuilder("saxpy", "kernel", [("a", F32), ("x", ArrayType(F32))])
    a, x = fb.params
    i = fb.thread_index("global_id", 0)
    with fb.if_(fb.compare("lt", i, n)):
        ...
    with fb.else_():
        ...
    fn = fb.finish()

The builder does no type checking beyond computing result types; the
verifier checks the finished module.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ringkernel.ringir.diagnostics import SourceLoc
from ringkernel.ringir.nodes import (
    MATH_PREDICATES,
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
    GridSync,
    If,
    Load,
    LoadVar,
    LocalArray,
    LocalVar,
    Loop,
    MakeTuple,
    MathCall,
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
)
from ringkernel.ringir.types import (
    BOOL,
    I32,
    VOID,
    AddressSpace,
    ArrayType,
    ScalarType,
    TupleType,
    Type,
)


class FunctionBuilder:
    """Builds one :class:`Function`; ``loc`` is stamped on every new statement."""

    def __init__(
        self,
        name: str,
        kind: str,
        params: Sequence[tuple[str, Type]] = (),
        return_type: Type = VOID,
        loc: SourceLoc | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.params = tuple(Value(n, t) for n, t in params)
        self.return_type = return_type
        self.fn_loc = loc
        self.loc: SourceLoc | None = loc
        self._regions: list[list[Stmt]] = [[]]
        self._locals: dict[str, LocalVar] = {}
        self._counter = 0
        self._hoisted: list[Stmt] = []  # statements that open the body (const_array)

    # --- values and locals ---

    def fresh(self, ty: Type) -> Value:
        value = Value(str(self._counter), ty)
        self._counter += 1
        return value

    def local(self, name: str, ty: ScalarType) -> LocalVar:
        """The local named ``name``, declared on first use."""
        var = self._locals.get(name)
        if var is None:
            var = self._locals[name] = LocalVar(name, ty)
        return var

    def has_local(self, name: str) -> bool:
        return name in self._locals

    # --- statements ---

    def emit(self, stmt: Stmt) -> Stmt:
        self._regions[-1].append(stmt)
        return stmt

    def _define(self, cls: type, ty: Type, *args: object) -> Value:
        result = self.fresh(ty)
        self.emit(cls(result, *args, loc=self.loc))
        return result

    def const(self, value: bool | int | float, ty: ScalarType) -> Value:
        return self._define(Const, ty, value)

    def unary(self, op: str, operand: Value) -> Value:
        return self._define(Unary, operand.type, op, operand)

    def binary(self, op: str, lhs: Value, rhs: Value) -> Value:
        return self._define(Binary, lhs.type, op, lhs, rhs)

    def compare(self, op: str, lhs: Value, rhs: Value) -> Value:
        return self._define(Compare, BOOL, op, lhs, rhs)

    def cast(self, value: Value, ty: ScalarType) -> Value:
        return self._define(Cast, ty, value)

    def bitcast(self, value: Value, ty: ScalarType) -> Value:
        return self._define(Bitcast, ty, value)

    def subgroup(self, op: str, ty: Type, *args: Value) -> Value:
        return self._define(Subgroup, ty, op, tuple(args))

    def syncwarp(self) -> None:
        self.emit(SyncWarp(loc=self.loc))

    def grid_sync(self) -> None:
        self.emit(GridSync(loc=self.loc))

    def math(self, func: str, *args: Value) -> Value:
        result = BOOL if func in MATH_PREDICATES else args[0].type
        return self._define(MathCall, result, func, tuple(args))

    def call(self, callee: str, args: tuple[Value, ...], return_type: Type) -> Value | None:
        if return_type == VOID:
            self.emit(Call(None, callee, tuple(args), loc=self.loc))
            return None
        return self._define(Call, return_type, callee, tuple(args))

    def make_tuple(self, elems: tuple[Value, ...]) -> Value:
        ty = TupleType(tuple(e.type for e in elems))  # type: ignore[misc]
        return self._define(MakeTuple, ty, tuple(elems))

    def extract(self, value: Value, index: int) -> Value:
        assert isinstance(value.type, TupleType)
        return self._define(Extract, value.type.elems[index], value, index)

    def thread_index(self, kind: str, dim: int) -> Value:
        return self._define(ThreadIndex, I32, kind, dim)

    def shared_array(self, elem: ScalarType, size: int | None, shape: tuple[int, ...] | None = None) -> Value:
        """A shared array of ``size`` elements (``shape`` if N-d); None: dynamic, sized per launch."""
        return self._define(SharedArray, ArrayType(elem, AddressSpace.SHARED, size, shape))

    def local_array(
        self, elem: ScalarType, size: int, shape: tuple[int, ...] | None = None, *, hoist: bool = False
    ) -> Value:
        """A per-work-item array; ``hoist`` defines it at the top of the function, so a variable
        first assigned in a branch or loop (a memory-backed ``Vec``) is seen after it too."""
        if not hoist:
            return self._define(LocalArray, ArrayType(elem, AddressSpace.LOCAL, size, shape))
        result = self.fresh(ArrayType(elem, AddressSpace.LOCAL, size, shape))
        self._hoisted.append(LocalArray(result, loc=self.loc))
        return result

    def const_array(self, ty: ArrayType, data: tuple[bool | int | float, ...]) -> Value:
        """An embedded read-only array, defined at the top of the function so every region sees it."""
        result = self.fresh(ty)
        self._hoisted.append(ConstArray(result, data, loc=self.loc))
        return result

    def add_param(self, name: str, ty: Type) -> Value:
        """Appends a parameter after those given at construction (hidden array extents)."""
        value = Value(name, ty)
        self.params = (*self.params, value)
        return value

    def load(self, array: Value, index: Value) -> Value:
        assert isinstance(array.type, ArrayType)
        return self._define(Load, array.type.elem, array, index)

    def store(self, array: Value, index: Value, value: Value) -> None:
        self.emit(Store(array, index, value, loc=self.loc))

    def atomic(self, op: str, array: Value, index: Value, value: Value) -> Value:
        assert isinstance(array.type, ArrayType)
        return self._define(AtomicRMW, array.type.elem, op, array, index, value)

    def atomic_cas(self, array: Value, index: Value, expected: Value, desired: Value) -> Value:
        assert isinstance(array.type, ArrayType)
        return self._define(AtomicCAS, array.type.elem, array, index, expected, desired)

    def load_var(self, var: LocalVar) -> Value:
        return self._define(LoadVar, var.type, var)

    def store_var(self, var: LocalVar, value: Value) -> None:
        self.emit(StoreVar(var, value, loc=self.loc))

    def barrier(self) -> None:
        self.emit(Barrier(loc=self.loc))

    def break_(self) -> None:
        self.emit(Break(loc=self.loc))

    def continue_(self) -> None:
        self.emit(Continue(loc=self.loc))

    def return_(self, value: Value | None = None) -> None:
        self.emit(Return(value, loc=self.loc))

    # --- regions ---

    @contextmanager
    def _region(self) -> Iterator[list[Stmt]]:
        self._regions.append([])
        try:
            yield self._regions[-1]
        finally:
            self._regions.pop()

    @contextmanager
    def discarded(self) -> Iterator[None]:
        """Builds into a scratch region that is thrown away (to learn an expression's type)."""
        counter, declared, hoisted = self._counter, dict(self._locals), len(self._hoisted)
        with self._region():
            yield
        self._counter, self._locals = counter, declared
        del self._hoisted[hoisted:]

    @contextmanager
    def if_(self, cond: Value) -> Iterator[None]:
        loc = self.loc
        with self._region() as body:
            yield
        self.emit(If(cond, tuple(body), (), loc=loc))

    @contextmanager
    def else_(self) -> Iterator[None]:
        """Fills the else region of the ``If`` just closed in the current region."""
        current = self._regions[-1]
        node = current[-1] if current else None
        if not isinstance(node, If) or node.else_body:
            raise ValueError("else_() must directly follow an if_() block")
        current.pop()
        with self._region() as body:
            yield
        current.append(If(node.cond, node.then_body, tuple(body), loc=node.loc))

    @contextmanager
    def loop(self) -> Iterator[None]:
        loc = self.loc
        with self._region() as body:
            yield
        self.emit(Loop(tuple(body), loc=loc))

    @contextmanager
    def for_range(self, var: LocalVar, start: Value, stop: Value, step: Value) -> Iterator[None]:
        loc = self.loc
        with self._region() as body:
            yield
        self.emit(ForRange(var, start, stop, step, tuple(body), loc=loc))

    @property
    def block_is_terminated(self) -> bool:
        """True when the current region already ends in break/continue/return."""
        region = self._regions[-1]
        return bool(region) and isinstance(region[-1], (Break, Continue, Return))

    def finish(self) -> Function:
        if len(self._regions) != 1:
            raise ValueError("finish() called inside an open region")
        return Function(
            self.name,
            self.kind,
            self.params,
            self.return_type,
            tuple(self._locals.values()),
            (*self._hoisted, *self._regions[0]),
            loc=self.fn_loc,
        )

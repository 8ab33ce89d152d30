"""RingIR -> LLVM IR (``llvmlite.ir``), one NodeVisitor per function.

Structured regions become basic blocks; locals become allocas (promoted to
registers by the optimizer) and are zero-initialized so that no read is ever
undefined; SSA values map straight to LLVM values.  Everything that depends on
the target goes through a :class:`~ringkernel.lowering.llvm.targets.LLVMTarget`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from llvmlite import ir

from ringkernel.lowering.llvm import ops
from ringkernel.lowering.llvm.bounds import BoundsChecker, bounds_params
from ringkernel.lowering.llvm.targets import LLVMTarget
from ringkernel.ringir import (
    INT_MATH_FUNCS,
    MATH_PREDICATES,
    AddressSpace,
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
)
from ringkernel.ringir.diagnostics import SourceLoc
from ringkernel.ringir.passes.budget import CTRL_PARAM
from ringkernel.ringir.types import I64, U32, U64, VOID, ArrayType, ScalarType, TupleType, Type, as_scalar


def func_symbol(name: str) -> str:
    """Device functions get a prefix so they cannot clash with runtime or libm symbols."""
    return f"rk_func_{name}"


def build_ir_module(module: Module, target: LLVMTarget, name: str = "ringkernel") -> ir.Module:
    """Lowers every function of ``module`` into a fresh ``llvmlite.ir.Module``."""
    llmod = ir.Module(name=name)
    functions: dict[str, ir.Function] = {}
    for fn in module.functions:
        functions[fn.name] = _declare_function(llmod, target, fn)
    for fn in module.functions:
        FunctionLowerer(llmod, target, fn, functions).lower()
        if fn.is_kernel:
            target.finish_kernel(llmod, functions[fn.name])
    target.finish_module(llmod)
    return llmod


def _declare_function(llmod: ir.Module, target: LLVMTarget, fn: Function) -> ir.Function:
    params = [_param_type(target, p.type) for p in fn.params]
    names = [p.name for p in fn.params]
    if fn.is_kernel:
        hidden = target.hidden_kernel_params(fn)
        params += [ty for _, ty in hidden]
        names += [name for name, _ in hidden]
        symbol = target.kernel_symbol(fn)
    else:
        symbol = func_symbol(fn.name)
        if target.bounds_checks:
            hidden = bounds_params(fn)
            params += [ty for _, ty in hidden]
            names += [name for name, _ in hidden]
    ret = ir.VoidType() if fn.return_type == VOID else _return_type(fn.return_type)
    llfn = ir.Function(llmod, ir.FunctionType(ret, params), name=symbol)
    if not fn.is_kernel:
        llfn.linkage = "internal"
    for arg, name in zip(llfn.args, names):
        arg.name = name
        if name == CTRL_PARAM and not fn.is_kernel:
            # the budget poll's control block: its own buffer, never another argument, so
            # a handler's state stays in registers across a checked loop (issue 19)
            arg.add_attribute("noalias")
    return llfn


def _return_type(ty: Type) -> ir.Type:
    """A scalar, or a literal struct of scalars for a ``tuple<...>`` (returned in registers)."""
    if isinstance(ty, TupleType):
        return ir.LiteralStructType([ops.value_type(e) for e in ty.elems])
    return ops.value_type(as_scalar(ty))


def _param_type(target: LLVMTarget, ty: Type) -> ir.Type:
    if isinstance(ty, ArrayType):
        return ir.PointerType(addrspace=target.addrspace(ty.space))
    assert isinstance(ty, ScalarType)
    return ops.value_type(ty)


class FunctionLowerer(NodeVisitor):
    """Emits the body of one RingIR function into its declared LLVM function."""

    def __init__(
        self, module: ir.Module, target: LLVMTarget, fn: Function,
        functions: dict[str, ir.Function],
    ) -> None:
        self.module = module
        self.target = target
        self.fn = fn
        self.functions = functions
        self.llfn = functions[fn.name]
        self.builder = ir.IRBuilder(self.llfn.append_basic_block("entry"))
        self.values: dict[str, ir.Value] = {}
        self.slots: dict[str, ir.Value] = {}
        # (continue target, break target) of each enclosing loop
        self.loops: list[tuple[ir.Block, ir.Block]] = []
        self.bounds: BoundsChecker | None = None

    # --- helpers ---

    def memory_type(self, ty: ScalarType) -> ir.Type:
        """Array elements: as registers, except bool which is a byte (numpy's layout)."""
        return ir.IntType(8) if ty.is_bool else ops.value_type(ty)

    def value(self, v: Value) -> ir.Value:
        return self.values[v.name]

    def define(self, v: Value, llvalue: ir.Value) -> None:
        self.values[v.name] = llvalue

    def element(self, array: Value, index: Value) -> tuple[ir.Value, ScalarType]:
        ty = array.type
        assert isinstance(ty, ArrayType) and isinstance(index.type, ScalarType)
        idx = ops.cast(self.builder, self.value(index), index.type, _index_type(index.type))
        ptr = self.builder.gep(
            self.value(array), [idx], inbounds=True, source_etype=self.memory_type(ty.elem)
        )
        return ptr, ty.elem

    def access(
        self, array: Value, index: Value, loc: SourceLoc | None,
        emit: Callable[[], ir.Value | None],
    ) -> ir.Value | None:
        """``emit()`` (an access of ``array[index]``), bounds-checked if the target asks."""
        if self.bounds is None:
            return emit()
        return self.bounds.guard(array, index, loc, emit)

    def new_block(self, name: str) -> ir.Block:
        return self.llfn.append_basic_block(name)

    def branch_to(self, block: ir.Block) -> None:
        if not self.builder.block.is_terminated:
            self.builder.branch(block)

    # --- function ---

    def lower(self) -> None:
        for p, arg in zip(self.fn.params, self.llfn.args):
            self.values[p.name] = arg
        if self.target.bounds_checks:
            self.bounds = BoundsChecker(self, self.target.bounds_sites)
        for var in self.fn.locals:
            llty = ops.value_type(var.type)
            slot = self.builder.alloca(llty, name=var.name)
            self.builder.store(ir.Constant(llty, 0), slot)
            self.slots[var.name] = slot
        self.visit_block(self.fn.body)
        if not self.builder.block.is_terminated:
            if self.fn.return_type == VOID:
                self.builder.ret_void()
            else:
                self.builder.unreachable()

    def visit_block(self, body: tuple[Stmt, ...]) -> None:
        for stmt in body:
            if self.builder.block.is_terminated:
                return  # the rest of a region after break/continue/return never runs
            self.visit(stmt)

    # --- instructions ---

    def visit_Const(self, s: Const) -> None:
        ty = s.result.type
        assert isinstance(ty, ScalarType)
        value = int(s.value) if ty.is_bool else s.value
        if ty.is_float and ty.bits == 16:
            value = float(np.float16(value))  # LLVM takes only half constants it can hold exactly
        self.define(s.result, ir.Constant(ops.value_type(ty), value))

    def visit_Unary(self, s: Unary) -> None:
        self.define(s.result, ops.unary(self.builder, s.op, as_scalar(s.operand.type), self.value(s.operand)))

    def visit_Binary(self, s: Binary) -> None:
        self.define(
            s.result,
            ops.binary(self.builder, s.op, as_scalar(s.lhs.type), self.value(s.lhs), self.value(s.rhs)),
        )

    def visit_Compare(self, s: Compare) -> None:
        self.define(
            s.result,
            ops.compare(self.builder, s.op, as_scalar(s.lhs.type), self.value(s.lhs), self.value(s.rhs)),
        )

    def visit_Cast(self, s: Cast) -> None:
        self.define(
            s.result,
            ops.cast(self.builder, self.value(s.value), as_scalar(s.value.type), as_scalar(s.result.type)),
        )

    def visit_MathCall(self, s: MathCall) -> None:
        ty = s.result.type
        assert isinstance(ty, ScalarType)
        args = [self.value(a) for a in s.args]
        if s.func == "abs" and not ty.is_float:
            self.define(s.result, ops.int_abs(self.builder, ty, args[0]))
            return
        if s.func in MATH_PREDICATES:
            self.define(s.result, ops.float_test(self.builder, s.func, as_scalar(s.args[0].type), args[0]))
            return
        if s.func in INT_MATH_FUNCS:
            self.define(s.result, ops.int_bits(self.builder, s.func, ty, args[0]))
            return
        if s.func == "rsqrt" and self.target.name == "host":
            sqrt = self.target.math_function(self.module, "sqrt", ty)
            one = ir.Constant(ops.value_type(ty), 1.0)
            self.define(s.result, self.builder.fdiv(one, self.builder.call(sqrt, args)))
            return
        fn = self.target.math_function(self.module, s.func, ty)
        self.define(s.result, self.builder.call(fn, args))

    def visit_Subgroup(self, s: Subgroup) -> None:
        args = [self.value(a) for a in s.args]
        self.define(s.result, self.target.subgroup(self, s.op, args, as_scalar(s.result.type)))

    def visit_SyncWarp(self, s: SyncWarp) -> None:
        self.target.syncwarp(self)

    def visit_Call(self, s: Call) -> None:
        args = [self.value(a) for a in s.args]
        if self.bounds is not None:
            args += self.bounds.call_args(s.args)
        result = self.builder.call(self.functions[s.callee], args)
        if s.result is not None:
            self.define(s.result, result)

    def visit_MakeTuple(self, s: MakeTuple) -> None:
        agg: ir.Value = ir.Constant(_return_type(s.result.type), ir.Undefined)
        for i, elem in enumerate(s.elems):
            agg = self.builder.insert_value(agg, self.value(elem), i)
        self.define(s.result, agg)

    def visit_Extract(self, s: Extract) -> None:
        self.define(s.result, self.builder.extract_value(self.value(s.tuple), s.index))

    def visit_ThreadIndex(self, s: ThreadIndex) -> None:
        if s.kind != "global_id":
            self.define(s.result, self.target.thread_index(self, s.kind, s.dim))
            return
        b = self.builder
        block = self.target.thread_index(self, "block_id", s.dim)
        size = self.target.thread_index(self, "block_dim", s.dim)
        thread = self.target.thread_index(self, "thread_id", s.dim)
        self.define(s.result, b.add(b.mul(block, size), thread))

    def visit_SharedArray(self, s: SharedArray) -> None:
        self.define(s.result, self.target.shared_array(self, s))

    def visit_LocalArray(self, s: LocalArray) -> None:
        """An alloca in the entry block: one per call, however often a loop reaches it."""
        ty = s.result.type
        assert isinstance(ty, ArrayType) and ty.size is not None
        with self.builder.goto_entry_block():
            if self.builder.block.is_terminated:
                self.builder.position_before(self.builder.block.terminator)
            slot = self.builder.alloca(ir.ArrayType(self.memory_type(ty.elem), ty.size))
        slot.align = 16
        slot.type = ir.PointerType()  # llvmlite types the alloca; the lowering uses opaque pointers
        self.define(s.result, slot)

    def visit_ConstArray(self, s: ConstArray) -> None:
        """A private constant global holding the data, in the target's read-only memory."""
        ty = s.result.type
        assert isinstance(ty, ArrayType) and ty.size is not None
        elem = self.memory_type(ty.elem)
        data = [int(v) if ty.elem.is_bool else v for v in s.data]
        space = self.target.const_array_addrspace()
        name = f"rk_const_{self.fn.name}_{s.result.name}"
        gv = ir.GlobalVariable(self.module, ir.ArrayType(elem, ty.size), name, addrspace=space)
        gv.linkage = "internal"
        gv.global_constant = True
        gv.align = 16
        gv.initializer = ir.Constant(gv.value_type, [ir.Constant(elem, v) for v in data])
        gv.type = ir.PointerType(addrspace=space)  # the lowering uses opaque pointers
        self.define(s.result, gv)

    def visit_Load(self, s: Load) -> None:
        def emit() -> ir.Value:
            ptr, elem = self.element(s.array, s.index)
            value = self.builder.load(ptr, typ=self.memory_type(elem))
            if elem.is_bool:
                value = self.builder.icmp_unsigned("!=", value, ir.Constant(ir.IntType(8), 0))
            return value

        self.define(s.result, self.access(s.array, s.index, s.loc, emit))

    def visit_Store(self, s: Store) -> None:
        def emit() -> None:
            ptr, elem = self.element(s.array, s.index)
            value = self.value(s.value)
            if elem.is_bool:
                value = self.builder.zext(value, ir.IntType(8))
            self.builder.store(value, ptr)

        self.access(s.array, s.index, s.loc, emit)

    def visit_AtomicRMW(self, s: AtomicRMW) -> None:
        def emit() -> ir.Value:
            ptr, elem = self.element(s.array, s.index)
            if s.array.name == CTRL_PARAM:  # a budget poll's look at a flag (ringir.passes.budget)
                return self.target.poll_rmw(self, s.op, ptr, self.value(s.value), elem)
            space = _space(s.array)
            return self.target.atomic_rmw(self, s.op, ptr, self.value(s.value), elem, space)

        self.define(s.result, self.access(s.array, s.index, s.loc, emit))

    def visit_AtomicCAS(self, s: AtomicCAS) -> None:
        def emit() -> ir.Value:
            ptr, elem = self.element(s.array, s.index)
            expected, desired = self.value(s.expected), self.value(s.desired)
            if not elem.is_float:
                return self.target.cmpxchg(self, ptr, expected, desired, elem, _space(s.array))
            # LLVM's cmpxchg takes integers: swap the bits (docs/ir.md, AtomicCAS)
            bits = U32 if elem.bits == 32 else U64
            word = ops.value_type(bits)
            b = self.builder
            old = self.target.cmpxchg(self, ptr, b.bitcast(expected, word), b.bitcast(desired, word),
                                      bits, _space(s.array))
            return b.bitcast(old, expected.type)

        self.define(s.result, self.access(s.array, s.index, s.loc, emit))

    def visit_LoadVar(self, s: LoadVar) -> None:
        slot = self.slots[s.var.name]
        self.define(s.result, self.builder.load(slot, typ=ops.value_type(s.var.type)))

    # --- statements ---

    def visit_StoreVar(self, s: StoreVar) -> None:
        self.builder.store(self.value(s.value), self.slots[s.var.name])

    def visit_Barrier(self, s: Barrier) -> None:
        self.target.barrier(self)

    def visit_GridSync(self, s: GridSync) -> None:
        self.target.grid_sync(self)

    def visit_Bitcast(self, s: Bitcast) -> None:
        ty = s.result.type
        assert isinstance(ty, ScalarType)
        self.define(s.result, self.builder.bitcast(self.value(s.value), ops.value_type(ty)))

    def visit_Clock(self, s: Clock) -> None:
        self.define(s.result, self.target.clock_micros(self))

    def visit_Fence(self, s: Fence) -> None:
        self.builder.fence("seq_cst")

    def visit_Backoff(self, s: Backoff) -> None:
        bell = None
        if s.doorbell is not None:
            assert s.word is not None and s.expected is not None
            bell = (self.element(s.doorbell, s.word)[0], self.value(s.expected))
        self.target.backoff(self, self.value(s.nanos), bell)

    def visit_Wake(self, s: Wake) -> None:
        self.target.wake(self, self.element(s.array, s.word)[0])

    def visit_If(self, s: If) -> None:
        then_bb = self.new_block("if.then")
        else_bb = self.new_block("if.else") if s.else_body else None
        end_bb = self.new_block("if.end")
        self.builder.cbranch(self.value(s.cond), then_bb, else_bb or end_bb)
        self.builder.position_at_end(then_bb)
        self.visit_block(s.then_body)
        self.branch_to(end_bb)
        if else_bb is not None:
            self.builder.position_at_end(else_bb)
            self.visit_block(s.else_body)
            self.branch_to(end_bb)
        self.builder.position_at_end(end_bb)

    def visit_Loop(self, s: Loop) -> None:
        body_bb = self.new_block("loop.body")
        end_bb = self.new_block("loop.end")
        self.builder.branch(body_bb)
        self.builder.position_at_end(body_bb)
        self.loops.append((body_bb, end_bb))
        self.visit_block(s.body)
        self.loops.pop()
        self.branch_to(body_bb)
        self.builder.position_at_end(end_bb)

    def visit_ForRange(self, s: ForRange) -> None:
        """Python's ``range``: a hidden counter, so assigning the loop variable
        inside the body does not change the iteration.

        The loop counts the unsigned distance left to ``stop`` down by the
        step's magnitude and ends once it is at most one step: ``counter +
        step`` may overflow (``range(0, 2**31 - 1, 2**30)``) and wrap back to
        the loop side of ``stop``, the distance cannot.  It is also one compare
        an iteration, where testing the counter against ``stop`` for a step of
        unknown sign takes five.
        """
        b = self.builder
        ty = s.var.type
        llty = ops.value_type(ty)
        with b.goto_entry_block():
            counter = b.alloca(llty, name=f"{s.var.name}.counter")
            remaining = b.alloca(llty, name=f"{s.var.name}.remaining")
        start, stop, step = self.value(s.start), self.value(s.stop), self.value(s.step)
        zero = ir.Constant(llty, 0)
        if ty.kind == "int":
            up = b.icmp_signed(">", step, zero)
            down = b.icmp_signed("<", step, zero)
        else:
            up = b.icmp_unsigned("!=", step, zero)
            down = ir.Constant(ir.IntType(1), 0)
        below = ops.compare(b, "lt", ty, start, stop)
        above = ops.compare(b, "gt", ty, start, stop)
        enter = b.or_(b.and_(up, below), b.and_(down, above))
        magnitude = b.select(up, step, b.sub(zero, step))
        b.store(start, counter)
        b.store(b.select(up, b.sub(stop, start), b.sub(start, stop)), remaining)
        body_bb = self.new_block("for.body")
        latch_bb = self.new_block("for.latch")
        end_bb = self.new_block("for.end")
        b.cbranch(enter, body_bb, end_bb)
        b.position_at_end(body_bb)
        b.store(b.load(counter, typ=llty), self.slots[s.var.name])
        self.loops.append((latch_bb, end_bb))
        self.visit_block(s.body)
        self.loops.pop()
        self.branch_to(latch_bb)
        b.position_at_end(latch_bb)
        left = b.load(remaining, typ=llty)
        b.store(b.sub(left, magnitude), remaining)
        b.store(b.add(b.load(counter, typ=llty), step), counter)
        b.cbranch(b.icmp_unsigned(">", left, magnitude), body_bb, end_bb)
        b.position_at_end(end_bb)

    def visit_Break(self, s: Break) -> None:
        self.builder.branch(self.loops[-1][1])

    def visit_Continue(self, s: Continue) -> None:
        self.builder.branch(self.loops[-1][0])

    def visit_Return(self, s: Return) -> None:
        if s.value is None:
            self.builder.ret_void()
        else:
            self.builder.ret(self.value(s.value))


def _index_type(ty: ScalarType) -> ScalarType:
    """Indices widen to 64 bits, keeping their signedness."""
    return I64 if ty.kind == "int" else U64


def _space(array: Value) -> AddressSpace:
    """The memory an atomic's array lives in (targets may treat shared arrays more cheaply)."""
    ty = array.type
    return ty.space if isinstance(ty, ArrayType) else AddressSpace.GLOBAL

"""Target hooks: the few places where the host build and the NVPTX build differ.

The lowering in :mod:`ringkernel.lowering.llvm.lower` is target-neutral; it asks
a :class:`LLVMTarget` for thread indices, the barrier, shared arrays, math
functions, address spaces and how a kernel's entry is declared.  Adding a
target means writing one subclass, not editing the lowering.
"""

from __future__ import annotations

import hashlib
import platform
import re
import sys
from typing import TYPE_CHECKING

from llvmlite import ir

from ringkernel.lowering.llvm.bounds import BoundsSite, bounds_params
from ringkernel.lowering.llvm.host_atomics import plain_cmpxchg, plain_rmw
from ringkernel.ringir import MATH_FUNCS, AddressSpace, Function, GridSync, SharedArray, walk
from ringkernel.ringir.types import ArrayType, ScalarType

if TYPE_CHECKING:
    from ringkernel.lowering.llvm.lower import FunctionLowerer

I32 = ir.IntType(32)
PTR = ir.PointerType()

# The order of the host kernel's hidden index parameters (after the user's).
HOST_INDEX_PARAMS = ("thread_id", "block_id", "block_dim", "grid_dim")
# Name of the barrier the cpu runtime defines (see ringkernel.lowering.llvm.host_threads).
HOST_BARRIER_SYMBOL = "rk_cpu_barrier_wait"
# The grid barrier a cooperative cpu launch defines; it takes the block's barrier.
HOST_GRID_SYNC_SYMBOL = "rk_cpu_grid_sync"
# The PTX kernel parameter (after the user's) holding the grid barrier's word.
PTX_GRID_SYNC_PARAM = "rk.grid_sync"
_GENERATION_BIT = 0x80000000
SHARED_ALIGN = 16
_NVPTX_ADDRSPACE = {AddressSpace.SHARED: 3, AddressSpace.CONSTANT: 4, AddressSpace.LOCAL: 0}


def shared_layout(fn: Function) -> tuple[dict[str, int], int]:
    """Byte offset of every shared array of ``fn`` in its block's shared area, and the total.

    Each ``SharedArray`` statement is one static allocation (as CUDA's
    ``__shared__``), even inside a loop.
    """
    offsets: dict[str, int] = {}
    total = 0
    for stmt in walk(fn.body):
        if isinstance(stmt, SharedArray):
            ty = stmt.result.type
            assert isinstance(ty, ArrayType) and ty.size is not None
            offsets[stmt.result.name] = total
            size = ty.size * memory_type_size(ty.elem)
            total += (size + SHARED_ALIGN - 1) // SHARED_ALIGN * SHARED_ALIGN
    return offsets, total


def memory_type_size(ty: ScalarType) -> int:
    """Bytes one element takes in memory (bool is one byte, as in numpy)."""
    return 1 if ty.is_bool else ty.bits // 8


class LLVMTarget:
    """Hooks the lowering calls for target-specific code; subclasses fill them in."""

    name = ""
    atomic_ordering = "seq_cst"
    # Guard every array access (see ringkernel.lowering.llvm.bounds); host only.
    bounds_checks = False
    # With bounds_checks: the checked accesses, in site order (set by the target).
    bounds_sites: list[BoundsSite]

    def addrspace(self, space: AddressSpace) -> int:
        return 0

    def kernel_symbol(self, fn: Function) -> str:
        return fn.name

    def hidden_kernel_params(self, fn: Function) -> list[tuple[str, ir.Type]]:
        """Extra (name, type) parameters appended to a kernel's signature."""
        return []

    def finish_kernel(self, module: ir.Module, llfn: ir.Function) -> None:
        """Marks ``llfn`` as an entry point."""

    def finish_module(self, module: ir.Module) -> None:
        """Adds module-level flags or metadata."""

    def thread_index(self, fl: FunctionLowerer, kind: str, dim: int) -> ir.Value:
        raise NotImplementedError

    def barrier(self, fl: FunctionLowerer) -> None:
        raise NotImplementedError

    def grid_sync(self, fl: FunctionLowerer) -> None:
        """Waits for every work-item of the grid and orders global memory (``rk.grid_sync``)."""
        raise NotImplementedError

    def shared_array(self, fl: FunctionLowerer, stmt: SharedArray) -> ir.Value:
        raise NotImplementedError

    def math_function(self, module: ir.Module, func: str, ty: ScalarType) -> ir.Function:
        raise NotImplementedError

    def const_array_addrspace(self) -> int:
        """Where embedded read-only arrays (module-level numpy arrays) live."""
        return 0

    def clock_micros(self, fl: FunctionLowerer) -> ir.Value:
        """Wall-clock microseconds since the Unix epoch, as i64 (actor HLCs)."""
        raise NotImplementedError

    def subgroup(self, fl: FunctionLowerer, op: str, args: list[ir.Value], ty: ScalarType) -> ir.Value:
        """A RingIR ``Subgroup`` op (docs/ir.md) on this target's subgroups."""
        raise NotImplementedError

    def syncwarp(self, fl: FunctionLowerer) -> None:
        """Waits for the lanes of the subgroup (CUDA ``__syncwarp``)."""
        raise NotImplementedError

    def backoff(
        self, fl: FunctionLowerer, nanos: ir.Value, bell: tuple[ir.Value, ir.Value] | None = None
    ) -> None:
        """Lets an idle persistent loop sleep for about ``nanos`` (i32) nanoseconds; with a
        doorbell (word pointer, expected value) it may park until the word changes."""
        raise NotImplementedError

    def wake(self, fl: FunctionLowerer, word: ir.Value) -> None:
        """Wakes the threads parked on the doorbell ``word`` (a pointer); by default nothing:
        a target whose host cannot park on device memory has it poll instead."""

    def atomic_rmw(
        self, fl: FunctionLowerer, op: str, ptr: ir.Value, value: ir.Value, elem: ScalarType,
        space: AddressSpace = AddressSpace.GLOBAL,
    ) -> ir.Value:
        """The old value of ``*ptr`` after the RingIR atomic ``op``: an ``atomicrmw``.

        ``space`` is the array's memory (a target may do cheaper for shared arrays).
        """
        return fl.builder.atomic_rmw(atomic_rmw_op(op, elem), ptr, value, self.atomic_ordering)

    def poll_rmw(
        self, fl: FunctionLowerer, op: str, ptr: ir.Value, value: ir.Value, elem: ScalarType
    ) -> ir.Value:
        """A budget poll's atomic on its control block (``%rk.ctrl``): relaxed, since the
        flags it reads (``stop``, ``abort_at``) publish no data; a stronger order would make
        LLVM keep every state word in memory across the checked loop (docs/layout.md,
        "Budget checks").  Targets whose atomics need more (a scope) keep their own."""
        return fl.builder.atomic_rmw(atomic_rmw_op(op, elem), ptr, value, "monotonic")

    def cmpxchg(
        self, fl: FunctionLowerer, ptr: ir.Value, expected: ir.Value, desired: ir.Value,
        elem: ScalarType, space: AddressSpace = AddressSpace.GLOBAL,
    ) -> ir.Value:
        """The old value of ``*ptr`` after a compare-and-swap: a ``cmpxchg``."""
        ordering = self.atomic_ordering
        pair = fl.builder.cmpxchg(ptr, expected, desired, ordering, ordering)
        return fl.builder.extract_value(pair, 0)


_ATOMIC = {"and": "and", "or": "or", "xor": "xor", "exchange": "xchg", "inc": "uinc_wrap", "dec": "udec_wrap"}


def atomic_rmw_op(op: str, elem: ScalarType) -> str:
    """The ``atomicrmw`` operation of a RingIR atomic ``op`` on ``elem``."""
    if op in _ATOMIC:
        return _ATOMIC[op]
    if elem.is_float:
        return "f" + op  # fadd, fsub, fmin, fmax (maxnum: NaN is missing data)
    if op in ("add", "sub"):
        return op
    return ("u" + op) if elem.kind == "uint" else op


_FUTEX_SYSCALL = {"x86_64": 202, "aarch64": 98, "arm64": 98}  # SYS_futex by machine
_FUTEX_WAIT_PRIVATE = 128  # FUTEX_WAIT | FUTEX_PRIVATE_FLAG: waiter and waker share one process
_FUTEX_WAKE_PRIVATE = 129  # FUTEX_WAKE | FUTEX_PRIVATE_FLAG
_WAKE_ALL = 0x7FFFFFFF  # FUTEX_WAKE's count: every waiter


def _declare(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(ret, args), name=name)


def _float_type(ty: ScalarType) -> ir.Type:
    return ir.FloatType() if ty.bits == 32 else ir.DoubleType()


# LLVM intrinsics the host uses; the rest come from the C math library.
_HOST_INTRINSICS = {
    "sqrt": "llvm.sqrt", "exp": "llvm.exp", "log": "llvm.log", "sin": "llvm.sin",
    "cos": "llvm.cos", "floor": "llvm.floor", "ceil": "llvm.ceil", "fabs": "llvm.fabs",
    "abs": "llvm.fabs", "pow": "llvm.pow", "fma": "llvm.fma", "copysign": "llvm.copysign",
}
_LIBM = {"tan": "tan", "tanh": "tanh", "atan2": "atan2", "hypot": "hypot", "erf": "erf", "erfc": "erfc",
         "lgamma": "lgamma", "log1p": "log1p", "expm1": "expm1", "cbrt": "cbrt"}


class HostTarget(LLVMTarget):
    """The machine running Python; the cpu runtime JITs this build.

    A kernel gets hidden parameters after the user's: twelve i32 indices
    (thread_id, block_id, block_dim, grid_dim; x, y, z each), a pointer to the
    block's shared area and a pointer to the block's barrier.  The runtime's
    launch wrapper supplies them.

    ``bounds_checks=True`` guards every array access and adds the hidden
    parameters :func:`~ringkernel.lowering.llvm.bounds.bounds_params` names;
    ``bounds_sites`` then lists the checked accesses in site order.
    ``block`` (x, y, z) makes ``block_dim`` that constant: the build then
    runs only blocks of that shape.
    """

    name = "host"

    def __init__(self, bounds_checks: bool = False, blocks_on_one_thread: bool = False,
                 block: tuple[int, int, int] | None = None) -> None:
        self.layouts: dict[str, dict[str, int]] = {}
        # the launch's block shape when the build is specialized for it: block_dim is then
        # a constant, so work-item loops have trip counts LLVM can unroll and vectorize
        self.block = block
        self.site_starts: dict[str, int] = {}  # function -> its first bounds site
        self.site_twins: dict[str, str] = {}  # a copy of a function -> the function (same sites)
        self.bounds_checks = bounds_checks
        # Each block runs on one OS thread (plain and work-item-loop modes): shared
        # arrays are that thread's own, so their atomics can be plain (host_atomics).
        self.blocks_on_one_thread = blocks_on_one_thread
        self.bounds_sites: list[BoundsSite] = []

    def kernel_symbol(self, fn: Function) -> str:
        return host_kernel_symbol(fn.name)

    def hidden_kernel_params(self, fn: Function) -> list[tuple[str, ir.Type]]:
        self.layouts[fn.name] = shared_layout(fn)[0]
        names = [f"rk.{kind}.{axis}" for kind in HOST_INDEX_PARAMS for axis in "xyz"]
        hidden = [(n, I32) for n in names] + [("rk.shared", PTR), ("rk.barrier", PTR)]
        return hidden + (bounds_params(fn) if self.bounds_checks else [])

    def _hidden(self, fl: FunctionLowerer, index: int) -> ir.Value:
        return fl.llfn.args[len(fl.fn.params) + index]

    def thread_index(self, fl: FunctionLowerer, kind: str, dim: int) -> ir.Value:
        if kind == "block_dim" and self.block is not None:
            return ir.Constant(I32, self.block[dim])
        return self._hidden(fl, HOST_INDEX_PARAMS.index(kind) * 3 + dim)

    def barrier(self, fl: FunctionLowerer) -> None:
        wait = _declare(fl.module, HOST_BARRIER_SYMBOL, ir.VoidType(), [PTR])
        fl.builder.call(wait, [self._hidden(fl, 13)])

    def grid_sync(self, fl: FunctionLowerer) -> None:
        """The grid barrier of a cooperative launch, reached through the block's barrier
        (:mod:`ringkernel.lowering.llvm.host_threads`); its mutex orders memory.

        It returns non-zero once the launch is cancelled (Ctrl-C): the work-item
        then returns, so a kernel looping over grid_syncs ends (the verifier keeps
        grid_sync in kernels, where a return ends the work-item)."""
        b = fl.builder
        wait = _declare(fl.module, HOST_GRID_SYNC_SYMBOL, I32, [PTR])
        cancelled = b.call(wait, [self._hidden(fl, 13)])
        with b.if_then(b.icmp_unsigned("!=", cancelled, ir.Constant(I32, 0)), likely=False):
            b.ret_void()

    def shared_array(self, fl: FunctionLowerer, stmt: SharedArray) -> ir.Value:
        offset = self.layouts[fl.fn.name][stmt.result.name]
        base = self._hidden(fl, 12)
        return fl.builder.gep(
            base, [ir.Constant(ir.IntType(64), offset)], inbounds=True,
            source_etype=ir.IntType(8),
        )

    def subgroup(self, fl: FunctionLowerer, op: str, args: list[ir.Value], ty: ScalarType) -> ir.Value:
        """The cpu's subgroups have one lane (docs/backends-cpu.md): every work-item is its own
        subgroup, so lane 0 of 1, a shuffle gives the own value and a vote the own predicate."""
        if op == "lane_id":
            return ir.Constant(I32, 0)
        if op == "size":
            return ir.Constant(I32, 1)
        if op == "ballot":
            return fl.builder.zext(args[0], I32)
        return args[0]

    def syncwarp(self, fl: FunctionLowerer) -> None:
        return None  # a one-lane subgroup has nobody to wait for

    def math_function(self, module: ir.Module, func: str, ty: ScalarType) -> ir.Function:
        fty = _float_type(ty)
        arity = MATH_FUNCS[func]
        if func in _HOST_INTRINSICS:
            name = f"{_HOST_INTRINSICS[func]}.{'f32' if ty.bits == 32 else 'f64'}"
        else:
            name = _LIBM[func] + ("f" if ty.bits == 32 else "")
        return _declare(module, name, fty, [fty] * arity)

    def atomic_rmw(
        self, fl: FunctionLowerer, op: str, ptr: ir.Value, value: ir.Value, elem: ScalarType,
        space: AddressSpace = AddressSpace.GLOBAL,
    ) -> ir.Value:
        """A plain read-modify-write on a thread-private shared array, else ``atomicrmw``."""
        if self.blocks_on_one_thread and space == AddressSpace.SHARED:
            old = plain_rmw(fl.builder, atomic_rmw_op(op, elem), ptr, value, elem)
            if old is not None:
                return old
        return super().atomic_rmw(fl, op, ptr, value, elem, space)

    def cmpxchg(
        self, fl: FunctionLowerer, ptr: ir.Value, expected: ir.Value, desired: ir.Value,
        elem: ScalarType, space: AddressSpace = AddressSpace.GLOBAL,
    ) -> ir.Value:
        if self.blocks_on_one_thread and space == AddressSpace.SHARED and not elem.is_float:
            return plain_cmpxchg(fl.builder, ptr, expected, desired)
        return super().cmpxchg(fl, ptr, expected, desired, elem, space)

    def clock_micros(self, fl: FunctionLowerer) -> ir.Value:
        """``clock_gettime(CLOCK_REALTIME)``, the clock ``time.time_ns()`` reads."""
        b = fl.builder
        i64 = ir.IntType(64)
        timespec = ir.LiteralStructType([i64, i64])
        with b.goto_entry_block():
            slot = b.alloca(timespec, name="rk.timespec")
        gettime = _declare(fl.module, "clock_gettime", I32, [I32, PTR])
        b.call(gettime, [ir.Constant(I32, 0), slot])
        sec = b.load(b.gep(slot, [ir.Constant(I32, 0), ir.Constant(I32, 0)], source_etype=timespec), typ=i64)
        nsec = b.load(b.gep(slot, [ir.Constant(I32, 0), ir.Constant(I32, 1)], source_etype=timespec), typ=i64)
        return b.add(b.mul(sec, ir.Constant(i64, 1_000_000)), b.sdiv(nsec, ir.Constant(i64, 1000)))

    def backoff(
        self, fl: FunctionLowerer, nanos: ir.Value, bell: tuple[ir.Value, ir.Value] | None = None
    ) -> None:
        """Parks on the doorbell with Linux ``futex`` (FUTEX_WAIT_PRIVATE, ``nanos`` at most):
        the thread costs nothing until the host changes the word and wakes it, and the
        kernel returns at once if the word no longer holds ``expected``.  Without a
        doorbell (or off Linux), ``usleep``; ``nanos`` 0 is ``sched_yield``."""
        futex = _FUTEX_SYSCALL.get(platform.machine()) if sys.platform.startswith("linux") else None
        if bell is not None and futex is not None:
            b = fl.builder
            i64 = ir.IntType(64)
            with b.goto_entry_block():
                slot = b.alloca(i64, size=2, name="rk.park")  # struct timespec {tv_sec, tv_nsec}
            wide, billion = b.zext(nanos, i64), ir.Constant(i64, 1_000_000_000)
            b.store(b.udiv(wide, billion), slot)  # a u32 of ns may exceed one second: tv_nsec must not
            b.store(b.urem(wide, billion), b.gep(slot, [ir.Constant(I32, 1)], source_etype=i64))
            syscall = fl.module.globals.get("syscall") or ir.Function(
                fl.module, ir.FunctionType(i64, [i64], var_arg=True), name="syscall"
            )
            word, expected = bell
            # variadic: every integer goes as a full 64-bit register
            op = ir.Constant(i64, _FUTEX_WAIT_PRIVATE)
            b.call(syscall, [ir.Constant(i64, futex), word, op, b.zext(expected, i64), slot])
            return
        b = fl.builder
        with b.if_else(b.icmp_unsigned("==", nanos, ir.Constant(I32, 0))) as (zero, wait):
            with zero:  # a spinning thread lets another one on its CPU run first
                b.call(_declare(fl.module, "sched_yield", I32, []), [])
            with wait:
                b.call(_declare(fl.module, "usleep", I32, [I32]), [b.udiv(nanos, ir.Constant(I32, 1000))])

    def wake(self, fl: FunctionLowerer, word: ir.Value) -> None:
        """Linux ``futex`` FUTEX_WAKE_PRIVATE of every waiter on ``word``; nothing off Linux."""
        futex = _FUTEX_SYSCALL.get(platform.machine()) if sys.platform.startswith("linux") else None
        if futex is None:
            return
        i64 = ir.IntType(64)
        syscall = fl.module.globals.get("syscall") or ir.Function(
            fl.module, ir.FunctionType(i64, [i64], var_arg=True), name="syscall"
        )
        op, count = ir.Constant(i64, _FUTEX_WAKE_PRIVATE), ir.Constant(i64, _WAKE_ALL)
        fl.builder.call(syscall, [ir.Constant(i64, futex), word, op, count])


_PTX_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_$]*|[_$%][A-Za-z0-9_$]+")


def ptx_kernel_symbol(kernel_name: str) -> str:
    """A kernel's PTX entry name: its own name when PTX can spell it, else a mangled one.

    PTX identifiers are ASCII letters, digits, ``_`` and ``$``; RingIR names may
    hold dots (ptxas rejects them) and any Unicode letter (LLVM's NVPTX printer
    aborts the whole process on those).  The hash keeps mangled names distinct.
    """
    if _PTX_IDENTIFIER.fullmatch(kernel_name):
        return kernel_name
    safe = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in kernel_name)
    digest = hashlib.sha256(kernel_name.encode("utf-8")).hexdigest()[:8]
    return f"rk_entry_{safe}_{digest}"


def host_kernel_symbol(kernel_name: str) -> str:
    """The host symbol of a kernel's body (its launch wrapper is the runtime's)."""
    return f"rk_kernel_{kernel_name}"


_SREG = {"thread_id": "tid", "block_id": "ctaid", "block_dim": "ntid", "grid_dim": "nctaid"}
_FAST = {"exp", "log", "sin", "cos", "tan", "pow"}


class NvptxTarget(LLVMTarget):
    """NVIDIA GPUs through LLVM's NVPTX backend and libdevice.

    Global arrays live in addrspace(1), shared arrays are addrspace(3)
    module globals, kernels use the ``ptx_kernel`` calling convention, and
    math calls go to libdevice's ``__nv_*`` functions (``__nv_fast_*`` with
    ``fastmath``).
    """

    name = "nvptx"
    atomic_ordering = "monotonic"

    def __init__(
        self, fastmath: bool = False, system_scope_atomics: bool = False, arch_number: int = 80
    ) -> None:
        self.fastmath = fastmath
        self.arch_number = arch_number
        # Persistent actors share queue words with the host CPU through mapped
        # memory; PTX only orders atomics against the host at system scope.
        self.system_scope_atomics = system_scope_atomics

    def addrspace(self, space: AddressSpace) -> int:
        """Shared 3, constant 4, local arrays are allocas (generic 0), global 1."""
        return _NVPTX_ADDRSPACE.get(space, 1)

    def kernel_symbol(self, fn: Function) -> str:
        return ptx_kernel_symbol(fn.name)

    def finish_kernel(self, module: ir.Module, llfn: ir.Function) -> None:
        llfn.calling_convention = "ptx_kernel"

    def finish_module(self, module: ir.Module) -> None:
        """libdevice asks ``__nvvm_reflect("__CUDA_FTZ")`` whether to flush denormals."""
        flag = module.add_metadata([
            ir.Constant(I32, 4), ir.MetaDataString(module, "nvvm-reflect-ftz"),
            ir.Constant(I32, int(self.fastmath)),
        ])
        module.add_named_metadata("llvm.module.flags", flag)

    def thread_index(self, fl: FunctionLowerer, kind: str, dim: int) -> ir.Value:
        name = f"llvm.nvvm.read.ptx.sreg.{_SREG[kind]}.{'xyz'[dim]}"
        return fl.builder.call(_declare(fl.module, name, I32, []), [])

    def barrier(self, fl: FunctionLowerer) -> None:
        fl.builder.call(_declare(fl.module, "llvm.nvvm.barrier0", ir.VoidType(), []), [])

    def hidden_kernel_params(self, fn: Function) -> list[tuple[str, ir.Type]]:
        """A kernel that syncs the grid takes the grid barrier's word (u32, global memory,
        zeroed by the launcher) after the user's parameters."""
        if any(isinstance(s, GridSync) for s in walk(fn.body)):
            return [(PTX_GRID_SYNC_PARAM, ir.PointerType(addrspace=1))]
        return []

    def grid_sync(self, fl: FunctionLowerer) -> None:
        """Cooperative groups' grid barrier over one global word.

        After a block barrier, thread 0 of each block adds 1 to the word (block
        0 adds ``0x80000000 - (blocks - 1)``), so the word's top bit (the
        generation) flips exactly when the last block arrives and its low bits
        return to 0; each thread 0 spins until it sees the flip.
        ``membar.gl`` before the add publishes the block's writes, the one
        after the spin makes the others' writes visible; a block barrier
        then releases the block.  The launcher zeroes the word and checks
        that every block can be resident at once (a cooperative launch).
        """
        b = fl.builder
        word = fl.llfn.args[len(fl.fn.params)]
        self.barrier(fl)
        membar = _declare(fl.module, "llvm.nvvm.membar.gl", ir.VoidType(), [])
        sreg = [self.thread_index(fl, kind, d) for kind in ("thread_id", "block_id") for d in range(3)]
        first_thread = b.icmp_unsigned("==", b.or_(b.or_(sreg[0], sreg[1]), sreg[2]), ir.Constant(I32, 0))
        with b.if_then(first_thread):
            first_block = b.icmp_unsigned("==", b.or_(b.or_(sreg[3], sreg[4]), sreg[5]), ir.Constant(I32, 0))
            dims = [self.thread_index(fl, "grid_dim", d) for d in range(3)]
            blocks = b.mul(b.mul(dims[0], dims[1]), dims[2])
            master = b.sub(ir.Constant(I32, _GENERATION_BIT + 1), blocks)
            add = b.select(first_block, master, ir.Constant(I32, 1))
            b.call(membar, [])
            old = b.atomic_rmw("add", word, add, "monotonic")
            spin = fl.new_block("rk.grid_sync.spin")
            done = fl.new_block("rk.grid_sync.done")
            b.branch(spin)
            b.position_at_end(spin)
            now = b.load_atomic(word, "monotonic", 4, typ=I32)
            flipped = b.and_(b.xor(old, now), ir.Constant(I32, _GENERATION_BIT))
            b.cbranch(b.icmp_unsigned("!=", flipped, ir.Constant(I32, 0)), done, spin)
            b.position_at_end(done)
            b.call(membar, [])
        self.barrier(fl)

    def const_array_addrspace(self) -> int:
        return 4  # CUDA constant memory

    def shared_array(self, fl: FunctionLowerer, stmt: SharedArray) -> ir.Value:
        ty = stmt.result.type
        assert isinstance(ty, ArrayType) and ty.size is not None
        elem = fl.memory_type(ty.elem)
        name = f"rk_shared_{fl.fn.name}_{stmt.result.name}"
        gv = ir.GlobalVariable(fl.module, ir.ArrayType(elem, ty.size), name, addrspace=3)
        gv.linkage = "internal"
        gv.align = SHARED_ALIGN
        gv.initializer = ir.Constant(gv.value_type, ir.Undefined)
        # llvmlite gives globals a typed pointer; the lowering uses opaque pointers.
        gv.type = ir.PointerType(addrspace=3)
        return gv

    def math_function(self, module: ir.Module, func: str, ty: ScalarType) -> ir.Function:
        """libdevice, except where a PTX instruction is exact (sqrt.rn, floor, fma, ...).

        libdevice's ``__nv_sqrtf`` is approximate unless NVVM's prec-sqrt
        reflection is set, which LLVM's NVVMReflect does not offer.
        """
        fty = _float_type(ty)
        arity = MATH_FUNCS[func]
        base = "fabs" if func == "abs" else func
        exact = base in ("floor", "ceil", "fabs", "fma") or (base == "sqrt" and not self.fastmath)
        if exact:
            name = f"llvm.{base}.{'f32' if ty.bits == 32 else 'f64'}"
        elif self.fastmath and ty.bits == 32 and base in _FAST:
            name = f"__nv_fast_{base}f"
        else:
            name = f"__nv_{base}{'f' if ty.bits == 32 else ''}"
        return _declare(module, name, fty, [fty] * arity)

    def subgroup(self, fl: FunctionLowerer, op: str, args: list[ir.Value], ty: ScalarType) -> ir.Value:
        """Warp intrinsics with the full mask (every lane of the warp takes part), 32 lanes.

        ``shfl.sync``'s clamp operand gives CUDA's out-of-range rules: up (c = 0)
        keeps lanes below the delta, down/bfly/idx (c = 31) stay in the warp.
        64-bit values shuffle as two 32-bit halves.
        """
        b = fl.builder
        full = ir.Constant(I32, 0xFFFFFFFF)
        if op == "lane_id":
            return b.call(_declare(fl.module, "llvm.nvvm.read.ptx.sreg.laneid", I32, []), [])
        if op == "size":
            return ir.Constant(I32, 32)
        if op in ("ballot", "any", "all"):
            ret = I32 if op == "ballot" else ir.IntType(1)
            vote = _declare(fl.module, f"llvm.nvvm.vote.{op}.sync", ret, [I32, ir.IntType(1)])
            return b.call(vote, [full, args[0]])
        mode = {"shfl": "idx", "shfl_up": "up", "shfl_down": "down", "shfl_xor": "bfly"}[op]
        clamp = ir.Constant(I32, 0 if mode == "up" else 0x1F)
        value, lane = args

        def shuffle(word: ir.Value) -> ir.Value:
            kind = "f32" if isinstance(word.type, ir.FloatType) else "i32"
            name = f"llvm.nvvm.shfl.sync.{mode}.{kind}"
            fn = _declare(fl.module, name, word.type, [I32, word.type, I32, I32])
            return b.call(fn, [full, word, lane, clamp])

        if ty.bits == 32:
            return shuffle(value)
        i64 = ir.IntType(64)
        bits = b.bitcast(value, i64) if ty.is_float else value
        low = shuffle(b.trunc(bits, I32))
        high = shuffle(b.trunc(b.lshr(bits, ir.Constant(i64, 32)), I32))
        joined = b.or_(b.shl(b.zext(high, i64), ir.Constant(i64, 32)), b.zext(low, i64))
        return b.bitcast(joined, ir.DoubleType()) if ty.is_float else joined

    def syncwarp(self, fl: FunctionLowerer) -> None:
        sync = _declare(fl.module, "llvm.nvvm.bar.warp.sync", ir.VoidType(), [I32])
        fl.builder.call(sync, [ir.Constant(I32, 0xFFFFFFFF)])

    def clock_micros(self, fl: FunctionLowerer) -> ir.Value:
        """``%globaltimer`` counts nanoseconds of wall time on the GPU."""
        i64 = ir.IntType(64)
        ns = fl.builder.call(_declare(fl.module, "llvm.nvvm.read.ptx.sreg.globaltimer", i64, []), [])
        return fl.builder.udiv(ns, ir.Constant(i64, 1000))

    def backoff(
        self, fl: FunctionLowerer, nanos: ir.Value, bell: tuple[ir.Value, ir.Value] | None = None
    ) -> None:
        """``nanosleep.u32`` on sm_70 and newer; older GPUs have no sleep, so they poll.

        (LLVM aborts the whole process when asked for nanosleep below sm_70.)
        """
        if self.arch_number < 70:
            return
        sleep = _declare(fl.module, "llvm.nvvm.nanosleep", ir.VoidType(), [I32])
        fl.builder.call(sleep, [nanos])

    def poll_rmw(
        self, fl: FunctionLowerer, op: str, ptr: ir.Value, value: ir.Value, elem: ScalarType
    ) -> ir.Value:
        """Relaxed already; through :meth:`atomic_rmw` so a system-scope build sees host flags."""
        return self.atomic_rmw(fl, op, ptr, value, elem)

    def atomic_rmw(
        self, fl: FunctionLowerer, op: str, ptr: ir.Value, value: ir.Value, elem: ScalarType,
        space: AddressSpace = AddressSpace.GLOBAL,
    ) -> ir.Value:
        """Default (GPU) scope ``atomicrmw``, or relaxed ``atom.sys`` through NVVM intrinsics.

        LLVM's NVPTX backend never gives an ``atomicrmw`` system scope, so the
        system-scope build calls ``llvm.nvvm.atomic.*.gen.*.sys``.  Unsigned
        min/max and inc/dec have no such intrinsic and become a system-scope CAS loop.
        """
        if not self.system_scope_atomics or (elem.is_float and op in ("min", "max")):
            # PTX has no f32 min/max atomic; LLVM expands ``atomicrmw
            # fmin/fmax`` into an ``atom.sys`` CAS loop: system scope either way.
            return super().atomic_rmw(fl, op, ptr, value, elem)
        b = fl.builder
        gptr = b.addrspacecast(ptr, PTR)
        if op == "sub":
            op, value = "add", (b.fneg(value) if elem.is_float else b.neg(value))
        if op == "exchange" and elem.is_float:
            ity = ir.IntType(elem.bits)
            old = _sys_atomic(fl, "exch", gptr, [b.bitcast(value, ity)], ity)
            return b.bitcast(old, value.type)
        if op == "add" or (not elem.is_float and op in ("and", "or", "xor", "exchange")):
            name = "exch" if op == "exchange" else op
            return _sys_atomic(fl, name, gptr, [value], value.type, elem.is_float)
        if elem.kind == "int" and op in ("min", "max"):
            return _sys_atomic(fl, op, gptr, [value], value.type)
        return self._unsigned_cas_loop(fl, op, gptr, value)

    def cmpxchg(
        self, fl: FunctionLowerer, ptr: ir.Value, expected: ir.Value, desired: ir.Value,
        elem: ScalarType, space: AddressSpace = AddressSpace.GLOBAL,
    ) -> ir.Value:
        if not self.system_scope_atomics:
            return super().cmpxchg(fl, ptr, expected, desired, elem)
        gptr = fl.builder.addrspacecast(ptr, PTR)
        return _sys_atomic(fl, "cas", gptr, [expected, desired], expected.type)

    def _unsigned_cas_loop(
        self, fl: FunctionLowerer, op: str, gptr: ir.Value, value: ir.Value
    ) -> ir.Value:
        """Unsigned ``min``/``max`` and ``inc``/``dec`` have no system-scope intrinsic: retry
        ``atom.sys.cas`` on the value :func:`_cas_update` computes."""
        b = fl.builder
        start = b.block
        # a relaxed read: the word may change under it, the CAS below catches that
        first = b.load_atomic(gptr, "monotonic", value.type.width // 8, typ=value.type)
        retry = fl.new_block("rk.cas.retry")
        done = fl.new_block("rk.cas.done")
        b.branch(retry)
        b.position_at_end(retry)
        old = b.phi(value.type)
        old.add_incoming(first, start)
        seen = _sys_atomic(fl, "cas", gptr, [old, _cas_update(b, op, old, value)], value.type)
        same = b.icmp_unsigned("==", seen, old)
        old.add_incoming(seen, b.block)
        b.cbranch(same, done, retry)
        b.position_at_end(done)
        return seen


def _cas_update(b: ir.IRBuilder, op: str, old: ir.Value, value: ir.Value) -> ir.Value:
    """The value an unsigned ``min``/``max``/``inc``/``dec`` stores over ``old``."""
    zero = ir.Constant(value.type, 0)
    one = ir.Constant(value.type, 1)
    if op == "inc":
        return b.select(b.icmp_unsigned(">=", old, value), zero, b.add(old, one))
    if op == "dec":
        wraps = b.or_(b.icmp_unsigned("==", old, zero), b.icmp_unsigned(">", old, value))
        return b.select(wraps, value, b.sub(old, one))
    keep = b.icmp_unsigned("<=" if op == "min" else ">=", old, value)
    return b.select(keep, old, value)


def _type_suffix(ty: ir.Type) -> str:
    if isinstance(ty, ir.FloatType):
        return "f32"
    if isinstance(ty, ir.DoubleType):
        return "f64"
    return f"i{ty.width}"


def _sys_atomic(
    fl: FunctionLowerer, op: str, gptr: ir.Value, args: list[ir.Value], ty: ir.Type,
    is_float: bool = False,
) -> ir.Value:
    """Calls ``llvm.nvvm.atomic.<op>.gen.<i|f>.sys`` (relaxed, ``atom.sys``) on a generic pointer."""
    name = f"llvm.nvvm.atomic.{op}.gen.{'f' if is_float else 'i'}.sys.{_type_suffix(ty)}.p0"
    fn = _declare(fl.module, name, ty, [PTR] + [ty] * len(args))
    return fl.builder.call(fn, [gptr, *args])

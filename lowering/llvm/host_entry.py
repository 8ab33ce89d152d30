"""The native launch wrapper of a kernel: one ctypes call runs a range of blocks.

``int32 rk_launch(void **argv, int32 dims[6], int64 first_block, int64 end_block,
int32 *cancel)``

``argv[i]`` points at argument ``i`` (an array's data, or a scalar's bytes);
two more entries follow the arguments: the arrays' lengths (one int64 per
parameter, or null), which private copies of atomic arrays
(:mod:`ringkernel.lowering.llvm.host_privatize`) and bounds checks read,
and the violation record of a bounds-checked build (``checked``, see
:mod:`ringkernel.lowering.llvm.bounds`).  ``dims`` is grid x/y/z
then block x/y/z.  Blocks are numbered x fastest.  Before each block the
wrapper reads ``*cancel``; once the host sets it (Ctrl-C) no further block
starts, so a huge launch can be interrupted.

- Without ``barrier()`` the wrapper is a tight loop over blocks and over the
  threads of each block (x innermost) calling the inlined kernel body, which
  LLVM can vectorize.  Work-items of one block run one after another, which
  is a valid schedule when they never wait for each other.
- With ``barrier()``, when :mod:`ringkernel.ringir.passes.workitem_loops`
  could rewrite the kernel, one call of the rewritten kernel runs a whole
  block (its work-item loops are inside it): the wrapper loops over blocks only.
- Otherwise every work-item is a coroutine suspended at its barriers
  (:mod:`ringkernel.lowering.llvm.host_coroutines`), resumed round by round:
  correct for barriers anywhere, including under conditions that differ
  between work-items.  Kernels that idle with ``backoff`` make every
  work-item its own OS thread meeting at a real barrier
  (:mod:`ringkernel.lowering.llvm.host_threads`).
- With ``grid_sync()`` the launch is cooperative: one call starts a thread for
  every work-item of the whole grid (``first_block``/``end_block`` are
  ignored: the runtime never splits such a launch), each block with its own
  shared area and barrier, and all meet at the grid barrier; there ``*cancel``
  makes every work-item return (Ctrl-C stops it at its next grid_sync).

Shared arrays live in one ``malloc``'d area per call (work-item loops add
per-work-item arrays to it, too large for a thread's stack), reused by
consecutive blocks (CUDA leaves shared memory uninitialized at block start too).
The wrapper returns 0, -1 if the OS refused a thread, -2 if ``malloc`` failed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from llvmlite import ir

from ringkernel.lowering.llvm import host_kernel_symbol, shared_layout
from ringkernel.lowering.llvm.host_coroutines import FRAME_REFUSED, resume_function
from ringkernel.lowering.llvm.host_noalias import arrays_are_distinct, noalias_name
from ringkernel.lowering.llvm.host_privatize import PRIVATE_LIMIT, private_name
from ringkernel.lowering.llvm.host_threads import (
    CONTEXT_FIELDS,
    add_grid_support,
    add_thread_support,
    declare,
    field,
    grid_leave,
)
from ringkernel.lowering.llvm.ops import value_type
from ringkernel.lowering.llvm.targets import memory_type_size
from ringkernel.ringir import Function
from ringkernel.ringir.passes.workitem_loops import COROUTINES, GRID, LOOPS, SLOTS, THREADS
from ringkernel.ringir.types import ArrayType, ScalarType, as_scalar

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
MAX_BLOCK_WORK_ITEMS = SLOTS  # a block's coroutine handles live in one array this long


def launch_symbol(kernel_name: str) -> str:
    return f"rk_launch_{kernel_name}"


def add_launch_wrapper(module: ir.Module, fn: Function, mode: str, checked: bool = False,
                       private: dict[int, str] | None = None, noalias: bool = False) -> None:
    """Defines ``rk_launch_<kernel>`` in ``module`` (which already holds the kernel).

    ``mode`` (:mod:`ringkernel.ringir.passes.workitem_loops`) is ``"plain"``
    (no barrier), ``"loops"`` (``fn`` was rewritten into work-item loops),
    ``"coroutines"`` (``fn`` was made a coroutine: one per work-item) or
    ``"threads"``; ``checked`` says the kernel was built with bounds checks
    (it takes their hidden parameters).  ``private`` (plain mode: parameter
    index -> merging atomic) names the arrays each call copies privately; the
    module then also holds the kernel's private variant
    (:mod:`ringkernel.lowering.llvm.host_privatize`).  ``noalias``: the module
    also holds the kernel's noalias variant, which runs when the arrays do not
    overlap (:mod:`ringkernel.lowering.llvm.host_noalias`).
    """
    kernel = module.globals[host_kernel_symbol(fn.name)]
    wrapper = ir.Function(
        module, ir.FunctionType(I32, [PTR, PTR, I64, I64, PTR]), name=launch_symbol(fn.name)
    )
    argv, dims, first, end, cancel = wrapper.args
    b = ir.IRBuilder(wrapper.append_basic_block("entry"))
    _, shared_bytes = shared_layout(fn)
    if mode == GRID:
        run_grid = add_grid_support(module)
        thread_fn = _thread_function(module, fn, kernel, checked, cooperative=True)
        b.ret(b.call(run_grid, [thread_fn, argv, dims, ir.Constant(I64, shared_bytes), cancel]))
        return
    shared = ir.Constant(PTR, None)
    if shared_bytes:
        shared = b.call(declare(module, "malloc", PTR, [I64]), [ir.Constant(I64, shared_bytes)])
        with b.if_then(b.icmp_unsigned("==", shared, ir.Constant(PTR, None)), likely=False):
            b.ret(ir.Constant(I32, -2))
    grid = [b.load(field(b, dims, 4 * d), typ=I32) for d in range(3)]
    block = [b.load(field(b, dims, 4 * (3 + d)), typ=I32) for d in range(3)]
    status = b.alloca(I32)
    b.store(ir.Constant(I32, 0), status)
    zero = ir.Constant(I32, 0)

    def run_blocks(body: Callable[[list[ir.Value]], None]) -> None:
        with _counted_loop(b, wrapper, first, end, "block", cancel) as linear:
            gx, gy = b.zext(grid[0], I64), b.zext(grid[1], I64)
            body([
                b.trunc(b.urem(linear, gx), I32),
                b.trunc(b.urem(b.udiv(linear, gx), gy), I32),
                b.trunc(b.udiv(linear, b.mul(gx, gy)), I32),
            ])

    if mode == THREADS:
        run_block = add_thread_support(module)
        thread_fn = _thread_function(module, fn, kernel, checked)

        def threads(bidx: list[ir.Value]) -> None:
            rc = b.call(run_block, [thread_fn, argv, dims, *bidx, shared])
            b.store(b.or_(b.load(status, typ=I32), rc), status)

        run_blocks(threads)
    else:
        user_args = _load_args(b, fn, argv)
        checks = _check_args(b, fn, argv, checked)
        tail = [shared, ir.Constant(PTR, None), *checks]
        handles = b.alloca(PTR, MAX_BLOCK_WORK_ITEMS) if mode == COROUTINES else None

        def work_items(target: ir.Function, args: list[ir.Value]) -> Callable[[list[ir.Value]], None]:
            def body(bidx: list[ir.Value]) -> None:
                if mode == COROUTINES:
                    _run_coroutines(b, module, wrapper, target, args, bidx, block, grid, handles,
                                    [shared, *checks], status)
                    return
                if mode == LOOPS:
                    b.call(target, [*args, zero, zero, zero, *bidx, *block, *grid, *tail])
                    return
                with _counted_loop(b, wrapper, zero, block[2], "tz") as tz, \
                        _counted_loop(b, wrapper, zero, block[1], "ty") as ty, \
                        _counted_loop(b, wrapper, zero, block[0], "tx") as tx:
                    b.call(target, [*args, tx, ty, tz, *bidx, *block, *grid, *tail])
            return body

        copies = [_private_copy(b, module, fn, argv, user_args, i, op)
                  for i, op in (private or {}).items()]
        if copies:
            variant = module.globals[host_kernel_symbol(private_name(fn.name))]
            taken = [b.icmp_unsigned("!=", b.load(c.slot, typ=PTR), ir.Constant(PTR, None))
                     for c in copies]
            every = functools.reduce(b.and_, taken)
            with b.if_else(every) as (with_copies, without):
                with with_copies:
                    args = list(user_args)
                    for c in copies:
                        args[c.index] = b.load(c.slot, typ=PTR)
                    run_blocks(work_items(variant, args))
                with without:
                    for c in copies:
                        c.drop(b, module)
                    run_blocks(work_items(kernel, user_args))
            for c in copies:
                c.merge(b, module, wrapper)
        elif noalias:
            variant = module.globals[host_kernel_symbol(noalias_name(fn.name))]
            with b.if_else(arrays_are_distinct(b, fn, argv, user_args)) as (distinct, overlapping):
                with distinct:
                    run_blocks(work_items(variant, user_args))
                with overlapping:
                    run_blocks(work_items(kernel, user_args))
        else:
            run_blocks(work_items(kernel, user_args))
    if shared_bytes:
        b.call(declare(module, "free", ir.VoidType(), [PTR]), [shared])
    b.ret(b.load(status, typ=I32))


def _run_coroutines(b: ir.IRBuilder, module: ir.Module, wrapper: ir.Function, kernel: ir.Function,
                    args: list[ir.Value], bidx: list[ir.Value], block: list[ir.Value],
                    grid: list[ir.Value], handles: ir.Value, tail: list[ir.Value],
                    status: ir.Value) -> None:
    """One block as coroutines: start every work-item, then resume the unfinished ones until none is.

    ``handles[t]`` is work-item ``t``'s coroutine handle, null once it returned
    (:mod:`ringkernel.lowering.llvm.host_coroutines`).  If a work-item's frame
    could not be allocated the block does not run: the started ones are
    destroyed and ``status`` becomes -2.
    """
    shared, checks = tail[0], tail[1:]
    count = b.mul(b.mul(block[0], block[1]), block[2])
    zero = ir.Constant(I32, 0)
    with _counted_loop(b, wrapper, zero, count, "wi") as t:
        tx = b.urem(t, block[0])
        rest = b.udiv(t, block[0])
        ids = [tx, b.urem(rest, block[1]), b.udiv(rest, block[1])]
        slot = b.gep(handles, [b.zext(t, I64)], inbounds=True, source_etype=PTR)
        b.call(kernel, [*args, *ids, *bidx, *block, *grid, shared, slot, *checks])
    resume = resume_function(module)
    rounds = wrapper.append_basic_block("rounds")
    after = wrapper.append_basic_block("rounds.end")
    live = b.alloca(I1)
    refused = b.alloca(I1)
    b.store(ir.Constant(I1, 0), refused)
    with _counted_loop(b, wrapper, zero, count, "started") as t:
        handle = b.load(b.gep(handles, [b.zext(t, I64)], inbounds=True, source_etype=PTR), typ=PTR)
        with b.if_then(b.icmp_unsigned("==", handle, FRAME_REFUSED), likely=False):
            b.store(ir.Constant(I1, 1), refused)
    with b.if_then(b.load(refused, typ=I1), likely=False):
        destroy = declare(module, "llvm.coro.destroy", ir.VoidType(), [PTR])
        with _counted_loop(b, wrapper, zero, count, "destroy") as t:
            handle = b.load(b.gep(handles, [b.zext(t, I64)], inbounds=True, source_etype=PTR), typ=PTR)
            running = b.and_(b.icmp_unsigned("!=", handle, ir.Constant(PTR, None)),
                             b.icmp_unsigned("!=", handle, FRAME_REFUSED))
            with b.if_then(running):
                b.call(destroy, [handle])
        b.store(ir.Constant(I32, -2), status)
    b.cbranch(b.load(refused, typ=I1), after, rounds)
    b.position_at_end(rounds)
    b.store(ir.Constant(I1, 0), live)
    with _counted_loop(b, wrapper, zero, count, "resume") as t:
        handle = b.load(b.gep(handles, [b.zext(t, I64)], inbounds=True, source_etype=PTR), typ=PTR)
        with b.if_then(b.icmp_unsigned("!=", handle, ir.Constant(PTR, None))):
            b.call(resume, [handle])
            b.store(ir.Constant(I1, 1), live)
    b.cbranch(b.load(live, typ=I1), rounds, after)
    b.position_at_end(after)


class _PrivateCopy:
    """A wrapper call's private copy of array argument ``index`` (null when not taken)."""

    def __init__(self, index: int, op: str, array: ir.Value, elem: ir.Type, slot: ir.Value,
                 count: ir.Value) -> None:
        self.index, self.op, self.array, self.elem = index, op, array, elem
        self.slot, self.count = slot, count

    def drop(self, b: ir.IRBuilder, module: ir.Module) -> None:
        """Frees the copy unused (the kernel updates the array itself); ``merge`` then skips it."""
        copy = b.load(self.slot, typ=PTR)
        b.call(declare(module, "free", ir.VoidType(), [PTR]), [copy])  # free(NULL) is a no-op
        b.store(ir.Constant(PTR, None), self.slot)

    def merge(self, b: ir.IRBuilder, module: ir.Module, wrapper: ir.Function) -> None:
        """Adds (ors, xors) each non-zero element of the copy into the array atomically, then frees it."""
        copy = b.load(self.slot, typ=PTR)
        with b.if_then(b.icmp_unsigned("!=", copy, ir.Constant(PTR, None))):
            count = b.load(self.count, typ=I64)
            with _counted_loop(b, wrapper, ir.Constant(I64, 0), count, f"merge{self.index}") as k:
                value = b.load(b.gep(copy, [k], inbounds=True, source_etype=self.elem), typ=self.elem)
                with b.if_then(b.icmp_unsigned("!=", value, ir.Constant(self.elem, 0))):
                    target = b.gep(self.array, [k], inbounds=True, source_etype=self.elem)
                    b.atomic_rmw(self.op, target, value, "monotonic")
            b.call(declare(module, "free", ir.VoidType(), [PTR]), [copy])


def _private_copy(b: ir.IRBuilder, module: ir.Module, fn: Function, argv: ir.Value,
                  args: list[ir.Value], index: int, op: str) -> _PrivateCopy:
    """Allocates a zeroed copy of array ``index`` when its length is known, small and unaliased."""
    elem_ty = fn.params[index].type
    assert isinstance(elem_ty, ArrayType)
    elem = value_type(as_scalar(elem_ty.elem))
    with b.goto_entry_block():
        slot = b.alloca(PTR, name=f"rk.private.{index}")
        count = b.alloca(I64, name=f"rk.private.count.{index}")
    b.store(ir.Constant(PTR, None), slot)
    b.store(ir.Constant(I64, 0), count)
    lengths = b.load(b.gep(argv, [ir.Constant(I64, len(fn.params))], inbounds=True, source_etype=PTR),
                     typ=PTR)
    with b.if_then(b.icmp_unsigned("!=", lengths, ir.Constant(PTR, None))):
        spans = {j: _span(b, lengths, j, args[j], fn) for j, p in enumerate(fn.params)
                 if isinstance(p.type, ArrayType)}
        n = b.load(b.gep(lengths, [ir.Constant(I64, index)], inbounds=True, source_etype=I64), typ=I64)
        ok = b.and_(b.icmp_signed(">", n, ir.Constant(I64, 0)),
                    b.icmp_signed("<=", n, ir.Constant(I64, PRIVATE_LIMIT)))
        lo, hi = spans[index]
        for j, (other_lo, other_hi) in spans.items():
            if j != index:
                overlap = b.and_(b.icmp_unsigned("<", lo, other_hi), b.icmp_unsigned("<", other_lo, hi))
                ok = b.and_(ok, b.not_(overlap))
        with b.if_then(ok):
            size = ir.Constant(I64, elem.width // 8)
            b.store(b.call(declare(module, "calloc", PTR, [I64, I64]), [n, size]), slot)
            b.store(n, count)
    return _PrivateCopy(index, op, args[index], elem, slot, count)


def _span(b: ir.IRBuilder, lengths: ir.Value, j: int, array: ir.Value, fn: Function
          ) -> tuple[ir.Value, ir.Value]:
    """[first byte, end byte) of array argument ``j`` as integers."""
    ty = fn.params[j].type
    assert isinstance(ty, ArrayType)
    n = b.load(b.gep(lengths, [ir.Constant(I64, j)], inbounds=True, source_etype=I64), typ=I64)
    lo = b.ptrtoint(array, I64)
    return lo, b.add(lo, b.mul(n, ir.Constant(I64, memory_type_size(as_scalar(ty.elem)))))


def _thread_function(
    module: ir.Module, fn: Function, kernel: ir.Function, checked: bool, cooperative: bool = False
) -> ir.Function:
    """``void *rk_thread_<kernel>(context *)``: runs one work-item, then leaves the barrier
    (and with ``cooperative``, the grid barrier of a grid_sync launch)."""
    thread = ir.Function(module, ir.FunctionType(PTR, [PTR]), name=f"rk_thread_{fn.name}")
    thread.linkage = "internal"
    (ctx,) = thread.args
    b = ir.IRBuilder(thread.append_basic_block("entry"))
    slot = {name: field(b, ctx, 8 * i) for i, name in enumerate(CONTEXT_FIELDS)}
    argv, dims, shared, barrier = (b.load(slot[n], typ=PTR) for n in CONTEXT_FIELDS[:4])
    grid = [b.load(field(b, dims, 4 * d), typ=I32) for d in range(3)]
    block = [b.load(field(b, dims, 4 * (3 + d)), typ=I32) for d in range(3)]
    ids = [b.trunc(b.load(slot[n], typ=I64), I32) for n in ("tx", "ty", "tz", "bx", "by", "bz")]
    checks = _check_args(b, fn, argv, checked)
    b.call(kernel, [*_load_args(b, fn, argv), *ids, *block, *grid, shared, barrier, *checks])
    leave = module.globals["rk_cpu_barrier_leave"]
    b.call(leave, [barrier, ir.Constant(I32, 1)])
    if cooperative:
        grid_leave(module, b, barrier)
    b.ret(ir.Constant(PTR, None))
    return thread


def _load_args(b: ir.IRBuilder, fn: Function, argv: ir.Value) -> list[ir.Value]:
    values = []
    for i, p in enumerate(fn.params):
        ptr = b.load(b.gep(argv, [ir.Constant(I64, i)], inbounds=True, source_etype=PTR), typ=PTR)
        if isinstance(p.type, ArrayType):
            values.append(ptr)
            continue
        assert isinstance(p.type, ScalarType)
        if p.type.is_bool:
            values.append(b.icmp_unsigned("!=", b.load(ptr, typ=I8), ir.Constant(I8, 0)))
        else:
            values.append(b.load(ptr, typ=value_type(p.type)))
    return values


def _check_args(b: ir.IRBuilder, fn: Function, argv: ir.Value, checked: bool) -> list[ir.Value]:
    """The bounds-check pointers (lengths, record) after the arguments in ``argv``, if checked."""
    if not checked:
        return []
    n = len(fn.params)
    return [
        b.load(b.gep(argv, [ir.Constant(I64, n + k)], inbounds=True, source_etype=PTR), typ=PTR)
        for k in range(2)
    ]


class _counted_loop:
    """``for i in range(start, stop)`` over LLVM integers, as a context manager.

    With ``cancel`` (an ``int32 *``), the loop also ends once ``*cancel`` is non-zero.
    """

    def __init__(self, b: ir.IRBuilder, fn: ir.Function, start: ir.Value, stop: ir.Value,
                 name: str, cancel: ir.Value | None = None) -> None:
        self.b, self.fn, self.start, self.stop, self.name = b, fn, start, stop, name
        self.cancel = cancel

    def __enter__(self) -> ir.Value:
        b = self.b
        pre = b.block
        self.head = self.fn.append_basic_block(f"{self.name}.head")
        self.body = self.fn.append_basic_block(f"{self.name}.body")
        self.exit = self.fn.append_basic_block(f"{self.name}.exit")
        b.branch(self.head)
        b.position_at_end(self.head)
        self.index = b.phi(self.start.type, name=self.name)
        self.index.add_incoming(self.start, pre)
        go = b.icmp_signed("<", self.index, self.stop)
        if self.cancel is not None:
            flag = b.load_atomic(self.cancel, "monotonic", 4, typ=I32)
            go = b.and_(go, b.icmp_unsigned("==", flag, ir.Constant(I32, 0)))
        b.cbranch(go, self.body, self.exit)
        b.position_at_end(self.body)
        return self.index

    def __exit__(self, *exc: object) -> None:
        b = self.b
        step = b.add(self.index, ir.Constant(self.index.type, 1))
        self.index.add_incoming(step, b.block)
        b.branch(self.head)
        b.position_at_end(self.exit)

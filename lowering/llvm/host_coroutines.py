"""Work-items as coroutines: barriers under any control flow, without a thread per work-item.

Work-item loops (:mod:`ringkernel.ringir.passes.workitem_loops`) need every
barrier's control flow to be provably uniform.  When it is not (a barrier
inside ``if tid < size``, a loop bound loaded from memory, a ``break`` under
a varying condition), each work-item becomes an LLVM coroutine (LLVM's own
switched-resume lowering, ``llvm.coro.*``, split by the O3 pipeline):

- the kernel's ``rk_cpu_barrier_wait`` calls become suspend points, so a
  work-item runs until its next barrier and returns to the scheduler;
- the launch wrapper (:mod:`ringkernel.lowering.llvm.host_entry`) starts one
  coroutine per work-item of the block, then resumes every unfinished one in
  turn, round after round, until all have returned.

A round ends when every live work-item waits at *some* barrier or has
returned: exactly the counting barrier of the thread path
(:mod:`ringkernel.lowering.llvm.host_threads`), so divergent kernels give the
same results, at the cost of a function call per work-item and barrier
instead of an OS thread per work-item.

The kernel's hidden barrier pointer then points at the work-item's handle
slot: the coroutine stores its handle there when it starts and null when it
returns (its frame, ``malloc``'d, is freed by then).  When ``malloc`` refuses
the frame the work-item does not start and the slot holds
:data:`FRAME_REFUSED`; the launch wrapper then destroys the work-items it did
start and reports -2 (no memory) instead of running a block with some
work-items missing.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir

from ringkernel.lowering.llvm.host_threads import declare
from ringkernel.lowering.llvm.targets import HOST_BARRIER_SYMBOL

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
VOID = ir.VoidType()
NULL = ir.Constant(PTR, None)
# What a work-item's handle slot holds when ``malloc`` refused its frame: it never started.
FRAME_REFUSED = ir.Constant(I64, 1).inttoptr(PTR)


class _Token(ir.Type):  # type: ignore[misc]  # llvmlite is untyped
    """LLVM's ``token`` type (llvmlite has none; the coroutine intrinsics need it)."""

    def _to_string(self) -> str:
        return "token"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Token)

    def __hash__(self) -> int:
        return hash("token")


TOKEN = _Token()
NONE_TOKEN = ir.FormattedConstant(TOKEN, "none")


def resume_function(module: ir.Module) -> ir.Function:
    """``llvm.coro.resume(handle)``: runs a suspended work-item to its next barrier or end."""
    return declare(module, "llvm.coro.resume", VOID, [PTR])


def make_coroutine(module: ir.Module, kernel: ir.Function, slot_index: int) -> None:
    """Turns ``kernel`` (lowered with host barriers) into a coroutine; see the module docstring.

    ``slot_index`` is the position of the hidden barrier pointer among its parameters.
    """
    set.add(kernel.attributes, "presplitcoroutine")  # llvmlite's list predates the attribute
    slot = kernel.args[slot_index]
    body_blocks = list(kernel.blocks)
    b = ir.IRBuilder(_new_entry(kernel, body_blocks[0]))
    coro_id = b.call(declare(module, "llvm.coro.id", TOKEN, [I32, PTR, PTR, PTR]),
                     [ir.Constant(I32, 0), NULL, NULL, NULL])
    size = b.call(declare(module, "llvm.coro.size.i64", I64, []), [])
    memory = b.call(declare(module, "malloc", PTR, [I64]), [size])
    begin = kernel.append_basic_block("rk.coro.begin")
    refused = kernel.append_basic_block("rk.coro.refused")
    b.cbranch(b.icmp_unsigned("==", memory, NULL), refused, begin)
    b.position_at_end(refused)  # before coro.begin a plain return is allowed (clang's
    b.store(FRAME_REFUSED, slot)  # get_return_object_on_allocation_failure does the same)
    b.ret_void()
    b.position_at_end(begin)
    handle = b.call(declare(module, "llvm.coro.begin", PTR, [TOKEN, PTR]), [coro_id, memory])
    b.store(handle, slot)
    b.branch(body_blocks[0])

    cleanup = kernel.append_basic_block("rk.coro.cleanup")
    end = kernel.append_basic_block("rk.coro.end")
    for block in body_blocks:
        if isinstance(block.terminator, ir.Ret):  # the work-item is done
            block.instructions.pop()
            block.terminator = None
            b.position_at_end(block)
            b.store(NULL, slot)
            b.branch(cleanup)
    pending = list(body_blocks)
    while pending:
        block = pending.pop()
        barrier = next((i for i in block.instructions if _is_barrier(i)), None)
        if barrier is not None:
            pending.append(_suspend_at(b, module, kernel, block, barrier, cleanup, end))

    b.position_at_end(cleanup)
    frame = b.call(declare(module, "llvm.coro.free", PTR, [TOKEN, PTR]), [coro_id, handle])
    b.call(declare(module, "free", VOID, [PTR]), [frame])
    b.branch(end)
    b.position_at_end(end)
    b.call(declare(module, "llvm.coro.end", VOID, [PTR, I1, TOKEN]),
           [handle, ir.Constant(I1, 0), NONE_TOKEN])
    b.ret_void()


def _new_entry(kernel: ir.Function, entry: ir.Block) -> ir.Block:
    """A block placed before ``entry`` as the function's entry, holding ``entry``'s allocas
    (allocas outside the entry block would be dynamic ones)."""
    start = kernel.append_basic_block("rk.coro.start")
    kernel.blocks.remove(start)
    kernel.blocks.insert(0, start)
    allocas = [i for i in entry.instructions if isinstance(i, ir.AllocaInstr)]
    for instr in allocas:
        entry.instructions.remove(instr)
        instr.parent = start
    start.instructions.extend(allocas)
    return start


def _is_barrier(instr: Any) -> bool:
    return isinstance(instr, ir.CallInstr) and getattr(instr.callee, "name", "") == HOST_BARRIER_SYMBOL


def _suspend_at(b: ir.IRBuilder, module: ir.Module, kernel: ir.Function, block: ir.Block,
                barrier: ir.CallInstr, cleanup: ir.Block, end: ir.Block) -> ir.Block:
    """Replaces ``barrier`` by a suspend point; what followed it moves to the returned block."""
    at = block.instructions.index(barrier)
    tail = block.instructions[at + 1:]
    del block.instructions[at:]
    after = kernel.append_basic_block(f"{block.name}.resume")
    for instr in tail:
        instr.parent = after
    after.instructions.extend(tail)
    after.terminator, block.terminator = block.terminator, None
    for other in kernel.blocks:  # the moved terminator now leaves from ``after``
        for instr in other.instructions:
            if isinstance(instr, ir.PhiInstr):
                instr.incomings = [(v, after if bb is block else bb) for v, bb in instr.incomings]
    b.position_at_end(block)
    state = b.call(declare(module, "llvm.coro.suspend", I8, [TOKEN, I1]),
                   [NONE_TOKEN, ir.Constant(I1, 0)])
    switch = b.switch(state, end)
    switch.add_case(ir.Constant(I8, 0), after)
    switch.add_case(ir.Constant(I8, 1), cleanup)
    return after

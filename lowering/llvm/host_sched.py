"""The cpu actor scheduler's worker threads, generated as LLVM IR (no C, no Python in the loop).

At most ``workers`` native threads serve every actor group of one
:class:`~ringkernel.actors.ActorSystem` (``ringkernel.runtime.cpu.scheduler``
owns the memory and the Python side).  A group is split into *chunks*
(ranges of its instances); the workers walk a *table* of chunks and call
each chunk's range function (the launch wrapper every kernel has,
:data:`~ringkernel.lowering.llvm.host_pool.RANGE_FN`), which runs one
*turn* per instance: at most ``quantum`` messages each.  Walking the chunks
round-robin with a quantum per turn is deficit round robin with unit message
cost: a flooded instance gets ``quantum`` messages per round, no more.

The scheduler block (``sched``, :data:`SCHED_BYTES`, owned by the host) holds,
at these byte offsets:

- a 32-word area laid out like an actor's control block and K2K queue header
  at once (so the host's queue kernels ring it as they ring a parked actor):
  word :data:`SLEEPERS` (the control block's ``parked``) counts workers about
  to sleep, word :data:`BELL` (the queue's ``bell``) is the futex they sleep
  on; word :data:`STOP` asks them to leave, :data:`EPOCH` numbers the
  tables, :data:`ALIVE` counts running threads, :data:`SLEEP_NS` is the
  longest sleep;
- :data:`TABLE`: the current table; :data:`CANCEL`: the range functions'
  cancel word; :data:`ROUTER`: the native router's control block (0: none,
  :mod:`.host_router`); :data:`SLOTS`: one u32 per worker, the table epoch it walks
  (0 while it sleeps); :data:`ROUNDS`, :data:`SLEEPS`: u64 counters;
  :data:`HANDLES`: pthread handles; :data:`CONTEXTS`: each thread's
  (sched, index) argument.

A table is ``count`` (i64) then ``count`` records of :data:`RECORD_BYTES`:
range function, argv, dims, first and end instance, a pointer to the
chunk's lock word (it lives with the group, not the table, so a chunk is
never run by two workers even across tables), a pointer to the group's
``progress`` word, the priority class (tables list higher classes first), and
the router endpoint of the group's instance 0 (-1: the group sends nothing).

Tables are replaced, never edited (read-copy-update): the host writes the new
table pointer, then bumps the epoch; a worker pins an epoch in its slot
before it reads the pointer, so once every slot is 0 or at least the new
epoch no worker can be running a chunk the new table dropped.

A round (:func:`_round`): for each record, try-lock the chunk, call its range
function, route what the chunk's instances sent (``rk_route_range`` of
:mod:`.host_router`, when the group talks: its messages are on their way
right after the turn that sent them, and a round that moved some made
progress), unlock, exchange the group's ``progress`` word with 0.  When the
walk reaches a lower priority class after progress in a higher one, the round
ends early, so the next round starts again from the top: strict priority
classes above round robin.  After a round without progress a worker
announces itself in :data:`SLEEPERS`, fences, reads the bell, walks once more
and only then sleeps on the bell (futex, :data:`SLEEP_NS` at most): the host
publishes, fences and rings when it sees a sleeper, so one of the two always
sees the other (the actor park protocol, ``docs/layout.md``).

Functions: ``int32 rk_sched_start(sched, int32 threads)`` starts the threads
(returns how many started); ``void rk_sched_join(sched, int32 threads)``
joins them once :data:`ALIVE` is 0.
"""

from __future__ import annotations

import platform
import sys

from llvmlite import ir

from ringkernel.lowering.llvm.host_pool import RANGE_FN
from ringkernel.lowering.llvm.host_router import build_router
from ringkernel.lowering.llvm.host_threads import declare, field, join_threads
from ringkernel.lowering.llvm.targets import _FUTEX_SYSCALL, _FUTEX_WAIT_PRIVATE

I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
VOID = ir.VoidType()

MAX_WORKERS = 256
# u32 word indices in the first 128 bytes (see the module docstring); SLEEPERS and
# BELL are layout.C["parked"] and layout.Q_BELL, checked by the runtime at import
STOP, EPOCH, ALIVE, SLEEP_NS, SLEEPERS, BELL = 1, 2, 3, 4, 18, 21
TABLE, CANCEL, ROUNDS, SLEEPS, ROUTER = 128, 136, 144, 152, 160
SLOTS = 256
HANDLES = SLOTS + 4 * MAX_WORKERS
CONTEXTS = HANDLES + 8 * MAX_WORKERS
CONTEXT_BYTES = 16
SCHED_BYTES = CONTEXTS + CONTEXT_BYTES * MAX_WORKERS
TABLE_HEADER_BYTES = 16
RECORD_BYTES = 72
R_FN, R_ARGV, R_DIMS, R_FIRST, R_END, R_LOCK, R_PROGRESS, R_CLASS, R_ROUTE = 0, 8, 16, 24, 32, 40, 48, 56, 64


def _i32(v: int) -> ir.Constant:
    return ir.Constant(I32, v)


def _i64(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _word(b: ir.IRBuilder, sched: ir.Value, index: int) -> ir.Value:
    return field(b, sched, 4 * index)


def _load(b: ir.IRBuilder, ptr: ir.Value, ty: ir.Type = I32) -> ir.Value:
    return b.load_atomic(ptr, "seq_cst", ty.width // 8, typ=ty)


def _xchg(b: ir.IRBuilder, ptr: ir.Value, value: ir.Value) -> ir.Value:
    return b.atomic_rmw("xchg", ptr, value, "seq_cst")


def build_sched_module(name: str = "ringkernel.sched") -> ir.Module:
    """The LLVM module defining ``rk_sched_start`` and ``rk_sched_join`` (and the router's
    functions, :mod:`.host_router`, which the workers call)."""
    module = ir.Module(name=name)
    worker = _worker(module, _round(module, build_router(module)))
    _start(module, worker)
    _join(module)
    return module


def _pin(b: ir.IRBuilder, sched: ir.Value, slot: ir.Value) -> ir.Value:
    """Pins the current epoch in the worker's slot and returns the table it may walk."""
    fn = b.function
    retry, pinned = fn.append_basic_block("pin"), fn.append_basic_block("pinned")
    b.branch(retry)
    b.position_at_end(retry)
    epoch = _load(b, _word(b, sched, EPOCH))
    _xchg(b, slot, epoch)
    b.cbranch(b.icmp_unsigned("==", _load(b, _word(b, sched, EPOCH)), epoch), pinned, retry)
    b.position_at_end(pinned)
    return _load(b, field(b, sched, TABLE), I64)


def _round(module: ir.Module, route_range: ir.Function) -> ir.Function:
    """``int32 round(sched, slot)``: one walk over the table; 1 if any chunk made progress."""
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, PTR]), name="rk_sched_round")
    fn.linkage = "internal"
    sched, slot = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    index, any_, higher, klass = (b.alloca(t) for t in (I64, I32, I32, I32))
    table = b.inttoptr(_pin(b, sched, slot), PTR)
    count = b.load(table, typ=I64)
    for var, value in ((index, _i64(0)), (any_, _i32(0)), (higher, _i32(0)), (klass, _i32(-(2**31)))):
        b.store(value, var)
    names = ("head", "body", "same", "try", "run", "next", "early", "done")
    head, body, same, try_, run, next_, early, done = (fn.append_basic_block(n) for n in names)
    b.branch(head)

    b.position_at_end(head)
    i = b.load(index, typ=I64)
    stop = b.icmp_unsigned("!=", _load(b, _word(b, sched, STOP)), _i32(0))
    b.cbranch(b.or_(stop, b.icmp_signed(">=", i, count)), done, body)

    b.position_at_end(body)
    at = b.add(_i64(TABLE_HEADER_BYTES), b.mul(i, _i64(RECORD_BYTES)))
    rec = b.gep(table, [at], inbounds=True, source_etype=ir.IntType(8))
    cls = b.load(field(b, rec, R_CLASS), typ=I32)
    first_class = b.icmp_signed("==", b.load(klass, typ=I32), _i32(-(2**31)))
    changed = b.and_(b.icmp_signed("!=", cls, b.load(klass, typ=I32)), b.not_(first_class))
    b.store(cls, klass)
    progressed = b.icmp_unsigned("!=", b.load(higher, typ=I32), _i32(0))
    b.cbranch(b.and_(changed, progressed), early, same)

    b.position_at_end(same)
    lock = b.load(field(b, rec, R_LOCK), typ=PTR)
    b.branch(try_)
    b.position_at_end(try_)
    taken = b.cmpxchg(lock, _i32(0), _i32(1), "seq_cst", "seq_cst")
    b.cbranch(b.extract_value(taken, 1), run, next_)

    b.position_at_end(run)
    target = b.load(field(b, rec, R_FN), typ=RANGE_FN.as_pointer())  # typed: an indirect call
    argv, dims = (b.load(field(b, rec, at), typ=PTR) for at in (R_ARGV, R_DIMS))
    first, end = (b.load(field(b, rec, at), typ=I64) for at in (R_FIRST, R_END))
    b.call(target, [argv, dims, first, end, field(b, sched, CANCEL)])
    route = b.load(field(b, rec, R_ROUTE), typ=I64)
    router = _load(b, field(b, sched, ROUTER), I64)
    talks = b.and_(b.icmp_signed(">=", route, _i64(0)), b.icmp_unsigned("!=", router, _i64(0)))
    with b.if_then(talks):  # what this chunk's turns sent goes on its way now
        routed = b.call(route_range, [b.inttoptr(router, PTR), b.add(route, first), b.add(route, end)])
        with b.if_then(b.icmp_unsigned("!=", routed, _i32(0))):
            b.store(_i32(1), any_)
            b.store(_i32(1), higher)
    _xchg(b, lock, _i32(0))
    moved = _xchg(b, b.load(field(b, rec, R_PROGRESS), typ=PTR), _i32(0))
    with b.if_then(b.icmp_unsigned("!=", moved, _i32(0))):
        b.store(_i32(1), any_)
        b.store(_i32(1), higher)
    b.branch(next_)

    b.position_at_end(next_)
    b.store(b.add(i, _i64(1)), index)
    b.branch(head)

    b.position_at_end(early)  # progress in a higher class: the next round starts at the top
    b.ret(_i32(1))
    b.position_at_end(done)
    b.ret(b.load(any_, typ=I32))
    return fn


def _sleep(module: ir.Module, b: ir.IRBuilder, sched: ir.Value, bell: ir.Value) -> None:
    """Sleeps on the bell while it holds ``bell``, at most ``SLEEP_NS`` (futex; usleep elsewhere)."""
    nanos = b.zext(_load(b, _word(b, sched, SLEEP_NS)), I64)
    futex = _FUTEX_SYSCALL.get(platform.machine()) if sys.platform.startswith("linux") else None
    if futex is None:
        usleep = declare(module, "usleep", I32, [I32])
        b.call(usleep, [b.trunc(b.udiv(nanos, _i64(1000)), I32)])
        return
    spec = b.alloca(I64, size=2)  # struct timespec, relative
    billion = _i64(1_000_000_000)
    b.store(b.udiv(nanos, billion), spec)
    b.store(b.urem(nanos, billion), b.gep(spec, [_i32(1)], source_etype=I64))
    syscall = module.globals.get("syscall") or ir.Function(
        module, ir.FunctionType(I64, [I64], var_arg=True), name="syscall"
    )
    word = _word(b, sched, BELL)
    b.call(syscall, [_i64(futex), word, _i64(_FUTEX_WAIT_PRIVATE), b.zext(bell, I64), spec])


def _worker(module: ir.Module, round_: ir.Function) -> ir.Function:
    """``void *worker(context)``: rounds while they make progress, then the sleep protocol."""
    fn = ir.Function(module, ir.FunctionType(PTR, [PTR]), name="rk_sched_worker")
    fn.linkage = "internal"
    (ctx,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    sched = b.load(ctx, typ=PTR)
    me = b.load(field(b, ctx, 8), typ=I64)
    slot = b.gep(field(b, sched, SLOTS), [me], inbounds=True, source_etype=I32)
    names = ("top", "work", "idle", "last", "sleep", "woken", "quit")
    top, work, idle, last, sleep, woken, quit_ = (fn.append_basic_block(n) for n in names)
    sleepers = _word(b, sched, SLEEPERS)
    b.branch(top)

    b.position_at_end(top)
    stopping = b.icmp_unsigned("!=", _load(b, _word(b, sched, STOP)), _i32(0))
    b.cbranch(stopping, quit_, work)

    b.position_at_end(work)
    b.atomic_rmw("add", field(b, sched, ROUNDS), _i64(1), "monotonic")
    progress = b.call(round_, [sched, slot])
    b.cbranch(b.icmp_unsigned("!=", progress, _i32(0)), top, idle)

    b.position_at_end(idle)  # announce, fence, read the bell, look once more
    b.atomic_rmw("add", sleepers, _i32(1), "seq_cst")
    b.fence("seq_cst")
    bell = _load(b, _word(b, sched, BELL))
    again = b.call(round_, [sched, slot])
    stopping = b.icmp_unsigned("!=", _load(b, _word(b, sched, STOP)), _i32(0))
    b.cbranch(b.or_(stopping, b.icmp_unsigned("!=", again, _i32(0))), woken, last)

    b.position_at_end(last)
    _xchg(b, slot, _i32(0))  # asleep, it holds no table
    b.branch(sleep)
    b.position_at_end(sleep)
    b.atomic_rmw("add", field(b, sched, SLEEPS), _i64(1), "monotonic")
    _sleep(module, b, sched, bell)
    b.branch(woken)

    b.position_at_end(woken)
    b.atomic_rmw("sub", sleepers, _i32(1), "seq_cst")
    b.branch(top)

    b.position_at_end(quit_)
    _xchg(b, slot, _i32(0))
    b.atomic_rmw("sub", _word(b, sched, ALIVE), _i32(1), "seq_cst")
    b.ret(ir.Constant(PTR, None))
    return fn


def _start(module: ir.Module, worker: ir.Function) -> None:
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, I32]), name="rk_sched_start")
    sched, threads = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    create = declare(module, "pthread_create", I32, [PTR, PTR, PTR, PTR])
    started = b.alloca(I32)
    b.store(_i32(0), started)
    head, body, ok, done = (fn.append_basic_block(n) for n in ("spawn", "spawn.body", "spawn.ok", "spawned"))
    b.branch(head)
    b.position_at_end(head)
    n = b.load(started, typ=I32)
    b.cbranch(b.icmp_signed("<", n, threads), body, done)
    b.position_at_end(body)
    n64 = b.zext(n, I64)
    ctx = b.gep(field(b, sched, CONTEXTS), [b.mul(n64, _i64(CONTEXT_BYTES))], inbounds=True,
                source_etype=ir.IntType(8))
    b.store(sched, ctx)
    b.store(n64, field(b, ctx, 8))
    b.atomic_rmw("add", _word(b, sched, ALIVE), _i32(1), "seq_cst")
    handle = b.gep(field(b, sched, HANDLES), [n64], inbounds=True, source_etype=I64)
    rc = b.call(create, [handle, ir.Constant(PTR, None), worker, ctx])
    b.cbranch(b.icmp_signed("==", rc, _i32(0)), ok, done)
    b.position_at_end(ok)
    b.store(b.add(n, _i32(1)), started)
    b.branch(head)
    b.position_at_end(done)
    result = b.load(started, typ=I32)
    with b.if_then(b.icmp_signed("<", result, threads)):  # the refused thread never ran
        b.atomic_rmw("sub", _word(b, sched, ALIVE), _i32(1), "seq_cst")
    b.ret(result)


def _join(module: ir.Module) -> None:
    fn = ir.Function(module, ir.FunctionType(VOID, [PTR, I32]), name="rk_sched_join")
    sched, threads = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    join_threads(b, module, fn, field(b, sched, HANDLES), threads)
    b.ret_void()

"""A native worker pool for the cpu backend, generated as LLVM IR (no C to compile).

Handing a launch to Python threads costs tens of microseconds (each must
take the GIL to see the work); native threads need no GIL, and while they
spin after a job (yielding the core at each poll) they see the next one at
once, before they fall asleep on a condition variable.  The pool runs
*range functions*, the signature every kernel's launch wrapper has
(:mod:`ringkernel.lowering.llvm.host_entry`):
``int32 fn(void *argv, void *dims, int64 first, int64 end, int32 *cancel)``.

- ``ptr rk_pool_create(int32 threads)``: starts the threads; null if the OS
  refused memory or a thread.
- ``void rk_pool_submit(pool, fn, argv, dims, int64 count, int32 parts,
  int32 *cancel, int32 *status)``: splits ``0 .. count-1`` into ``parts``
  equal ranges; threads take ranges from an atomic counter and store each
  range's return value in ``status[part]``.  One job at a time: the caller
  waits for it before submitting the next.
- ``int32 rk_pool_wait(pool, int64 timeout_ns)``: 1 once every range is done,
  0 if ``timeout_ns`` passed first (so a Python caller can look at signals
  between slices and set ``*cancel``).
- ``void rk_pool_destroy(pool)``: stops and joins the threads.

The pool's state is one 512-byte block (offsets below); the mutex and the
two condition variables get generous byte areas as in
:mod:`ringkernel.lowering.llvm.host_threads`.
"""

from __future__ import annotations

from llvmlite import ir

from ringkernel.lowering.llvm.host_threads import declare, field, join_threads

I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
VOID = ir.VoidType()

POOL_SIZE = 512
_MUTEX, _WORK, _DONE = 0, 128, 256
_GEN, _STOP, _PENDING, _NEXT, _PARTS, _THREADS = 384, 388, 392, 396, 400, 404
_FN, _ARGV, _DIMS, _COUNT, _CANCEL, _STATUS, _HANDLES = 408, 416, 424, 432, 440, 448, 456
# While a job is being posted, ``next`` holds this, so a thread still looking
# for a range of the previous job finds none (``parts`` is far below it).
_CLOSED = 1 << 30
# Polls of the generation counter before a worker sleeps on the condition
# variable, each yielding the core to any runnable thread (the caller
# preparing the next launch, other processes), so spinning costs little on a
# busy machine and back-to-back launches still skip the futex.  The waiting
# caller polls ``pending`` as often without yielding: its waits must end
# within their timeout, or Ctrl-C would wait for the whole launch.
_SPIN = 2000
_CLOCK_REALTIME = 0

RANGE_FN = ir.FunctionType(I32, [PTR, PTR, I64, I64, PTR])


def build_pool_module(name: str = "ringkernel.pool") -> ir.Module:
    """The LLVM module defining the ``rk_pool_*`` functions."""
    module = ir.Module(name=name)
    take = _take_ranges(module)
    worker = _worker(module, take)
    _create(module, worker)
    _submit(module)
    _wait(module)
    _destroy(module)
    return module


def _libc(module: ir.Module, name: str) -> ir.Function:
    signatures = {
        "malloc": (PTR, [I64]), "free": (VOID, [PTR]),
        "pthread_mutex_init": (I32, [PTR, PTR]), "pthread_mutex_lock": (I32, [PTR]),
        "pthread_mutex_unlock": (I32, [PTR]), "pthread_cond_init": (I32, [PTR, PTR]),
        "pthread_cond_wait": (I32, [PTR, PTR]), "pthread_cond_timedwait": (I32, [PTR, PTR, PTR]),
        "pthread_cond_broadcast": (I32, [PTR]), "pthread_create": (I32, [PTR, PTR, PTR, PTR]),
        "pthread_join": (I32, [I64, PTR]), "clock_gettime": (I32, [I32, PTR]),
        "sched_yield": (I32, []),
    }
    ret, args = signatures[name]
    return declare(module, name, ret, args)


def _i32(v: int) -> ir.Constant:
    return ir.Constant(I32, v)


def _i64(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _publish(b: ir.IRBuilder, value: ir.Value, ptr: ir.Value) -> None:
    """A sequentially consistent store (an exchange: llvmlite's atomic store wants typed pointers)."""
    b.atomic_rmw("xchg", ptr, value, "seq_cst")


def _take_ranges(module: ir.Module) -> ir.Function:
    """Runs ranges of the current job until none is left; the last one wakes the waiter."""
    fn = ir.Function(module, ir.FunctionType(VOID, [PTR]), name="rk_pool_take")
    fn.linkage = "internal"
    (pool,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    loop, run, last, out = (fn.append_basic_block(n) for n in ("loop", "run", "last", "out"))
    b.branch(loop)
    b.position_at_end(loop)
    part = b.atomic_rmw("add", field(b, pool, _NEXT), _i32(1), "seq_cst")
    parts = b.load_atomic(field(b, pool, _PARTS), "acquire", 4, typ=I32)
    b.cbranch(b.icmp_signed("<", part, parts), run, out)
    b.position_at_end(run)
    count = b.load(field(b, pool, _COUNT), typ=I64)
    parts64, part64 = b.sext(parts, I64), b.sext(part, I64)
    first = b.sdiv(b.mul(count, part64), parts64)
    end = b.sdiv(b.mul(count, b.add(part64, _i64(1))), parts64)
    argv, dims, cancel, status = (
        b.load(field(b, pool, at), typ=PTR) for at in (_ARGV, _DIMS, _CANCEL, _STATUS)
    )
    target = b.load(field(b, pool, _FN), typ=RANGE_FN.as_pointer())  # typed: an indirect call
    rc = b.call(target, [argv, dims, first, end, cancel])
    b.store(rc, b.gep(status, [part64], inbounds=True, source_etype=I32))
    left = b.atomic_rmw("sub", field(b, pool, _PENDING), _i32(1), "seq_cst")
    b.cbranch(b.icmp_signed("==", left, _i32(1)), last, loop)
    b.position_at_end(last)
    mutex = field(b, pool, _MUTEX)
    b.call(_libc(module, "pthread_mutex_lock"), [mutex])
    b.call(_libc(module, "pthread_cond_broadcast"), [field(b, pool, _DONE)])
    b.call(_libc(module, "pthread_mutex_unlock"), [mutex])
    b.branch(loop)
    b.position_at_end(out)
    b.ret_void()
    return fn


def _worker(module: ir.Module, take: ir.Function) -> ir.Function:
    """``void *worker(pool)``: spin, then sleep, until a new generation or stop; take its ranges."""
    fn = ir.Function(module, ir.FunctionType(PTR, [PTR]), name="rk_pool_worker")
    fn.linkage = "internal"
    (pool,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    seen = b.alloca(I32)
    spins = b.alloca(I32)
    b.store(_i32(0), seen)
    names = ("idle", "spin", "sleep", "check", "wait", "go", "work", "quit")
    idle, spin, sleep, check, wait, go, work, quit_ = (fn.append_basic_block(n) for n in names)
    gen_p, stop_p, mutex = field(b, pool, _GEN), field(b, pool, _STOP), field(b, pool, _MUTEX)
    b.branch(idle)

    b.position_at_end(idle)  # spin a while on the generation counter
    b.store(_i32(0), spins)
    b.branch(spin)
    b.position_at_end(spin)
    gen = b.load_atomic(gen_p, "acquire", 4, typ=I32)
    n = b.add(b.load(spins, typ=I32), _i32(1))
    b.store(n, spins)
    b.call(_libc(module, "sched_yield"), [])
    changed = b.icmp_signed("!=", gen, b.load(seen, typ=I32))
    b.cbranch(b.or_(changed, b.icmp_signed(">", n, _i32(_SPIN))), sleep, spin)

    b.position_at_end(sleep)  # then wait under the mutex
    b.call(_libc(module, "pthread_mutex_lock"), [mutex])
    b.branch(check)
    b.position_at_end(check)
    stop = b.load_atomic(stop_p, "acquire", 4, typ=I32)
    gen = b.load_atomic(gen_p, "acquire", 4, typ=I32)
    same = b.icmp_signed("==", gen, b.load(seen, typ=I32))
    b.cbranch(b.icmp_signed("!=", stop, _i32(0)), quit_, wait)
    b.position_at_end(wait)
    b.cbranch(same, go, work)
    b.position_at_end(go)
    b.call(_libc(module, "pthread_cond_wait"), [field(b, pool, _WORK), mutex])
    b.branch(check)

    b.position_at_end(work)
    b.store(gen, seen)
    b.call(_libc(module, "pthread_mutex_unlock"), [mutex])
    b.call(take, [pool])
    b.branch(idle)

    b.position_at_end(quit_)
    b.call(_libc(module, "pthread_mutex_unlock"), [mutex])
    b.ret(ir.Constant(PTR, None))
    return fn


def _create(module: ir.Module, worker: ir.Function) -> None:
    fn = ir.Function(module, ir.FunctionType(PTR, [I32]), name="rk_pool_create")
    (threads,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    pool = b.call(_libc(module, "malloc"), [_i64(POOL_SIZE)])
    handles = b.call(_libc(module, "malloc"), [b.mul(b.zext(threads, I64), _i64(8))])
    bad = b.or_(b.icmp_unsigned("==", pool, ir.Constant(PTR, None)),
                b.icmp_unsigned("==", handles, ir.Constant(PTR, None)))
    with b.if_then(bad, likely=False):
        b.ret(ir.Constant(PTR, None))
    b.call(_libc(module, "pthread_mutex_init"), [field(b, pool, _MUTEX), ir.Constant(PTR, None)])
    for at in (_WORK, _DONE):
        b.call(_libc(module, "pthread_cond_init"), [field(b, pool, at), ir.Constant(PTR, None)])
    for at in (_GEN, _STOP, _PENDING, _PARTS, _THREADS):
        b.store(_i32(0), field(b, pool, at))
    b.store(_i32(_CLOSED), field(b, pool, _NEXT))
    b.store(handles, field(b, pool, _HANDLES))
    head, body, done = (fn.append_basic_block(n) for n in ("spawn", "spawn.body", "spawned"))
    b.branch(head)
    b.position_at_end(head)
    started = b.load(field(b, pool, _THREADS), typ=I32)
    b.cbranch(b.icmp_signed("<", started, threads), body, done)
    b.position_at_end(body)
    handle = b.gep(handles, [b.zext(started, I64)], inbounds=True, source_etype=I64)
    rc = b.call(_libc(module, "pthread_create"), [handle, ir.Constant(PTR, None), worker, pool])
    with b.if_then(b.icmp_signed("!=", rc, _i32(0)), likely=False):
        b.call(_declare_destroy(module), [pool])
        b.ret(ir.Constant(PTR, None))
    b.store(b.add(started, _i32(1)), field(b, pool, _THREADS))
    b.branch(head)
    b.position_at_end(done)
    b.ret(pool)


def _declare_destroy(module: ir.Module) -> ir.Function:
    return declare(module, "rk_pool_destroy", VOID, [PTR])


def _submit(module: ir.Module) -> None:
    fn = ir.Function(module, ir.FunctionType(VOID, [PTR, PTR, PTR, PTR, I64, I32, PTR, PTR]),
                     name="rk_pool_submit")
    pool, target, argv, dims, count, parts, cancel, status = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    mutex = field(b, pool, _MUTEX)
    b.call(_libc(module, "pthread_mutex_lock"), [mutex])
    _publish(b, _i32(_CLOSED), field(b, pool, _NEXT))
    for at, value in ((_FN, target), (_ARGV, argv), (_DIMS, dims), (_CANCEL, cancel),
                      (_STATUS, status)):
        b.store(value, field(b, pool, at))
    b.store(count, field(b, pool, _COUNT))
    _publish(b, parts, field(b, pool, _PARTS))
    _publish(b, parts, field(b, pool, _PENDING))
    _publish(b, _i32(0), field(b, pool, _NEXT))
    gen_p = field(b, pool, _GEN)
    _publish(b, b.add(b.load_atomic(gen_p, "acquire", 4, typ=I32), _i32(1)), gen_p)
    b.call(_libc(module, "pthread_cond_broadcast"), [field(b, pool, _WORK)])
    b.call(_libc(module, "pthread_mutex_unlock"), [mutex])
    b.ret_void()


def _wait(module: ir.Module) -> None:
    """Spins briefly on ``pending``, then waits on the done condition until the deadline."""
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, I64]), name="rk_pool_wait")
    pool, timeout = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    pending_p, mutex = field(b, pool, _PENDING), field(b, pool, _MUTEX)
    spins = b.alloca(I32)
    b.store(_i32(0), spins)
    names = ("spin", "spin.next", "yes", "sleep", "check", "wait", "no")
    spin, spin_next, yes, sleep, check, wait, no = (fn.append_basic_block(n) for n in names)
    b.branch(spin)
    b.position_at_end(spin)
    left = b.load_atomic(pending_p, "acquire", 4, typ=I32)
    b.cbranch(b.icmp_signed("==", left, _i32(0)), yes, spin_next)
    b.position_at_end(spin_next)  # plain polls: a yield could give the core away for a
    n = b.add(b.load(spins, typ=I32), _i32(1))  # whole time slice and stretch the slice
    b.store(n, spins)
    b.cbranch(b.icmp_signed(">", n, _i32(_SPIN)), sleep, spin)

    b.position_at_end(sleep)
    now = b.alloca(ir.ArrayType(I64, 2))
    b.call(_libc(module, "clock_gettime"), [_i32(_CLOCK_REALTIME), now])
    sec_p, nsec_p = (b.gep(now, [_i32(0), _i32(k)], inbounds=True) for k in (0, 1))
    nsec = b.add(b.load(nsec_p, typ=I64), timeout)
    billion = _i64(1_000_000_000)
    b.store(b.add(b.load(sec_p, typ=I64), b.sdiv(nsec, billion)), sec_p)
    b.store(b.srem(nsec, billion), nsec_p)
    b.call(_libc(module, "pthread_mutex_lock"), [mutex])
    b.branch(check)
    b.position_at_end(check)
    left = b.load_atomic(pending_p, "acquire", 4, typ=I32)
    done = b.icmp_signed("==", left, _i32(0))
    unlock_yes = fn.append_basic_block("unlock.yes")
    b.cbranch(done, unlock_yes, wait)
    b.position_at_end(wait)
    rc = b.call(_libc(module, "pthread_cond_timedwait"), [field(b, pool, _DONE), mutex, now])
    b.cbranch(b.icmp_signed("==", rc, _i32(0)), check, no)
    b.position_at_end(unlock_yes)
    b.call(_libc(module, "pthread_mutex_unlock"), [mutex])
    b.branch(yes)
    b.position_at_end(yes)
    b.ret(_i32(1))
    b.position_at_end(no)  # timed out (or an error): report what ``pending`` says now
    left = b.load_atomic(pending_p, "acquire", 4, typ=I32)
    b.call(_libc(module, "pthread_mutex_unlock"), [mutex])
    b.ret(b.zext(b.icmp_signed("==", left, _i32(0)), I32))


def _destroy(module: ir.Module) -> None:
    fn = _declare_destroy(module)
    (pool,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    mutex = field(b, pool, _MUTEX)
    b.call(_libc(module, "pthread_mutex_lock"), [mutex])
    _publish(b, _i32(1), field(b, pool, _STOP))
    b.call(_libc(module, "pthread_cond_broadcast"), [field(b, pool, _WORK)])
    b.call(_libc(module, "pthread_mutex_unlock"), [mutex])
    handles = b.load(field(b, pool, _HANDLES), typ=PTR)
    join_threads(b, module, fn, handles, b.load(field(b, pool, _THREADS), typ=I32))
    b.call(_libc(module, "free"), [handles])
    b.call(_libc(module, "free"), [pool])
    b.ret_void()

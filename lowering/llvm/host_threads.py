"""Native support code for kernels with barriers: one OS thread per work-item.

Generated as LLVM IR into each JIT module (so there is no C to compile):

- ``rk_cpu_barrier_wait(barrier)``: a generation-counting barrier over a
  pthread mutex and condition variable;
- ``rk_cpu_barrier_leave(barrier, n)``: ``n`` threads stop taking part (a
  work-item that returned, or threads that failed to start).  A kernel whose
  threads ``return`` before a barrier (undefined on GPUs) therefore cannot
  deadlock the host: the others are released;
- ``rk_cpu_run_block(thread_fn, argv, dims, bx, by, bz, shared)``: starts one
  pthread per work-item of block (bx, by, bz), joins them, and returns 0, or
  -1 if the OS refused a thread.

The barrier's mutex and condition variable live in generously sized byte
areas (glibc needs 40 and 48 bytes, macOS 64 and 48) initialized with
``pthread_mutex_init``/``pthread_cond_init``.
"""

from __future__ import annotations

from llvmlite import ir

I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
VOID = ir.VoidType()

BARRIER_SIZE = 512
_MUTEX_AT, _COND_AT, _ARRIVED_AT, _ACTIVE_AT, _GEN_AT = 0, 128, 256, 260, 264
THREAD_STACK_BYTES = 256 * 1024
# Per-thread context handed to a kernel's thread function: argv, dims, shared,
# barrier, then block x/y/z and thread x/y/z, all 8 bytes wide.
CONTEXT_FIELDS = ("argv", "dims", "shared", "barrier", "bx", "by", "bz", "tx", "ty", "tz")
CONTEXT_SIZE = 8 * len(CONTEXT_FIELDS)
_ATTR_SIZE = 128

# libc functions the generated code calls: name -> (return type, argument types)
LIBC = {
    "malloc": (PTR, [I64]),
    "free": (VOID, [PTR]),
    "pthread_mutex_init": (I32, [PTR, PTR]),
    "pthread_mutex_destroy": (I32, [PTR]),
    "pthread_mutex_lock": (I32, [PTR]),
    "pthread_mutex_unlock": (I32, [PTR]),
    "pthread_cond_init": (I32, [PTR, PTR]),
    "pthread_cond_destroy": (I32, [PTR]),
    "pthread_cond_wait": (I32, [PTR, PTR]),
    "pthread_cond_broadcast": (I32, [PTR]),
    "pthread_attr_init": (I32, [PTR]),
    "pthread_attr_setstacksize": (I32, [PTR, I64]),
    "pthread_attr_destroy": (I32, [PTR]),
    "pthread_create": (I32, [PTR, PTR, PTR, PTR]),
    "pthread_join": (I32, [I64, PTR]),
}


def declare(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(ret, args), name=name)


def _libc(module: ir.Module, name: str) -> ir.Function:
    ret, args = LIBC[name]
    return declare(module, name, ret, args)


def field(b: ir.IRBuilder, base: ir.Value, offset: int) -> ir.Value:
    return b.gep(base, [ir.Constant(I64, offset)], inbounds=True, source_etype=I8)


def _define(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    fn = declare(module, name, ret, args)
    fn.linkage = "internal"
    return fn


def add_thread_support(module: ir.Module) -> ir.Function:
    """Defines the barrier and block runner in ``module``; returns ``rk_cpu_run_block``."""
    _barrier_wait(module)
    _barrier_leave(module)
    return _run_block(module)


def _barrier_wait(module: ir.Module) -> None:
    fn = _define(module, "rk_cpu_barrier_wait", VOID, [PTR])
    (bar,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    mutex, cond = field(b, bar, _MUTEX_AT), field(b, bar, _COND_AT)
    arrived_p, active_p, gen_p = (field(b, bar, o) for o in (_ARRIVED_AT, _ACTIVE_AT, _GEN_AT))
    b.call(_libc(module, "pthread_mutex_lock"), [mutex])
    gen = b.load(gen_p, typ=I32)
    arrived = b.add(b.load(arrived_p, typ=I32), ir.Constant(I32, 1))
    last = b.icmp_signed(">=", arrived, b.load(active_p, typ=I32))
    release_bb, wait_bb, done_bb = (fn.append_basic_block(n) for n in ("release", "wait", "done"))
    b.cbranch(last, release_bb, wait_bb)
    b.position_at_end(release_bb)
    b.store(ir.Constant(I32, 0), arrived_p)
    b.store(b.add(gen, ir.Constant(I32, 1)), gen_p)
    b.call(_libc(module, "pthread_cond_broadcast"), [cond])
    b.branch(done_bb)
    b.position_at_end(wait_bb)
    b.store(arrived, arrived_p)
    loop_bb = fn.append_basic_block("loop")
    b.branch(loop_bb)
    b.position_at_end(loop_bb)
    b.call(_libc(module, "pthread_cond_wait"), [cond, mutex])
    b.cbranch(b.icmp_signed("==", b.load(gen_p, typ=I32), gen), loop_bb, done_bb)
    b.position_at_end(done_bb)
    b.call(_libc(module, "pthread_mutex_unlock"), [mutex])
    b.ret_void()


def _barrier_leave(module: ir.Module) -> None:
    fn = _define(module, "rk_cpu_barrier_leave", VOID, [PTR, I32])
    bar, count = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    mutex, cond = field(b, bar, _MUTEX_AT), field(b, bar, _COND_AT)
    arrived_p, active_p, gen_p = (field(b, bar, o) for o in (_ARRIVED_AT, _ACTIVE_AT, _GEN_AT))
    b.call(_libc(module, "pthread_mutex_lock"), [mutex])
    active = b.sub(b.load(active_p, typ=I32), count)
    b.store(active, active_p)
    arrived = b.load(arrived_p, typ=I32)
    waiting = b.icmp_signed(">", arrived, ir.Constant(I32, 0))
    release = b.and_(waiting, b.icmp_signed(">=", arrived, active))
    with b.if_then(release):
        b.store(ir.Constant(I32, 0), arrived_p)
        b.store(b.add(b.load(gen_p, typ=I32), ir.Constant(I32, 1)), gen_p)
        b.call(_libc(module, "pthread_cond_broadcast"), [cond])
    b.call(_libc(module, "pthread_mutex_unlock"), [mutex])
    b.ret_void()


def _run_block(module: ir.Module) -> ir.Function:
    fn = _define(module, "rk_cpu_run_block", I32, [PTR, PTR, PTR, I32, I32, I32, PTR])
    thread_fn, argv, dims, bx, by, bz, shared = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    sizes = [b.load(field(b, dims, 4 * (3 + d)), typ=I32) for d in range(3)]
    count = b.mul(b.mul(sizes[0], sizes[1]), sizes[2])
    count64 = b.zext(count, I64)
    malloc = _libc(module, "malloc")
    bar = b.call(malloc, [ir.Constant(I64, BARRIER_SIZE)])
    contexts = b.call(malloc, [b.mul(count64, ir.Constant(I64, CONTEXT_SIZE))])
    handles = b.call(malloc, [b.mul(count64, ir.Constant(I64, 8))])
    attr = b.alloca(ir.ArrayType(I8, _ATTR_SIZE))
    b.call(_libc(module, "pthread_mutex_init"), [field(b, bar, _MUTEX_AT), ir.Constant(PTR, None)])
    b.call(_libc(module, "pthread_cond_init"), [field(b, bar, _COND_AT), ir.Constant(PTR, None)])
    b.store(ir.Constant(I32, 0), field(b, bar, _ARRIVED_AT))
    b.store(count, field(b, bar, _ACTIVE_AT))
    b.store(ir.Constant(I32, 0), field(b, bar, _GEN_AT))
    b.call(_libc(module, "pthread_attr_init"), [attr])
    b.call(_libc(module, "pthread_attr_setstacksize"), [attr, ir.Constant(I64, THREAD_STACK_BYTES)])

    started = b.alloca(I32)
    b.store(ir.Constant(I32, 0), started)
    spawn_head = fn.append_basic_block("spawn.head")
    spawn_body = fn.append_basic_block("spawn.body")
    spawn_fail = fn.append_basic_block("spawn.fail")
    join_head = fn.append_basic_block("join.head")
    b.branch(spawn_head)
    b.position_at_end(spawn_head)
    t = b.load(started, typ=I32)
    b.cbranch(b.icmp_signed("<", t, count), spawn_body, join_head)

    b.position_at_end(spawn_body)
    ctx = b.gep(contexts, [b.mul(b.zext(t, I64), ir.Constant(I64, CONTEXT_SIZE))],
                inbounds=True, source_etype=I8)
    tx = b.urem(t, sizes[0])
    rest = b.udiv(t, sizes[0])
    ty = b.urem(rest, sizes[1])
    tz = b.udiv(rest, sizes[1])
    for i, value in enumerate((argv, dims, shared, bar)):
        b.store(value, field(b, ctx, 8 * i))
    for i, value in enumerate((bx, by, bz, tx, ty, tz)):
        b.store(b.zext(value, I64), field(b, ctx, 8 * (4 + i)))
    handle = b.gep(handles, [b.zext(t, I64)], inbounds=True, source_etype=I64)
    rc = b.call(_libc(module, "pthread_create"), [handle, attr, thread_fn, ctx])
    b.store(b.add(t, ir.Constant(I32, 1)), started)
    b.cbranch(b.icmp_signed("==", rc, ir.Constant(I32, 0)), spawn_head, spawn_fail)

    b.position_at_end(spawn_fail)
    failed_at = b.sub(b.load(started, typ=I32), ir.Constant(I32, 1))
    b.store(failed_at, started)
    leave = module.globals["rk_cpu_barrier_leave"]
    b.call(leave, [bar, b.sub(count, failed_at)])
    b.branch(join_head)

    b.position_at_end(join_head)
    n_started = b.load(started, typ=I32)
    joined = b.alloca(I32)
    b.store(ir.Constant(I32, 0), joined)
    join_loop, join_body, finish = (fn.append_basic_block(n) for n in ("join", "join.body", "end"))
    b.branch(join_loop)
    b.position_at_end(join_loop)
    j = b.load(joined, typ=I32)
    b.cbranch(b.icmp_signed("<", j, n_started), join_body, finish)
    b.position_at_end(join_body)
    h = b.load(b.gep(handles, [b.zext(j, I64)], inbounds=True, source_etype=I64), typ=I64)
    b.call(_libc(module, "pthread_join"), [h, ir.Constant(PTR, None)])
    b.store(b.add(j, ir.Constant(I32, 1)), joined)
    b.branch(join_loop)

    b.position_at_end(finish)
    b.call(_libc(module, "pthread_attr_destroy"), [attr])
    b.call(_libc(module, "pthread_cond_destroy"), [field(b, bar, _COND_AT)])
    b.call(_libc(module, "pthread_mutex_destroy"), [field(b, bar, _MUTEX_AT)])
    for buffer in (bar, contexts, handles):
        b.call(_libc(module, "free"), [buffer])
    ok = b.icmp_signed("==", n_started, count)
    b.ret(b.select(ok, ir.Constant(I32, 0), ir.Constant(I32, -1)))
    return fn

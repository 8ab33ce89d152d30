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

A kernel with ``rk.grid_sync()`` gets a cooperative launch instead
(:func:`add_grid_support`): ``rk_cpu_run_grid(thread_fn, argv, dims,
shared_bytes, cancel)`` starts one pthread per work-item of the *whole grid* at once,
each block with its own barrier and shared area, and one more barrier for
the grid, whose address every block barrier holds (``rk_cpu_grid_sync(bar)``
waits on it, and returns 1 instead once ``*cancel`` is set: the work-item then
returns, so Ctrl-C stops a cooperative launch at its next grid_sync).  At
most :data:`COOPERATIVE_MAX_WORK_ITEMS` work-items: the runtime refuses
larger grids before launching.

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
_GRID_AT = 272  # a block barrier's pointer to the grid barrier (null outside cooperative launches)
_CANCEL_AT = 280  # the grid barrier's pointer to the launch's cancel flag (Ctrl-C)
COOPERATIVE_MAX_WORK_ITEMS = 4096
"""The most work-items a cpu launch of a kernel with grid_sync may have: each is an OS thread,
all alive at once (stacks are reserved lazily, so the cost is thread creation and wake-ups)."""
THREAD_STACK_BYTES = 256 * 1024
# Per-thread context handed to a kernel's thread function: argv, dims, shared,
# barrier, then block x/y/z and thread x/y/z, all 8 bytes wide.
CONTEXT_FIELDS = ("argv", "dims", "shared", "barrier", "bx", "by", "bz", "tx", "ty", "tz")
CONTEXT_SIZE = 8 * len(CONTEXT_FIELDS)
_ATTR_SIZE = 128

# libc functions the generated code calls: name -> (return type, argument types)
LIBC = {
    "malloc": (PTR, [I64]),
    "calloc": (PTR, [I64, I64]),
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


def join_threads(b: ir.IRBuilder, module: ir.Module, fn: ir.Function, handles: ir.Value,
                 count: ir.Value) -> None:
    """Emits ``pthread_join`` of ``handles[0 .. count-1]`` (i64 thread handles) into ``fn``;
    the builder ends in the block after the loop."""
    with _Loop(fn, b, count, "join") as i:
        handle = b.load(b.gep(handles, [b.zext(i, I64)], inbounds=True, source_etype=I64), typ=I64)
        b.call(declare(module, "pthread_join", I32, [I64, PTR]), [handle, ir.Constant(PTR, None)])


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
    b.store(ir.Constant(PTR, None), field(b, bar, _GRID_AT))
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
    join_threads(b, module, fn, handles, n_started)
    b.call(_libc(module, "pthread_attr_destroy"), [attr])
    b.call(_libc(module, "pthread_cond_destroy"), [field(b, bar, _COND_AT)])
    b.call(_libc(module, "pthread_mutex_destroy"), [field(b, bar, _MUTEX_AT)])
    for buffer in (bar, contexts, handles):
        b.call(_libc(module, "free"), [buffer])
    ok = b.icmp_signed("==", n_started, count)
    b.ret(b.select(ok, ir.Constant(I32, 0), ir.Constant(I32, -1)))
    return fn


def add_grid_support(module: ir.Module) -> ir.Function:
    """Defines the barriers, ``rk_cpu_grid_sync`` and ``rk_cpu_run_grid`` in ``module``; returns the
    latter."""
    add_thread_support(module)
    _grid_sync(module)
    return _run_grid(module)


def grid_leave(module: ir.Module, b: ir.IRBuilder, block_barrier: ir.Value) -> None:
    """A finished work-item stops taking part in the grid barrier, if its block has one."""
    grid = b.load(field(b, block_barrier, _GRID_AT), typ=PTR)
    with b.if_then(b.icmp_unsigned("!=", grid, ir.Constant(PTR, None))):
        b.call(module.globals["rk_cpu_barrier_leave"], [grid, ir.Constant(I32, 1)])


def _grid_sync(module: ir.Module) -> None:
    """``int32 rk_cpu_grid_sync(bar)``: waits for the grid unless the launch was cancelled.

    Returns 1 (without waiting, or after it) once the host set the cancel flag,
    and the work-item returns: every grid_sync is a point where Ctrl-C stops a
    cooperative launch, as the block loop of a normal launch stops between blocks.
    The work-items still waiting are released as the returning ones leave.
    """
    fn = _define(module, "rk_cpu_grid_sync", I32, [PTR])
    (bar,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    grid = b.load(field(b, bar, _GRID_AT), typ=PTR)
    cancel = b.load(field(b, grid, _CANCEL_AT), typ=PTR)

    def cancelled() -> ir.Value:
        return b.icmp_unsigned("!=", b.load_atomic(cancel, "monotonic", 4, typ=I32), ir.Constant(I32, 0))

    with b.if_then(cancelled(), likely=False):
        b.ret(ir.Constant(I32, 1))
    b.call(module.globals["rk_cpu_barrier_wait"], [grid])
    b.ret(b.zext(cancelled(), I32))


def _init_barrier(module: ir.Module, b: ir.IRBuilder, bar: ir.Value, count: ir.Value,
                  grid: ir.Value) -> None:
    b.call(_libc(module, "pthread_mutex_init"), [field(b, bar, _MUTEX_AT), ir.Constant(PTR, None)])
    b.call(_libc(module, "pthread_cond_init"), [field(b, bar, _COND_AT), ir.Constant(PTR, None)])
    b.store(ir.Constant(I32, 0), field(b, bar, _ARRIVED_AT))
    b.store(count, field(b, bar, _ACTIVE_AT))
    b.store(ir.Constant(I32, 0), field(b, bar, _GEN_AT))
    b.store(grid, field(b, bar, _GRID_AT))


def _destroy_barrier(module: ir.Module, b: ir.IRBuilder, bar: ir.Value) -> None:
    b.call(_libc(module, "pthread_cond_destroy"), [field(b, bar, _COND_AT)])
    b.call(_libc(module, "pthread_mutex_destroy"), [field(b, bar, _MUTEX_AT)])


class _Loop:
    """``for i in range(start, stop)`` over i32, as a context manager (values through an alloca)."""

    def __init__(self, fn: ir.Function, b: ir.IRBuilder, stop: ir.Value, name: str,
                 start: ir.Value | None = None) -> None:
        self.fn, self.b, self.stop, self.name = fn, b, stop, name
        self.start = start if start is not None else ir.Constant(I32, 0)

    def __enter__(self) -> ir.Value:
        b = self.b
        self.slot = b.alloca(I32, name=self.name)
        b.store(self.start, self.slot)
        self.head, self.body, self.exit = (self.fn.append_basic_block(f"{self.name}.{n}")
                                           for n in ("head", "body", "exit"))
        b.branch(self.head)
        b.position_at_end(self.head)
        i = b.load(self.slot, typ=I32)
        b.cbranch(b.icmp_signed("<", i, self.stop), self.body, self.exit)
        b.position_at_end(self.body)
        return i

    def __exit__(self, *exc: object) -> None:
        b = self.b
        b.store(b.add(b.load(self.slot, typ=I32), ir.Constant(I32, 1)), self.slot)
        b.branch(self.head)
        b.position_at_end(self.exit)


def _run_grid(module: ir.Module) -> ir.Function:
    """``rk_cpu_run_grid``: every work-item of the grid on its own thread, all at once.

    Returns 0, -1 if the OS refused a thread (the started ones are released:
    the missing work-items leave their block's barrier and the grid's), or -2
    if ``malloc`` failed (nothing ran).
    """
    fn = _define(module, "rk_cpu_run_grid", I32, [PTR, PTR, PTR, I64, PTR])
    thread_fn, argv, dims, shared_bytes, cancel = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    grid_dims = [b.load(field(b, dims, 4 * d), typ=I32) for d in range(3)]
    sizes = [b.load(field(b, dims, 4 * (3 + d)), typ=I32) for d in range(3)]
    per_block = b.mul(b.mul(sizes[0], sizes[1]), sizes[2])
    blocks = b.mul(b.mul(grid_dims[0], grid_dims[1]), grid_dims[2])
    count = b.mul(per_block, blocks)
    count64, blocks64 = b.zext(count, I64), b.zext(blocks, I64)
    malloc, calloc = _libc(module, "malloc"), _libc(module, "calloc")
    grid_bar = b.call(malloc, [ir.Constant(I64, BARRIER_SIZE)])
    bars = b.call(malloc, [b.mul(blocks64, ir.Constant(I64, BARRIER_SIZE))])
    stride = b.select(b.icmp_unsigned("==", shared_bytes, ir.Constant(I64, 0)), ir.Constant(I64, 16),
                      shared_bytes)
    shared = b.call(calloc, [blocks64, stride])
    contexts = b.call(malloc, [b.mul(count64, ir.Constant(I64, CONTEXT_SIZE))])
    handles = b.call(malloc, [b.mul(count64, ir.Constant(I64, 8))])
    null = ir.Constant(PTR, None)
    failed = b.or_(b.or_(b.icmp_unsigned("==", grid_bar, null), b.icmp_unsigned("==", bars, null)),
                   b.or_(b.icmp_unsigned("==", shared, null), b.icmp_unsigned("==", contexts, null)))
    failed = b.or_(failed, b.icmp_unsigned("==", handles, null))
    with b.if_then(failed, likely=False):
        for buffer in (grid_bar, bars, shared, contexts, handles):
            b.call(_libc(module, "free"), [buffer])
        b.ret(ir.Constant(I32, -2))

    def block_barrier(k: ir.Value) -> ir.Value:
        return b.gep(bars, [b.mul(b.zext(k, I64), ir.Constant(I64, BARRIER_SIZE))], inbounds=True,
                     source_etype=I8)

    _init_barrier(module, b, grid_bar, count, null)
    b.store(cancel, field(b, grid_bar, _CANCEL_AT))
    with _Loop(fn, b, blocks, "init") as k:
        _init_barrier(module, b, block_barrier(k), per_block, grid_bar)
    attr = b.alloca(ir.ArrayType(I8, _ATTR_SIZE))
    b.call(_libc(module, "pthread_attr_init"), [attr])
    b.call(_libc(module, "pthread_attr_setstacksize"), [attr, ir.Constant(I64, THREAD_STACK_BYTES)])

    started = b.alloca(I32)
    b.store(count, started)
    spawn_fail = fn.append_basic_block("spawn.fail")
    joining = fn.append_basic_block("join.start")
    with _Loop(fn, b, count, "spawn") as t:
        k = b.udiv(t, per_block)
        w = b.urem(t, per_block)
        ctx = b.gep(contexts, [b.mul(b.zext(t, I64), ir.Constant(I64, CONTEXT_SIZE))],
                    inbounds=True, source_etype=I8)
        area = b.gep(shared, [b.mul(b.zext(k, I64), stride)], inbounds=True, source_etype=I8)
        for i, value in enumerate((argv, dims, area, block_barrier(k))):
            b.store(value, field(b, ctx, 8 * i))
        rest_b, rest_w = b.udiv(k, grid_dims[0]), b.udiv(w, sizes[0])
        ids = (b.urem(k, grid_dims[0]), b.urem(rest_b, grid_dims[1]), b.udiv(rest_b, grid_dims[1]),
               b.urem(w, sizes[0]), b.urem(rest_w, sizes[1]), b.udiv(rest_w, sizes[1]))
        for i, value in enumerate(ids):
            b.store(b.zext(value, I64), field(b, ctx, 8 * (4 + i)))
        handle = b.gep(handles, [b.zext(t, I64)], inbounds=True, source_etype=I64)
        rc = b.call(_libc(module, "pthread_create"), [handle, attr, thread_fn, ctx])
        ok_bb = fn.append_basic_block("spawn.ok")
        b.store(t, started)
        b.cbranch(b.icmp_signed("==", rc, ir.Constant(I32, 0)), ok_bb, spawn_fail)
        b.position_at_end(ok_bb)
        b.store(count, started)
    b.branch(joining)

    b.position_at_end(spawn_fail)  # threads from `started` on do not exist: release the others
    first_missing = b.load(started, typ=I32)
    leave = module.globals["rk_cpu_barrier_leave"]
    b.call(leave, [grid_bar, b.sub(count, first_missing)])
    with _Loop(fn, b, blocks, "release") as k:
        begin = b.mul(k, per_block)
        end = b.add(begin, per_block)
        lo = b.select(b.icmp_signed(">", first_missing, begin), first_missing, begin)
        with b.if_then(b.icmp_signed("<", lo, end)):
            b.call(leave, [block_barrier(k), b.sub(end, lo)])
    b.branch(joining)

    b.position_at_end(joining)
    n_started = b.load(started, typ=I32)
    join_threads(b, module, fn, handles, n_started)
    b.call(_libc(module, "pthread_attr_destroy"), [attr])
    with _Loop(fn, b, blocks, "destroy") as k:
        _destroy_barrier(module, b, block_barrier(k))
    _destroy_barrier(module, b, grid_bar)
    for buffer in (grid_bar, bars, shared, contexts, handles):
        b.call(_libc(module, "free"), [buffer])
    ok = b.icmp_signed("==", n_started, count)
    b.ret(b.select(ok, ir.Constant(I32, 0), ir.Constant(I32, -1)))
    return fn

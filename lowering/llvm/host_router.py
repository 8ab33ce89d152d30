"""Native message routing for the cpu backend, generated as LLVM IR (issue 23, no Python in the path).

The Python router (``ringkernel.runtime.router``) polls every ``sends`` queue from a thread;
on the cpu the scheduler's workers (:mod:`.host_sched`) instead route an instance's sends right
after the turn that published them, with the functions built here, into the receivers'
``routed`` queues.  ``ringkernel.runtime.cpu.routing`` owns the memory and the Python side (the
timers, the tables, the cycle report); this module owns the byte layout and the code.

Memory (all host memory, byte offsets below):

- the router's control block (``ctl``, :data:`CTL_BYTES`): ``paused``/``busy`` words (a
  caller of :func:`rk_route_range` adds itself to ``busy``, fences, and routes only when
  ``paused`` is 0; the host sets ``paused``, fences and waits until ``busy`` is 0 before it
  swaps a table or re-makes a queue, so no routing runs on anything old), ``blocked`` (the
  endpoints whose head message waits for a full receiver), the current table's address and
  u64 counters (``routed``, ``unrouted``, ``invalid``, ``moved``, ``timers``);
- a *table* (read-only once published; a new one replaces it whole): the endpoint count, the
  endpoint records, the port targets (endpoint numbers in connect order), the port ranges
  (``start << 32 | count`` per connected port), the timer inbox and the scheduler block;
- an *endpoint record* per actor instance: its ``sends`` and ``routed`` regions, its state
  words (a try-lock: one router per ``sends`` queue at a time; ``skip``: copies of the head
  message already delivered; ``blocked``: 1 + the endpoint it waits for, or 0), its actor id,
  its group's first endpoint and size, and its ports (first range, how many);
- the *timer inbox*: a queue region (``docs/layout.md``) the routers push timer sends into
  (their ``target`` word replaced by the sender's endpoint) and the host's timer thread takes.

Pushing into a ``routed`` queue (or the inbox) follows the MPSC protocol of ``docs/layout.md``
("Routed queue (MPSC)"): reserve a slot with a CAS on ``tail`` (full: ``tail - head`` =
capacity), write every word but ``type_id``, publish ``type_id`` with an atomic exchange, add
``enqueued``, ring the consumer if it is ``parked``.

Routing one endpoint (holding its lock) takes its ``sends`` in order from ``head``: a
``send_to`` goes to instance ``index`` of the sender's group (outside it: ``invalid``), a port
to each of its targets in connect order (none: ``unrouted``), a timer into the inbox, a
delivered entry (``SEND_DELIVERED``, a device-side send the loop already made) nowhere; it
stops at the first message a receiver has no room for (head-of-line, ``skip`` remembers the
copies of a fan-out already made), frees the taken slots with one ``head`` store, and records
whom it waits for.  Nothing here sleeps or polls: the callers do (the scheduler's workers
after a turn, the timer thread when told to).

Functions: ``int32 rk_route_range(ctl, int64 first, int64 end)`` routes endpoints
``first .. end-1`` (those another router holds are skipped) and returns the messages moved;
``int32 rk_route_push(ctl, int64 endpoint, row, int32 words)`` pushes one message (a due
timer) into an endpoint's ``routed`` (1, or 0 when full or paused); ``void rk_bell_wait(word,
int32 expected, int64 ns)`` sleeps on a futex word while it holds ``expected`` (``ns`` < 0:
no limit); ``void rk_bell_ring(header)`` rings a queue's consumer if it is ``parked``.
"""

from __future__ import annotations

import platform
import sys

from llvmlite import ir

from ringkernel.lowering.llvm.host_threads import declare, field
from ringkernel.lowering.llvm.targets import _FUTEX_SYSCALL, _FUTEX_WAIT_PRIVATE, _FUTEX_WAKE_PRIVATE
from ringkernel.ringir import layout as L

I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
VOID = ir.VoidType()

# the control block
PAUSED, BUSY, BLOCKED = 0, 4, 8  # u32
TABLE = 64  # i64: the current table's address (0: none)
ROUTED, UNROUTED, INVALID, MOVED, TIMERS = 128, 136, 144, 152, 160  # u64 counters
CTL_BYTES = 256
# a table
T_COUNT, T_RECORDS, T_TARGETS, T_PORTS, T_INBOX, T_SCHED = 0, 8, 16, 24, 32, 40
TABLE_BYTES = 64
# an endpoint record
E_SENDS, E_ROUTED, E_STATE, E_ACTOR, E_BASE, E_SIZE, E_PORTS, E_NPORTS = 0, 8, 16, 24, 32, 40, 48, 56
ENDPOINT_BYTES = 64
# an endpoint's state words (u32)
S_LOCK, S_SKIP, S_BLOCKED = 0, 1, 2
STATE_WORDS = 4
# the scheduler block's words a router rings (host_sched.SLEEPERS / BELL)
SCHED_SLEEPERS, SCHED_BELL = L.C["parked"], L.Q_BELL
_WAKE_ALL = 0x7FFFFFFF
_H = L.QUEUE_HEADER_WORDS


def _c32(v: int) -> ir.Constant:
    return ir.Constant(I32, v)


def _c64(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _word(b: ir.IRBuilder, base: ir.Value, index: int | ir.Value) -> ir.Value:
    """The address of u32 word ``index`` of ``base``."""
    at = _c64(index) if isinstance(index, int) else b.zext(index, I64) if index.type == I32 else index
    return b.gep(base, [at], inbounds=True, source_etype=I32)


def _atomic(b: ir.IRBuilder, ptr: ir.Value, ty: ir.Type = I32) -> ir.Value:
    return b.load_atomic(ptr, "seq_cst", ty.width // 8, typ=ty)


def _ptr(b: ir.IRBuilder, base: ir.Value, offset: int) -> ir.Value:
    return b.load(field(b, base, offset), typ=PTR)


def _i64(b: ir.IRBuilder, base: ir.Value, offset: int) -> ir.Value:
    return b.load(field(b, base, offset), typ=I64)


def _syscall(module: ir.Module) -> ir.Function:
    return module.globals.get("syscall") or ir.Function(
        module, ir.FunctionType(I64, [I64], var_arg=True), name="syscall"
    )


def _futex() -> int | None:
    return _FUTEX_SYSCALL.get(platform.machine()) if sys.platform.startswith("linux") else None


def _ring(b: ir.IRBuilder, parked: ir.Value, bell: ir.Value) -> None:
    """If ``*parked`` is not 0: bump ``*bell`` and wake its futex waiters."""
    with b.if_then(b.icmp_unsigned("!=", _atomic(b, parked), _c32(0))):
        b.atomic_rmw("add", bell, _c32(1), "seq_cst")
        futex = _futex()
        if futex is not None:
            b.call(_syscall(b.module), [_c64(futex), bell, _c64(_FUTEX_WAKE_PRIVATE), _c64(_WAKE_ALL)])


class _Var:
    """A mutable local (an alloca in the entry block)."""

    def __init__(self, b: ir.IRBuilder, ty: ir.Type, init: ir.Value) -> None:
        self.b, self.ty = b, ty
        with b.goto_entry_block():
            self.slot = b.alloca(ty)
        b.store(init, self.slot)

    def get(self) -> ir.Value:
        return self.b.load(self.slot, typ=self.ty)

    def set(self, value: ir.Value) -> None:
        self.b.store(value, self.slot)

    def add(self, value: ir.Value) -> None:
        self.set(self.b.add(self.get(), value))


def build_router(module: ir.Module) -> ir.Function:
    """Defines the routing functions in ``module``; returns ``rk_route_range`` (the scheduler's
    workers call it after a turn)."""
    push = _push(module)
    route_one = _route_one(module, push)
    _route_push(module, push)
    _bell_wait(module)
    _bell_ring(module)
    return _route_range(module, route_one)


def _copy(b: ir.IRBuilder, fn: ir.Function, dst: ir.Value, src: ir.Value, start: ir.Value,
          stop: ir.Value, name: str) -> None:
    """``dst[i] = src[i]`` (or 0 when ``src`` is None) for ``start <= i < stop`` (u32 words)."""
    i = _Var(b, I32, start)
    head, body, done = (fn.append_basic_block(f"{name}.{n}") for n in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    k = i.get()
    b.cbranch(b.icmp_unsigned("<", k, stop), body, done)
    b.position_at_end(body)
    value = _c32(0) if src is None else b.load(_word(b, src, k), typ=I32)
    b.store(value, _word(b, dst, k))
    i.set(b.add(k, _c32(1)))
    b.branch(head)
    b.position_at_end(done)


def _push(module: ir.Module) -> ir.Function:
    """``int32 push(q, src, int32 src_words, int32 target)``: one message into queue ``q`` by
    the MPSC protocol, its ``target`` word replaced; 0 when ``q`` is full."""
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, PTR, I32, I32]), name="rk_route_push_one")
    fn.linkage = "internal"
    q, src, src_words, target = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    capacity, mask, slot_words = (b.load(_word(b, q, w), typ=I32) for w in (L.Q_CAPACITY, L.Q_MASK,
                                                                             L.Q_SLOT_WORDS))
    reserve, cas, write, full = (fn.append_basic_block(n) for n in ("reserve", "cas", "write", "full"))
    b.branch(reserve)

    b.position_at_end(reserve)
    tail = _atomic(b, _word(b, q, L.Q_TAIL))
    head = _atomic(b, _word(b, q, L.Q_HEAD))
    b.cbranch(b.icmp_unsigned(">=", b.sub(tail, head), capacity), full, cas)

    b.position_at_end(cas)
    swapped = b.cmpxchg(_word(b, q, L.Q_TAIL), tail, b.add(tail, _c32(1)), "seq_cst", "seq_cst")
    b.cbranch(b.extract_value(swapped, 1), write, reserve)

    b.position_at_end(write)
    at = b.add(_c32(_H), b.mul(b.and_(tail, mask), slot_words))
    dst = _word(b, q, at)
    width = b.select(b.icmp_unsigned("<", src_words, slot_words), src_words, slot_words)
    _copy(b, fn, dst, src, _c32(1), width, "copy")
    _copy(b, fn, dst, None, width, slot_words, "zero")
    b.store(target, _word(b, dst, L.ENV_TARGET))
    b.atomic_rmw("xchg", _word(b, dst, L.ENV_TYPE_ID), b.load(src, typ=I32), "seq_cst")  # publishes
    b.atomic_rmw("add", _word(b, q, L.Q_ENQUEUED), _c32(1), "seq_cst")
    _ring(b, _word(b, q, L.Q_PARKED), _word(b, q, L.Q_BELL))
    b.ret(_c32(1))

    b.position_at_end(full)
    b.ret(_c32(0))
    return fn


def _route_one(module: ir.Module, push: ir.Function) -> ir.Function:
    """``int32 route_one(ctl, table, int64 endpoint)``: routes one endpoint's ``sends`` (its lock
    held); returns the messages moved (copies delivered, timers handed over, discards)."""
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, PTR, I64]), name="rk_route_one")
    fn.linkage = "internal"
    ctl, table, endpoint = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    records = _ptr(b, table, T_RECORDS)

    def record(e: ir.Value) -> ir.Value:
        return b.gep(records, [b.mul(e, _c64(ENDPOINT_BYTES))], inbounds=True, source_etype=I8)

    rec = record(endpoint)
    sq, state = _ptr(b, rec, E_SENDS), _ptr(b, rec, E_STATE)
    mask, slot_words = (b.load(_word(b, sq, w), typ=I32) for w in (L.Q_MASK, L.Q_SLOT_WORDS))
    first_head = _atomic(b, _word(b, sq, L.Q_HEAD))
    tail = _atomic(b, _word(b, sq, L.Q_TAIL))
    head = _Var(b, I32, first_head)
    skip = _Var(b, I32, b.load(_word(b, state, S_SKIP), typ=I32))
    waits = _Var(b, I32, _c32(0))  # 1 + the endpoint whose full routed holds the head
    counts = {name: _Var(b, I64, _c64(0)) for name in ("routed", "unrouted", "invalid", "timers", "moved")}

    names = ("loop", "message", "to", "to.ok", "port", "port.some", "fan", "fan.push", "fan.next",
             "fan.done", "timer", "delivered", "bad", "taken", "stuck", "done")
    blocks = {n: fn.append_basic_block(n) for n in names}
    b.branch(blocks["loop"])

    b.position_at_end(blocks["loop"])
    b.cbranch(b.icmp_unsigned("!=", head.get(), tail), blocks["message"], blocks["done"])

    b.position_at_end(blocks["message"])
    h = head.get()
    slot = _word(b, sq, b.add(_c32(_H), b.mul(b.and_(h, mask), slot_words)))
    target = b.load(_word(b, slot, L.ENV_TARGET), typ=I32)
    kind = b.lshr(target, _c32(L.TARGET_KIND_SHIFT))
    index = b.and_(target, _c32(L.TARGET_INDEX_MASK))
    switch = b.switch(kind, blocks["bad"])
    switch.add_case(_c32(L.SEND_TO), blocks["to"])
    switch.add_case(_c32(L.SEND_PORT), blocks["port"])
    switch.add_case(_c32(L.SEND_TIMER), blocks["timer"])
    switch.add_case(_c32(L.SEND_DELIVERED), blocks["delivered"])

    def deliver(to: ir.Value) -> ir.Value:
        """Pushes the head into endpoint ``to``'s routed; sets ``waits`` when it is full."""
        dest = record(to)
        ok = b.call(push, [_ptr(b, dest, E_ROUTED), slot, slot_words, b.trunc(_i64(b, dest, E_ACTOR), I32)])
        sent = b.icmp_unsigned("!=", ok, _c32(0))
        with b.if_else(sent) as (yes, no):
            with yes:
                counts["routed"].add(_c64(1))
                counts["moved"].add(_c64(1))
            with no:
                waits.set(b.add(b.trunc(to, I32), _c32(1)))
        return sent

    b.position_at_end(blocks["to"])  # send_to: instance `index` of the sender's group
    inside = b.icmp_unsigned("<", b.zext(index, I64), _i64(b, rec, E_SIZE))
    b.cbranch(inside, blocks["to.ok"], blocks["bad"])
    b.position_at_end(blocks["to.ok"])
    sent = deliver(b.add(_i64(b, rec, E_BASE), b.zext(index, I64)))
    b.cbranch(sent, blocks["taken"], blocks["stuck"])

    b.position_at_end(blocks["port"])  # a port: every target in connect order, `skip` already done
    connected = b.icmp_unsigned("<", b.zext(index, I64), _i64(b, rec, E_NPORTS))
    at = b.select(connected, b.add(_i64(b, rec, E_PORTS), b.zext(index, I64)), _c64(0))
    ports = _ptr(b, table, T_PORTS)
    span = b.load(b.gep(ports, [at], inbounds=True, source_etype=I64), typ=I64)
    span = b.select(connected, span, _c64(0))
    start, count = b.lshr(span, _c64(32)), b.and_(span, _c64(0xFFFFFFFF))
    b.cbranch(b.icmp_unsigned("==", count, _c64(0)), blocks["port.some"], blocks["fan"])
    b.position_at_end(blocks["port.some"])  # nobody connected: discarded, counted
    counts["unrouted"].add(_c64(1))
    counts["moved"].add(_c64(1))
    b.branch(blocks["taken"])

    b.position_at_end(blocks["fan"])
    k = skip.get()
    b.cbranch(b.icmp_unsigned("<", b.zext(k, I64), count), blocks["fan.push"], blocks["fan.done"])
    b.position_at_end(blocks["fan.push"])
    targets = _ptr(b, table, T_TARGETS)
    to = b.load(b.gep(targets, [b.add(start, b.zext(k, I64))], inbounds=True, source_etype=I64), typ=I64)
    sent = deliver(to)
    b.cbranch(sent, blocks["fan.next"], blocks["stuck"])
    b.position_at_end(blocks["fan.next"])
    skip.set(b.add(k, _c32(1)))
    b.branch(blocks["fan"])
    b.position_at_end(blocks["fan.done"])
    skip.set(_c32(0))
    b.branch(blocks["taken"])

    b.position_at_end(blocks["timer"])  # into the inbox, tagged with the sender's endpoint
    inbox = _ptr(b, table, T_INBOX)
    ok = b.call(push, [inbox, slot, slot_words, b.trunc(endpoint, I32)])
    handed = b.icmp_unsigned("!=", ok, _c32(0))
    with b.if_then(handed):
        counts["timers"].add(_c64(1))
        counts["moved"].add(_c64(1))
    b.cbranch(handed, blocks["taken"], blocks["stuck"])

    b.position_at_end(blocks["delivered"])  # the loop delivered it itself: only its slot moves
    counts["moved"].add(_c64(1))
    b.branch(blocks["taken"])

    b.position_at_end(blocks["bad"])  # outside the group, or an unknown kind
    counts["invalid"].add(_c64(1))
    counts["moved"].add(_c64(1))
    b.branch(blocks["taken"])

    b.position_at_end(blocks["taken"])
    head.set(b.add(head.get(), _c32(1)))
    b.branch(blocks["loop"])

    b.position_at_end(blocks["stuck"])
    b.branch(blocks["done"])

    b.position_at_end(blocks["done"])
    b.store(skip.get(), _word(b, state, S_SKIP))
    taken = b.sub(head.get(), first_head)
    with b.if_then(b.icmp_unsigned("!=", taken, _c32(0))):
        dequeued = _word(b, sq, L.Q_DEQUEUED)
        b.store(b.add(b.load(dequeued, typ=I32), taken), dequeued)
        b.fence("seq_cst")  # the slots were read before the head frees them
        b.atomic_rmw("xchg", _word(b, sq, L.Q_HEAD), head.get(), "seq_cst")
    blocked = _word(b, state, S_BLOCKED)
    old = b.load(blocked, typ=I32)
    with b.if_then(b.icmp_unsigned("!=", old, waits.get())):
        b.store(waits.get(), blocked)
        gauge = _word(b, ctl, BLOCKED // 4)
        with b.if_else(b.icmp_unsigned("==", old, _c32(0))) as (started, ended):
            with started:  # the timer thread watches for cycles while anything is blocked
                b.atomic_rmw("add", gauge, _c32(1), "seq_cst")
                inbox = _ptr(b, table, T_INBOX)
                _ring(b, _word(b, inbox, L.Q_PARKED), _word(b, inbox, L.Q_BELL))
            with ended:
                with b.if_then(b.icmp_unsigned("==", waits.get(), _c32(0))):
                    b.atomic_rmw("sub", gauge, _c32(1), "seq_cst")
    with b.if_then(b.icmp_unsigned("!=", counts["timers"].get(), _c64(0))):
        inbox = _ptr(b, table, T_INBOX)
        _ring(b, _word(b, inbox, L.Q_PARKED), _word(b, inbox, L.Q_BELL))
    for name, offset in (("routed", ROUTED), ("unrouted", UNROUTED), ("invalid", INVALID),
                         ("timers", TIMERS), ("moved", MOVED)):
        value = counts[name].get()
        with b.if_then(b.icmp_unsigned("!=", value, _c64(0))):
            b.atomic_rmw("add", field(b, ctl, offset), value, "monotonic")
    b.ret(b.trunc(counts["moved"].get(), I32))
    return fn


class _Busy:
    """``busy += 1``, fence, and the body only while ``paused`` is 0 (it gets the table); the
    exit leaves ``busy`` (see the module docstring)."""

    def __init__(self, fn: ir.Function, b: ir.IRBuilder, ctl: ir.Value) -> None:
        self.fn, self.b, self.ctl = fn, b, ctl

    def __enter__(self) -> ir.Value:
        b, ctl = self.b, self.ctl
        b.atomic_rmw("add", _word(b, ctl, BUSY // 4), _c32(1), "seq_cst")
        b.fence("seq_cst")
        paused = b.icmp_unsigned("!=", _atomic(b, _word(b, ctl, PAUSED // 4)), _c32(0))
        address = _atomic(b, field(b, ctl, TABLE), I64)
        self.body, self.leave = (self.fn.append_basic_block(n) for n in ("busy.body", "busy.leave"))
        b.cbranch(b.or_(paused, b.icmp_unsigned("==", address, _c64(0))), self.leave, self.body)
        b.position_at_end(self.body)
        return b.inttoptr(address, PTR)

    def __exit__(self, *exc: object) -> None:
        b = self.b
        b.branch(self.leave)
        b.position_at_end(self.leave)
        b.atomic_rmw("sub", _word(b, self.ctl, BUSY // 4), _c32(1), "seq_cst")


def _ring_scheduler(b: ir.IRBuilder, table: ir.Value) -> None:
    sched = _ptr(b, table, T_SCHED)
    _ring(b, _word(b, sched, SCHED_SLEEPERS), _word(b, sched, SCHED_BELL))


def _route_range(module: ir.Module, route_one: ir.Function) -> ir.Function:
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, I64, I64]), name="rk_route_range")
    ctl, first, end = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    moved = _Var(b, I32, _c32(0))
    with _Busy(fn, b, ctl) as table:
        count = _i64(b, table, T_COUNT)
        stop = b.select(b.icmp_signed("<", end, count), end, count)
        records = _ptr(b, table, T_RECORDS)
        e = _Var(b, I64, first)
        head, body, some, run, next_, done = (fn.append_basic_block(f"range.{n}")
                                               for n in ("head", "body", "some", "run", "next", "done"))
        b.branch(head)
        b.position_at_end(head)
        b.cbranch(b.icmp_signed("<", e.get(), stop), body, done)
        b.position_at_end(body)  # an empty sends queue costs two loads, no lock
        rec = b.gep(records, [b.mul(e.get(), _c64(ENDPOINT_BYTES))], inbounds=True, source_etype=I8)
        sq = _ptr(b, rec, E_SENDS)
        empty = b.icmp_unsigned("==", _atomic(b, _word(b, sq, L.Q_TAIL)), _atomic(b, _word(b, sq, L.Q_HEAD)))
        b.cbranch(empty, next_, some)
        b.position_at_end(some)
        lock = _word(b, _ptr(b, rec, E_STATE), S_LOCK)
        taken = b.cmpxchg(lock, _c32(0), _c32(1), "seq_cst", "seq_cst")
        b.cbranch(b.extract_value(taken, 1), run, next_)
        b.position_at_end(run)
        moved.add(b.call(route_one, [ctl, table, e.get()]))
        b.atomic_rmw("xchg", lock, _c32(0), "seq_cst")
        b.branch(next_)
        b.position_at_end(next_)
        e.add(_c64(1))
        b.branch(head)
        b.position_at_end(done)
        with b.if_then(b.icmp_unsigned("!=", moved.get(), _c32(0))):
            _ring_scheduler(b, table)  # receivers on sleeping workers
    b.ret(moved.get())
    return fn


def _route_push(module: ir.Module, push: ir.Function) -> None:
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, I64, PTR, I32]), name="rk_route_push")
    ctl, endpoint, row, words = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ok = _Var(b, I32, _c32(0))
    with _Busy(fn, b, ctl) as table:
        inside = b.icmp_signed("<", endpoint, _i64(b, table, T_COUNT))
        with b.if_then(inside):
            records = _ptr(b, table, T_RECORDS)
            rec = b.gep(records, [b.mul(endpoint, _c64(ENDPOINT_BYTES))], inbounds=True, source_etype=I8)
            ok.set(b.call(push, [_ptr(b, rec, E_ROUTED), row, words, b.trunc(_i64(b, rec, E_ACTOR), I32)]))
            with b.if_then(b.icmp_unsigned("!=", ok.get(), _c32(0))):
                b.atomic_rmw("add", field(b, ctl, ROUTED), _c64(1), "monotonic")
                _ring_scheduler(b, table)
    b.ret(ok.get())


def _bell_wait(module: ir.Module) -> None:
    fn = ir.Function(module, ir.FunctionType(VOID, [PTR, I32, I64]), name="rk_bell_wait")
    word, expected, nanos = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    futex = _futex()
    if futex is None:  # no futex: sleep the time (at most 1 ms when unbounded), then look again
        usleep = declare(module, "usleep", I32, [I32])
        bounded = b.select(b.icmp_signed("<", nanos, _c64(0)), _c64(1_000_000), nanos)
        b.call(usleep, [b.trunc(b.udiv(bounded, _c64(1000)), I32)])
        b.ret_void()
        return
    spec = b.alloca(I64, size=2)  # struct timespec, relative
    billion = _c64(1_000_000_000)
    b.store(b.udiv(nanos, billion), spec)
    b.store(b.urem(nanos, billion), b.gep(spec, [_c32(1)], source_etype=I64))
    limit = b.select(b.icmp_signed("<", nanos, _c64(0)), ir.Constant(PTR, None), spec)
    b.call(_syscall(module), [_c64(futex), word, _c64(_FUTEX_WAIT_PRIVATE), b.zext(expected, I64), limit])
    b.ret_void()


def _bell_ring(module: ir.Module) -> None:
    fn = ir.Function(module, ir.FunctionType(VOID, [PTR]), name="rk_bell_ring")
    (header,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.fence("seq_cst")
    _ring(b, _word(b, header, L.Q_PARKED), _word(b, header, L.Q_BELL))
    b.ret_void()

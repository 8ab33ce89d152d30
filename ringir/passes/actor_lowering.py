"""Actor lowering: an actor's handler funcs → one message-loop kernel.

Every backend gets the same loop from here, built only from ordinary RingIR
(u32 word arrays, loads/stores at computed offsets, atomics) plus ``fence``,
``clock`` and ``backoff``.  The kernel is ``kernel @<Actor>(%ctrl, %state,
%h2k, %k2k, %out, %sends, %routed)``, all ``array<u32, global>`` laid out as
``ringkernel.ringir.layout`` (``docs/layout.md``) says.  Lane 0 runs the
loop; with ``threads=1`` every other lane returns at once, so exactly one
lane consumes a message.  Each iteration:

1. bumps the heartbeat; leaves if ``stop`` is set; notes ``drain``;
2. polls ``h2k``, ``k2k``, then ``routed`` (the router's deliveries): an index pair is read with atomic RMWs
   (acquire/release on every target), the slot after a ``fence``;
3. honours a producer's drop-oldest request, or (when the output queue has a
   free slot) merges the message's HLC into the actor's (``max(t+1, m+1,
   now)``; a stamp more than ``MAX_CLOCK_DRIFT_US`` ahead of ``now`` is not
   merged but counted, and the clock saturates at 2**64 - 1 rather than
   wrap), dispatches on the type id to its handler, writes the reply's
   envelope, publishes it (``fence``, then the output tail), then frees the
   input slot (``fence``, then the head) and counts it as processed;
   unknown type ids count as errors;
4. with nothing to do: leaves when draining and both inputs are empty (a full
   output queue only makes it wait), else spins (``IDLE_SPINS`` polls and
   ``IDLE_SPIN_US`` since its last work), then parks (:meth:`_LoopBuilder.park`).

After publishing a reply the persistent loop wakes host threads waiting for
one, or the downstream loop parked on its K2K queue (:meth:`_LoopBuilder.wake_consumer`).

An actor whose handlers send (they take ``%sends, %rk.qbase``:
``frontends/sends.py``) gets the send protocol of ``docs/layout.md``
("Sends"): before a handler the loop writes the send context into the
``sends`` header, after it delivers a prefix of the staged ``send_to`` sends
straight into the targets' ``routed`` queues (:meth:`_LoopBuilder.deliver_directly`)
and publishes the rest with one ``tail`` store (or discards them all when the
handler aborted), and it starts a handler only while ``sends`` is at most half
full.  ``routed`` has several producers (the router, the group's loops), so
the loop takes its head slot only once its ``type_id`` is published and frees
it by zeroing that word (``docs/layout.md``, "Routed queue (MPSC)").

``mode="batch"`` (WGSL/MSL: no forward-progress guarantee) leaves instead of
waiting, handles at most ``ctrl.batch`` messages per dispatch and takes the
time from ``ctrl.now`` (the host writes it per dispatch; WGSL has no u64).
The HLC lives in two u32 words everywhere, so no target needs 64-bit ints.

``group=True`` (``docs/layout.md``, "Actor groups") builds the *turn* kernel
of a group of N instances in the same five arrays: block ``b`` (linear over a
2-D grid) is instance ``b``, whose regions start at ``b`` times each array's
stride.  A turn handles up to ``ctrl[0].quantum`` messages of one instance
exactly as the single loop handles one, then returns (``"turn"``: cpu, with
the device clock; ``"batch"``: wgpu/metal, time from ``ctrl[0].now``); in
``"persistent"`` mode (cuda) a grid of G blocks loops, block b taking turns
of instances b, b+G, ... until ``stop`` (or a drain finds every input empty).

``threads=N`` makes handlers cooperative: the block's N lanes all run each
handler (``rk.thread_id``, ``rk.shared_array`` and ``rk.barrier()`` work in
it: :mod:`.inline` copies such handlers into the kernel).  Lane 0 alone polls
and decides; its decisions reach the other lanes through shared memory and a
barrier, and it alone writes the reply (its handler's result) and frees the
slot.  Cooperative handlers get no budget checks (lanes would disagree on an
abort and deadlock at the next barrier).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from ringkernel.ringir import (
    BOOL,
    I32,
    U32,
    U64,
    ArrayType,
    Backoff,
    Call,
    Clock,
    Fence,
    Function,
    FunctionBuilder,
    LocalVar,
    Module,
    ScalarType,
    Value,
    Wake,
    verify,
    walk,
)
from ringkernel.ringir import layout as L
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.layout import KERNEL_PARAMS
from ringkernel.ringir.passes.budget import checked_functions, insert_budget_checks
from ringkernel.ringir.passes.inline import inline_block_level

Pair = tuple[Value, Value]  # a 64-bit HLC value as (low word, high word)

MODES = ("persistent", "batch", "turn")
HANDLER_PREFIX = "__on_"
# shared words of a cooperative block: per poll step (kind, type id, slot, reply slot),
# then one per broadcast decision
STEP_WORDS = 4
SHARED_WORDS = 20
SEND_BASE = "rk.qbase"  # the param of handlers that send (frontends/sends.py): they also take ``sends``
KIND_NONE, KIND_DROPPED, KIND_HANDLE = 0, 1, 2


def lower_actor(
    module: Module,
    actor: str,
    mode: str = "persistent",
    budget_checks: bool = True,
    *,
    group: bool = False,
    threads: int = 1,
) -> Module:
    """``module`` plus the actor's loop kernel ``@<actor>`` (the handlers stay as funcs).

    Handlers that loop get budget checks (:mod:`.budget`) and the loop rolls
    their state back when one aborts; ``budget_checks=False`` leaves both out
    (only to measure what they cost: such an actor cannot be stopped mid-message).
    ``group=True``: the turn kernel of a group (mode ``"turn"``, ``"batch"`` or
    ``"persistent"``); ``threads``: lanes per handler (cooperative when > 1).
    """
    if mode not in MODES:
        raise CompileError(f"unknown actor loop mode '{mode}'; choose one of: {', '.join(MODES)}")
    if mode == "turn" and not group:
        raise CompileError("actor loop mode 'turn' is a group's (lower_actor(..., group=True))")
    check_threads(threads)
    if any(fn.name == actor for fn in module.functions):
        raise CompileError(f"module already has a function named '{actor}'")
    handlers = handler_table(module, actor)
    names = [name for _, name in handlers]
    checked = checked_functions(module, names) if budget_checks and threads == 1 else set()
    talks = any(SEND_BASE in (p.name for p in fn.params) for fn in module.functions if fn.name in names)
    builder = _LoopBuilder(actor, handlers, mode, abortable=bool(checked), group=group, threads=threads,
                           talks=talks)
    kernel = builder.build()
    lowered = Module((*module.functions, kernel), module.structs)
    if checked:
        lowered = insert_budget_checks(lowered, names, {actor: builder.budget_args})
    if threads > 1:
        lowered = inline_block_level(lowered, actor)
    return verify(lowered)


def check_threads(threads: object) -> int:
    """``threads`` if it is an int in 1..``MAX_THREADS``; a ``CompileError`` naming the range otherwise."""
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= L.MAX_THREADS:
        raise CompileError(
            f"threads must be an int from 1 to {L.MAX_THREADS} (lanes per handler), got {threads!r}"
        )
    return threads


def handler_table(module: Module, actor: str) -> list[tuple[int, str]]:
    """(type id, handler func) pairs of ``actor`` in ``module``, found by name.

    Handlers are funcs named ``<actor>__on_<Message>`` that nothing calls, and
    each message is a struct of the module, so the table can be read back
    from RingIR text.  (A called func is a device function, whatever its name.)
    """
    structs = {s.name: s for s in module.structs}
    called = {s.callee for fn in module.functions for s in walk(fn.body) if isinstance(s, Call)}
    table = []
    prefix = f"{actor}{HANDLER_PREFIX}"
    for fn in module.functions:
        if fn.kind == "func" and fn.name.startswith(prefix) and fn.name not in called:
            struct = structs.get(fn.name[len(prefix) :])
            if struct is None:
                raise CompileError(f"handler '{fn.name}' has no message struct '{fn.name[len(prefix) :]}'")
            table.append((L.type_id_of(L.record_layout(struct.name, struct.fields)), fn.name))
    if not table:
        raise CompileError(f"module has no handlers for actor '{actor}'")
    return table


class _Region:
    """One instance's region of a word array: its first word (None: word 0, a single actor)."""

    def __init__(self, lb: _LoopBuilder, array: Value, base: Value | None) -> None:
        self.lb, self.array, self.base = lb, array, base

    def at(self, offset: int | Value) -> Value:
        lb = self.lb
        off = lb.c(offset) if isinstance(offset, int) else offset
        if self.base is None:
            return off
        return lb.b.binary("add", self.base, off)

    def load(self, offset: int | Value) -> Value:
        return self.lb.b.load(self.array, self.at(offset))

    def store(self, offset: int | Value, value: Value) -> None:
        self.lb.b.store(self.array, self.at(offset), value)

    def acquire(self, offset: int) -> Value:
        """An atomic read (``atomic_or`` with 0): never cached or hoisted by any compiler."""
        return self.lb.b.atomic("or", self.array, self.at(offset), self.lb.c(0))

    def release(self, offset: int, value: Value) -> None:
        self.lb.b.atomic("exchange", self.array, self.at(offset), value)

    def add(self, offset: int, value: int = 1) -> Value:
        return self.lb.b.atomic("add", self.array, self.at(offset), self.lb.c(value))

    def bump(self, offset: int) -> None:
        self.store(offset, self.lb.b.binary("add", self.load(offset), self.lb.c(1)))


class _LoopBuilder:
    def __init__(
        self,
        actor: str,
        handlers: list[tuple[int, str]],
        mode: str,
        abortable: bool = False,
        group: bool = False,
        threads: int = 1,
        talks: bool = False,
    ) -> None:
        self.handlers = handlers
        self.talks = talks  # its handlers send: the loop stages, publishes and backs off on ``sends``
        self.mode = mode
        self.abortable = abortable  # some handler loops: it gets budget checks (``budget``), so may abort
        self.group = group
        self.coop = threads > 1
        params = [(name, ArrayType(U32)) for name in KERNEL_PARAMS]
        self.b = FunctionBuilder(actor, "kernel", params)
        self.ctrl_array, self.state, h2k, k2k, out, sends, routed = self.b.params
        self.ctrl0 = _Region(self, self.ctrl_array, None)  # group-wide words: block 0
        self.routed_stride: Value | None = None  # words of each instance's routed region (a group)
        self.set_instance(None, h2k, k2k, out, sends, routed)
        self.temps = 0
        self.shared: Value | None = None
        self.lane0: Value | None = None
        self.decisions = 0
        self.started: LocalVar | None = None  # a handler's start time (handler timing)

    @property
    def budget_args(self) -> tuple[Value, Value]:
        """What the loop passes checked handlers: the control array and its instance's first word."""
        return self.ctrl_array, self.cbase

    def set_instance(
        self, inst: Value | None, h2k: Value, k2k: Value, out: Value, sends: Value, routed: Value
    ) -> None:
        """Points the regions at instance ``inst`` (None: a single actor, every region at word 0)."""
        b = self.b
        self.inst = inst
        if inst is None:
            bases: list[Value | None] = [None] * 7
        else:
            stride = [self.c(L.CONTROL_WORDS), self.ctrl0.load(L.C["state_stride"])]
            for q in (h2k, k2k, out, sends, routed):
                words = b.binary("mul", b.load(q, self.c(L.Q_CAPACITY)), b.load(q, self.c(L.Q_SLOT_WORDS)))
                stride.append(b.binary("add", words, self.c(L.QUEUE_HEADER_WORDS)))
            bases = [b.binary("mul", inst, s) for s in stride]
            self.routed_stride = stride[6]
        self.ctrl = _Region(self, self.ctrl_array, bases[0])
        self.sbase = bases[1]
        self.h2k = _Region(self, h2k, bases[2])
        self.k2k = _Region(self, k2k, bases[3])
        self.out = _Region(self, out, bases[4])
        self.sends = _Region(self, sends, bases[5])
        self.routed = _Region(self, routed, bases[6])

    @property
    def arrays(self) -> tuple[Value, ...]:
        """The queue arrays, as :meth:`set_instance` takes them."""
        return tuple(q.array for q in (self.h2k, self.k2k, self.out, self.sends, self.routed))

    @property
    def inputs(self) -> tuple[_Region, ...]:
        """The input queues in poll order: the host's, the upstream actor's, the router's."""
        return self.h2k, self.k2k, self.routed
    @property
    def cbase(self) -> Value:
        return self.ctrl.base if self.ctrl.base is not None else self.zero

    # --- small helpers ---

    def c(self, value: int, ty: ScalarType = U32) -> Value:
        return self.b.const(value, ty)

    def var(self, prefix: str, ty: ScalarType = U32) -> LocalVar:
        self.temps += 1
        return self.b.local(f"{prefix}.{self.temps}", ty)

    def fence(self) -> None:
        if self.mode != "batch":
            self.b.emit(Fence())

    def lane0_only(self) -> AbstractContextManager[None]:
        """What only lane 0 runs: everything but the handlers (the whole kernel without ``threads``)."""
        return self.b.if_(self.lane0) if self.coop and self.lane0 is not None else nullcontext()

    def barrier(self) -> None:
        if self.coop:
            self.b.barrier()

    def uniform(self, decide: LocalVar) -> Value:
        """Lane 0's bool ``decide`` as every lane's (a shared word and a barrier when cooperative).

        Each call site has its own word: the next write to it comes only after
        another barrier, which every lane reaches after reading it.
        """
        b = self.b
        if not self.coop:
            return b.load_var(decide)
        assert self.shared is not None
        word = self.c(STEP_WORDS * 2 + self.decisions)
        self.decisions += 1
        assert STEP_WORDS * 2 + self.decisions <= SHARED_WORDS
        with self.lane0_only():
            b.store(self.shared, word, b.cast(b.load_var(decide), U32))
        b.barrier()
        return b.compare("ne", b.load(self.shared, word), self.c(0))

    def flag(self, prefix: str, value: Value | bool) -> LocalVar:
        var = self.var(prefix, BOOL)
        self.b.store_var(var, value if isinstance(value, Value) else self.b.const(value, BOOL))
        return var

    # --- HLC on (lo, hi) word pairs ---

    def hlc_pick(self, cond: Value, a: Pair, other: Pair) -> Pair:
        """``a`` where ``cond`` holds, else ``other``."""
        b = self.b
        rlo, rhi = self.var("hlc.lo"), self.var("hlc.hi")
        b.store_var(rlo, other[0])
        b.store_var(rhi, other[1])
        with b.if_(cond):
            b.store_var(rlo, a[0])
            b.store_var(rhi, a[1])
        return b.load_var(rlo), b.load_var(rhi)

    def hlc_gt(self, a: Pair, other: Pair) -> Value:
        b = self.b
        higher = b.compare("gt", a[1], other[1])
        lower_word = b.binary("and", b.compare("eq", a[1], other[1]), b.compare("gt", a[0], other[0]))
        return b.binary("or", higher, lower_word)

    def hlc_max(self, a: Pair, other: Pair) -> Pair:
        return self.hlc_pick(self.hlc_gt(a, other), a, other)

    def hlc_add(self, a: Pair, addend: int) -> Pair:
        """``a + addend``, saturating at ``HLC_MAX`` instead of wrapping to a time long past.

        A full logical counter carries into the physical part, as on the host.
        With ``addend`` below 2**64 - 2**32 the high word grows by at most
        2**32 - 1, so the sum wrapped exactly when that word came out smaller.
        """
        assert 0 <= addend >> 32 < 0xFFFFFFFF
        b = self.b
        lo = b.binary("add", a[0], self.c(addend & 0xFFFFFFFF))
        carry = b.cast(b.compare("lt", lo, a[0]), U32)
        hi = b.binary("add", b.binary("add", a[1], self.c(addend >> 32)), carry)
        top = self.c(0xFFFFFFFF)
        return self.hlc_pick(b.compare("lt", hi, a[1]), (top, top), (lo, hi))

    def hlc_add_word(self, a: Pair, addend: Value) -> Pair:
        """``a + addend`` for a u32 ``addend`` known only at run time, saturating like :meth:`hlc_add`."""
        b = self.b
        lo = b.binary("add", a[0], addend)
        hi = b.binary("add", a[1], b.cast(b.compare("lt", lo, a[0]), U32))
        top = self.c(0xFFFFFFFF)
        return self.hlc_pick(b.compare("lt", hi, a[1]), (top, top), (lo, hi))

    def hlc_merge(self, mine: Pair, received: Pair) -> Pair:
        """The clock after receiving a message stamped ``received``: never behind ``mine``.

        ``max(t+1, m+1, now)``, except that a stamp more than
        ``MAX_CLOCK_DRIFT_US`` ahead of ``now`` is not merged (the message is
        still handled) and is counted in ``ctrl.clock_refused``.
        """
        b = self.b
        now = self.now()
        local = self.hlc_max(self.hlc_add(mine, 1), now)
        limit = self.hlc_add(now, L.MAX_CLOCK_DRIFT_US << L.HLC_LOGICAL_BITS | (1 << L.HLC_LOGICAL_BITS) - 1)
        refused = self.hlc_gt(received, limit)
        with b.if_(refused):
            self.ctrl.add(L.C["clock_refused"])
        merged = self.hlc_max(local, self.hlc_add(received, 1))
        return self.hlc_pick(refused, local, merged)

    def clock_us(self) -> Value:
        """The device's wall clock, u64 microseconds since the Unix epoch."""
        micros = self.b.fresh(U64)
        self.b.emit(Clock(micros))
        return micros

    def now(self) -> Pair:
        """Wall time as an HLC value (logical 0) in two words, clamped into 48 bits as on the host.

        (Masking instead would wrap the device's wall clock to 0 in late 2033
        and make it refuse every stamp the host sends.)
        """
        if self.mode == "batch":
            return self.ctrl0.acquire(L.C["now_lo"]), self.ctrl0.acquire(L.C["now_hi"])
        return self.hlc_of_us(self.clock_us())

    def hlc_of_us(self, micros: Value) -> Pair:
        """Device clock ``micros`` (u64 µs since 1970) as an HLC value (logical 0) in two words."""
        b = self.b
        epoch = self.c(L.HLC_EPOCH_US, U64)
        since = b.binary("sub", b.binary("max", micros, epoch), epoch)
        packed = b.binary(
            "shl", b.binary("min", since, self.c(L.HLC_PHYSICAL_MASK, U64)), self.c(L.HLC_LOGICAL_BITS, U64)
        )
        lo = b.cast(b.binary("and", packed, self.c(0xFFFFFFFF, U64)), U32)
        hi = b.cast(b.binary("shr", packed, self.c(32, U64)), U32)
        return lo, hi

    # --- the kernel ---

    def build(self) -> Function:
        b = self.b
        self.zero = self.c(0)
        if self.coop or self.group:
            lane = b.thread_index("thread_id", 0)
        else:
            lane = b.thread_index("global_id", 0)
        is_lane0 = b.compare("eq", lane, b.const(0, I32))
        if self.coop:
            self.lane0 = is_lane0
            self.shared = b.shared_array(U32, SHARED_WORDS)
        else:
            with b.if_(b.unary("not", is_lane0)):
                b.return_()
        if not self.group:
            self.single_loop()
        elif self.mode == "persistent":
            self.group_loop()
        else:
            self.group_turn()
        return b.finish()

    def block_index(self) -> Value:
        """The linear block id: hosts split a large group into a 2-D grid (WebGPU allows 65535 per dim)."""
        b = self.b
        x = b.cast(b.thread_index("block_id", 0), U32)
        y = b.cast(b.thread_index("block_id", 1), U32)
        return b.binary("add", x, b.binary("mul", y, b.cast(b.thread_index("grid_dim", 0), U32)))

    def group_turn(self) -> None:
        """One turn of the instance this block is (``"turn"``, ``"batch"``): blocks past N return."""
        b = self.b
        inst = self.block_index()
        with b.if_(b.compare("ge", inst, self.ctrl0.load(L.C["instances"]))):
            b.return_()
        self.set_instance(inst, *self.arrays)
        found, pending = self.flag("found", False), self.flag("pending", False)
        self.turn(found, pending)

    def group_loop(self) -> None:
        """The persistent group (cuda): block b takes turns of instances b, b+G, ... until told to leave."""
        b = self.b
        first = self.block_index()
        grid = b.binary(
            "mul", b.cast(b.thread_index("grid_dim", 0), U32), b.cast(b.thread_index("grid_dim", 1), U32)
        )
        count = self.ctrl0.load(L.C["instances"])
        arrays = self.arrays
        inst = b.local("instance", U32)
        with self.lane0_only():
            with b.for_range(inst, first, count, grid):
                self.instance_ctrl(b.load_var(inst)).release(L.C["state"], self.c(L.ACTOR_RUNNING))
        with b.loop():
            found, pending = self.flag("found", False), self.flag("pending", False)
            with b.for_range(inst, first, count, grid):
                self.set_instance(b.load_var(inst), *arrays)
                self.turn(found, pending)
            leave = self.flag("leave", False)
            with self.lane0_only():
                stop = b.compare("ne", self.ctrl0.acquire(L.C["stop"]), self.c(0))
                drain = b.compare("ne", self.ctrl0.acquire(L.C["drain"]), self.c(0))
                drained = b.binary("and", drain, b.unary("not", b.load_var(pending)))
                b.store_var(leave, b.binary("or", stop, drained))
                idle = b.unary("not", b.binary("or", b.load_var(leave), b.load_var(found)))
                with b.if_(idle):
                    b.emit(Backoff(self.ctrl0.acquire(L.C["idle_ns"])))
            with b.if_(self.uniform(leave)):
                b.break_()
        with self.lane0_only():
            self.fence()
            with b.for_range(inst, first, count, grid):
                self.instance_ctrl(b.load_var(inst)).release(L.C["state"], self.c(L.ACTOR_EXITED))

    def instance_ctrl(self, inst: Value) -> _Region:
        return _Region(self, self.ctrl_array, self.b.binary("mul", inst, self.c(L.CONTROL_WORDS)))

    def turn(self, found: LocalVar, pending: LocalVar) -> None:
        """Up to ``quantum`` messages of the current instance; sets ``found`` if it took one."""
        b = self.b
        stopped = self.var("stopped", BOOL)
        with self.lane0_only():
            self.ctrl.add(L.C["heartbeat"])
            b.store_var(stopped, b.compare("ne", self.ctrl0.acquire(L.C["stop"]), self.c(0)))
        with b.if_(b.unary("not", self.uniform(stopped))):
            if self.mode != "persistent":
                with self.lane0_only():
                    self.ctrl.store(L.C["state"], self.c(L.ACTOR_RUNNING))
            quantum = self.ctrl0.load(L.C["quantum"])
            count = self.var("count")
            b.store_var(count, self.c(0))
            if self.mode == "batch" and self.abortable:
                self.spent = self.var("spent")
                b.store_var(self.spent, self.c(0))
            with b.loop():
                progressed = self.flag("progressed", False)
                for q in self.inputs:
                    self.step(q, progressed, pending, count, quantum)
                more = self.var("more", BOOL)
                with self.lane0_only():
                    room = b.compare("lt", b.load_var(count), quantum)
                    go = b.binary("and", b.load_var(progressed), room)
                    # a stop (a watchdog restart, a pause) ends the turn after this message
                    still = b.compare("eq", self.ctrl0.acquire(L.C["stop"]), self.c(0))
                    go = b.binary("and", go, still)
                    if self.mode == "batch" and self.abortable:
                        budget = self.ctrl.load(L.C["budget"])
                        spent_all = b.compare("ge", b.load_var(self.spent), budget)
                        over = b.binary("and", b.compare("ne", budget, self.c(0)), spent_all)
                        go = b.binary("and", go, b.unary("not", over))
                    b.store_var(more, go)
                with b.if_(b.unary("not", self.uniform(more))):
                    b.break_()
            with self.lane0_only():
                with b.if_(b.compare("ne", b.load_var(count), self.c(0))):
                    b.store_var(found, b.const(True, BOOL))
                    b.atomic("or", self.ctrl_array, self.c(L.C["progress"]), self.c(1))

    def single_loop(self) -> None:
        """One actor's loop: until ``stop``, a drain with empty inputs, or (batch) a full batch."""
        b = self.b
        with self.lane0_only():
            self.ctrl.release(L.C["state"], self.c(L.ACTOR_RUNNING))
        idle = b.local("idle", U32)
        count = b.local("count", U32)
        progressed = b.local("progressed", BOOL)
        pending = b.local("pending", BOOL)
        if self.mode == "persistent":  # (the batch loop never idles: it leaves)
            self.idle_since = b.local("idle_since", U64)
            b.store_var(self.idle_since, self.c(0, U64))
        b.store_var(idle, self.c(0))
        b.store_var(count, self.c(0))
        if self.mode == "batch" and self.abortable:
            # handler loop iterations this dispatch: it ends once they reach one budget, so
            # a dispatch stays short (a driver may cut off long ones: lavapipe's loop limit)
            self.spent = b.local("spent", U32)
            b.store_var(self.spent, self.c(0))
        stopped = b.local("stopped", BOOL)
        leave = b.local("leave", BOOL)
        with b.loop():
            with self.lane0_only():
                self.ctrl.add(L.C["heartbeat"])
                b.store_var(stopped, b.compare("ne", self.ctrl.acquire(L.C["stop"]), self.c(0)))
            with b.if_(self.uniform(stopped)):
                b.break_()
            draining = self.var("draining", BOOL)
            with self.lane0_only():
                b.store_var(draining, b.compare("ne", self.ctrl.acquire(L.C["drain"]), self.c(0)))
            b.store_var(progressed, b.const(False, BOOL))
            b.store_var(pending, b.const(False, BOOL))
            for q in self.inputs:
                self.step(q, progressed, pending, None, None)
            with self.lane0_only():
                self.idle_or_leave(idle, count, progressed, pending, draining, leave)
            with b.if_(self.uniform(leave)):
                b.break_()
        if self.mode == "persistent":
            with self.lane0_only():
                self.fence()
                self.ctrl.release(L.C["state"], self.c(L.ACTOR_EXITED))

    def idle_or_leave(
        self, idle: LocalVar, count: LocalVar, progressed: LocalVar, pending: LocalVar, draining: LocalVar,
        leave: LocalVar,
    ) -> None:
        """After the polls (lane 0): idles a while when nothing came, and says whether to leave."""
        b = self.b
        b.store_var(leave, b.const(False, BOOL))
        with b.if_(b.load_var(progressed)):
            b.store_var(idle, self.c(0))
        with b.else_():
            # a drain ends only when both inputs are empty: a full output merely waits
            with b.if_(b.binary("and", b.load_var(draining), b.unary("not", b.load_var(pending)))):
                b.store_var(leave, b.const(True, BOOL))
            if self.mode == "batch":
                b.store_var(leave, b.const(True, BOOL))
            else:
                idle_since = self.idle_since
                with b.if_(b.unary("not", b.load_var(leave))):
                    spins = b.binary("add", b.load_var(idle), self.c(1))
                    b.store_var(idle, spins)
                    with b.if_(b.compare("eq", spins, self.c(1))):
                        b.store_var(idle_since, self.clock_us())
                    with b.if_(b.compare("gt", spins, self.c(L.IDLE_SPINS))):
                        spun = b.binary("sub", self.clock_us(), b.load_var(idle_since))
                        with b.if_(b.compare("ge", spun, self.c(L.IDLE_SPIN_US, U64))):
                            self.park()
                        with b.else_():
                            b.emit(Backoff(self.c(0)))  # yield: a host thread may share this CPU
        if self.mode == "batch":
            done = b.binary("add", b.load_var(count), self.c(1))
            b.store_var(count, done)
            with b.if_(b.compare("ge", done, self.ctrl.acquire(L.C["batch"]))):
                b.store_var(leave, b.const(True, BOOL))
            if self.abortable:
                budget = self.ctrl.load(L.C["budget"])
                spent_all = b.compare("ge", b.load_var(self.spent), budget)
                with b.if_(b.binary("and", b.compare("ne", budget, self.c(0)), spent_all)):
                    b.store_var(leave, b.const(True, BOOL))

    def park(self) -> None:
        """Sleeps until its doorbell rings (or ``idle_ns`` pass), losing no wake-up.

        The doorbell is the ``bell`` word of the loop's own K2K queue, so both
        the host and an upstream loop can ring it.  The loop reads the bell,
        announces ``parked = 1`` (in its control block for the host, in the
        K2K header for the upstream loop), fences, then looks at its inputs
        and flags once more; a producer publishes a message (or a flag),
        fences, and rings the bell if it sees ``parked``.
        With both fences one side sees the other's write: either this last
        look finds the message, or the host rings and the park (a futex wait
        on the value read first) returns at once or is woken.
        """
        b = self.b
        ctrl, k2k, out = self.ctrl, self.k2k, self.out
        bell = k2k.acquire(L.Q_BELL)
        ctrl.release(L.C["parked"], self.c(1))
        k2k.release(L.Q_PARKED, self.c(1))
        self.fence()
        out_fill = b.binary("sub", out.acquire(L.Q_TAIL), out.acquire(L.Q_HEAD))
        room = b.binary("and", b.compare("lt", out_fill, out.load(L.Q_CAPACITY)), self.sends_room())
        work = b.const(False, BOOL)
        empty = b.const(True, BOOL)
        for q in self.inputs:
            waiting = b.compare("ne", q.acquire(L.Q_HEAD), q.acquire(L.Q_TAIL))
            drops = b.compare("ne", q.acquire(L.Q_DROP_REQUESTS), q.load(L.Q_DROPS_DONE))
            work = b.binary("or", work, b.binary("and", waiting, b.binary("or", room, drops)))
            empty = b.binary("and", empty, b.unary("not", waiting))
        stop = b.compare("ne", ctrl.acquire(L.C["stop"]), self.c(0))
        drained = b.binary("and", b.compare("ne", ctrl.acquire(L.C["drain"]), self.c(0)), empty)
        quiet = b.unary("not", b.binary("or", work, b.binary("or", stop, drained)))
        with b.if_(quiet):
            b.emit(Backoff(ctrl.acquire(L.C["idle_ns"]), k2k.array, self.c(L.Q_BELL), bell))
        k2k.release(L.Q_PARKED, self.c(0))
        ctrl.release(L.C["parked"], self.c(0))

    def wake_consumer(self) -> None:
        """After publishing a reply: wakes whoever waits for it, if anyone does.

        That is host threads (a K2H output) or the downstream loop parked on
        its K2K queue, which is this loop's ``out`` (its ``parked``/``bell``
        header words, as the host rings a loop).  For the host it is the
        mirror image of :meth:`park`: a waiting host thread registers in
        ``host_waiting``, fences, reads ``reply_bell`` and looks at the queue
        before it parks on the bell; the loop publishes ``tail``, fences and
        reads ``host_waiting``.  One side sees the other, so the host either
        finds the reply or the bell changes (the park returns at once, or is
        woken).  Nobody waiting costs one atomic read.  (Group instances never
        park: only host threads are woken.)
        """
        b = self.b
        self.fence()
        with b.if_(b.compare("ne", self.ctrl.acquire(L.C["host_waiting"]), self.c(0))):
            self.ctrl.add(L.C["reply_bell"])
            b.emit(Wake(self.ctrl.array, self.ctrl.at(L.C["reply_bell"])))
        if not self.group:
            # a downstream loop parked on its K2K queue (this loop's ``out``) is rung the same way
            with b.if_(b.compare("ne", self.out.acquire(L.Q_PARKED), self.c(0))):
                self.out.add(L.Q_BELL)
                b.emit(Wake(self.out.array, self.out.at(L.Q_BELL)))

    # --- one message ---

    def step(
        self,
        q: _Region,
        progressed: LocalVar,
        pending: LocalVar,
        count: LocalVar | None,
        quantum: Value | None,
    ) -> None:
        """Polls ``q`` once: lane 0 decides (drop, handle or nothing), every lane runs the handler,
        lane 0 publishes.  A group's turn polls only while ``count`` < ``quantum``."""
        b = self.b
        kind = self.var("kind")
        head, out_tail = self.var("head"), self.var("out_tail")
        base, out_base, type_id = self.var("slot"), self.var("reply_slot"), self.var("type")
        stamp = self.var("stamp.lo"), self.var("stamp.hi")
        self.timing_var()
        step = self.inputs.index(q)
        with self.lane0_only():
            b.store_var(kind, self.c(KIND_NONE))
            if count is not None and quantum is not None:
                with b.if_(b.compare("lt", b.load_var(count), quantum)):
                    self.decide(q, kind, pending, head, out_tail, base, out_base, type_id, stamp)
            else:
                self.decide(q, kind, pending, head, out_tail, base, out_base, type_id, stamp)
            if self.coop:
                assert self.shared is not None
                for i, v in enumerate((kind, type_id, base, out_base)):
                    b.store(self.shared, self.c(STEP_WORDS * step + i), b.load_var(v))
        self.barrier()
        if self.coop:
            assert self.shared is not None
            shared = [b.load(self.shared, self.c(STEP_WORDS * step + i)) for i in range(4)]
            kind_all, type_all, base_all, out_base_all = shared
        else:
            kind_all, type_all = b.load_var(kind), b.load_var(type_id)
            base_all, out_base_all = b.load_var(base), b.load_var(out_base)
        reply = self.var("reply")
        b.store_var(reply, self.c(0))
        with b.if_(b.compare("eq", kind_all, self.c(KIND_HANDLE))):
            self.dispatch(list(self.handlers), type_all, q, base_all, out_base_all, reply)
        self.barrier()
        with self.lane0_only():
            with b.if_(b.compare("eq", b.load_var(kind), self.c(KIND_HANDLE))):
                self.finish(q, b.load_var(head), b.load_var(out_tail), b.load_var(base), b.load_var(out_base),
                            b.load_var(type_id), (b.load_var(stamp[0]), b.load_var(stamp[1])), reply)
        with b.if_(b.compare("ne", kind_all, self.c(KIND_NONE))):
            b.store_var(progressed, b.const(True, BOOL))
            if count is not None:
                b.store_var(count, b.binary("add", b.load_var(count), self.c(1)))

    def decide(
        self, q: _Region, kind: LocalVar, pending: LocalVar, head_var: LocalVar, out_tail_var: LocalVar,
        base_var: LocalVar, out_base_var: LocalVar, type_var: LocalVar, stamp: tuple[LocalVar, LocalVar],
    ) -> None:
        """Lane 0: a drop-oldest request is honoured here; a message with room for its reply is
        prepared (clock merged, reply slot found, budget started) for the handler."""
        b = self.b
        head = q.acquire(L.Q_HEAD)
        tail = q.acquire(L.Q_TAIL)
        with b.if_(b.compare("ne", head, tail)):
            b.store_var(pending, b.const(True, BOOL))
            self.fence()
            if q is self.routed:
                self.take_published(q, head, kind, head_var, out_tail_var, base_var, out_base_var, type_var,
                                    stamp)
            else:
                self.take(q, head, kind, head_var, out_tail_var, base_var, out_base_var, type_var, stamp)

    def slot_base(self, q: _Region, position: Value) -> Value:
        """The first word of the slot of queue position ``position`` (mod capacity) in ``q``'s array."""
        b = self.b
        index = b.binary("and", position, q.load(L.Q_MASK))
        words = b.binary("mul", index, q.load(L.Q_SLOT_WORDS))
        return q.at(b.binary("add", self.c(L.QUEUE_HEADER_WORDS), words))

    def take_published(
        self, q: _Region, head: Value, kind: LocalVar, head_var: LocalVar, out_tail_var: LocalVar,
        base_var: LocalVar, out_base_var: LocalVar, type_var: LocalVar, stamp: tuple[LocalVar, LocalVar],
    ) -> None:
        """``routed`` has several producers (docs/layout.md, "Routed queue (MPSC)"): the slot at
        ``head`` is taken only once its producer published its ``type_id``; a skipped slot (a
        producer reserved more than it had to deliver) is freed without handling it."""
        b = self.b
        type_id = b.atomic("or", q.array, self.slot_base(q, head), self.c(0))
        with b.if_(b.compare("eq", type_id, self.c(L.SKIP_TYPE_ID))):
            self.free_slot(q, head)
            b.store_var(kind, self.c(KIND_DROPPED))
        with b.else_():
            with b.if_(b.compare("ne", type_id, self.c(0))):
                self.take(q, head, kind, head_var, out_tail_var, base_var, out_base_var, type_var, stamp)

    def free_slot(self, q: _Region, head: Value) -> None:
        """Frees the slot at ``head``: a ``routed`` slot's ``type_id`` back to 0 (free) before
        ``head`` moves past it, so a producer that reserves it finds it unpublished."""
        b = self.b
        if q is self.routed:
            b.atomic("exchange", q.array, self.slot_base(q, head), self.c(0))
        self.fence()
        q.release(L.Q_HEAD, b.binary("add", head, self.c(1)))

    def take(
        self, q: _Region, head: Value, kind: LocalVar, head_var: LocalVar, out_tail_var: LocalVar,
        base_var: LocalVar, out_base_var: LocalVar, type_var: LocalVar, stamp: tuple[LocalVar, LocalVar],
    ) -> None:
        """Lane 0, a message at ``head``: a drop-oldest request is honoured, or the message is
        prepared for its handler when its reply and sends have room."""
        b = self.b
        requests = q.acquire(L.Q_DROP_REQUESTS)
        done = q.load(L.Q_DROPS_DONE)
        with b.if_(b.compare("ne", requests, done)):
            q.store(L.Q_DROPS_DONE, b.binary("add", done, self.c(1)))
            q.bump(L.Q_DROPPED)
            self.free_slot(q, head)
            b.store_var(kind, self.c(KIND_DROPPED))
        with b.else_():
            out = self.out
            out_head = out.acquire(L.Q_HEAD)
            out_tail = out.acquire(L.Q_TAIL)
            capacity = out.load(L.Q_CAPACITY)
            out_room = b.compare("lt", b.binary("sub", out_tail, out_head), capacity)
            room = b.binary("and", out_room, self.sends_room())
            with b.if_(room):
                base = self.slot_base(q, head)
                type_id = b.load(q.array, b.binary("add", base, self.c(L.ENV_TYPE_ID)))
                msg_time = (
                    b.load(q.array, b.binary("add", base, self.c(L.ENV_HLC_LO))),
                    b.load(q.array, b.binary("add", base, self.c(L.ENV_HLC_HI))),
                )
                mine = (self.ctrl.load(L.C["hlc_lo"]), self.ctrl.load(L.C["hlc_hi"]))
                merged = self.hlc_merge(mine, msg_time)
                self.ctrl.store(L.C["hlc_lo"], merged[0])
                self.ctrl.store(L.C["hlc_hi"], merged[1])
                out_slot = b.binary("and", out_tail, out.load(L.Q_MASK))
                out_words = b.binary("mul", out_slot, out.load(L.Q_SLOT_WORDS))
                out_base = out.at(b.binary("add", self.c(L.QUEUE_HEADER_WORDS), out_words))
                for var, value in (
                    (head_var, head),
                    (out_tail_var, out_tail),
                    (base_var, base),
                    (out_base_var, out_base),
                    (type_var, type_id),
                    (stamp[0], merged[0]),
                    (stamp[1], merged[1]),
                ):
                    b.store_var(var, value)
                if self.abortable:
                    self.begin_message()
                if self.talks:
                    self.open_sends(merged)
                self.time_start()
                b.store_var(kind, self.c(KIND_HANDLE))

    def finish(
        self, q: _Region, head: Value, out_tail: Value, base: Value, out_base: Value, type_id: Value,
        stamp: Pair, reply: LocalVar,
    ) -> None:
        """Lane 0, after the handler: its reply (or abort record) published once, the slot freed."""
        b = self.b
        out = self.out
        self.time_end(q, base)
        if not self.timed:  # no device clock: the host's, at the dispatch (docs/layout.md, "Trace ring")
            sequence = b.load(q.array, b.binary("add", base, self.c(L.ENV_SEQUENCE)))
            self.trace_entry(self.now(), self.c(0), sequence)
        if self.abortable:
            self.end_message(type_id, out_base, reply)
        if self.talks:
            self.publish_sends(stamp)
        reply_id = b.load_var(reply)
        with b.if_(b.compare("ne", reply_id, self.c(0))):
            seq = self.ctrl.load(L.C["sequence"])
            self.ctrl.store(L.C["sequence"], b.binary("add", seq, self.c(1)))
            for offset, value in (
                (L.ENV_TYPE_ID, reply_id),
                (L.ENV_SOURCE, self.ctrl.load(L.C["actor_id"])),
                (L.ENV_TARGET, self.ctrl.load(L.C["out_target"])),
                # the message's sequence correlates the reply
                (L.ENV_SEQUENCE, b.load(q.array, b.binary("add", base, self.c(L.ENV_SEQUENCE)))),
                (L.ENV_HLC_LO, stamp[0]),
                (L.ENV_HLC_HI, stamp[1]),
            ):
                b.store(out.array, b.binary("add", out_base, self.c(offset)), value)
            self.fence()
            out.release(L.Q_TAIL, b.binary("add", out_tail, self.c(1)))
            out.bump(L.Q_ENQUEUED)
            if self.mode != "batch":
                self.wake_consumer()
        self.free_slot(q, head)
        q.bump(L.Q_DEQUEUED)
        self.ctrl.add(L.C["processed"])

    # --- handler timing (docs/layout.md, "Handler timing") ---

    @property
    def timed(self) -> bool:
        """Whether the loop times its handlers: only with a device clock (not ``"batch"``:
        WGSL and MSL have none, and their hosts time each dispatch instead)."""
        return self.mode != "batch"

    def timing_var(self) -> None:
        """The local that holds a handler's start time (a step's own, µs, u64)."""
        self.started = self.var("started", U64) if self.timed else None

    def sampled(self) -> Value:
        """Whether the message being handled is a timing sample: ``processed & timing_mask == 0``."""
        b = self.b
        sample = b.binary("and", self.ctrl.load(L.C["processed"]), self.ctrl.load(L.C["timing_mask"]))
        return b.compare("eq", sample, self.c(0))

    def time_start(self) -> None:
        """Lane 0, just before a handler: the device clock if this handler is a sample or the
        actor has a trace ring (``trace_mask`` != 0), else 0 (never a clock: µs since 1970)."""
        if self.started is None:
            return
        b = self.b
        b.store_var(self.started, self.c(0, U64))
        traced = b.compare("ne", self.ctrl.load(L.C["trace_mask"]), self.c(0))
        with b.if_(b.binary("or", self.sampled(), traced)):
            b.store_var(self.started, self.clock_us())

    def time_end(self, q: _Region, base: Value) -> None:
        """Lane 0, right after a timed handler: a sample's duration goes to ``handler_us`` (u64)
        and its bucket, ``handler_bucket_k`` for ``2**(k-1) <= µs < 2**k``; with a trace ring,
        the handler's entry goes there (``q``/``base``: its message's slot)."""
        if self.started is None:
            return
        b = self.b
        start = b.load_var(self.started)
        with b.if_(b.compare("ne", start, self.c(0, U64))):
            # (a wall clock may step back: 0 µs then)
            took = b.binary("sub", b.binary("max", self.clock_us(), start), start)
            took32 = b.cast(b.binary("min", took, self.c(0xFFFFFFFF, U64)), U32)
            with b.if_(self.sampled()):
                self.count_duration(took32)
            sequence = b.load(q.array, b.binary("add", base, self.c(L.ENV_SEQUENCE)))
            self.trace_entry(self.hlc_of_us(start), took32, sequence)

    def trace_entry(self, start: Pair, took32: Value, sequence: Value) -> None:
        """With a trace ring, the next entry: the handler's start (an HLC value), the µs it took
        and its message's sequence, published by ``trace_head`` after a fence (docs/layout.md,
        "Trace ring")."""
        b = self.b
        mask = self.ctrl.load(L.C["trace_mask"])
        with b.if_(b.compare("ne", mask, self.c(0))):
            head = self.ctrl.load(L.C["trace_head"])
            slot = b.binary("mul", b.binary("and", head, mask), self.c(L.TRACE_ENTRY_WORDS))
            at = b.binary("add", self.ctrl.load(L.C["trace_at"]), slot)
            if self.sbase is not None:
                at = b.binary("add", self.sbase, at)
            words = (start[0], start[1], took32, sequence)
            for k, word in enumerate(words):
                b.store(self.state, b.binary("add", at, self.c(k)), word)
            self.fence()
            self.ctrl.store(L.C["trace_head"], b.binary("add", head, self.c(1)))

    def count_duration(self, took32: Value) -> None:
        """A sampled handler took ``took32`` µs: into the sum and its bucket."""
        b = self.b
        spent = self.ctrl.load(L.C["handler_us_lo"]), self.ctrl.load(L.C["handler_us_hi"])
        total = self.hlc_add_word(spent, took32)  # (a u64 sum: adds with carry, saturates)
        self.ctrl.store(L.C["handler_us_lo"], total[0])
        self.ctrl.store(L.C["handler_us_hi"], total[1])
        width = b.binary("sub", self.c(32), b.math("clz", took32))
        bucket = b.binary("add", self.c(L.HANDLER_BUCKET_0),
                          b.binary("min", width, self.c(L.HANDLER_BUCKETS - 1)))
        self.ctrl.store(bucket, b.binary("add", self.ctrl.load(bucket), self.c(1)))

    # --- sends (docs/layout.md, "Sends") ---

    def sends_room(self) -> Value:
        """Whether the loop may start a handler: its ``sends`` queue is at most half full
        (always, for an actor that never sends), so a slow router holds the sender back."""
        b = self.b
        if not self.talks:
            return b.const(True, BOOL)
        fill = b.binary("sub", self.sends.load(L.Q_TAIL), self.sends.acquire(L.Q_HEAD))
        return b.compare("le", b.binary("add", fill, fill), self.sends.load(L.Q_CAPACITY))

    def open_sends(self, clock: Pair) -> None:
        """Before a handler: its send context in the ``sends`` header (frontends/sends.py reads it):
        nothing staged, the free slots, the clock, the actor id, its index and group size."""
        b = self.b
        sends = self.sends
        fill = b.binary("sub", sends.load(L.Q_TAIL), sends.acquire(L.Q_HEAD))
        group_size = self.ctrl0.load(L.C["instances"]) if self.group else self.c(1)
        for word, value in (
            (L.Q_STAGED, self.c(0)),
            (L.Q_ROOM, b.binary("sub", sends.load(L.Q_CAPACITY), fill)),
            (L.Q_SEND_HLC_LO, clock[0]),
            (L.Q_SEND_HLC_HI, clock[1]),
            (L.Q_SOURCE, self.ctrl.load(L.C["actor_id"])),
            (L.Q_INDEX, self.inst if self.inst is not None else self.zero),
            (L.Q_GROUP_SIZE, group_size),
        ):
            sends.store(word, value)

    def publish_sends(self, stamp: Pair) -> None:
        """After a handler that was not aborted: its staged sends are delivered, a prefix of
        ``send_to`` ones directly (:meth:`deliver_directly`), the rest made visible to the router
        at once (one ``tail`` store); the clock moves past every send's stamp, the router is told.

        ``enqueued`` counts every written send, direct or not: it numbers their ``sequence``."""
        b = self.b
        sends = self.sends
        staged = sends.load(L.Q_STAGED)
        with b.if_(b.compare("ne", staged, self.c(0))):
            clock = self.hlc_add_word(stamp, staged)
            self.ctrl.store(L.C["hlc_lo"], clock[0])
            self.ctrl.store(L.C["hlc_hi"], clock[1])
            written = b.binary("min", staged, sends.load(L.Q_ROOM))
            sends.store(L.Q_ENQUEUED, b.binary("add", sends.load(L.Q_ENQUEUED), written))
            direct = self.deliver_directly(written)
            with b.if_(b.compare("ne", written, direct)):
                self.fence()
                sends.release(L.Q_TAIL, b.binary("add", sends.load(L.Q_TAIL), written))
                # "something was sent": instance 0's header word, which the router exchanges to 0
                b.atomic("or", sends.array, self.c(L.Q_SENT), self.c(1))
                if self.mode != "batch" and not self.group:
                    self.fence()
                    with b.if_(b.compare("ne", sends.acquire(L.Q_PARKED), self.c(0))):
                        sends.add(L.Q_BELL)
                        b.emit(Wake(sends.array, sends.at(L.Q_BELL)))
            sends.store(L.Q_STAGED, self.c(0))

    def deliver_directly(self, written: Value) -> Value:
        """Delivers the longest prefix of the ``written`` staged sends that can go straight into
        the target instance's ``routed`` queue (docs/layout.md, "Direct sends"), and returns its
        length; the delivered ones are marked ``SEND_DELIVERED`` for the router, in case the rest
        is published after them.

        Only ``send_to`` sends qualify, and only while nothing this instance sent before is still
        in its ``sends`` queue (a direct send must not overtake a routed one to the same target);
        the first send that does not qualify, or whose target is full, ends the prefix, so nothing
        direct ever follows something routed.
        """
        b = self.b
        sends = self.sends
        tail = sends.load(L.Q_TAIL)
        done = self.var("direct")
        b.store_var(done, self.c(0))
        go = self.flag("direct.go", b.compare("eq", sends.acquire(L.Q_HEAD), tail))
        i = self.var("direct.i")
        with b.for_range(i, self.c(0), written, self.c(1)):
            with b.if_(b.unary("not", b.load_var(go))):
                b.break_()
            src = self.slot_base(sends, b.binary("add", tail, b.load_var(i)))
            target = b.load(sends.array, b.binary("add", src, self.c(L.ENV_TARGET)))
            index = b.binary("and", target, self.c(L.TARGET_INDEX_MASK))
            kind_ok = b.compare("eq", b.binary("shr", target, self.c(L.TARGET_KIND_SHIFT)), self.c(L.SEND_TO))
            ok = b.binary("and", kind_ok, b.compare("lt", index, sends.load(L.Q_GROUP_SIZE)))
            b.store_var(go, ok)
            with b.if_(ok):
                b.store_var(go, self.push_routed(index, src))
            with b.if_(b.load_var(go)):
                b.store(sends.array, b.binary("add", src, self.c(L.ENV_TARGET)),
                        self.c(L.SEND_DELIVERED << L.TARGET_KIND_SHIFT))
                b.store_var(done, b.binary("add", b.load_var(done), self.c(1)))
        count = b.load_var(done)
        with b.if_(b.compare("ne", count, self.c(0))):
            sends.store(L.Q_DIRECT, b.binary("add", sends.load(L.Q_DIRECT), count))
        return count

    def push_routed(self, index: Value, src: Value) -> Value:
        """One staged send (its slot at ``src`` in ``sends``) pushed into instance ``index``'s
        ``routed`` queue by the MPSC protocol (docs/layout.md, "Routed queue (MPSC)"): a slot
        reserved with a CAS on ``tail``, every word but ``type_id`` written (the envelope as the
        router writes it: ``target`` is the receiver's actor id), ``type_id`` published last.
        False when the queue is full (counted in its ``rejected``)."""
        b = self.b
        if self.inst is None:
            to, ctrl = _Region(self, self.routed.array, None), self.ctrl
        else:
            assert self.routed_stride is not None
            to = _Region(self, self.routed.array, b.binary("mul", index, self.routed_stride))
            ctrl = self.instance_ctrl(index)
        pushed = self.flag("pushed", False)
        position = self.var("position")
        with b.loop():
            head = to.acquire(L.Q_HEAD)
            tail = to.acquire(L.Q_TAIL)
            full = b.compare("ge", b.binary("sub", tail, head), to.load(L.Q_CAPACITY))
            with b.if_(full):
                to.add(L.Q_REJECTED)
                b.break_()
            old = b.atomic_cas(to.array, to.at(L.Q_TAIL), tail, b.binary("add", tail, self.c(1)))
            with b.if_(b.compare("eq", old, tail)):
                b.store_var(position, tail)
                b.store_var(pushed, b.const(True, BOOL))
                b.break_()
        with b.if_(b.load_var(pushed)):
            dst = self.slot_base(to, b.load_var(position))
            width = b.binary("min", self.sends.load(L.Q_SLOT_WORDS), to.load(L.Q_SLOT_WORDS))
            w = self.var("word")
            with b.for_range(w, self.c(1), width, self.c(1)):
                at = b.load_var(w)
                word = b.load(self.sends.array, b.binary("add", src, at))
                b.store(to.array, b.binary("add", dst, at), word)
            with b.for_range(w, width, to.load(L.Q_SLOT_WORDS), self.c(1)):
                b.store(to.array, b.binary("add", dst, b.load_var(w)), self.c(0))
            b.store(to.array, b.binary("add", dst, self.c(L.ENV_TARGET)), ctrl.load(L.C["actor_id"]))
            self.fence()
            b.atomic("exchange", to.array, dst, b.load(self.sends.array, src))
            to.add(L.Q_ENQUEUED)
            with b.if_(b.compare("ne", to.acquire(L.Q_PARKED), self.c(0))):
                to.add(L.Q_BELL)
                if self.mode != "batch":
                    b.emit(Wake(to.array, to.at(L.Q_BELL)))
        return b.load_var(pushed)

    def copy_state(self, to_shadow: bool) -> None:
        """Copies the ``ctrl.state_words`` words of the state to its shadow (the words right
        after it), or back."""
        b = self.b
        words = self.ctrl.load(L.C["state_words"])
        src, dst = (self.c(0), words) if to_shadow else (words, self.c(0))
        if self.sbase is not None:
            src, dst = b.binary("add", self.sbase, src), b.binary("add", self.sbase, dst)
        i = self.var("shadow", U32)
        with b.for_range(i, self.c(0), words, self.c(1)):
            at = b.load_var(i)
            b.store(self.state, b.binary("add", at, dst), b.load(self.state, b.binary("add", at, src)))

    def begin_message(self) -> None:
        """Before a handler that may abort: a fresh budget, and a shadow copy of the state
        (in the words after it) to roll back to."""
        b = self.b
        ctrl = self.ctrl
        ctrl.store(L.C["serial"], b.binary("add", ctrl.load(L.C["serial"]), self.c(1)))
        ctrl.store(L.C["ticks"], self.c(0))
        ctrl.store(L.C["aborting"], self.c(0))
        self.copy_state(True)

    def end_message(self, type_id: Value, out_base: Value, reply: LocalVar) -> None:
        """After it: an aborted handler's state is rolled back, and instead of its reply a K2H
        output gets an abort record (reason, message type id); a K2K output gets nothing."""
        b = self.b
        ctrl = self.ctrl
        if self.mode == "batch":
            ticks = ctrl.load(L.C["ticks"])
            b.store_var(self.spent, b.binary("add", b.load_var(self.spent), ticks))
        why = ctrl.load(L.C["aborting"])
        with b.if_(b.compare("ne", why, self.c(0))):
            self.copy_state(False)
            ctrl.bump(L.C["aborted"])
            ctrl.store(L.C["last_abort"], why)
            ctrl.store(L.C["aborting"], self.c(0))
            if self.talks:  # its sends go with its state: none was published yet
                self.sends.store(L.Q_STAGED, self.c(0))
            b.store_var(reply, self.c(0))
            with b.if_(b.compare("eq", ctrl.load(L.C["out_target"]), self.c(0))):
                out = self.out.array
                b.store(out, b.binary("add", out_base, self.c(L.ABORT_REASON_WORD)), why)
                b.store(out, b.binary("add", out_base, self.c(L.ABORT_MESSAGE_WORD)), type_id)
                b.store_var(reply, self.c(L.ABORT_TYPE_ID))

    def dispatch(
        self,
        handlers: list[tuple[int, str]],
        type_id: Value,
        q: _Region,
        base: Value,
        out_base: Value,
        reply: LocalVar,
    ) -> None:
        b = self.b
        if not handlers:
            with self.lane0_only():
                self.ctrl.add(L.C["errors"])
                self.ctrl.store(L.C["last_bad_type"], type_id)
            return
        tid, func = handlers[0]
        with b.if_(b.compare("eq", type_id, self.c(tid))):
            sbase = self.sbase if self.sbase is not None else self.zero
            args: tuple[Value, ...] = (self.state, q.array, base, self.out.array, out_base, sbase)
            if self.talks:
                args += (self.sends.array, self.sends.base if self.sends.base is not None else self.zero)
            result = b.call(func, args, U32)
            assert result is not None
            b.store_var(reply, result)
        with b.else_():
            self.dispatch(handlers[1:], type_id, q, base, out_base, reply)


__all__ = ["lower_actor", "MODES", "KERNEL_PARAMS", "check_threads"]

"""Actor lowering: an actor's handler funcs → one persistent message-loop kernel.

Every backend gets the same loop from here, built only from ordinary RingIR
(u32 word arrays, loads/stores at computed offsets, atomics) plus ``fence``,
``clock`` and ``backoff``.  The kernel is ``kernel @<Actor>(%ctrl, %state,
%h2k, %k2k, %out)``, all ``array<u32, global>`` laid out as
``ringkernel.ringir.layout`` (``docs/layout.md``) says.  Lane 0 (global id 0) runs
the loop; every other lane returns at once, so exactly one lane consumes a
message.  Each iteration:

1. bumps the heartbeat; leaves if ``stop`` is set; notes ``drain``;
2. polls ``h2k`` then ``k2k``: an index pair is read with atomic RMWs
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

``mode="batch"`` (WGSL/MSL: no forward-progress guarantee) leaves instead of
waiting, handles at most ``ctrl.batch`` messages per dispatch and takes the
time from ``ctrl.now`` (the host writes it per dispatch; WGSL has no u64).
The HLC lives in two u32 words everywhere, so no target needs 64-bit ints.
"""

from __future__ import annotations

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

Pair = tuple[Value, Value]  # a 64-bit HLC value as (low word, high word)

MODES = ("persistent", "batch")
HANDLER_PREFIX = "__on_"


def lower_actor(module: Module, actor: str, mode: str = "persistent", budget_checks: bool = True) -> Module:
    """``module`` plus the actor's loop kernel ``@<actor>`` (the handlers stay as funcs).

    Handlers that loop get budget checks (:mod:`.budget`) and the loop rolls
    their state back when one aborts; ``budget_checks=False`` leaves both out
    (only to measure what they cost: such an actor cannot be stopped mid-message).
    """
    if mode not in MODES:
        raise CompileError(f"unknown actor loop mode '{mode}'; choose 'persistent' or 'batch'")
    if any(fn.name == actor for fn in module.functions):
        raise CompileError(f"module already has a function named '{actor}'")
    handlers = handler_table(module, actor)
    checked = checked_functions(module, [name for _, name in handlers]) if budget_checks else set()
    builder = _LoopBuilder(actor, handlers, mode, abortable=bool(checked))
    kernel = builder.build()
    lowered = Module((*module.functions, kernel), module.structs)
    if checked:
        lowered = insert_budget_checks(lowered, [name for _, name in handlers], {actor: builder.ctrl})
    return verify(lowered)


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


class _LoopBuilder:
    def __init__(
        self, actor: str, handlers: list[tuple[int, str]], mode: str, abortable: bool = False
    ) -> None:
        self.handlers = handlers
        self.mode = mode
        self.abortable = abortable  # some handler loops: it gets budget checks (``budget``), so may abort
        params = [(name, ArrayType(U32)) for name in KERNEL_PARAMS]
        self.b = FunctionBuilder(actor, "kernel", params)
        self.ctrl, self.state, self.h2k, self.k2k, self.out = self.b.params
        self.temps = 0

    # --- small helpers ---

    def c(self, value: int, ty: ScalarType = U32) -> Value:
        return self.b.const(value, ty)

    def word(self, base: Value | None, offset: int) -> Value:
        return self.c(offset) if base is None else self.b.binary("add", base, self.c(offset))

    def acquire(self, array: Value, index: int) -> Value:
        """An atomic read (``atomic_or`` with 0): never cached or hoisted by any compiler."""
        return self.b.atomic("or", array, self.c(index), self.c(0))

    def release(self, array: Value, index: int, value: Value) -> None:
        self.b.atomic("exchange", array, self.c(index), value)

    def bump(self, array: Value, index: int) -> None:
        old = self.b.load(array, self.c(index))
        self.b.store(array, self.c(index), self.b.binary("add", old, self.c(1)))

    def var(self, prefix: str, ty: ScalarType = U32) -> LocalVar:
        self.temps += 1
        return self.b.local(f"{prefix}.{self.temps}", ty)

    def fence(self) -> None:
        if self.mode == "persistent":
            self.b.emit(Fence())

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
            b.atomic("add", self.ctrl, self.c(L.C["clock_refused"]), self.c(1))
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
        b = self.b
        if self.mode == "batch":
            return self.acquire(self.ctrl, L.C["now_lo"]), self.acquire(self.ctrl, L.C["now_hi"])
        micros = self.clock_us()
        epoch = self.c(L.HLC_EPOCH_US, U64)
        since = b.binary("sub", b.binary("max", micros, epoch), epoch)
        packed = b.binary(
            "shl", b.binary("min", since, self.c(L.HLC_PHYSICAL_MASK, U64)), self.c(L.HLC_LOGICAL_BITS, U64)
        )
        lo = b.cast(b.binary("and", packed, self.c(0xFFFFFFFF, U64)), U32)
        hi = b.cast(b.binary("shr", packed, self.c(32, U64)), U32)
        return lo, hi

    # --- the loop ---

    def build(self) -> Function:
        b = self.b
        with b.if_(b.compare("ne", b.thread_index("global_id", 0), b.const(0, I32))):
            b.return_()
        self.release(self.ctrl, L.C["state"], self.c(L.ACTOR_RUNNING))
        idle = b.local("idle", U32)
        count = b.local("count", U32)
        progressed = b.local("progressed", BOOL)
        pending = b.local("pending", BOOL)
        if self.mode == "persistent":  # (the batch loop never idles: it leaves)
            idle_since = b.local("idle_since", U64)
            b.store_var(idle_since, self.c(0, U64))
        b.store_var(idle, self.c(0))
        b.store_var(count, self.c(0))
        if self.mode == "batch" and self.abortable:
            # handler loop iterations this dispatch: it ends once they reach one budget, so
            # a dispatch stays short (a driver may cut off long ones: lavapipe's loop limit)
            self.spent = b.local("spent", U32)
            b.store_var(self.spent, self.c(0))
        with b.loop():
            b.atomic("add", self.ctrl, self.c(L.C["heartbeat"]), self.c(1))
            with b.if_(b.compare("ne", self.acquire(self.ctrl, L.C["stop"]), self.c(0))):
                b.break_()
            draining = b.compare("ne", self.acquire(self.ctrl, L.C["drain"]), self.c(0))
            b.store_var(progressed, b.const(False, BOOL))
            b.store_var(pending, b.const(False, BOOL))
            for queue in (self.h2k, self.k2k):
                self.poll(queue, progressed, pending)
            with b.if_(b.load_var(progressed)):
                b.store_var(idle, self.c(0))
            with b.else_():
                # a drain ends only when both inputs are empty: a full output merely waits
                with b.if_(b.binary("and", draining, b.unary("not", b.load_var(pending)))):
                    b.break_()
                if self.mode == "batch":
                    b.break_()
                else:
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
                with b.if_(b.compare("ge", done, self.acquire(self.ctrl, L.C["batch"]))):
                    b.break_()
                if self.abortable:
                    budget = b.load(self.ctrl, self.c(L.C["budget"]))
                    spent_all = b.compare("ge", b.load_var(self.spent), budget)
                    with b.if_(b.binary("and", b.compare("ne", budget, self.c(0)), spent_all)):
                        b.break_()
        if self.mode == "persistent":
            self.fence()
            self.release(self.ctrl, L.C["state"], self.c(L.ACTOR_EXITED))
        return b.finish()

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
        bell = self.acquire(self.k2k, L.Q_BELL)
        self.release(self.ctrl, L.C["parked"], self.c(1))
        self.release(self.k2k, L.Q_PARKED, self.c(1))
        self.fence()
        out_fill = b.binary("sub", self.acquire(self.out, L.Q_TAIL), self.acquire(self.out, L.Q_HEAD))
        room = b.compare("lt", out_fill, b.load(self.out, self.c(L.Q_CAPACITY)))
        work = b.const(False, BOOL)
        empty = b.const(True, BOOL)
        for q in (self.h2k, self.k2k):
            waiting = b.compare("ne", self.acquire(q, L.Q_HEAD), self.acquire(q, L.Q_TAIL))
            drops = b.compare("ne", self.acquire(q, L.Q_DROP_REQUESTS), b.load(q, self.c(L.Q_DROPS_DONE)))
            work = b.binary("or", work, b.binary("and", waiting, b.binary("or", room, drops)))
            empty = b.binary("and", empty, b.unary("not", waiting))
        stop = b.compare("ne", self.acquire(self.ctrl, L.C["stop"]), self.c(0))
        drained = b.binary("and", b.compare("ne", self.acquire(self.ctrl, L.C["drain"]), self.c(0)), empty)
        quiet = b.unary("not", b.binary("or", work, b.binary("or", stop, drained)))
        with b.if_(quiet):
            b.emit(Backoff(self.acquire(self.ctrl, L.C["idle_ns"]), self.k2k, self.c(L.Q_BELL), bell))
        self.release(self.k2k, L.Q_PARKED, self.c(0))
        self.release(self.ctrl, L.C["parked"], self.c(0))

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
        woken).  Nobody waiting costs one atomic read.
        """
        b = self.b
        self.fence()
        with b.if_(b.compare("ne", self.acquire(self.ctrl, L.C["host_waiting"]), self.c(0))):
            b.atomic("add", self.ctrl, self.c(L.C["reply_bell"]), self.c(1))
            b.emit(Wake(self.ctrl, self.c(L.C["reply_bell"])))
        # a downstream loop parked on its K2K queue (this loop's ``out``) is rung the same way
        with b.if_(b.compare("ne", self.acquire(self.out, L.Q_PARKED), self.c(0))):
            b.atomic("add", self.out, self.c(L.Q_BELL), self.c(1))
            b.emit(Wake(self.out, self.c(L.Q_BELL)))

    def poll(self, q: Value, progressed: LocalVar, pending: LocalVar) -> None:
        b = self.b
        head = self.acquire(q, L.Q_HEAD)
        tail = self.acquire(q, L.Q_TAIL)
        with b.if_(b.compare("ne", head, tail)):
            b.store_var(pending, b.const(True, BOOL))
            self.fence()
            requests = self.acquire(q, L.Q_DROP_REQUESTS)
            done = b.load(q, self.c(L.Q_DROPS_DONE))
            with b.if_(b.compare("ne", requests, done)):
                b.store(q, self.c(L.Q_DROPS_DONE), b.binary("add", done, self.c(1)))
                self.bump(q, L.Q_DROPPED)
                self.fence()
                self.release(q, L.Q_HEAD, b.binary("add", head, self.c(1)))
                b.store_var(progressed, b.const(True, BOOL))
            with b.else_():
                out_head = self.acquire(self.out, L.Q_HEAD)
                out_tail = self.acquire(self.out, L.Q_TAIL)
                capacity = b.load(self.out, self.c(L.Q_CAPACITY))
                with b.if_(b.compare("lt", b.binary("sub", out_tail, out_head), capacity)):
                    self.handle(q, head, out_tail)
                    b.store_var(progressed, b.const(True, BOOL))

    def handle(self, q: Value, head: Value, out_tail: Value) -> None:
        b = self.b
        mask = b.load(q, self.c(L.Q_MASK))
        slot_words = b.load(q, self.c(L.Q_SLOT_WORDS))
        base = b.binary(
            "add", self.c(L.QUEUE_HEADER_WORDS), b.binary("mul", b.binary("and", head, mask), slot_words)
        )
        type_id = b.load(q, self.word(base, L.ENV_TYPE_ID))
        msg_time = (b.load(q, self.word(base, L.ENV_HLC_LO)), b.load(q, self.word(base, L.ENV_HLC_HI)))
        mine = (b.load(self.ctrl, self.c(L.C["hlc_lo"])), b.load(self.ctrl, self.c(L.C["hlc_hi"])))
        stamp = self.hlc_merge(mine, msg_time)
        b.store(self.ctrl, self.c(L.C["hlc_lo"]), stamp[0])
        b.store(self.ctrl, self.c(L.C["hlc_hi"]), stamp[1])
        out_mask = b.load(self.out, self.c(L.Q_MASK))
        out_words = b.load(self.out, self.c(L.Q_SLOT_WORDS))
        out_base = b.binary(
            "add",
            self.c(L.QUEUE_HEADER_WORDS),
            b.binary("mul", b.binary("and", out_tail, out_mask), out_words),
        )
        reply = self.var("reply")
        b.store_var(reply, self.c(0))
        if self.abortable:
            self.begin_message()
        self.dispatch(list(self.handlers), type_id, q, base, out_base, reply)
        if self.abortable:
            self.end_message(type_id, out_base, reply)
        reply_id = b.load_var(reply)
        with b.if_(b.compare("ne", reply_id, self.c(0))):
            seq = b.load(self.ctrl, self.c(L.C["sequence"]))
            b.store(self.ctrl, self.c(L.C["sequence"]), b.binary("add", seq, self.c(1)))
            for offset, value in (
                (L.ENV_TYPE_ID, reply_id),
                (L.ENV_SOURCE, b.load(self.ctrl, self.c(L.C["actor_id"]))),
                (L.ENV_TARGET, b.load(self.ctrl, self.c(L.C["out_target"]))),
                (L.ENV_SEQUENCE, b.load(q, self.word(base, L.ENV_SEQUENCE))),  # correlates the reply
                (L.ENV_HLC_LO, stamp[0]),
                (L.ENV_HLC_HI, stamp[1]),
            ):
                b.store(self.out, self.word(out_base, offset), value)
            self.fence()
            self.release(self.out, L.Q_TAIL, b.binary("add", out_tail, self.c(1)))
            self.bump(self.out, L.Q_ENQUEUED)
            if self.mode == "persistent":
                self.wake_consumer()
        self.fence()
        self.release(q, L.Q_HEAD, b.binary("add", head, self.c(1)))
        self.bump(q, L.Q_DEQUEUED)
        b.atomic("add", self.ctrl, self.c(L.C["processed"]), self.c(1))

    def copy_state(self, to_shadow: bool) -> None:
        """Copies the ``ctrl.state_words`` words of the state to its shadow (the words right
        after it), or back."""
        b = self.b
        words = b.load(self.ctrl, self.c(L.C["state_words"]))
        src, dst = (self.c(0), words) if to_shadow else (words, self.c(0))
        i = self.var("shadow", U32)
        with b.for_range(i, self.c(0), words, self.c(1)):
            at = b.load_var(i)
            b.store(self.state, b.binary("add", at, dst), b.load(self.state, b.binary("add", at, src)))

    def begin_message(self) -> None:
        """Before a handler that may abort: a fresh budget, and a shadow copy of the state
        (in the words after it) to roll back to."""
        b = self.b
        ctrl = self.ctrl
        b.store(ctrl, self.c(L.C["serial"]), b.binary("add", b.load(ctrl, self.c(L.C["serial"])), self.c(1)))
        b.store(ctrl, self.c(L.C["ticks"]), self.c(0))
        b.store(ctrl, self.c(L.C["aborting"]), self.c(0))
        self.copy_state(True)

    def end_message(self, type_id: Value, out_base: Value, reply: LocalVar) -> None:
        """After it: an aborted handler's state is rolled back, and instead of its reply a K2H
        output gets an abort record (reason, message type id); a K2K output gets nothing."""
        b = self.b
        ctrl = self.ctrl
        if self.mode == "batch":
            ticks = b.load(ctrl, self.c(L.C["ticks"]))
            b.store_var(self.spent, b.binary("add", b.load_var(self.spent), ticks))
        why = b.load(ctrl, self.c(L.C["aborting"]))
        with b.if_(b.compare("ne", why, self.c(0))):
            self.copy_state(False)
            self.bump(ctrl, L.C["aborted"])
            b.store(ctrl, self.c(L.C["last_abort"]), why)
            b.store(ctrl, self.c(L.C["aborting"]), self.c(0))
            b.store_var(reply, self.c(0))
            with b.if_(b.compare("eq", b.load(ctrl, self.c(L.C["out_target"])), self.c(0))):
                b.store(self.out, self.word(out_base, L.ABORT_REASON_WORD), why)
                b.store(self.out, self.word(out_base, L.ABORT_MESSAGE_WORD), type_id)
                b.store_var(reply, self.c(L.ABORT_TYPE_ID))

    def dispatch(
        self,
        handlers: list[tuple[int, str]],
        type_id: Value,
        q: Value,
        base: Value,
        out_base: Value,
        reply: LocalVar,
    ) -> None:
        b = self.b
        if not handlers:
            b.atomic("add", self.ctrl, self.c(L.C["errors"]), self.c(1))
            b.store(self.ctrl, self.c(L.C["last_bad_type"]), type_id)
            return
        tid, func = handlers[0]
        with b.if_(b.compare("eq", type_id, self.c(tid))):
            result = b.call(func, (self.state, q, base, self.out, out_base), U32)
            assert result is not None
            b.store_var(reply, result)
        with b.else_():
            self.dispatch(handlers[1:], type_id, q, base, out_base, reply)


__all__ = ["lower_actor", "MODES", "KERNEL_PARAMS"]

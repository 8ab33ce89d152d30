"""The host half of the queue protocol in native code: RingIR kernels JIT-compiled once.

The actor loop (``ringkernel.ringir.passes.actor_lowering``) is the device
half; this module builds the host half the same way, as RingIR kernels over
``uint32`` word arrays with the offsets of ``ringkernel.ringir.layout``, and
compiles them with the cpu backend's ``host`` target and JIT.  So both halves
come from one layout table and one compiler, and the host pays one ctypes
call per batch instead of a dozen numpy element accesses and two lock
fences per message.

Memory order (``docs/layout.md``): index words are read with atomic RMWs
(sequentially consistent on the host target: at least acquire) and written
with atomic exchanges (at least release); a ``fence`` (seq_cst) separates
the slot copies from the index update on both sides of a batch.

Kernels (one lane; arguments are word arrays; ``args`` carries the scalars
in and the results out):

- ``rk_queue_push(q, rows, args, ctrl, bellq)``: ``args = [n, row_words,
  pushed]``; the first rows that fit, one acquire of ``head``, one copy, one
  release of ``tail``; then, if the loop of control block ``ctrl`` is
  parked, rings its doorbell, the ``bell`` word of its K2K queue ``bellq``
  (a queue no loop parks on passes private zeroed words).
- ``rk_queue_pop(q, rows, args)``: ``args = [max, taken]``; honours pending
  drop-oldest requests first, then copies up to ``max`` whole slots.
- ``rk_actor_ring(ctrl, bellq)``: after publishing a flag or output room:
  fence, and if the loop is ``parked``, bump ``bellq[bell]`` and futex-wake it.
- ``rk_reply_wait(ctrl, q, args)``: ``args = [expected bell, spin µs, park
  ns]``: spins (yielding) until ``q`` is not empty or ``reply_bell`` differs
  from the expected value, for at most ``spin`` µs; then registers in
  ``host_waiting``, fences, looks once more and parks on ``reply_bell``
  (futex wait, ``park`` ns at most), and unregisters.  The caller read the
  bell *before* it last looked for its reply.  A spinning thread is not
  registered, so a busy loop publishing replies pays no wake-ups.
- ``rk_routed_reserve(q, req)`` and ``rk_routed_publish(q, req, ids)``: a host producer's
  half of the MPSC ``routed`` queue (``docs/layout.md``, "Routed queue (MPSC)"), for the
  router, which runs while loops push into the same queues.  ``req = [n, then n records of
  ROUTED_RECORD words: the region's first word in q, slots wanted, first slot, slots got]``;
  reserve takes up to ``wanted`` slots of each region with a CAS on its ``tail`` (filling in
  the last two words); the caller writes every word of those slots but ``type_id``; publish
  then stores each slot's ``type_id`` from ``ids`` (in record and slot order), adds to
  ``enqueued`` and rings a consumer parked on the queue's ``bell``.
- ``rk_reply_ring(ctrl)``: bumps ``reply_bell`` and wakes waiting host
  threads: a host thread that took replies off the queue which another
  thread waits for (an ``ask``'s claim, the backlog) rings, as the loop does.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ringkernel.lowering.llvm.codegen import host_cpu
from ringkernel.lowering.llvm.host import lower_module_to_host
from ringkernel.ringir import (
    U32,
    U64,
    ArrayType,
    Backoff,
    Clock,
    Fence,
    FunctionBuilder,
    LocalVar,
    Module,
    Value,
    Wake,
    verify,
)
from ringkernel.ringir import layout as L
from ringkernel.ringir.passes import run_default_pipeline
from ringkernel.runtime.backend import KernelBuild

KERNELS = {
    "rk_queue_push": ("q", "rows", "args", "ctrl", "bellq"),
    "rk_queue_pop": ("q", "rows", "args"),
    "rk_actor_ring": ("ctrl", "bellq"),
    "rk_reply_ring": ("ctrl",),
    "rk_reply_wait": ("ctrl", "q", "args"),
    "rk_routed_reserve": ("q", "req"),
    "rk_routed_publish": ("q", "req", "ids"),
}
ROUTED_RECORD = 4  # words of one rk_routed_* request: region's first word, wanted, first slot, got


class _Ops:
    """Builds one kernel: small helpers over a :class:`FunctionBuilder`."""

    def __init__(self, name: str) -> None:
        self.b = FunctionBuilder(name, "kernel", [(p, ArrayType(U32)) for p in KERNELS[name]])
        self.temps = 0

    def c(self, value: int, ty: Any = U32) -> Value:
        return self.b.const(value, ty)

    def var(self, name: str, ty: Any = U32) -> LocalVar:
        self.temps += 1
        return self.b.local(f"{name}.{self.temps}", ty)

    def acquire(self, array: Value, word: int) -> Value:
        return self.b.atomic("or", array, self.c(word), self.c(0))

    def release(self, array: Value, word: int, value: Value) -> None:
        self.b.atomic("exchange", array, self.c(word), value)

    def add(self, array: Value, word: int, amount: Value) -> None:
        """``array[word] += amount`` by its only writer (a plain load and store)."""
        old = self.b.load(array, self.c(word))
        self.b.store(array, self.c(word), self.b.binary("add", old, amount))

    def slot(self, q: Value, index: Value) -> Value:
        """The first word of slot ``index & mask``."""
        b = self.b
        masked = b.binary("and", index, b.load(q, self.c(L.Q_MASK)))
        words = b.binary("mul", masked, b.load(q, self.c(L.Q_SLOT_WORDS)))
        return b.binary("add", self.c(L.QUEUE_HEADER_WORDS), words)

    def copy(self, count: Value, words: Value, each: Any) -> None:
        """For i < count, w < words: ``each(i, w)``."""
        b = self.b
        i, w = self.var("i"), self.var("w")
        with b.for_range(i, self.c(0), count, self.c(1)):
            with b.for_range(w, self.c(0), words, self.c(1)):
                each(b.load_var(i), b.load_var(w))


def _push() -> Any:
    o = _Ops("rk_queue_push")
    b = o.b
    q, rows, args, ctrl, bellq = b.params
    head = o.acquire(q, L.Q_HEAD)  # acquire: the consumer is done with the slots we overwrite
    tail = o.acquire(q, L.Q_TAIL)
    free = b.binary("sub", b.load(q, o.c(L.Q_CAPACITY)), b.binary("sub", tail, head))
    count = b.binary("min", b.load(args, o.c(0)), free)
    row_words = b.load(args, o.c(1))
    b.emit(Fence())

    def put(i: Value, w: Value) -> None:
        src = b.binary("add", b.binary("mul", i, row_words), w)
        dst = b.binary("add", o.slot(q, b.binary("add", tail, i)), w)
        b.store(q, dst, b.load(rows, src))

    o.copy(count, row_words, put)
    b.emit(Fence())  # release: every slot's words before the new tail
    o.release(q, L.Q_TAIL, b.binary("add", tail, count))
    o.add(q, L.Q_ENQUEUED, count)
    b.store(args, o.c(2), count)
    _ring_if_parked(o, ctrl, bellq)
    return b.finish()


def _pop() -> Any:
    o = _Ops("rk_queue_pop")
    b = o.b
    q, rows, args = b.params
    head_var = o.var("head")
    with b.loop():  # drop-oldest requests first: each discards the oldest queued message
        head = o.acquire(q, L.Q_HEAD)
        b.store_var(head_var, head)
        requests = o.acquire(q, L.Q_DROP_REQUESTS)
        done = b.load(q, o.c(L.Q_DROPS_DONE))
        waiting = b.compare("ne", head, o.acquire(q, L.Q_TAIL))
        with b.if_(b.binary("and", b.compare("ne", requests, done), waiting)):
            b.emit(Fence())
            b.store(q, o.c(L.Q_DROPS_DONE), b.binary("add", done, o.c(1)))
            o.add(q, L.Q_DROPPED, o.c(1))
            o.release(q, L.Q_HEAD, b.binary("add", head, o.c(1)))
            b.continue_()
        b.break_()
    head = b.load_var(head_var)
    pending = b.compare("ne", o.acquire(q, L.Q_DROP_REQUESTS), b.load(q, o.c(L.Q_DROPS_DONE)))
    filled = b.binary("sub", o.acquire(q, L.Q_TAIL), head)
    count_var = o.var("count")
    b.store_var(count_var, b.binary("min", filled, b.load(args, o.c(0))))
    with b.if_(pending):  # a drop request on an empty queue waits for the next message
        b.store_var(count_var, o.c(0))
    count = b.load_var(count_var)
    slot_words = b.load(q, o.c(L.Q_SLOT_WORDS))
    b.emit(Fence())  # acquire: the slots' words after the tail that published them

    def take(i: Value, w: Value) -> None:
        src = b.binary("add", o.slot(q, b.binary("add", head, i)), w)
        b.store(rows, b.binary("add", b.binary("mul", i, slot_words), w), b.load(q, src))

    o.copy(count, slot_words, take)
    b.emit(Fence())  # release: done reading before the producer reuses the slots
    o.release(q, L.Q_HEAD, b.binary("add", head, count))
    o.add(q, L.Q_DEQUEUED, count)
    b.store(args, o.c(1), count)
    return b.finish()


def _ring() -> Any:
    o = _Ops("rk_actor_ring")
    b = o.b
    ctrl, bellq = b.params
    _ring_if_parked(o, ctrl, bellq)
    return b.finish()


def _ring_if_parked(o: _Ops, ctrl: Value, bellq: Value) -> None:
    """The host's half of the park protocol: fence, and if the loop (control block ``ctrl``)
    is parked, ring its doorbell: the ``bell`` word of its K2K queue ``bellq``."""
    b = o.b
    b.emit(Fence())  # what the host published, before it looks at `parked` (the loop fences the other way)
    with b.if_(b.compare("ne", o.acquire(ctrl, L.C["parked"]), o.c(0))):
        b.atomic("add", bellq, o.c(L.Q_BELL), o.c(1))
        b.emit(Wake(bellq, o.c(L.Q_BELL)))


def _reply_ring() -> Any:
    o = _Ops("rk_reply_ring")
    b = o.b
    (ctrl,) = b.params
    b.atomic("add", ctrl, o.c(L.C["reply_bell"]), o.c(1))
    b.emit(Fence())  # the bell before `host_waiting` (a waiter registers, then reads the bell)
    with b.if_(b.compare("ne", o.acquire(ctrl, L.C["host_waiting"]), o.c(0))):
        b.emit(Wake(ctrl, o.c(L.C["reply_bell"])))
    return b.finish()


def _wait() -> Any:
    o = _Ops("rk_reply_wait")
    b = o.b
    ctrl, q, args = b.params
    expected = b.load(args, o.c(0))
    spin = b.cast(b.load(args, o.c(1)), U64)
    bell = L.C["reply_bell"]

    def ready() -> Value:
        waiting = b.compare("ne", o.acquire(q, L.Q_TAIL), o.acquire(q, L.Q_HEAD))
        return b.binary("or", waiting, b.compare("ne", o.acquire(ctrl, bell), expected))

    start = b.fresh(U64)
    b.emit(Clock(start))
    with b.loop():  # spin first: the loop rings nobody while no thread is registered
        with b.if_(ready()):
            b.break_()
        now = b.fresh(U64)
        b.emit(Clock(now))
        spun = b.binary("sub", now, start)
        with b.if_(b.compare("lt", spun, b.cast(b.load(args, o.c(3)), U64))):
            b.continue_()  # a reply usually comes within this: no yield (the loop runs on another CPU)
        with b.if_(b.compare("ge", spun, spin)):
            b.atomic("add", ctrl, o.c(L.C["host_waiting"]), o.c(1))
            b.emit(Fence())  # registered before the last look (the loop publishes, fences, reads)
            with b.if_(b.unary("not", ready())):
                b.emit(Backoff(b.load(args, o.c(2)), ctrl, o.c(bell), expected))
            b.atomic("sub", ctrl, o.c(L.C["host_waiting"]), o.c(1))
            b.break_()
        b.emit(Backoff(o.c(0)))  # yield: the actor's loop may share this CPU
    return b.finish()


def _routed_reserve() -> Any:
    o = _Ops("rk_routed_reserve")
    b = o.b
    q, req = b.params
    k = o.var("k")
    with b.for_range(k, o.c(0), b.load(req, o.c(0)), o.c(1)):
        rec = b.binary("add", o.c(1), b.binary("mul", b.load_var(k), o.c(ROUTED_RECORD)))
        base = b.load(req, rec)
        want = b.load(req, b.binary("add", rec, o.c(1)))
        b.store(req, b.binary("add", rec, o.c(3)), o.c(0))
        with b.loop():
            head = b.atomic("or", q, b.binary("add", base, o.c(L.Q_HEAD)), o.c(0))
            tail_at = b.binary("add", base, o.c(L.Q_TAIL))
            tail = b.atomic("or", q, tail_at, o.c(0))
            capacity = b.load(q, b.binary("add", base, o.c(L.Q_CAPACITY)))
            free = b.binary("sub", capacity, b.binary("sub", tail, head))
            take = b.binary("min", want, free)
            with b.if_(b.compare("eq", take, o.c(0))):
                b.break_()
            with b.if_(b.compare("eq", b.atomic_cas(q, tail_at, tail, b.binary("add", tail, take)), tail)):
                b.store(req, b.binary("add", rec, o.c(2)), tail)
                b.store(req, b.binary("add", rec, o.c(3)), take)
                b.break_()
    return b.finish()


def _routed_publish() -> Any:
    o = _Ops("rk_routed_publish")
    b = o.b
    q, req, ids = b.params
    b.emit(Fence())  # release: every other word of the slots before their type ids
    k, j, at = o.var("k"), o.var("j"), o.var("at")
    b.store_var(at, o.c(0))
    with b.for_range(k, o.c(0), b.load(req, o.c(0)), o.c(1)):
        rec = b.binary("add", o.c(1), b.binary("mul", b.load_var(k), o.c(ROUTED_RECORD)))
        base = b.load(req, rec)
        first = b.load(req, b.binary("add", rec, o.c(2)))
        got = b.load(req, b.binary("add", rec, o.c(3)))
        mask = b.load(q, b.binary("add", base, o.c(L.Q_MASK)))
        slot_words = b.load(q, b.binary("add", base, o.c(L.Q_SLOT_WORDS)))
        with b.for_range(j, o.c(0), got, o.c(1)):
            index = b.binary("and", b.binary("add", first, b.load_var(j)), mask)
            words = b.binary("add", o.c(L.QUEUE_HEADER_WORDS), b.binary("mul", index, slot_words))
            slot = b.binary("add", base, words)
            b.atomic("exchange", q, slot, b.load(ids, b.load_var(at)))
            b.store_var(at, b.binary("add", b.load_var(at), o.c(1)))
        with b.if_(b.compare("ne", got, o.c(0))):
            b.atomic("add", q, b.binary("add", base, o.c(L.Q_ENQUEUED)), got)
            b.emit(Fence())  # published before the look at `parked` (the consumer fences the other way)
            parked = b.atomic("or", q, b.binary("add", base, o.c(L.Q_PARKED)), o.c(0))
            with b.if_(b.compare("ne", parked, o.c(0))):
                bell = b.binary("add", base, o.c(L.Q_BELL))
                b.atomic("add", q, bell, o.c(1))
                b.emit(Wake(q, bell))
    return b.finish()


QUICK_POLLS = 1  # polls of a waiting host thread before it reads the clock and yields

_BUILDERS = (_push, _pop, _ring, _reply_ring, _wait, _routed_reserve, _routed_publish)


@functools.cache
def module() -> Module:
    """The RingIR of every host queue kernel (``ringc``-printable, verified)."""
    return verify(Module(tuple(build() for build in _BUILDERS), ()))


@functools.cache
def _optimized() -> Module:
    """:func:`module` after the default passes, run once for all the kernels compiled from it."""
    return run_default_pipeline(module())


# The launch wrapper's signature (``host_entry``).  Kernels that return at once
# keep the GIL (PYFUNCTYPE: no release and re-acquire, no wait for another
# thread to hand it back); a kernel that may park (``rk_reply_wait``) releases it.
_ARGS = (ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
_QUICK = ctypes.PYFUNCTYPE(*_ARGS)
_BLOCKING = ctypes.CFUNCTYPE(*_ARGS)
BLOCKING = frozenset({"rk_reply_wait"})
_DIMS = (ctypes.c_int32 * 6)(1, 1, 1, 1, 1, 1)
_NOT_CANCELLED = ctypes.c_int32(0)
_lock = threading.Lock()
_kernels: dict[str, Any] = {}


def kernel(name: str) -> Any:
    """The native launch function of kernel ``name``, compiled on first use (once per process)."""
    fn = _kernels.get(name)
    if fn is None:
        with _lock:
            fn = _kernels.get(name)
            if fn is None:
                fn = _kernels[name] = _compile(name)
    return fn


HostCompiler = Callable[[Module, dict[str, Any]], str]


def _lower(queue_module: Module, options: dict[str, Any]) -> str:
    assert queue_module is module()
    return lower_module_to_host(_optimized(), **options)


_host_compiler: HostCompiler = _lower


def use_host_compiler(compiler: HostCompiler) -> None:
    """Compiles the queue kernels with ``compiler(module, options)`` -> ``host`` text: the
    facade passes its cached compile (the runtime may not import it), so a new process
    skips lowering and optimizing them (about 0.3 s)."""
    global _host_compiler
    _host_compiler = compiler


def _compile(name: str) -> Any:
    from ringkernel.runtime.cpu.jit import jit_kernel

    cpu, features = host_cpu()
    options: dict[str, Any] = {
        "kernel": name, "workitem_loops": True, "checked": False, "cpu": cpu, "features": features
    }
    text = _host_compiler(module(), dict(options))
    return jit_kernel(KernelBuild(module(), name, "host", options, text))


class Call:
    """One kernel bound to fixed arrays: :attr:`run` runs it with one ctypes call.

    ``args`` (a ``uint32`` array) carries the scalars; ``set(i, array)``
    rebinds argument ``i`` (a batch's rows) without rebuilding anything.
    Every ctypes argument is converted once, here: ``run()`` takes none.
    """

    def __init__(self, name: str, *arrays: np.ndarray | None) -> None:
        self.compiled = kernel(name)
        self.argv = (ctypes.c_void_p * len(arrays))(*(0 if a is None else a.ctypes.data for a in arrays))
        self.keep = list(arrays)  # the arrays outlive every call
        address = ctypes.cast(self.compiled.native, ctypes.c_void_p).value or 0
        native = (_BLOCKING if name in BLOCKING else _QUICK)(address)
        pointers = (ctypes.addressof(self.argv), ctypes.addressof(_DIMS), ctypes.addressof(_NOT_CANCELLED))
        argv, dims, cancel = (ctypes.c_void_p(p) for p in pointers)
        self.run = functools.partial(native, argv, dims, ctypes.c_int64(0), ctypes.c_int64(1), cancel)

    def set(self, index: int, array: np.ndarray) -> None:
        self.keep[index] = array
        self.argv[index] = array.ctypes.data


__all__ = ["KERNELS", "ROUTED_RECORD", "module", "kernel", "Call"]

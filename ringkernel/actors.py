"""``@rk.message``, ``@rk.actor`` and ``rk.ActorSystem``: persistent actors.

An actor class compiles (``ringkernel.frontends.actors`` then the
actor-lowering pass) into one persistent kernel; an :class:`ActorSystem`
allocates its control block, state and queues (``ringkernel.ringir.layout``) and
runs that kernel on a backend.  ``docs/actors.md`` is the user guide.

Everything here is backend-neutral: message packing, HLC stamping, the
host ends of the queues, and the drain/stop protocol.  A backend supplies an
:class:`ActorRuntime` (``ringkernel.runtime.<backend>.actors``) that
allocates memory both sides see and an :class:`ActorHost` per actor that
runs the loop over that memory: a native thread (cpu), a re-dispatching
pump (wgpu, metal) or one resident kernel (cuda).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import math
import os
import struct
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ringkernel import durability, groups, migration, routing
from ringkernel.frontends.actors import (
    ActorInfo,
    MessageInfo,
    actor_threads,
    build_actor_module,
    make_actor_info,
    make_message_info,
    message_info,
)
from ringkernel.groups import ActorGroup, AdmissionError
from ringkernel.kernels import _user_errors
from ringkernel.observability.metrics import Histogram, health, snapshot, widener_for
from ringkernel.observability.trace import TRACE_RING_ENTRIES, ActorTracer, check_trace_path
from ringkernel.ringir import ForRange, Loop, Module, walk
from ringkernel.ringir import layout as L
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.passes.actor_lowering import handler_table, lower_actor
from ringkernel.ringir.passes.budget import CTRL_PARAM, checked_functions
from ringkernel.ringir.types import BOOL
from ringkernel.runtime.actor_host import ActorHost, ActorMemory, ActorRuntime, open_runtime
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.hlc import Hlc, HlcDriftError
from ringkernel.runtime.queues import POLICIES, QueueFull, ReceiveTimeout, RingQueue, Waiter, fence
from ringkernel.supervision import RESTART_POLICIES, RestartPolicy, SupervisedPump, Watchdog

# A reply stamped further ahead of the host's wall clock than this is not merged
# into the system's clock (one corrupt stamp must not exhaust it for good); the
# actor loops apply the same bound to the messages they receive.
MAX_CLOCK_DRIFT_US = L.MAX_CLOCK_DRIFT_US


# Settings: each limit is the range the control block word or the backend accepts.
IDLE_NS_MAX = 100_000_000  # an idle loop notices a message or a stop within 0.1 s
BATCH_MAX = 2**32 - 1  # ctrl.batch is a u32 word
LANES_MAX = 1024  # the largest block any backend runs (CUDA, Metal, lavapipe)
PARK_NS = IDLE_NS_MAX  # how long a loop the host can wake parks before looking again
STOP_GRACE = 1.0  # s a loop asked to stop gets to leave before shutdown abandons it
ASYNC_WAITER_IDLE = 1.0  # s an ask_async waiter thread stays without pending requests before it leaves
BUDGET_MAX = 2**31  # ctrl.budget is a u32 word, and budget + 1 must not wrap
WORKERS_MAX = 256  # the cpu scheduler's threads at most (runtime.cpu.scheduler.MAX_WORKERS)
MAX_RESTARTS_MAX = 1_000_000
HANDLER_TIMING_MASK = L.TIMING_MASK_DEFAULT  # ringkernel_handler_seconds samples 1 in 64 handlers
WATCHDOG_MIN = 0.01  # s: the watchdog looks at every actor about four times per timeout
WATCHDOG_MAX = 86_400.0
RESTART_WINDOW_MAX = 86_400.0


class ActorSystemStopped(ReceiveTimeout, RuntimeError):
    """The :class:`ActorSystem` has shut down: nothing more can be sent or spawned.

    ``receive`` raises it once the replies still deliverable are taken.  It is
    a :class:`ReceiveTimeout` (no reply will ever come, so loops that stop on a
    timeout stop here too) and a ``RuntimeError`` (the system is closed).
    """


class HandlerAborted(RuntimeError):
    """A handler was cut short: its message left the state as it was and got no reply.

    ``actor`` and ``message`` name the actor and the message class,
    ``reason`` is ``"budget"`` (past ``@rk.actor(budget=)`` loop
    iterations), ``"stopped"`` (the actor was stopped) or ``"watchdog"`` (the
    watchdog found it hung), ``sequence`` is the message's sequence number.
    """

    def __init__(self, actor: str, message: str, reason: str, sequence: int) -> None:
        super().__init__(
            f"{actor}: the handler of message {message} (sequence {sequence}) was aborted ({reason}); "
            "the state is as before that message and it has no reply"
        )
        self.actor, self.message, self.reason, self.sequence = actor, message, reason, sequence


class ActorFailed(RuntimeError):
    """The actor was stopped by its supervision (``ref.status == "failed"``)."""


class ActorAbandonedWarning(RuntimeWarning):
    """Shutdown gave up on an actor whose loop did not leave in time (a handler never returned)."""


class Envelope(NamedTuple):
    """A received message's envelope (``docs/layout.md``)."""

    type_id: int
    source: int
    target: int
    sequence: int
    hlc: int


def _queue(
    runtime: ActorRuntime, capacity: int, slot_words: int, policy: str = "block", name: str = ""
) -> RingQueue:
    """A :class:`RingQueue` whose words live in the runtime's shared memory."""
    queue = RingQueue(capacity, slot_words, policy, name=name)
    queue.attach(runtime.alloc(queue.buffer.size))
    return queue


def check_queue_fits(runtime: ActorRuntime, capacity: int, slot_words: int, what: str) -> None:
    """``ValueError`` (with the largest capacity that fits) if the backend cannot hold the queue."""
    limit = getattr(runtime, "max_buffer_words", None)
    words = L.queue_words(capacity, slot_words)
    if limit is None or words <= limit:
        return
    fits = 2
    while L.queue_words(fits * 2, slot_words) <= limit:
        fits *= 2
    raise ValueError(
        f"queue_capacity={capacity} needs {words * L.WORD} bytes for {what} ({slot_words}-word slots), "
        f"but this device allows at most {limit * L.WORD} bytes per buffer; "
        f"use queue_capacity <= {fits}"
    )


# --- settings ---------------------------------------------------------------------------


def check_setting(
    name: str, value: Any, lo: float, hi: float = math.inf, *, integer: bool = True, none_means: str = ""
) -> Any:
    """``value`` as an ``int`` (numpy integers too) or, with ``integer=False``, as float seconds.

    Every ``ActorSystem``/``spawn``/``send``/``receive``/``shutdown`` number
    passes here, so a bad one fails at the call with the allowed range
    (``TypeError`` for the wrong kind, ``ValueError`` out of range) instead of
    as an ``OverflowError`` in a control word later.  ``none_means`` (what
    ``None`` stands for) allows ``None``.
    """
    if value is None and none_means:
        return None
    wanted = "an integer" if integer else "a number of seconds"
    allowed = f" or None ({none_means})" if none_means else ""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.integer, np.floating))
        or (integer and not isinstance(value, (int, np.integer)))
    ):
        raise TypeError(f"{name} must be {wanted}{allowed}, got {value!r}")
    number = int(value) if integer else float(value)
    if not (lo <= number <= hi and math.isfinite(number)):
        span = f">= {lo}" if hi == math.inf else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {wanted} {span}{allowed}, got {value!r}")
    return number


def check_timeout(timeout: Any) -> float | None:
    """A ``timeout=`` argument: finite seconds >= 0 or None (no limit), checked by
    :func:`check_setting`; the common float or None passes without the general checks."""
    if timeout is None or (type(timeout) is float and 0.0 <= timeout < math.inf):
        return timeout
    return check_setting("timeout", timeout, 0, integer=False, none_means="wait without limit")


def check_capacity(capacity: Any) -> int:
    """A queue capacity: an integer power of two in [2, 2**24] (numpy integers too)."""
    if isinstance(capacity, np.integer) and not isinstance(capacity, np.bool_):
        capacity = int(capacity)
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(f"queue_capacity must be an integer power of two (2, 4, ... 2**24), got {capacity!r}")
    return L.check_capacity(capacity)


# --- messages ---------------------------------------------------------------------------


def message(cls: type) -> type:
    """Makes ``cls`` (annotated scalar fields) a message: keyword construction, fixed layout."""
    info = _user_errors(lambda: make_message_info(cls))
    names = tuple(f.name for f in info.layout.fields)

    def __init__(self: Any, /, **fields: Any) -> None:  # positional-only: a field may be called 'self'
        unknown = [k for k in fields if k not in names]
        if unknown:
            raise TypeError(
                f"message {cls.__name__} has no field '{unknown[0]}' (fields: {', '.join(names)})"
            )
        for slot in info.layout.fields:
            if slot.name not in fields:
                default = cls.__dict__.get(f"_rk_default_{slot.name}", None)
                if default is None:
                    raise TypeError(f"message {cls.__name__} needs field '{slot.name}'")
                fields[slot.name] = default
            convert = _convert if slot.length is None else _convert_vec
            object.__setattr__(self, slot.name, convert(fields[slot.name], slot, cls.__name__))
        object.__setattr__(self, "envelope", None)

    def __repr__(self: Any) -> str:
        return f"{cls.__name__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"

    def __eq__(self: Any, other: object) -> bool:
        return type(other) is type(self) and all(
            np.array_equal(getattr(self, n), getattr(other, n)) for n in names
        )

    for name in names:
        if name in cls.__dict__:
            setattr(cls, f"_rk_default_{name}", cls.__dict__[name])
            delattr(cls, name)
    cls.__init__ = __init__  # type: ignore[misc]
    cls.__repr__ = __repr__  # type: ignore[method-assign, assignment]
    cls.__eq__ = __eq__  # type: ignore[method-assign, assignment]
    cls.__hash__ = None  # type: ignore[assignment]
    cls.__rk_message__ = info  # type: ignore[attr-defined]
    cls.type_id = info.type_id  # type: ignore[attr-defined]
    cls.dtype = info.layout.dtype(L.ENVELOPE_WORDS)  # type: ignore[attr-defined]
    return cls


def _convert_vec(value: Any, slot: L.FieldSlot, owner: str) -> np.ndarray:
    """A Vec field's value: a numpy array of its element type and length (a copy)."""
    dtype = np.dtype(slot.type.numpy_dtype)
    try:
        given = np.asarray(value)
    except (TypeError, ValueError):
        given = np.asarray(None)
    if given.shape != (slot.length,) or given.dtype.kind not in "biuf":
        raise TypeError(
            f"{owner}.{slot.name} must be {slot.length} numbers (a Vec[{slot.type}, {slot.length}]), "
            f"got {value!r}"
        )
    if slot.type.is_int and given.size and (given.dtype.kind == "f" or given.min() < slot.type.min_value
                                             or given.max() > slot.type.max_value):
        raise ValueError(f"{owner}.{slot.name} holds values that are not {slot.type} integers")
    return given.astype(dtype)


def _convert(value: Any, slot: L.FieldSlot, owner: str) -> Any:
    ty, name = slot.type, slot.name
    if ty == BOOL:
        return bool(value)
    if ty.is_float:
        if not isinstance(value, (int, float, np.number)) or isinstance(value, bool):
            raise TypeError(f"{owner}.{name} must be a number, got {value!r}")
        return float(np.dtype(ty.numpy_dtype).type(value))
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{owner}.{name} must be an integer, got {value!r}")
    lo, hi = ty.min_value, ty.max_value
    if not lo <= int(value) <= hi:
        raise ValueError(f"{owner}.{name} = {value} is out of range for {ty}")
    return int(value)


_STRUCT_CODES = {"f32": "f", "f64": "d", "i32": "i", "u32": "I", "i64": "q", "u64": "Q", "bool": "I"}


class _Codec(NamedTuple):
    """One message type's slot as a ``struct`` format: envelope, then the fields at their words.

    ``vecs`` holds (name, dtype, length) of each Vec field: packed element by element.
    """

    record: struct.Struct
    names: tuple[str, ...]
    bools: frozenset[str]
    vecs: tuple[tuple[str, np.dtype, int], ...] = ()

    def values(self, msg: Any) -> list[Any]:
        """``msg``'s fields in packing order (Vec fields as their elements)."""
        if not self.vecs:
            return [getattr(msg, n) for n in self.names]
        out: list[Any] = []
        lengths = {name: length for name, _, length in self.vecs}
        for n in self.names:
            value = getattr(msg, n)
            if n in lengths:
                out.extend(value.tolist())
            else:
                out.append(value)
        return out

    def fields(self, values: Sequence[Any]) -> dict[str, Any]:
        """The fields of unpacked ``values`` (Vec fields regrouped as numpy arrays)."""
        if not self.vecs:
            return dict(zip(self.names, values))
        vecs = {name: (dtype, length) for name, dtype, length in self.vecs}
        out: dict[str, Any] = {}
        at = 0
        for n in self.names:
            if n in vecs:
                dtype, length = vecs[n]
                out[n] = np.array(values[at:at + length], dtype=dtype)
                at += length
            else:
                out[n] = values[at]
                at += 1
        return out


_CODECS: dict[int, tuple[L.RecordLayout, _Codec]] = {}


def _codec(layout: L.RecordLayout) -> _Codec:
    """The codec of ``layout``, cached by identity (hashing a layout costs more than packing)."""
    hit = _CODECS.get(id(layout))
    if hit is not None and hit[0] is layout:
        return hit[1]
    codec = _make_codec(layout)
    _CODECS[id(layout)] = (layout, codec)
    return codec


def _make_codec(layout: L.RecordLayout) -> _Codec:
    fmt, at = "<IIIIQ", L.ENVELOPE_WORDS * L.WORD
    for field in sorted(layout.fields, key=lambda f: f.word):
        offset = (L.ENVELOPE_WORDS + field.word) * L.WORD
        code = _STRUCT_CODES[str(field.type)] * (field.length or 1)
        fmt += "x" * (offset - at) + code
        at = offset + struct.calcsize("<" + code)
    ordered = tuple(f.name for f in sorted(layout.fields, key=lambda f: f.word))
    bools = frozenset(f.name for f in layout.fields if f.type == BOOL)
    vecs = tuple(
        (f.name, np.dtype(f.type.numpy_dtype), f.length) for f in layout.fields if f.length is not None
    )
    return _Codec(struct.Struct(fmt), ordered, bools, vecs)


def encode(msg: Any, info: MessageInfo, slot_words: int, envelope: tuple[int, int, int, int]) -> np.ndarray:
    """The slot words of ``msg``: envelope (type id, source, target, sequence, hlc) + payload."""
    codec = _codec(info.layout)
    words = np.zeros(slot_words, dtype=np.uint32)
    codec.record.pack_into(words.data, 0, info.type_id, *envelope, *codec.values(msg))
    return words


def encode_into(
    stage: memoryview, msg: Any, info: MessageInfo, envelope: tuple[int, int, int, int]
) -> int:
    """Packs ``msg`` as :func:`encode` does into ``stage`` (a queue's staging bytes); returns its words."""
    codec = _codec(info.layout)
    record = codec.record
    record.pack_into(stage, 0, info.type_id, *envelope, *codec.values(msg))
    return -(-record.size // L.WORD)


def decode(words: np.ndarray, info: MessageInfo) -> Any:
    """The message in slot ``words`` (fields taken as stored: the sender checked them)."""
    codec = _codec(info.layout)
    type_id, source, target, sequence, hlc, *values = codec.record.unpack_from(words.data)
    msg: Any = object.__new__(info.cls)
    fields = msg.__dict__
    fields.update(codec.fields(values))
    for name in codec.bools:
        fields[name] = bool(fields[name])
    fields["envelope"] = Envelope(type_id, source, target, sequence, hlc)
    return msg


def slot_dtype(info: MessageInfo, slot_words: int) -> np.dtype:
    """``Msg.dtype``'s fields over a whole slot of ``slot_words`` words (one row per slot)."""
    fields = info.layout.fields
    formats: list[Any] = [info.layout.dtype().fields[f.name][0] for f in fields]  # type: ignore[index]
    return np.dtype(
        {
            "names": [f.name for f in fields],
            "formats": formats,
            "offsets": [(L.ENVELOPE_WORDS + f.word) * L.WORD for f in fields],
            "itemsize": slot_words * L.WORD,
        }
    )


def encode_many(
    batch: Any, info: MessageInfo, slot_words: int, source: int, target: int, sequence: int, first_hlc: int
) -> np.ndarray:
    """The ``(n, slot_words)`` slot words of a structured array of ``Msg.dtype`` (vectorised).

    Message i gets sequence ``sequence + i`` and stamp ``first_hlc + i``.
    """
    n = len(batch)
    rows = np.zeros((n, slot_words), dtype=np.uint32)
    index = np.arange(n, dtype=np.uint64)
    stamps = np.uint64(first_hlc) + index
    rows[:, L.ENV_TYPE_ID] = info.type_id
    rows[:, L.ENV_SOURCE] = source
    rows[:, L.ENV_TARGET] = target
    rows[:, L.ENV_SEQUENCE] = ((np.uint64(sequence) + index) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    rows[:, L.ENV_HLC_LO] = (stamps & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    rows[:, L.ENV_HLC_HI] = (stamps >> np.uint64(32)).astype(np.uint32)
    view = rows.view(slot_dtype(info, slot_words)).reshape(n)
    for slot in info.layout.fields:
        view[slot.name] = batch[slot.name]
    return rows


def as_records(msgs: Sequence[Any], info: MessageInfo) -> np.ndarray:
    """A list of messages of one class as a structured array of ``Msg.dtype``."""
    names = [f.name for f in info.layout.fields]
    return np.array(
        [tuple(getattr(m, n) for n in names) for m in msgs], dtype=info.layout.dtype(L.ENVELOPE_WORDS)
    )


# --- actors -----------------------------------------------------------------------------


class ActorType:
    """What ``@rk.actor`` returns: compile it, or spawn it in an :class:`ActorSystem`."""

    def __init__(self, cls: type) -> None:
        self.py_class = cls
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__doc__ = cls.__doc__
        self.info: ActorInfo = _user_errors(lambda: make_actor_info(cls))
        self._modules: dict[str, Module] = {}
        self.budget: int | None = None  # @rk.actor(budget=): loop iterations per message

    def abortable(self, mode: str, group: bool = False) -> bool:
        """Whether its handlers loop, so they have budget checks and may abort (state shadowed)."""
        return any(CTRL_PARAM in (p.name for p in fn.params) for fn in self.module(mode, group).functions)

    @property
    def handlers(self) -> tuple[type, ...]:
        """The message classes this actor handles."""
        return tuple(self.info.handlers)

    @property
    def ports(self) -> dict[str, type]:
        """Its output ports (``out: rk.Port[Msg]``), name -> message class, in declaration order."""
        return {name: port.message.cls for name, port in self.info.ports.items()}

    @property
    def replies(self) -> tuple[type, ...]:
        """The message classes its handlers reply with."""
        self.ir  # noqa: B018 - translating the handlers finds the replies
        out: list[type] = []
        for h in self.info.handlers.values():
            out += [m.cls for m in h.replies if m.cls not in out]
        return tuple(out)

    def module(self, mode: str = "persistent", group: bool = False) -> Module:
        """The lowered RingIR: handler funcs plus the loop kernel named after the actor
        (``group=True``: the kernel serving every instance of a group, ``ringkernel.groups``)."""
        key = f"{mode}/group" if group else mode
        if key not in self._modules:
            threads = self.info.threads
            self._modules[key] = _user_errors(
                lambda: lower_actor(build_actor_module(self.info), self.info.name, mode, group=group,
                                    threads=threads)
            )
        return self._modules[key]

    @property
    def ir(self) -> Module:
        return self.module("persistent")

    def compile(self, target: str = "rir", **options: Any) -> str:
        """The actor's persistent kernel as ``rir``, ``llvm``, ``ptx``, ``wgsl`` or ``msl`` text.

        WGSL and MSL get the batch loop (one dispatch drains a batch), since
        neither guarantees a resident kernel forward progress.
        """
        from ringkernel.compiler import compile_module

        mode = "batch" if target in ("wgsl", "msl") else "persistent"
        module = self.module(mode)
        if target == "ptx":  # the host polls the queues: atomics need system scope
            options.setdefault("system_scope_atomics", True)
        return _user_errors(lambda: compile_module(module, target, **options))

    def message_info(self, msg: Any) -> MessageInfo:
        info = message_info(type(msg))
        if info is None:
            raise TypeError(f"actor '{self.__name__}' takes messages (@rk.message instances), got {msg!r}")
        if info.cls not in self.info.handlers:
            handled = ", ".join(h.message.name for h in self.info.handlers.values())
            raise TypeError(
                f"actor '{self.__name__}' has no handler for message '{info.name}'; it handles: {handled}"
            )
        return info

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"actor '{self.__name__}' is spawned, not called: system.spawn({self.__name__})")

    def __repr__(self) -> str:
        return f"<ringkernel actor {self.__qualname__}>"


def actor(cls: type | None = None, *, budget: int | None = None, threads: int = 1) -> Any:
    """Makes ``cls`` an actor: annotated state fields with defaults, one handler per message.

    ``@rk.actor(budget=N)``: a handler may run at most ``N`` loop iterations
    (all its loops and the device functions it calls, together) per message
    before it is aborted (``HandlerAborted``, reason ``"budget"``); ``None``
    is no limit on cpu and cuda, and the runtime's ``default_budget`` on wgpu and metal
    (16,383 on lavapipe, whose shader loops stop at 65,535 iterations; else 2**22).

    ``@rk.actor(threads=N)``: every handler runs on a block of ``N`` lanes (a
    cooperative actor, ``docs/actors.md``); spawns run it with ``lanes=N``.
    """
    budget = check_setting("budget", budget, 1, BUDGET_MAX, none_means="no limit")
    threads = actor_threads(threads)

    def make(c: type) -> ActorType:
        made = ActorType(c)
        made.budget = budget
        made.info.threads = threads
        if threads > 1 and budget is not None:
            _user_errors(lambda: check_cooperative_budget(made))
        return made

    return make if cls is None else make(cls)


def check_cooperative_budget(actor_type: ActorType) -> None:
    """``@rk.actor(threads=N > 1, budget=B)``: accepted while no handler loops (nothing to
    check); a ``CompileError`` at the first loop a handler runs otherwise, since a cooperative
    handler's lanes cannot abort together yet, so its budget would silently not hold."""
    module = build_actor_module(actor_type.info)
    handlers = [name for _, name in handler_table(module, actor_type.info.name)]
    looping = checked_functions(module, handlers)
    for fn in module.functions:
        if fn.name not in looping:
            continue
        loop = next((st for st in walk(fn.body) if isinstance(st, (Loop, ForRange))), None)
        if loop is not None:
            threads, budget = actor_type.info.threads, actor_type.budget
            raise CompileError.at(
                loop.loc,
                f"@rk.actor(threads={threads}, budget={budget}): budgets are not enforced in looping "
                "handlers of cooperative actors yet (all lanes of the block would have to abort "
                "together); drop budget= (the loop then runs to its end) or use threads=1",
            )


def handler_budget(actor_type: ActorType, runtime: ActorRuntime, shadowed: bool) -> int:
    """The ``budget`` control word of ``actor_type`` on ``runtime`` (0: no limit); ``ValueError``
    if its ``@rk.actor(budget=)`` is more than the device lets a handler loop."""
    budget = actor_type.budget
    if budget is None:  # a loop that cannot be stopped from outside (batch) always has one
        budget = getattr(runtime, "default_budget", None)
    most = getattr(runtime, "max_budget", None)
    if shadowed and most is not None and budget is not None and budget > most:
        raise ValueError(
            f"@rk.actor(budget={budget}) of {actor_type.__name__} is more than this device lets a "
            f"handler loop (its driver stops shader loops): use budget <= {most}, or the cpu backend"
        )
    return budget or 0


def init_control(
    blocks: np.ndarray, system: ActorSystem, actor_type: ActorType, shadowed: bool, first_id: int,
    runtime: ActorRuntime | None = None,
) -> None:
    """Fills the host's words of ``len(blocks)`` control blocks (rows) for actors numbered from
    ``first_id``: a single actor is one row, a group one row per instance.  ``runtime``: the
    one the loop runs on (default the system's; a migration names its target's)."""
    blocks[:, L.C["actor_id"]] = np.arange(first_id, first_id + len(blocks), dtype=np.uint32)
    blocks[:, L.C["idle_ns"]] = system.idle_ns
    blocks[:, L.C["batch"]] = system.batch
    blocks[:, L.C["state_words"]] = actor_type.info.state.words if shadowed else 0
    blocks[:, L.C["budget"]] = handler_budget(actor_type, runtime or system.runtime, shadowed)
    blocks[:, L.C["timing_mask"]] = HANDLER_TIMING_MASK


def message_capacities(info: ActorInfo, capacity: int) -> tuple[int, int]:
    """Slots of an actor's ``sends`` and ``routed`` queues at spawn: ``capacity`` (the spawn's
    queue_capacity) for an actor that sends (sends) or sends to its own group (routed), else 2,
    a stub nobody fills (the router enlarges ``routed`` when it connects a port to the actor)."""
    sends = capacity if info.talks and info.sendable else 2
    routed = capacity if info.routes_self else 2
    return sends, routed


def check_connectable(a_name: str, a_type: ActorType, b_name: str, b_type: ActorType) -> int:
    """The slot size of the K2K queue from ``a`` to ``b``; an error if ``b`` cannot take ``a``'s replies."""
    replies = a_type.replies
    if not replies:
        raise ValueError(f"{a_name} never replies, so there is nothing to connect")
    for cls in replies:
        if cls not in b_type.info.handlers:
            raise TypeError(f"{b_name} has no handler for '{cls.__name__}', which {a_name} replies with")
    infos = [message_info(c) for c in replies]  # replies are message classes: never None
    return max(info.slot_words for info in infos if info is not None)


class InstanceRegions(NamedTuple):
    """One instance of an actor group: its parts of the group's arrays (``ringkernel.groups``)."""

    ctrl: np.ndarray
    state: np.ndarray
    h2k: RingQueue
    k2k: RingQueue
    k2h: RingQueue
    out: RingQueue
    bell: tuple[np.ndarray, np.ndarray] | None  # (ctrl, bellq) its input pushes ring, if any
    sends: RingQueue
    routed: RingQueue


class _SupervisionFlag:
    """A ref's supervision flag (``hung``, ``failed``, ``restarting``): its own, set by the
    watchdog, or that of its instance in its group's flags."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.own = name, "_" + name

    def __get__(self, ref: Any, owner: type | None = None) -> Any:
        if ref is None:
            return self
        return getattr(ref, self.own) or ref._group_flag(self.name)

    def __set__(self, ref: Any, value: bool) -> None:
        setattr(ref, self.own, value)


class ActorRef:
    """A spawned actor: ``send`` messages, ``receive`` its replies, read its ``state``."""

    def __init__(
        self, system: ActorSystem, actor_type: ActorType, actor_id: int, capacity: int, policy: str,
        regions: InstanceRegions | None = None, runtime: ActorRuntime | None = None,
    ) -> None:
        self.system = system
        # the runtime its loop runs on: the system's, until a migration moves it (ringkernel.migration)
        self.runtime: ActorRuntime = runtime or system.runtime
        self.type = actor_type
        self.id = actor_id
        self.capacity = capacity
        self.name = f"{actor_type.__name__}#{actor_id}"
        info = actor_type.info
        in_words = max(h.message.slot_words for h in info.handlers.values())
        replies = [m for h in info.handlers.values() for m in h.replies]
        self.reply_info = {m.type_id: m for m in replies}
        out_words = max([m.slot_words for m in replies], default=8)
        runtime = self.runtime
        self.group: Any = None  # the ActorGroup (ringkernel.groups) this is an instance of
        self.index = 0  # its instance number there
        self._bell: tuple[np.ndarray, np.ndarray] | None = None
        if regions is None:
            self._allocate(runtime, capacity, policy, in_words, out_words)
        else:
            self.ctrl, self.state_words = regions.ctrl, regions.state
            self.h2k, self.k2k, self.k2h = regions.h2k, regions.k2k, regions.k2h
            self.sends, self.routed = regions.sends, regions.routed
            self._bell = regions.bell
            self._ring_on_send()
        self.out = self.k2h if regions is None else regions.out
        self.upstream: ActorRef | None = None
        self.downstream: ActorRef | None = None
        self.backlog: deque[np.ndarray] = deque()  # (k, slot_words) chunks of replies taken off the queue
        self._asked: dict[int, np.ndarray | None] = {}  # sequence -> its reply, for ask()
        self._forsaken: set[int] = set()  # asks that timed out: their late reply is discarded
        self._filled = 0  # claims in _asked whose reply has come
        self._async: dict[int, tuple[Any, Any]] = {}  # sequence -> (future, event loop) of ask_async
        self._async_thread: threading.Thread | None = None
        self.sequence = 0
        self.clock_refused = 0  # replies whose stamp the host clock did not merge
        self.abandoned = False  # shutdown gave up on its loop (see ActorSystem.shutdown)
        self.moving = False  # a migration waits for its send lock (ringkernel.migration)
        self.round_trips = Histogram()  # ask() round trips, seconds (ringkernel_round_trip_seconds)
        self.send_lock = threading.Lock()  # one producer of the input queue at a time
        self.receive_lock = threading.Lock()  # one consumer of the output queue, never held while waiting
        self.initial_state = self.state_words.copy()  # what a restart goes back to (restart_state)
        self.checkpointed_state: np.ndarray | None = None  # state words of its latest periodic checkpoint
        self.lanes = 1
        # supervision (ringkernel.supervision): spawn sets the policy, the watchdog the flags
        self.policy_state = RestartPolicy()
        self._hung = self._failed = self._restarting = False

    def _allocate(
        self, runtime: ActorRuntime, capacity: int, policy: str, in_words: int, out_words: int
    ) -> None:
        """Allocates and initializes a single actor's control block, state and queues."""
        actor_type, info = self.type, self.type.info
        check_queue_fits(runtime, capacity, in_words, f"the input queue of {self.name}")
        check_queue_fits(runtime, capacity, out_words, f"the output queue of {self.name}")
        # an actor whose handlers may abort keeps a shadow copy of its state right after it
        shadowed = actor_type.abortable(*groups.single_kernel(runtime))
        self.ctrl = runtime.alloc(L.CONTROL_WORDS)
        state_len = max(info.state.words, 1) * (2 if shadowed else 1)
        entries = self.system.trace_entries
        self.state_words = runtime.alloc(state_len + entries * L.TRACE_ENTRY_WORDS)
        blocks = self.ctrl.reshape(1, L.CONTROL_WORDS)
        init_control(blocks, self.system, actor_type, shadowed, self.id, runtime)
        if entries:  # a trace ring after the state (docs/layout.md, "Trace ring")
            blocks[0, L.C["trace_at"]], blocks[0, L.C["trace_mask"]] = state_len, entries - 1
        if info.state.fields:
            view = self.state_words.view(np.uint8)[: info.state.dtype().itemsize].view(info.state.dtype())
            for name, value in info.defaults.items():
                view[name] = value
        self.h2k = _queue(runtime, capacity, in_words, policy, name=f"the input queue of {self.name}")
        self.k2k = _queue(runtime, 2, 8, name=f"the actor-to-actor queue of {self.name}")
        self._ring_on_send()
        self.k2h = _queue(runtime, capacity, out_words, name=f"the output queue of {self.name}")
        send_capacity, routed_capacity = message_capacities(info, capacity)
        check_queue_fits(runtime, send_capacity, info.send_slot_words, f"the sends queue of {self.name}")
        check_queue_fits(runtime, routed_capacity, in_words, f"the routed queue of {self.name}")
        what = f"the sends queue of {self.name}"
        self.sends = _queue(runtime, send_capacity, info.send_slot_words, name=what)
        self.make_routed(routed_capacity)

    def make_routed(self, capacity: int) -> None:
        """A fresh, empty ``routed`` queue of ``capacity`` slots (as large as its input slots):
        at spawn, or when the router connects a port to it (its loop must not be running)."""
        in_words = int(self.h2k.buffer[L.Q_SLOT_WORDS])
        self.routed = _queue(self.runtime, capacity, in_words, name=f"the routed queue of {self.name}")

    def _ring_on_send(self) -> None:
        """A send publishes and rings the parked loop in one native call (where the host can
        ring: the doorbell is the ``bell`` word of the actor's K2K queue; a group instance's is
        what its group host says, e.g. the cpu scheduler's bell)."""
        if self._bell is not None:
            self.h2k.ring_on_push(*self._bell)
        elif getattr(self.runtime, "doorbell", False):
            self.h2k.ring_on_push(self.ctrl, self.k2k.buffer)

    # --- messages ---

    def send(self, msg: Any, timeout: float | None = 1.0) -> int:
        """Enqueues ``msg`` (waiting up to ``timeout`` s if full, ``None``: no limit); returns its HLC stamp.

        Raises ``TypeError`` for a message this actor has no handler for,
        :class:`QueueFull` when the queue stays full (see the queue policy) and
        :class:`ActorSystemStopped` once the system shuts down (also to a send
        still waiting for room then: that message was not sent).
        """
        timeout = check_timeout(timeout)
        info = self.type.message_info(msg)
        self._check_alive()
        while True:
            with self.send_lock:
                self.system._check_open()  # shutdown waits for this lock: no send slips in after it
                stamp = self.system.hlc.tick()
                h2k = self.h2k
                words = encode_into(h2k.stage_bytes, msg, info, (0, self.id, self.sequence, stamp))
                try:
                    h2k.push_staged(words, timeout, interrupt=self._while_full)
                except migration.Moving:
                    moved = True  # a migration needs the queue: it goes first, then we send again
                else:
                    moved = False
                    self.sequence = (self.sequence + 1) & 0xFFFFFFFF  # the envelope's u32, mod 2**32
            if not moved:
                break
            migration.wait_moved(self)
        if not h2k.rings:
            self.system._wake(self)
        return stamp

    def receive(self, timeout: float | None = None) -> Any:
        """The next reply (a message instance with ``.envelope``).

        Raises :class:`ReceiveTimeout` after ``timeout`` s (``None``: no limit)
        and :class:`ActorSystemStopped` once the system has shut down and every
        reply it left has been received, so a receiver waiting without a limit
        wakes up when the system stops.
        """
        timeout = check_timeout(timeout)
        row = self._take_one()
        if row is None:
            row = self._wait_rows(1, timeout)[0]
        return self._decode(row)

    def receive_many(
        self, max_count: int = 1024, timeout: float | None = None, as_array: bool = False
    ) -> Any:
        """Up to ``max_count`` replies, oldest first: waits up to ``timeout`` s for the first,
        then takes what has arrived (one batch copy off the queue).

        A list of messages, or with ``as_array=True`` a structured array of
        the reply's ``Msg.dtype`` (the actor must have one reply type; the
        envelope is in each record's first 24 bytes).  Raises like :meth:`receive`.
        """
        max_count = check_setting("max_count", max_count, 1)
        timeout = check_timeout(timeout)
        if as_array and len(self.reply_info) != 1:
            names = ", ".join(m.name for m in self.reply_info.values()) or "none"
            raise ValueError(
                f"as_array=True needs an actor with one reply type; {self.name} replies: {names}"
            )
        rows = self._until_abort(self._wait_rows(max_count, timeout))
        if not as_array:
            return [self._decode(row) for row in rows]
        info = next(iter(self.reply_info.values()))
        if np.any(rows[:, L.ENV_TYPE_ID] != info.type_id):
            raise RuntimeError(f"{self.name} sent an unknown message type")
        self._merge_clocks(rows)
        dtype = info.layout.dtype(L.ENVELOPE_WORDS)
        data = np.ascontiguousarray(rows.view(np.uint8)[:, : dtype.itemsize])
        return data.view(dtype).reshape(len(rows))

    def _aborted(self, words: np.ndarray) -> HandlerAborted:
        """The error an abort record (``docs/layout.md``, "Budget checks") stands for."""
        reason = L.ABORT_REASONS.get(int(words[L.ABORT_REASON_WORD]), "unknown")
        type_id = int(words[L.ABORT_MESSAGE_WORD])
        names = [h.message.name for h in self.type.info.handlers.values() if h.message.type_id == type_id]
        message = names[0] if names else f"type {type_id:#x}"
        return HandlerAborted(self.name, message, reason, int(words[L.ENV_SEQUENCE]))

    def _until_abort(self, rows: np.ndarray) -> np.ndarray:
        """The rows before the first abort record; it and the rows after it go back to the
        backlog, and an abort record first raises its :class:`HandlerAborted`."""
        marks = np.flatnonzero(rows[:, L.ENV_TYPE_ID] == L.ABORT_TYPE_ID)
        if not len(marks):
            return rows
        first = int(marks[0])
        rest = rows[first + 1 :] if first == 0 else rows[first:]
        if len(rest):
            with self.receive_lock:
                self.backlog.appendleft(rest)
        if first == 0:
            raise self._aborted(rows[0])
        return rows[:first]

    def _decode(self, words: np.ndarray) -> Any:
        if int(words[L.ENV_TYPE_ID]) == L.ABORT_TYPE_ID:
            raise self._aborted(words)
        info = self.reply_info.get(int(words[L.ENV_TYPE_ID]))
        if info is None:
            raise RuntimeError(f"{self.name} sent an unknown message type {int(words[0])}")
        msg = decode(words, info)
        try:
            self.system.hlc.receive(msg.envelope.hlc)
        except (HlcDriftError, OverflowError):
            self._merge_clock(msg.envelope.hlc)  # counts the refusal
        return msg

    def _merge_clocks(self, rows: np.ndarray) -> None:
        """Merges a batch's stamps: the newest one, or each one if the clock refuses that."""
        stamps = rows[:, L.ENV_HLC_LO].astype(np.uint64) | rows[:, L.ENV_HLC_HI].astype(
            np.uint64
        ) << np.uint64(32)
        refused = self.clock_refused
        self._merge_clock(int(stamps.max()))
        if self.clock_refused != refused:
            self.clock_refused, self.system.clock_drift_refused = refused, self.system.clock_drift_refused - 1
            for stamp in stamps:
                self._merge_clock(int(stamp))

    def _wait_rows(self, max_count: int, timeout: float | None) -> np.ndarray:
        """At least one and at most ``max_count`` reply rows, waiting up to ``timeout`` s."""
        rows = self._await(
            lambda: self._take(max_count),
            lambda: bool(self.backlog),
            Waiter(timeout),
            f"{self.name} has no replies left: its ActorSystem has shut down",
        )
        if rows is None:
            raise ReceiveTimeout(f"no reply from {self.name} within {timeout} s")
        return rows

    def _await(
        self, look: Callable[[], Any], held: Callable[[], bool], waiter: Waiter, stopped_text: str
    ) -> Any:
        """``look()``'s first non-empty answer, waiting for replies between looks; None at the deadline.

        On cpu the wait is a ``ReplyWait`` on the reply bell read before each
        look, woken by the loop when a reply lands.  Elsewhere it is the pump's next
        round (wgpu, metal) or a polite poll.  Raises :class:`ActorSystemStopped`
        (``stopped_text``) once the system has stopped and a look found nothing.
        ``held()`` says cheaply whether the host already holds an answer (the
        backlog, a filled claim): with a reply wait, the queue itself is
        watched by the wait, so the full look runs only when one may succeed.
        """
        reply_wait = getattr(self.system.hosts[self.id], "reply_wait", None)
        wait = None if reply_wait is None else reply_wait()
        if wait is None:
            return self._poll(look, waiter, stopped_text)
        stopped = self.system.stopped  # read first: a reply published before the stop is taken
        bell = wait.bell()  # before the look: a reply landing after it moves the bell
        found = look() if held() or len(self.k2h) else None
        while True:
            if found is not None and len(found):
                return found
            if stopped:
                raise ActorSystemStopped(stopped_text)
            if waiter.expired():
                return None
            self.system.routing.check(self)  # a deadlocked actor's reply never comes
            wait.wait(bell, None if waiter.deadline is None else waiter.deadline - time.monotonic())
            stopped = self.system.stopped
            bell = wait.bell()
            found = look()  # after a wait: most likely there

    def _poll(self, look: Callable[[], Any], waiter: Waiter, stopped_text: str) -> Any:
        while True:
            stopped = self.system.stopped  # read first: a reply published before the stop is still taken
            seen = self._rounds()
            found = look()
            if found is not None and len(found):
                return found
            if stopped:
                raise ActorSystemStopped(stopped_text)
            self.system.routing.check(self)  # a deadlocked actor's reply never comes
            if not self._wait(waiter, seen):
                return None

    # --- batches and requests ---

    def send_many(self, batch: Any, timeout: float | None = 1.0) -> np.ndarray:
        """Enqueues a batch in order with one copy per run of slots; returns the HLC stamps (u64).

        ``batch`` is a list of messages (any of the handled types) or a numpy
        structured array of one handled message's ``Msg.dtype``.  A full queue
        follows the policy as :meth:`send` does; ``timeout`` bounds each
        stretch without room.  If it raises :class:`QueueFull`, its ``sent``
        says how many leading messages were enqueued (the rest were not).
        """
        timeout = check_timeout(timeout)
        runs = self._batch_runs(batch)
        count = sum(len(records) for _, records in runs)
        self.system._check_open()
        self._check_alive()
        if count == 0:
            return np.zeros(0, dtype=np.uint64)
        with self.send_lock:
            self.system._check_open()
            first = self.system.hlc.tick_many(count)
            rows = self._encode_runs(runs, self.sequence, first)
            tail = int(self.h2k.buffer[L.Q_TAIL])  # we are its only producer: the tail counts our sends
            try:
                self.h2k.push_many(rows, timeout, interrupt=self._while_full)
            finally:  # a partial batch (QueueFull, the system stopping) keeps the sequence exact
                sent = (int(self.h2k.buffer[L.Q_TAIL]) - tail) & 0xFFFFFFFF
                self.sequence = (self.sequence + sent) & 0xFFFFFFFF
        self.system._wake(self)
        return np.uint64(first) + np.arange(count, dtype=np.uint64)

    def _batch_runs(self, batch: Any) -> list[tuple[MessageInfo, np.ndarray]]:
        """The batch as runs of one message type each, as structured arrays of ``Msg.dtype``."""
        if isinstance(batch, np.ndarray):
            for cls in self.type.info.handlers:
                if batch.dtype == cls.dtype:  # type: ignore[attr-defined]
                    info = message_info(cls)
                    assert info is not None
                    return [(info, batch.reshape(-1))]
            handled = ", ".join(f"{c.__name__}.dtype" for c in self.type.info.handlers)
            raise TypeError(f"{self.name} takes structured arrays of {handled}; got dtype {batch.dtype}")
        if not isinstance(batch, (list, tuple)):
            raise TypeError(
                f"send_many takes a list of messages or a structured array, got {type(batch).__name__}"
            )
        runs: list[tuple[MessageInfo, np.ndarray]] = []
        start = 0
        infos = [self.type.message_info(m) for m in batch]
        for i in range(1, len(batch) + 1):
            if i == len(batch) or infos[i] is not infos[start]:
                runs.append((infos[start], as_records(batch[start:i], infos[start])))
                start = i
        return runs

    def _encode_runs(
        self, runs: list[tuple[MessageInfo, np.ndarray]], sequence: int, first: int
    ) -> np.ndarray:
        parts, at = [], 0
        for info, records in runs:
            parts.append(
                encode_many(records, info, self.h2k.slot_words, 0, self.id, sequence + at, first + at)
            )
            at += len(records)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def ask(self, msg: Any, timeout: float | None = 1.0) -> Any:
        """Sends ``msg`` and returns the reply to that very message (matched by sequence number).

        Safe with several threads asking (and receiving) at once: a reply
        someone asked for never reaches :meth:`receive`.  ``timeout`` bounds
        the send and the wait; a handler that does not reply makes it raise
        :class:`ReceiveTimeout` (a reply arriving after that is discarded).
        """
        timeout = check_timeout(timeout)
        started = time.perf_counter()
        sequence = self._send_asked(msg, timeout, wait=True)
        claimed = False
        try:
            row = self._await(
                lambda: self._claim(sequence),
                lambda: self._asked.get(sequence) is not None,
                Waiter(timeout),
                f"{self.name} cannot answer: its ActorSystem has shut down",
            )
            if row is None:
                raise ReceiveTimeout(f"no reply from {self.name} to message {sequence} within {timeout} s")
            claimed = True
            self.round_trips.observe(time.perf_counter() - started)
            return self._decode(row)
        finally:
            if not claimed:  # timed out, stopped or interrupted: a late reply is discarded
                self._forsake(sequence)

    async def ask_async(self, msg: Any, timeout: float | None = 1.0) -> Any:
        """:meth:`ask` for asyncio: never blocks the event loop.

        One waiter thread per actor waits for replies as :meth:`ask` does and
        completes the future of each (``loop.call_soon_threadsafe``); a full
        ``"block"`` queue is retried with ``asyncio.sleep``.
        """
        timeout = check_timeout(timeout)
        started = time.perf_counter()
        block = self.h2k.policy == "block"  # a full queue is waited for here, not in a blocking push
        waiter = Waiter(timeout)
        while True:
            try:
                sequence = self._send_asked(msg, timeout, wait=not block)
                break
            except QueueFull:
                if not block:
                    raise
                if waiter.expired():
                    self.h2k._count(L.Q_REJECTED, 1)
                    raise QueueFull(
                        f"{self.h2k.name} stayed full ({self.capacity} messages) for {timeout} s"
                    ) from None
                await asyncio.sleep(waiter.pause())
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        with self.receive_lock:
            self._async[sequence] = (future, loop)
        self._async_waiter()
        claimed = False
        try:
            row = await (future if timeout is None else asyncio.wait_for(future, timeout))
            claimed = True
            self.round_trips.observe(time.perf_counter() - started)
            return self._decode(row)
        except asyncio.TimeoutError:
            text = f"no reply from {self.name} to message {sequence} within {timeout} s"
            raise ReceiveTimeout(text) from None
        finally:
            if not claimed:  # timed out, stopped or cancelled: a late reply is discarded
                with self.receive_lock:
                    mine = self._async.pop(sequence, None) is not None
                if mine:  # (else the waiter took the reply: nothing left to discard)
                    self._forsake(sequence)

    def _async_waiter(self) -> None:
        """Starts the thread that completes this actor's :meth:`ask_async` futures, if not running."""
        with self.receive_lock:
            thread = self._async_thread
            if thread is None or not thread.is_alive():
                self._async_thread = threading.Thread(
                    target=self._complete_asks, name=f"ringkernel-asks-{self.name}", daemon=True
                )
                self._async_thread.start()

    def _complete_asks(self) -> None:
        """The waiter thread: waits for replies as :meth:`ask` does and completes each
        pending ``ask_async`` future through its event loop; leaves once none is pending
        for a while, and fails those left when the system stops."""
        reply_wait = getattr(self.system.hosts[self.id], "reply_wait", None)
        wait = None if reply_wait is None else reply_wait()
        idle_since = time.monotonic()
        poll = Waiter(None)  # backends without a reply wait: polite polls
        while True:
            stopped = self.system.stopped
            bell = 0 if wait is None else wait.bell()
            seen = self._rounds()
            with self.receive_lock:
                if not self._async:
                    if time.monotonic() - idle_since > ASYNC_WAITER_IDLE:
                        self._async_thread = None
                        return
                else:
                    idle_since = time.monotonic()
                ready = self._claim_async()
                left = list(self._async.values()) if stopped else []
                if stopped:
                    self._async.clear()
            for future, loop, row in ready:
                loop.call_soon_threadsafe(_complete, future, row, None)
            if stopped:
                error = ActorSystemStopped(f"{self.name} cannot answer: its ActorSystem has shut down")
                for future, loop in left:
                    loop.call_soon_threadsafe(_complete, future, None, error)
                with self.receive_lock:
                    self._async_thread = None
                return
            if ready:
                poll.rounds = 0
                continue
            if wait is not None:
                wait.wait(bell, 0.05)
            else:
                self._wait(poll, seen)

    def _claim_async(self) -> list[tuple[Any, Any, np.ndarray]]:
        """(future, loop, row) of every pending ``ask_async`` whose reply has come (holding the lock)."""
        if self._async:
            took = self._collect(self.k2h.capacity)
            if took:
                self._share()
        ready = []
        for sequence in [s for s in self._async if self._asked.get(s) is not None]:
            row = self._asked.pop(sequence)
            assert row is not None  # (the comprehension took only filled claims)
            self._filled -= 1
            future, loop = self._async.pop(sequence)
            ready.append((future, loop, row))
        return ready

    def _rounds(self) -> int:
        """How many pump rounds have merged replies so far (0 where no pump runs)."""
        return getattr(self.runtime, "rounds_merged", 0)

    def _wait(self, waiter: Waiter, seen: int) -> bool:
        """Waits for the next reply: until a pump round after ``seen`` merges (wgpu, metal),
        else a short polite sleep; False once ``waiter``'s deadline has passed."""
        wait_round = getattr(self.runtime, "wait_round", None)
        if wait_round is None:
            return waiter.wait()
        if waiter.expired():
            return False
        left = 0.05 if waiter.deadline is None else waiter.deadline - time.monotonic()
        wait_round(seen, max(0.0, min(left, 0.05)))
        return True

    def _send_asked(self, msg: Any, timeout: float | None, wait: bool) -> int:
        """Sends ``msg`` with its sequence registered for :meth:`ask` first; returns the sequence.

        ``wait=False``: one attempt, :class:`QueueFull` (uncounted) if the queue is full."""
        if self.downstream is not None:
            raise ValueError(
                f"{self.name} sends its replies to {self.downstream.name}: nothing comes back to ask"
            )
        info = self.type.message_info(msg)
        self.system._check_open()
        self._check_alive()
        with self.send_lock:
            self.system._check_open()
            sequence = self.sequence
            self._asked[sequence] = None  # before the send: the reply may come back at once
            h2k = self.h2k
            try:
                stamp = self.system.hlc.tick()
                words = encode_into(h2k.stage_bytes, msg, info, (0, self.id, sequence, stamp))
                if wait:
                    h2k.push_staged(words, timeout, interrupt=self._while_full)
                elif not h2k.try_push_staged(words):
                    raise QueueFull(f"{self.name}'s input queue is full")
            except BaseException as exc:
                self._asked.pop(sequence, None)
                moved = isinstance(exc, migration.Moving)
                if not moved:
                    raise
            else:
                moved = False
                self.sequence = (sequence + 1) & 0xFFFFFFFF
        if moved:  # a migration needed the queue: it went first; ask again
            migration.wait_moved(self)
            return self._send_asked(msg, timeout, wait)
        if not h2k.rings:
            self.system._wake(self)
        return sequence

    def _claim(self, sequence: int) -> np.ndarray | None:
        """The reply to ``sequence`` if it has come (removing the claim), else None."""
        with self.receive_lock:
            took = 0
            if self._asked.get(sequence) is None:
                took = self._collect(self.k2h.capacity)
            row = self._asked.get(sequence)
            if row is not None:
                del self._asked[sequence]
                self._filled -= 1
            if took:
                self._share()
        return row

    def _share(self) -> None:
        """After taking replies off the queue: if some are left for other threads (the
        backlog, another ask's claim), ring the reply bell so a waiting one looks again."""
        if self.backlog or self._filled:
            ring = getattr(self.system.hosts[self.id], "ring_replies", None)
            if ring is not None:
                ring()

    def _forsake(self, sequence: int) -> None:
        with self.receive_lock:
            if self._asked.pop(sequence, None) is None:
                self._forsaken.add(sequence)
            else:
                self._filled -= 1

    def _while_full(self) -> None:
        """Between attempts to send into a full queue: give up once the system stops, make way
        for a migration (``migration.Moving``: the send is made again after it), and wake the
        loop (it may be parked on a full output, or have a drop-oldest request to honour)."""
        self.system._check_open()
        if self.moving:
            raise migration.Moving
        self.system._wake(self)

    def _merge_clock(self, stamp: int) -> None:
        """Merges a reply's stamp into the system clock; an absurd one is counted, never fatal.

        The reply is already off the queue, so no clock error may cost it: a stamp
        too far ahead (or one that would exhaust the clock) is simply not merged.
        """
        try:
            self.system.hlc.receive(stamp)
        except (HlcDriftError, OverflowError):
            self.clock_refused += 1
            self.system.clock_drift_refused += 1

    def _take(self, max_count: int) -> np.ndarray:
        """Up to ``max_count`` of the oldest unclaimed replies' rows (maybe none); holds the
        receive lock only this long."""
        with self.receive_lock:
            took = 0 if self.backlog else self._collect(self.k2h.capacity)  # all: later ones need no copy
            rows = self._from_backlog(max_count)
            if took:
                self._share()
            return rows

    def _take_one(self) -> np.ndarray | None:
        """The oldest unclaimed reply's row if one has come (no waiting), else None."""
        with self.receive_lock:
            backlog = self.backlog
            took = 0 if backlog else self._collect(self.k2h.capacity)
            row = None
            if backlog:
                chunk = backlog[0]
                if len(chunk) == 1:
                    backlog.popleft()
                else:
                    backlog[0] = chunk[1:]
                row = chunk[0]
            if took:
                self._share()
            return row

    def _collect(self, max_count: int) -> int:
        """Takes up to ``max_count`` replies off the output queue (one batch copy): those an
        :meth:`ask` waits for go to it, the rest to the backlog.  Returns how many it took.

        Taking from a *full* queue wakes the loop: it may be parked waiting for room.
        (We are the only consumer, so a loop that saw the queue full still finds it
        full here until we take; a fill below capacity means nobody waits for room.)
        """
        rows = self.k2h.pop_many(max_count)
        taken = len(rows)
        if not taken:
            return 0
        if taken >= self.k2h.capacity and not self.system.stopped:
            self.system._wake(self)
        if taken and (self._asked or self._forsaken):
            unclaimed = []
            for i, sequence in enumerate(rows[:, L.ENV_SEQUENCE].tolist()):
                if sequence in self._forsaken:
                    self._forsaken.discard(sequence)
                elif sequence in self._asked:
                    self._asked[sequence] = rows[i]
                    self._filled += 1
                else:
                    unclaimed.append(i)
            rows = rows[unclaimed]
        if len(rows):
            self.backlog.append(rows)
        return taken

    def _from_backlog(self, max_count: int) -> np.ndarray:
        parts, count = [], 0
        while self.backlog and count < max_count:
            chunk = self.backlog.popleft()
            if count + len(chunk) > max_count:
                self.backlog.appendleft(chunk[max_count - count :])
                chunk = chunk[: max_count - count]
            parts.append(chunk)
            count += len(chunk)
        if not parts:
            return np.zeros((0, self.k2h.slot_words), dtype=np.uint32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def pending(self) -> int:
        """Replies waiting to be received."""
        return sum(len(chunk) for chunk in self.backlog) + len(self.k2h)

    def _pump(self) -> None:
        """Moves replies from the output queue to the host backlog (so the loop never blocks)."""
        with self.receive_lock:
            took = 0
            while taken := self._collect(self.k2h.capacity):
                took += taken
            if took:
                self._share()

    # --- supervision (ringkernel.supervision) ---

    @property
    def status(self) -> str:
        """``"running"`` (work queued), ``"idle"``, ``"hung"`` (the watchdog found no progress),
        ``"blocked"`` (in, or held back by, a cycle of full queues: ``rk.SendCycleError``),
        ``"restarting"``, ``"failed"`` (stopped by its supervision) or ``"stopped"``."""
        if self.failed:
            return "failed"
        if self.restarting:
            return "restarting"
        if self.system.stopped or self.system.hosts[self.id].join(0):
            return "stopped"
        if self.hung:
            return "hung"
        if self.system.routing.blocked(self):
            return "blocked"
        return "running" if self.inputs_pending() else "idle"

    # an instance of a group reads its flags from the group's (the watchdog watches groups whole)
    hung = _SupervisionFlag()
    failed = _SupervisionFlag()
    restarting = _SupervisionFlag()

    def _group_flag(self, name: str) -> bool:
        return self.group is not None and bool(getattr(self.group.supervision, name)[self.index])

    @property
    def sends_rejected(self) -> int:
        """Sends its handlers made that found its ``sends`` queue full: counted, not written
        (``ringkernel_sends_rejected_total``)."""
        return routing.sends_rejected(self)

    @property
    def restarts(self) -> int:
        """Restarts so far (``ringkernel_restarts_total``)."""
        return self.policy_state.count

    @property
    def handler_aborted(self) -> int:
        """Messages whose handler was aborted (``ringkernel_handler_aborted_total``)."""
        return int(self.ctrl[L.C["aborted"]])

    def busy(self) -> bool:
        """Work is queued and the loop has room for its replies and its sends: it should make
        progress."""
        if not self.inputs_pending():
            return False
        sends = self.sends
        waiting = (int(sends.buffer[L.Q_TAIL]) - int(sends.buffer[L.Q_HEAD])) & 0xFFFFFFFF
        if 2 * waiting > sends.capacity:
            return False  # it waits for the router (backpressure, or a reported cycle), not hung
        out = self.out
        fill = (int(out.buffer[L.Q_TAIL]) - int(out.buffer[L.Q_HEAD])) & 0xFFFFFFFF
        return fill < out.capacity

    def restart_state(self) -> np.ndarray:
        """The state words a restart starts from: those of its latest checkpoint (periodic
        or explicit) if one was taken, else the initial state (a restored actor's is the
        restored state)."""
        if self.checkpointed_state is None:
            return self.initial_state
        words = self.initial_state.copy()
        words[: len(self.checkpointed_state)] = self.checkpointed_state
        return words

    def checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Writes its state, queued messages, unreceived replies, clock and counters to
        ``path`` atomically, taken between two messages (``docs/layout.md``, "Checkpoint file")."""
        self.system.checkpoint(path, [self])

    def restart_from_initial(self, grace: float) -> bool:
        """Aborts the message in progress (reason ``"watchdog"``) and stops the loop, restores
        :meth:`restart_state`, starts it again with its queued messages; False (loop left
        as it is) if it did not stop within ``grace`` s."""
        system = self.system
        self.restarting = True
        try:
            with system._lock:
                if system.closed:
                    return False
                self.ctrl[L.C["stop"]] = L.STOP_WATCHDOG  # one word: abort as hung, then leave
                fence()
                self.wake()
                if not system._wait_left(self, Waiter(grace)):
                    return False
                self.state_words[:] = self.restart_state()
                self.ctrl[L.C["abort_at"]] = 0
                self.ctrl[L.C["abort_at"]] = 0
                system._launch(self)
            return True
        finally:
            self.restarting = False

    def fail(self) -> None:
        """Stops the loop for good; queued messages stay queued, sends raise ``ActorFailed``."""
        self.failed = True
        self.ctrl[L.C["stop"]] = 1
        fence()
        self.wake()

    def wake(self) -> None:
        self.system._wake(self)

    def _check_alive(self) -> None:
        if self.failed:
            raise ActorFailed(
                f"{self.name} has failed (hung, and its restart policy "
                f"restart={self.policy_state.restart!r}, max_restarts={self.policy_state.max_restarts} "
                "gave up): it takes no more messages"
            )

    # --- inspection ---

    @property
    def memory(self) -> ActorMemory:
        """What the backend's loop runs over."""
        return ActorMemory(
            self.ctrl,
            self.state_words,
            self.h2k.buffer,
            self.k2k.buffer,
            self.out.buffer,
            self.sends.buffer,
            self.routed.buffer,
            out_to_host=self.out is self.k2h,
        )

    def inputs_pending(self) -> int:
        """Messages waiting in its input queues (host-to-kernel, kernel-to-kernel, routed)."""
        return len(self.h2k) + len(self.k2k) + len(self.routed)

    @property
    def state(self) -> dict[str, Any]:
        """A snapshot of the actor's state fields (consistent once its replies are received)."""
        info = self.type.info.state
        if not info.fields:
            return {}
        view = self.state_words.view(np.uint8)[: info.dtype().itemsize].view(info.dtype())[0]
        return {
            f.name: np.array(view[f.name]) if f.length is not None  # a Vec field: a copy of its elements
            else bool(view[f.name]) if f.type == BOOL else view[f.name].item()
            for f in info.fields
        }

    @property
    def stats(self) -> dict[str, int]:
        """Loop counters (processed, errors, heartbeat, ...) and queue counters.

        ``clock_refused`` counts messages whose stamp the actor's loop would not
        merge (too far ahead of its clock), ``host_clock_refused`` replies whose
        stamp the host clock would not merge; both messages were still delivered.
        """
        c = self.ctrl
        names = ("processed", "errors", "heartbeat", "sequence", "last_bad_type", "clock_refused", "aborted")
        out: dict[str, Any] = {k: int(c[L.C[k]]) for k in names}
        out["last_abort"] = L.ABORT_REASONS.get(int(c[L.C["last_abort"]]), "")
        out["restarts"] = self.policy_state.count
        out["host_clock_refused"] = self.clock_refused
        out["hlc"] = int(c[L.C["hlc_lo"]]) | int(c[L.C["hlc_hi"]]) << 32
        out["input"] = self.h2k.stats()
        out["output"] = self.k2h.stats()
        return out

    def __repr__(self) -> str:
        return f"<ActorRef {self.name}>"


class ActorSystem:
    """Owns actors and their queues on one backend; a context manager.

    Leaving the ``with`` block is :meth:`shutdown`: it drains every queue
    (upstream actors first), then stops every actor; replies still waiting
    stay receivable.  ``batch`` is how many messages a batch-loop dispatch
    (wgpu, metal) may handle per input queue.  Every setting is checked here,
    with its range in the error (``docs/actors.md`` lists them).
    """

    def __init__(
        self,
        backend: str = "cpu",
        idle_ns: int = 50_000,
        drain_timeout: float = 30.0,
        batch: int = 1024,
        trace: str | os.PathLike[str] | None = None,
        watchdog_timeout: float | None = None,
        workers: int | None = None,
        quantum: int = 64,
        max_actors: int | None = None,
        max_memory: int | None = None,
        fallback: str | None = None,
    ) -> None:
        """``fallback``: the backend a failed device's actors migrate to (``docs/operations.md``)."""
        if not isinstance(backend, str):
            raise TypeError(f"backend must be a name such as 'cpu' or 'wgpu', got {backend!r}")
        idle_ns = check_setting("idle_ns", idle_ns, 0, IDLE_NS_MAX)
        migration.check_fallback(fallback, backend)
        workers = check_setting("workers", workers, 1, WORKERS_MAX, none_means="every core")
        self.quantum = check_setting("quantum", quantum, 1, groups.QUANTUM_MAX)
        self.max_actors = check_setting("max_actors", max_actors, 1, none_means="no limit")
        self.max_memory = check_setting("max_memory", max_memory, 1, none_means="no limit")
        self.admitted_actors = 0  # actors spawned (a group counts its instances), for max_actors
        self.admitted_bytes = 0  # their memory, for max_memory
        self.groups: list[ActorGroup] = []
        self._next_id = 1  # actor ids: a group takes one per instance
        batch = check_setting("batch", batch, 1, BATCH_MAX)
        drain_timeout = check_setting("drain_timeout", drain_timeout, 0, integer=False)
        trace_path = None if trace is None else check_trace_path(trace)
        watchdog_timeout = check_setting(
            "watchdog_timeout",
            watchdog_timeout,
            WATCHDOG_MIN,
            WATCHDOG_MAX,
            integer=False,
            none_means="no watchdog",
        )
        from ringkernel.compiler import use_caches_in_runtime

        use_caches_in_runtime()
        # the quantum goes into each group's control block; only a set `workers` reaches the runtime
        chosen = {} if workers is None else {"workers": workers}
        self.runtime: ActorRuntime = open_runtime(backend, idle_ns, **chosen)
        self.runtimes: dict[str, ActorRuntime] = {backend: self.runtime}  # migrations open more
        self.workers = workers
        self.watchdog_timeout = watchdog_timeout
        self.backend = backend
        self.migrations = migration.Migrations(self, fallback)
        self.idle_ns = idle_ns
        self.batch = batch
        self.drain_timeout = drain_timeout
        self.hlc = Hlc(max_drift_us=MAX_CLOCK_DRIFT_US)
        self.clock_drift_refused = 0
        self.routing = routing.Routing(self)  # moves what handlers send (ringkernel.routing)
        self.actors: list[ActorRef] = []
        self.hosts: dict[int, ActorHost] = {}
        self.abandoned: list[ActorRef] = []
        self.closed = False
        self._lock = threading.RLock()  # spawn, connect and shutdown change the actors one at a time
        self._stopped = threading.Event()
        self._loops: list[tuple[np.ndarray, ActorHost]] = []
        # collected without a shutdown: its loops are still told to leave (at exit, _stop_all does it)
        self._finalizer = weakref.finalize(self, _ask_to_stop, self._loops, self.runtimes)
        self._finalizer.atexit = False
        _live_systems.add(self)
        self._observers: list[Any] = []  # metric servers and tracers, closed by shutdown
        # trace ring entries of actors spawned from now on (a tracer asks for them): exact spans
        self.trace_entries = 0
        if trace_path is not None:
            self.trace(trace_path).start()
        self.watchdog: Watchdog | None = None
        self._checkpointer: durability.Checkpointer | None = None
        if watchdog_timeout is not None:
            pump = self.runtime
            pumps: list[SupervisedPump] = [pump] if isinstance(pump, SupervisedPump) else []
            self.watchdog = Watchdog(
                watchdog_timeout, lambda: list(self.actors), lambda: list(self.groups), lambda: pumps
            )

    def __enter__(self) -> ActorSystem:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.shutdown(drain=exc_type is None)

    @property
    def stopped(self) -> bool:
        """True once :meth:`shutdown` has finished: every loop has left or was abandoned."""
        return self._stopped.is_set()

    def _check_open(self) -> None:
        if self.closed:
            raise ActorSystemStopped("this ActorSystem has shut down")

    def _wake(self, ref: ActorRef) -> None:
        self.hosts[ref.id].wake()

    def spawn(
        self,
        actor_type: ActorType,
        queue_capacity: int = 1024,
        policy: str = "block",
        lanes: int = 1,
        restart: str = "never",
        max_restarts: int = 3,
        restart_window: float = 60.0,
        checkpoint_every: float | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_keep: int = durability.KEEP_DEFAULT,
        count: int | None = None,
        priority: int = 0,
    ) -> Any:
        """Starts ``actor_type``'s loop with queues of ``queue_capacity`` slots (2, 4, ..., 2**24).

        ``count=N`` spawns an :class:`~ringkernel.groups.ActorGroup` of ``N``
        instances served by one kernel (``group[i]`` is an ``ActorRef``);
        ``priority`` orders groups into strict classes (higher first) on the cpu
        scheduler.  A spawn beyond ``max_actors``/``max_memory`` raises
        :class:`AdmissionError` and spawns nothing.

        ``restart`` is what the watchdog does with the actor once it has aborted
        a hung handler: ``"never"`` (it serves on from its state, or fails if the
        handler did not give up) or ``"on_failure"`` (it restarts from its latest
        checkpoint's state, or its initial state without one, keeping its queued
        messages, at most ``max_restarts`` times within ``restart_window`` s; one
        more hang fails it).  In a group the watchdog watches each instance, and a
        restart resets only the hung instance (to its words in the group's latest
        checkpoint); ``max_restarts`` counts the restarts of the whole group.

        ``checkpoint_every`` s (with ``checkpoint_dir``) a checkpoint of the actor
        (or the whole group) goes to ``checkpoint_dir``, the last
        ``checkpoint_keep`` kept; a restart then starts from the latest one.
        """
        if not isinstance(actor_type, ActorType):
            raise TypeError(f"spawn() takes an @rk.actor class, got {actor_type!r}")
        queue_capacity = check_capacity(queue_capacity)
        if not isinstance(policy, str) or policy not in POLICIES:
            raise ValueError(f"unknown queue policy {policy!r}; choose one of {', '.join(POLICIES)}")
        lanes = check_setting("lanes", lanes, 1, LANES_MAX)
        threads = actor_type.info.threads
        if threads > 1:  # a cooperative actor's kernel is built for its block of lanes
            if lanes not in (1, threads):
                raise ValueError(f"{actor_type.__name__} is @rk.actor(threads={threads}): spawn it with "
                                 f"lanes={threads} (or leave lanes out), not lanes={lanes}")
            lanes = threads
        if not isinstance(restart, str) or restart not in RESTART_POLICIES:
            choices = ", ".join(RESTART_POLICIES)
            raise ValueError(f"unknown restart policy {restart!r}; choose one of {choices}")
        max_restarts = check_setting("max_restarts", max_restarts, 0, MAX_RESTARTS_MAX)
        restart_window = check_setting(
            "restart_window", restart_window, 0.001, RESTART_WINDOW_MAX, integer=False
        )
        schedule = _checkpoint_schedule(checkpoint_every, checkpoint_dir, checkpoint_keep)
        count = check_setting("count", count, 1, groups.COUNT_MAX, none_means="one actor, not a group")
        priority = check_setting("priority", priority, *groups.PRIORITY_RANGE)
        policy_state = RestartPolicy(restart, max_restarts, restart_window)
        if count is not None:
            group = self._spawn_group(actor_type, count, queue_capacity, policy, lanes, priority)
            group.supervision.policy_state = policy_state  # one policy for the whole group
            if schedule is not None:
                self._schedule_checkpoints(durability.Schedule(group, *schedule, group=True))
            return group
        if priority:
            raise ValueError(f"priority={priority} orders actor groups (spawn with count=N); "
                             "a single actor is served in class 0")
        ref = self._spawn(actor_type, queue_capacity, policy, lanes, policy_state)
        if schedule is not None:
            self._schedule_checkpoints(durability.Schedule(ref, *schedule))
        return ref

    def _schedule_checkpoints(self, schedule: durability.Schedule) -> None:
        """Takes ``schedule``'s periodic checkpoints from now on (one thread for the system)."""
        with self._lock:
            if self._checkpointer is None:
                self._checkpointer = durability.Checkpointer(self)
                self._observers.append(self._checkpointer)
            self._checkpointer.add(schedule)

    def _spawn(
        self,
        actor_type: ActorType,
        capacity: int,
        policy: str,
        lanes: int,
        policy_state: RestartPolicy,
        prepare: Callable[[ActorRef], None] | None = None,
        launch: bool = True,
    ) -> ActorRef:
        """Allocates the actor, lets ``prepare`` fill its memory (a restore), starts its loop
        (a restore starts it itself with ``launch=False``, once its connections are made)."""
        with self._lock:
            self._check_open()
            mode, as_group = groups.single_kernel(self.runtime)
            build = self._build(actor_type, lanes, group=as_group)
            in_words, out_words = groups.slot_sizes(actor_type)
            shadowed = actor_type.abortable(mode, as_group)
            state_words = max(actor_type.info.state.words, 1) * (2 if shadowed else 1)
            sends, routed = message_capacities(actor_type.info, capacity)
            messaging = (sends, actor_type.info.send_slot_words, routed)
            words = groups.footprint(1, capacity, in_words, out_words, state_words, messaging)
            groups.admit(self, f"spawn({actor_type.__name__})", 1, words)
            ref = ActorRef(self, actor_type, self._next_id, capacity, policy)
            self._next_id += 1
            self.admitted_actors += 1
            self.admitted_bytes += words * L.WORD
            ref.policy_state = policy_state
            ref.lanes = lanes
            if prepare is not None:
                prepare(ref)
            host = self._single_host(ref, build, lanes, state_words)
            self.actors.append(ref)
            self.hosts[ref.id] = host
            self._loops.append((ref.ctrl, host))
            if launch:
                self._launch(ref)
            self.routing.talks(ref)
        return ref

    def _single_host(self, ref: ActorRef, build: KernelBuild, lanes: int, state_words: int) -> ActorHost:
        """The host of a single actor: on runtimes with a scheduler (cpu) a group of one served
        by its workers (sends ring the scheduler's bell), elsewhere a loop of its own."""
        runtime = ref.runtime
        if not groups.single_turns(runtime):
            return runtime.host(build, lanes)
        host = runtime.single_host(build, lanes)  # type: ignore[attr-defined]
        groups.as_group_of_one(ref.ctrl, self.quantum, state_words)
        ref._bell = host.bell
        ref._ring_on_send()
        return host

    def checkpoint(
        self, path: str | os.PathLike[str], refs: Sequence[ActorRef | ActorGroup] | None = None
    ) -> None:
        """Writes a checkpoint of ``refs`` (default: every actor) to ``path`` atomically.

        The actors are paused together between two messages, and the router
        delivers what they sent (so no fan-out is half done), while their words
        are copied: ``TimeoutError`` (nothing written) if a handler does not
        return, or their sends cannot be delivered, within ``drain_timeout`` (or
        half the watchdog's timeout: the watchdog waits meanwhile).  Connections
        among the chosen actors are saved (``connect`` pairs need both ends:
        ``ValueError``); port connections to actors outside the file are not.
        """
        grace = self.drain_timeout
        if self.watchdog_timeout is not None:
            grace = min(grace, self.watchdog_timeout / 2)
        with self._lock:
            if refs is None:
                everything: list[Any] = [*self.actors, *self.groups]
                chosen: list[Any] = [r for r in everything if not r.abandoned]
            else:
                chosen = list(refs)
            whole = [g for g in chosen if isinstance(g, ActorGroup)]
            chosen = [r for r in chosen if not isinstance(r, ActorGroup)]
            groups.check_checkpointable(self, whole)
            for ref in chosen:
                if not isinstance(ref, ActorRef) or ref.system is not self:
                    raise TypeError(f"checkpoint() takes actors spawned by this system, got {ref!r}")
                for peer in (ref.upstream, ref.downstream):
                    if peer is not None and peer not in chosen:
                        raise ValueError(f"cannot checkpoint {ref.name} without {peer.name}: connect() "
                                         "joined them; checkpoint both (system.checkpoint(path, [a, b]))")
                if ref.group is not None:
                    raise ValueError(f"cannot checkpoint {ref.name} alone: checkpoint its whole group "
                                     f"({ref.group.name}.checkpoint(path))")
            units: list[Any] = [*chosen, *whole]

            def take() -> tuple[list[durability.Image], list[durability.GroupImage], durability.Wiring]:
                return ([durability.image(ref) for ref in chosen], [durability.group_image(g) for g in whole],
                        durability.wiring(self, units))

            images, whole_images, wiring = durability.paused_all(self, units, take, grace)
            durability.write(path, durability.encode(images, self.hlc.last, whole_images, wiring))
            for ref, image in zip(chosen, images, strict=True):
                ref.checkpointed_state = image.state  # a restart starts from here now
            for group, group_image in zip(whole, whole_images, strict=True):
                group.checkpointed_state = group_image.state

    def restore(
        self, path: str | os.PathLike[str], types: Sequence[ActorType] | Mapping[str, ActorType] = ()
    ) -> list[Any]:
        """Spawns the actors of checkpoint ``path`` with their state, queued messages, replies,
        clocks and counters; returns them in the file's order (single actors, then groups).

        Their classes come from ``types`` (a list, matched by class name, or a mapping
        from the class name in the file to the class to use) or modules already imported.  Any
        problem with the file (``durability.CheckpointError``) is found before
        the first actor is spawned.
        """
        given = list(types.values()) if isinstance(types, Mapping) else types
        if isinstance(types, str) or not all(isinstance(t, ActorType) for t in given):
            raise TypeError(f"restore(types=) takes @rk.actor classes or a mapping name -> class: {types!r}")
        images, group_images, host_hlc, wiring = durability.read_wired(path)
        chosen = [durability.resolve(im, types) for im in images]
        for im, actor_type in zip(images, chosen, strict=True):
            durability.check_compatible(im, actor_type)
            if im.policy not in POLICIES:
                raise durability.CheckpointError(f"{im.name}: unknown queue policy {im.policy!r}")
            self._check_fits(actor_type, im.capacity, im.lanes, f"{im.name} of {os.fspath(path)}")
        group_types = [groups.check_restorable(self, g, types, os.fspath(path)) for g in group_images]
        durability.check_wiring(wiring, images, chosen, group_images, group_types)
        if host_hlc:
            with contextlib.suppress(HlcDriftError):
                self.hlc.receive(host_hlc)  # the host clock never goes back behind the checkpoint's
        with self._lock:
            singles = [(t, im.capacity) for im, t in zip(images, chosen, strict=True)]
            wholes = [(t, g.count, g.capacity) for g, t in zip(group_images, group_types, strict=True)]
            # all or nothing: admitted before the first spawn
            groups.admit_restore(self, f"restore({os.fspath(path)!r})", singles, wholes)
            restored: list[Any] = [
                self._spawn(t, im.capacity, im.policy, im.lanes, RestartPolicy(), durability.prepare(im),
                            launch=False)
                for im, t in zip(images, chosen, strict=True)
            ]
            for g, t in zip(group_images, group_types, strict=True):
                restored.append(self._spawn_group(t, g.count, g.capacity, g.policy, g.lanes, g.priority,
                                                  durability.prepare_group(g), launch=False))
            names = [im.name for im in images] + [g.name for g in group_images]
            by_name = dict(zip(names, restored, strict=True))
            durability.rewire(self, wiring, by_name, {im.name: im for im in images}, _wire,
                              {g.name: g for g in group_images})
            durability.rearm(self, by_name, images, group_images)
            for unit in reversed(restored):  # downstream first, as connect starts them
                self._launch(unit)
            self.routing.wake()
            return restored

    def _check_fits(self, actor_type: ActorType, capacity: int, lanes: int, what: str) -> None:
        """Raises what spawning ``actor_type`` here would (queues too big for the device, a
        loop that does not compile for it), so a restore fails before its first spawn."""
        info = actor_type.info
        in_words = max(h.message.slot_words for h in info.handlers.values())
        out_words = max([m.slot_words for h in info.handlers.values() for m in h.replies], default=8)
        check_queue_fits(self.runtime, capacity, in_words, f"the input queue of {what}")
        check_queue_fits(self.runtime, capacity, out_words, f"the output queue of {what}")
        self._build(actor_type, lanes, group=groups.single_kernel(self.runtime)[1])

    def _spawn_group(
        self, actor_type: ActorType, count: int, capacity: int, policy: str, lanes: int, priority: int,
        prepare: Callable[[ActorGroup], None] | None = None, launch: bool = True,
    ) -> ActorGroup:
        """Admits, allocates and starts a group; on any error nothing of it stays."""
        runtime = self.runtime
        if priority and not getattr(runtime, "priorities", False):
            raise ValueError(f"priority={priority}: the {self.backend} backend runs every group in turn "
                             "and has no priority classes (the cpu scheduler has)")
        if not hasattr(runtime, "group_host"):
            raise ValueError(f"the {self.backend} backend cannot run actor groups yet")
        what = f"spawn({actor_type.__name__}, count={count})"
        with self._lock:
            self._check_open()
            build = self._build(actor_type, lanes, group=True)
            in_words, out_words = groups.slot_sizes(actor_type)
            shadowed = actor_type.abortable(groups.group_mode(runtime), group=True)
            state_words = max(actor_type.info.state.words, 1) * (2 if shadowed else 1)
            sends, routed = message_capacities(actor_type.info, capacity)
            messaging = (sends, actor_type.info.send_slot_words, routed)
            words = groups.footprint(count, capacity, in_words, out_words, state_words, messaging)
            groups.admit(self, what, count, words)
            group = ActorGroup(self, actor_type, count, capacity, policy, lanes, priority, self._next_id)
            extra = {"priority": priority} if priority else {}
            group.host = runtime.group_host(build, lanes, count, **extra)
            self.hosts[group.id] = group.host
            try:
                if prepare is not None:
                    prepare(group)
                if launch:
                    self._launch(group)
            except BaseException:
                del self.hosts[group.id]
                raise
            self._next_id += count
            self.admitted_actors += count
            self.admitted_bytes += words * L.WORD
            self.groups.append(group)
            self._loops.append((group.ctrl, group.host))
            self.routing.talks(group)
        return group

    def _build(
        self, actor_type: ActorType, lanes: int, group: bool = False, runtime: ActorRuntime | None = None
    ) -> KernelBuild:
        """The loop kernel compiled for ``runtime`` (default this system's): its target, its options."""
        from ringkernel.compiler import compile_module

        runtime = runtime or self.runtime
        module = actor_type.module(groups.group_mode(runtime) if group else runtime.mode, group)
        name = actor_type.info.name
        options = runtime.compile_options(module, name, lanes)
        text = _user_errors(lambda: compile_module(module, runtime.target, **options))
        return KernelBuild(module, name, runtime.target, options, text)

    def _launch(self, ref: ActorRef | ActorGroup) -> None:
        # A loop the host and its upstream loop wake (cpu) parks up to PARK_NS;
        # elsewhere it looks again every idle_ns.
        woken = getattr(ref.runtime, "doorbell", False)
        ref.ctrl[L.C["idle_ns"]] = max(self.idle_ns, PARK_NS) if woken else self.idle_ns
        ref.ctrl[L.C["stop"]] = 0
        fence()
        self.hosts[ref.id].start(ref.memory)

    def _wait_left(
        self, ref: ActorRef | ActorGroup, waiter: Waiter, check: Callable[[], None] | None = None
    ) -> bool:
        """Waits until ``ref``'s loop has left or ``waiter``'s deadline; True if it left.
        ``check`` runs between looks and raises to give up (a drain that found a deadlock)."""
        host = self.hosts[ref.id]
        while not host.join(0.002):
            self._pump_all()  # a loop waiting for room in its output queue gets it
            if check is not None:
                check()
            if not waiter.wait():
                return host.join(0)
        return True

    def _pause(
        self, refs: Sequence[ActorRef | ActorGroup], what: str = "connect", grace: float | None = None
    ) -> None:
        """Stops the loops of ``refs`` for a rewiring; ``TimeoutError`` (all running on) if one will not."""
        for ref in refs:
            ref.ctrl[L.C["stop"]] = L.STOP_PAUSE  # a handler in progress runs to its end
            self.hosts[ref.id].wake()
        grace = self.drain_timeout if grace is None else grace
        waiter = Waiter(grace)
        stuck = [ref for ref in refs if not self._wait_left(ref, waiter)]
        if not stuck:
            return
        for ref in refs:
            ref.ctrl[L.C["stop"]] = 0
            fence()
            if self.hosts[ref.id].join(0.01):  # it left (now or just before the flag went back)
                self._launch(ref)
        names = ", ".join(ref.name for ref in stuck)
        raise TimeoutError(
            f"cannot {what}: {names} did not stop within {grace} s "
            "(a handler has not returned); nothing was changed"
        )

    def connect(self, a: ActorRef | ActorGroup, b: ActorRef | ActorGroup, port: str | None = None) -> None:
        """Sends ``a``'s replies to ``b`` through a device-side (K2K) queue; with ``port``, wires
        ``a``'s output port of that name to ``b`` instead (``ringkernel.routing.connect``:
        actors, instances or groups; several connects on one port fan out).

        Two groups of the same size connect instance by instance (``a[i]``'s replies
        go to ``b[i]``); other pairings with groups raise ``ValueError`` (issue 23).

        Actors may form a cycle (:meth:`shutdown` says how it drains).  Both
        loops stop while the queue is rewired; if one does not stop within
        ``drain_timeout`` (a handler that never returns), ``TimeoutError``.
        """
        if port is not None:
            routing.connect(self, a, b, port)
            return
        if any(isinstance(r, ActorGroup) or getattr(r, "group", None) is not None for r in (a, b)):
            groups.connect(self, a, b)
            return
        for label, ref in (("first", a), ("second", b)):
            if not isinstance(ref, ActorRef) or ref.system is not self:
                raise TypeError(f"connect() takes two actors spawned by this system; the {label} is {ref!r}")
        assert isinstance(a, ActorRef) and isinstance(b, ActorRef)  # (checked just above)
        with self._lock:
            self._check_open()
            if a is b:
                raise ValueError("an actor cannot be connected to itself")
            if a.downstream is not None:
                raise ValueError(f"{a.name} already sends its replies to {a.downstream.name}")
            if b.upstream is not None:
                raise ValueError(f"{b.name} already receives from {b.upstream.name}")
            slot_words = check_connectable(a.name, a.type, b.name, b.type)
            if a.runtime is not b.runtime:
                raise ValueError(f"cannot connect {a.name} to {b.name}: they run on different backends "
                                 "(a migration moved one); migrate one to the other's backend first")
            what = f"the queue from {a.name} to {b.name}"
            check_queue_fits(b.runtime, b.capacity, slot_words, what)
            self._pause((a, b))
            _wire(a, b, slot_words)
            self._launch(b)
            self._launch(a)

    def _pump_all(self) -> None:
        for ref in self.actors:
            ref._pump()
        for group in self.groups:
            group._pump()

    def _drain(self, order: list[Any], waiter: Waiter) -> None:
        """Asks each loop, upstream first, to leave once its inputs are empty; then starts
        again every loop that input reached after it left, until none is left or the deadline."""
        check = self.routing.check  # a cycle of full queues never drains: SendCycleError
        since = self.routing.now_us()  # timers due later are not waited for (docs/actors.md)
        for ref in order:
            ref.ctrl[L.C["drain"]] = 1
            self.hosts[ref.id].wake()
            if not self._wait_left(ref, waiter, check):
                return
        while waiter.wait():
            fence()
            check()
            self.routing.wake()
            waiting = [ref for ref in order if ref.inputs_pending() or self.routing.routed_pending(ref)]
            if not waiting:
                if self.routing.idle(since):  # and nothing still on its way through the router
                    return
                continue
            for ref in waiting:
                if self.hosts[ref.id].join(0):
                    self.hosts[ref.id].start(ref.memory)  # its drain flag is still set
            for ref in waiting:
                if not self._wait_left(ref, waiter, check):
                    return

    def _stop(self, order: list[Any]) -> list[Any]:
        """Tells every loop to leave now; returns those still running after :data:`STOP_GRACE` s."""
        for ref in order:
            ref.ctrl[L.C["stop"]] = 1
            self.hosts[ref.id].wake()
        waiter = Waiter(STOP_GRACE)
        return [ref for ref in order if not self._wait_left(ref, waiter)]

    def _abandon(self, stuck: list[Any]) -> None:
        if not stuck:
            return
        for ref in stuck:
            ref.abandoned = True
            _keep_forever(ref)  # its loop may still write its memory; a native thread cannot be killed
        self.abandoned.extend(stuck)
        names = ", ".join(ref.name for ref in stuck)
        warnings.warn(
            f"ActorSystem.shutdown abandoned {names}: told to stop, its loop did not leave within "
            f"{STOP_GRACE} s (a handler has not returned); it runs on until the process exits, "
            "its memory kept alive",
            ActorAbandonedWarning,
            stacklevel=3,
        )

    def shutdown(self, drain: bool = True, drain_timeout: float | None = None) -> list[ActorRef]:
        """Drains (or, with ``drain=False``, just stops) every actor; returns those it abandoned.

        The drain asks every loop, upstream first, to leave once both its
        inputs are empty, and starts a loop again when input reached it after
        it left (a full output queue, actors connected in a cycle), until no
        input is left anywhere or ``drain_timeout`` s (default: the system's)
        have passed; a cycle whose handlers always reply never empties, so it
        is drained until the timeout.  Then every loop still running is told
        to stop and gets :data:`STOP_GRACE` s to leave.  A loop that does not
        (its handler never returns) is *abandoned*: ``ref.abandoned`` is set,
        the ref is listed in ``system.abandoned`` and an
        :class:`ActorAbandonedWarning`, and its memory is kept alive for good
        (its thread cannot be killed).  So shutdown returns within
        ``drain_timeout + STOP_GRACE`` s.

        A second call, from any thread, waits for the first and returns the
        same list.  Afterwards ``send``, ``spawn`` and ``connect`` raise
        :class:`ActorSystemStopped` (a send waiting for room gives up as
        shutdown starts), and ``receive`` returns the replies left, then
        raises it.
        """
        if not isinstance(drain, (bool, np.bool_)):
            raise TypeError(f"drain must be True or False, got {drain!r}")
        if drain_timeout is None:
            drain_timeout = self.drain_timeout
        drain_timeout = check_setting("drain_timeout", drain_timeout, 0, integer=False)
        with self._lock:
            first, self.closed = not self.closed, True
        if not first:
            self._stopped.wait()
            return list(self.abandoned)
        deadlock: routing.SendCycleError | None = None
        if self.watchdog is not None:
            self.watchdog.close()
        try:
            for ref in [*self.actors, *(r for g in self.groups for r in g.refs())]:
                with ref.send_lock:
                    pass  # a send in flight has finished, or given up on seeing `closed`
            order = _upstream_first(self.actors) + _upstream_first(self.groups)
            if drain:
                try:
                    self._drain(order, Waiter(drain_timeout))
                except routing.SendCycleError as exc:
                    deadlock = exc  # raised once every loop is stopped
            self._abandon(self._stop(order))
            self._pump_all()
            self.routing.close()
            for runtime in self.runtimes.values():
                if not migration.close_runtime(runtime, 0 if self.abandoned else STOP_GRACE):
                    _keep_forever(runtime)  # a loop may still run on what it holds
        finally:
            self._finalizer.detach()
            _live_systems.discard(self)
            self._stopped.set()
            for host in self.hosts.values():  # a receive parked for a reply sees the stop at once
                ring = getattr(host, "ring_replies", None)
                if ring is not None:
                    ring()
            for observer in self._observers:  # a tracer writes its file now (the loops have left)
                observer.close()
        if deadlock is not None:
            raise deadlock
        return list(self.abandoned)

    # --- observability (ringkernel.observability; docs/observability.md) ---

    def metrics(self) -> dict[str, Any]:
        """A snapshot of every actor's counters, queue fill, clock drift and status; each
        group's summed over its instances (``"groups"``: no label per instance)."""
        out = snapshot(self)
        widener = widener_for(self)
        out["groups"] = {g.name: groups.group_metrics(g, widener) for g in list(self.groups)}
        out["routing"] = self.routing.metrics()
        out["migrations"] = self.migrations.metrics()
        return out

    def health(self) -> dict[str, Any]:
        """``{"live", "ready", "actors": {name: status}}``, what ``/healthz`` and ``/readyz`` answer;
        ``device_losses`` (only once a device failed) lists them, and ``migrating`` is True while
        their actors move to the fallback backend (not ready meanwhile)."""
        report = health(self)
        moves = self.migrations
        if moves.lost:
            report["device_losses"] = list(moves.lost)
            report["migrating"] = not moves.wait(0)
            report["ready"] = report["ready"] and not report["migrating"] and not moves.errors
            report["live"] = report["live"] and not moves.errors
        return report

    def migrate(self, ref: ActorRef | ActorGroup, backend: str) -> migration.Migration:
        """Moves a live actor or group to ``backend`` ("cpu", "wgpu", ...) with its state, clocks,
        counters and every queued message; the actors ``connect`` joined to it move along.

        Senders wait while it moves (they never see an error) and the ``ActorRef``/``ActorGroup``
        objects stay valid.  Returns a :class:`~ringkernel.migration.Migration` whose
        ``pause_s`` is how long they waited.  ``TimeoutError`` (nothing moved) if a handler does
        not return within ``drain_timeout``; ``BackendUnavailable`` if ``backend`` cannot run here.
        """
        return self.migrations.migrate(ref, backend)

    def serve(self, port: int = 9464, host: str = "127.0.0.1") -> Any:
        """Serves ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz`` until shutdown; port 0 picks one."""
        from ringkernel.observability.server import MetricsServer

        with self._lock:  # shutdown closes what it finds in _observers
            self._check_open()
            server = MetricsServer(self, port, host)
            self._observers.append(server)
        return server

    def trace(self, path: str | os.PathLike[str], capacity: int = 200_000) -> Any:
        """A Perfetto trace of the actors' messages, written to ``path`` when it stops.

        Use it as a context manager (or ``.start()``; shutdown stops it).  It
        keeps the last ``capacity`` events only.
        """
        with self._lock:
            self._check_open()
            tracer = ActorTracer(self, path, capacity)
            self._observers.append(tracer)
            self.trace_entries = TRACE_RING_ENTRIES
        return tracer

    def __repr__(self) -> str:
        return f"<ActorSystem backend={self.backend} actors={len(self.actors)} groups={len(self.groups)}>"


def _wire(a: ActorRef, b: ActorRef, slot_words: int) -> None:
    """Gives ``b`` a K2K queue that ``a``'s replies go to (neither loop runs)."""
    b.k2k = _queue(b.runtime, b.capacity, slot_words, name=f"the queue from {a.name} to {b.name}")
    b._ring_on_send()  # its doorbell moved with its K2K queue
    a.out = b.k2k
    a.ctrl[L.C["out_target"]] = b.id
    a.downstream, b.upstream = b, a


def _checkpoint_schedule(
    every: float | None, directory: str | os.PathLike[str] | None, keep: int
) -> tuple[float, Any, int] | None:
    """The checked periodic-checkpoint settings of a spawn, or None without ``checkpoint_every``."""
    every = check_setting(
        "checkpoint_every", every, durability.EVERY_MIN, durability.EVERY_MAX, integer=False,
        none_means="no periodic checkpoints",
    )  # fmt: skip
    keep = check_setting("checkpoint_keep", keep, 1, durability.KEEP_MAX)
    if every is None:
        if directory is not None:
            raise ValueError("checkpoint_dir needs checkpoint_every (seconds between checkpoints)")
        return None
    if directory is None:
        raise ValueError("checkpoint_every needs checkpoint_dir (the directory the checkpoints go to)")
    path = Path(directory)
    if not path.is_dir():
        raise ValueError(f"checkpoint_dir {os.fspath(directory)!r} is not an existing directory")
    return every, path, keep


def _upstream_first(actors: list[Any]) -> list[Any]:
    """Each pipeline from its head downstream; a cycle from wherever walking upstream closes it."""
    order: list[ActorRef] = []
    for ref in actors:
        head, seen = ref, {ref.id}
        while head.upstream is not None and head.upstream.id not in seen:
            head = head.upstream
            seen.add(head.id)
        node: ActorRef | None = head
        while node is not None and node not in order:
            order.append(node)
            node = node.downstream
    return order


def _complete(future: Any, row: Any, error: BaseException | None) -> None:
    """Runs in the future's event loop: completes it unless it was cancelled (or timed out)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(row)


def _keep_forever(obj: object) -> None:
    """Leaks one reference to ``obj`` on purpose, so what it holds outlives even interpreter
    shutdown: a native loop that cannot be stopped may still use that memory."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


def _ask_to_stop(loops: list[tuple[np.ndarray, ActorHost]], runtimes: dict[str, ActorRuntime]) -> None:
    """An :class:`ActorSystem` was collected without a shutdown: tell its loops to leave.

    Runs from the garbage collector, so it only sets the flags and never waits.
    """
    for ctrl, host in loops:
        ctrl[L.C["stop"]] = 1
        with contextlib.suppress(Exception):  # a failed pump has nothing left to wake
            host.wake()
    for runtime in list(runtimes.values()):
        with contextlib.suppress(Exception):
            runtime.close(0)


_live_systems: weakref.WeakSet[ActorSystem] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Native loops must leave before the interpreter frees their memory (bounded by STOP_GRACE)."""
    for system in list(_live_systems):
        system.shutdown(drain=False)


__all__ = [
    "message",
    "actor",
    "ActorType",
    "ActorRef",
    "ActorSystem",
    "ActorHost",
    "ActorMemory",
    "ActorRuntime",
    "Envelope",
    "ActorSystemStopped",
    "ActorAbandonedWarning",
    "ActorGroup",
    "AdmissionError",
    "ActorFailed",
    "HandlerAborted",
    "QueueFull",
    "ReceiveTimeout",
    "CompileError",
]

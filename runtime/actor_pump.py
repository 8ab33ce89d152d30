"""The host pump that re-dispatches an actor's batch loop (wgpu, Metal).

WebGPU promises no forward progress to a kernel that waits, so an actor
cannot stay resident.  Instead each actor's memory (control block, state,
input queues, output queue) lives in storage buffers, and one pump thread
per :class:`~ringkernel.ActorSystem` runs *rounds*:

1. for every actor with input (or a keepalive due), upload what the host
   produced since the last round: ``ctrl`` (with ``now``, the wall clock as
   an HLC value, since WGSL has no clock), the new input slots and the input
   queue's producer words, and the output queue's consumer words;
2. record one dispatch per such actor, upstream actors first, in one
   command buffer — each dispatch drains up to ``ctrl.batch`` messages;
3. copy back, in the same submission, what the loops wrote: ``ctrl``'s
   kernel words, the state, the input queues' consumer words, and the output
   queue's header and the slots a dispatch can have filled; one map reads
   them all;
4. merge those words into the host's arrays, following the queue protocol
   (slots before ``tail``, consumer counters before ``head``).

The host's numpy arrays are the *mirror* of the device buffers: every word
has one writer, and the pump copies each word only in its writer's
direction, so ``ringkernel.runtime.queues`` works on the mirror unchanged.

K2K queues stay on the device: the upstream's ``out`` and the downstream's
``k2k`` bind the same storage buffer, and since a round dispatches upstream
first, a message crosses a whole pipeline in one submission.  The host reads
only their header back (for statistics and to know the downstream has work).

Idle, the pump sleeps on an event that ``send``, ``receive`` and the control
flags set, waking every ``keepalive`` seconds (:data:`KEEPALIVE`) for a
dispatch that keeps the heartbeat moving.

A pump that stops making progress (a round that never returns: a driver
stuck in a map, a submission that never signals) is found by the system's
watchdog through :meth:`RedispatchRuntime.stalled` and replaced by
:meth:`RedispatchRuntime.restart_pump`: the stuck thread is abandoned (a
Python thread cannot be killed) under a new *generation*, and a new thread
re-attaches every running actor over fresh device buffers uploaded from the
host's mirror.  The mirror holds every round merged so far, and an unmerged
round changed nothing the host sees, so queued messages are kept and no
message is lost or handled twice as far as the host can tell; a stuck
thread that wakes later sees its generation is gone and leaves without
touching anything.

A *group* of N instances (:meth:`RedispatchRuntime.group_host`) is one
dispatch of N workgroups per round (a 2-D grid of at most
:data:`MAX_GRID_X` columns, as WebGPU allows 65535 per dimension), each
running one turn of its instance.  Its arrays hold N regions each, and a
round moves them in one copy per *run* of consecutive instances, never one
per instance: up, ``ctrl`` whole, and the regions of instances whose input
queue's producer words (the tails as read before the copy) or output
queue's consumer words changed since the last upload; back, ``ctrl`` and the
state whole, and the queue regions of instances that had input (only they
can have changed), merged with numpy over each run at once.  The host's
arrays stay an exact mirror of the device's between rounds, so uploading a
region rewrites the loop's words with the values they already have.  An
idle group's keepalive round moves only its control blocks and state.

:class:`RedispatchRuntime` is API-neutral (the Metal host reuses it); a
:class:`BatchDevice` adapts one GPU API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ringkernel.ringir import Module
from ringkernel.ringir import layout as L
from ringkernel.runtime import pump_routing
from ringkernel.runtime.actor_host import ActorMemory
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.hlc import physical_now
from ringkernel.runtime.queues import fence

# An idle actor gets one dispatch this often (its heartbeat moves, its clock
# catches up); anything the host publishes wakes the pump at once.  At ~2 ms
# of host work per dispatch on lavapipe this keeps an idle system near 1% of a core.
KEEPALIVE = 0.25

_MASK32 = 0xFFFFFFFF
# Loop iterations a handler may run per message when its actor names no budget:
# a dispatch can only end by itself, so a runaway handler must end too.
DEFAULT_BUDGET = 1 << 22
KERNEL_CTRL_WORDS = tuple(L.C[k] for k in L.CONTROL_KERNEL_WORDS)
MAX_GRID_X = 65535  # workgroups per grid dimension WebGPU promises (Metal and cuda allow more)
GROUP_KERNEL_CTRL_WORDS = (*KERNEL_CTRL_WORDS, L.C["progress"])
GROUP_QUEUES = ("h2k", "k2k", "out")
RUN_GAP = 16  # idle instances between two busy ones that a copy spans rather than split in two
PRODUCER_LINE = slice(16, L.QUEUE_HEADER_WORDS)  # tail, enqueued, rejected, dropped, drop_requests
CONSUMER_LINE = slice(0, 16)  # head, capacity, mask, slot_words, dequeued, drops_done

Read = tuple[Any, int, int]  # (device buffer, first word, words)


class BatchDevice(Protocol):
    """What the pump needs from a GPU API: buffers, ordered writes, dispatches, one read-back."""

    def buffer(self, words: int) -> Any:
        """A device buffer of ``words`` u32 words."""

    def write(self, buf: Any, word: int, data: np.ndarray) -> None:
        """Copies ``data`` (u32) to ``buf`` at ``word``; lands before the next :meth:`run`."""

    target: str  # the compile target whose text it runs

    def compile_options(self, module: Module, name: str, lanes: int) -> dict[str, Any]:
        """The options to compile the batch loop ``name`` with, for ``lanes`` threads
        (a ``LaunchError`` if the device cannot run that many)."""

    def kernel(self, build: KernelBuild, lanes: int) -> Any:
        """The batch-loop kernel of ``build`` (compiled by the facade) with ``lanes`` threads."""

    def bind(self, kernel: Any, buffers: Sequence[Any], grid: tuple[int, int] = (1, 1)) -> Any:
        """A dispatch of ``kernel`` over the five buffers, in ``KERNEL_PARAMS`` order, as a
        ``grid`` (x, y) of workgroups (one for an actor, a group's instances for a group)."""

    def run(self, dispatches: Sequence[Any], reads: Sequence[Read]) -> np.ndarray:
        """Runs ``dispatches`` in order (each sees the previous one's writes), then returns
        the words of ``reads``, concatenated, as they are after the last dispatch."""


@dataclass
class _Shared:
    """One array of actor memory and its device buffer."""

    array: np.ndarray
    buffer: Any
    sent_tail: int = 0  # input queues: the tail the device has seen


def group_grid(count: int) -> tuple[int, int]:
    """The (x, y) workgroups of a group of ``count`` instances: x at most ``MAX_GRID_X``."""
    if count <= MAX_GRID_X:
        return count, 1
    return MAX_GRID_X, -(-count // MAX_GRID_X)


def runs_of(mask: np.ndarray, gap: int = RUN_GAP) -> list[tuple[int, int]]:
    """The ``(first, end)`` runs of True in ``mask``, joined across gaps of at most ``gap``."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1]).tolist()
    runs: list[tuple[int, int]] = []
    for first, end in zip(edges[::2], edges[1::2]):
        if runs and first - runs[-1][1] <= gap:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((first, end))
    return runs


class _Plan:
    """What one actor's dispatch in a round reads back, and where it starts in the result."""

    def __init__(self, actor: PumpedActor, active: np.ndarray | None = None) -> None:
        self.actor = actor
        self.reads: list[Read] = []
        self.spans: list[int] = []
        m, b = actor.memory, actor.buffer
        assert m is not None  # only an attached actor is dispatched
        self.out_slots: list[tuple[int, int]] = []
        self.send_slots: list[tuple[int, int]] = []  # sends slots read back (pump_routing)
        self.runs: list[tuple[int, int]] = []
        if active is not None:  # a group: control blocks and state whole, queues of active instances
            self.add(b("ctrl"), 0, m.ctrl.size)
            self.add(b("state"), 0, m.state.size)
            self.runs = runs_of(active)
            for name in group_queues(m):
                stride = getattr(m, name).size // len(active)
                for first, end in self.runs:
                    self.add(b(name), first * stride, (end - first) * stride)
            return
        self.add(b("ctrl"), 0, L.CONTROL_WORDS)
        self.add(b("state"), 0, m.state.size)
        self.add(b("h2k"), 0, L.QUEUE_HEADER_WORDS)
        self.add(b("k2k"), 0, L.QUEUE_HEADER_WORDS)
        self.add(b("out"), 0, L.QUEUE_HEADER_WORDS)
        # K2K slots are device-only, unless a tracer reads them or a fallback may have to move
        # them after a device loss (the host mirror is then all that is left)
        if m.out_to_host or actor.mirror_out or actor.runtime.on_device_loss is not None:
            capacity, slot_words = int(m.out[L.Q_CAPACITY]), int(m.out[L.Q_SLOT_WORDS])
            tail = int(m.out[L.Q_TAIL])
            budget = min(capacity, 2 * max(int(m.ctrl[L.C["batch"]]), 1))
            for first, count in ring_ranges(tail & (capacity - 1), budget, capacity):
                self.out_slots.append((first, count))
                self.add(b("out"), L.QUEUE_HEADER_WORDS + first * slot_words, count * slot_words)
        if pump_routing.talks(m):
            self.send_slots = pump_routing.reads(self, actor)

    def add(self, buf: Any, word: int, words: int) -> None:
        self.reads.append((buf, word, words))


def ring_ranges(first: int, count: int, capacity: int) -> list[tuple[int, int]]:
    """Slots ``first, first+1, ...`` (``count`` of them) of a ring as at most two runs."""
    count = min(count, capacity)
    head = min(count, capacity - first)
    runs = [(first, head)] if head else []
    if count > head:
        runs.append((0, count - head))
    return runs


class PumpedActor:
    """One actor's batch loop, dispatched by its runtime's pump (an :class:`ActorHost`)."""

    def __init__(self, runtime: RedispatchRuntime, kernel: Any, name: str, count: int | None = None) -> None:
        self.runtime = runtime
        self.kernel = kernel
        self.name = name
        self.count = count  # a group's instances (None: one actor)
        self.grid = (1, 1) if count is None else group_grid(count)
        # a group: the h2k producer lines and out consumer lines the device has (None: nothing yet)
        self.sent_h2k: np.ndarray | None = None
        self.sent_out: np.ndarray | None = None
        self.memory: ActorMemory | None = None
        self.buffers: tuple[Any, ...] = ()  # in the loop kernel's parameter order
        self.dispatch: Any = None
        self.running = False
        self.left = threading.Event()
        self.left.set()
        self.last_dispatch = 0.0
        self.dispatches = 0  # ringkernel_dispatches_total
        # handler timing measured on the host per dispatch (a batch loop has no clock): µs in all,
        # and handlers per bucket of layout.handler_bucket (docs/layout.md, "Handler timing")
        self.handler_us = 0
        self.handler_buckets = np.zeros(L.HANDLER_BUCKETS, dtype=np.uint64)
        self.mirror_out = False  # a tracer reads this loop's K2K output slots too (device-only otherwise)
        # a group: the routed producer lines and sends consumer lines the device has (pump_routing)
        self.sent_routed: np.ndarray | None = None
        self.sent_sends: np.ndarray | None = None
        self.direct = False  # its loops push into routed queues themselves (pump_routing.note_direct)

    def buffer(self, name: str) -> Any:
        """The device buffer of the memory array ``name`` (one of ``KERNEL_PARAMS``)."""
        return self.buffers[L.KERNEL_PARAMS.index(name)]

    def start(self, memory: ActorMemory) -> None:
        if self.running:
            raise RuntimeError(f"actor loop '{self.name}' is already running")
        self.runtime.attach(self, memory)

    def wake(self) -> None:
        self.runtime.wake()

    def join(self, timeout: float | None = None) -> bool:
        return self.left.wait(timeout)


class RedispatchRuntime:
    """Actors whose batch loop a host pump re-dispatches (``mode = "batch"``)."""

    mode = "batch"

    def __init__(self, device: BatchDevice, idle_ns: int = 50_000, keepalive: float = KEEPALIVE) -> None:
        self.device = device
        self.max_buffer_words: int | None = getattr(device, "max_buffer_words", None)
        # a dispatch cannot be stopped from the host: handlers always get a budget (loop iterations)
        self.default_budget: int = getattr(device, "default_budget", DEFAULT_BUDGET)
        self.max_budget: int | None = getattr(device, "max_budget", None)  # what the driver lets finish
        self.idle = max(idle_ns, 1000) * 1e-9
        self.keepalive = keepalive
        self.shared: dict[int, _Shared] = {}
        self.actors: list[PumpedActor] = []  # upstream first
        self.lock = threading.Lock()
        self.event = threading.Event()
        self.closing = False
        self.thread: threading.Thread | None = None
        self.failure: BaseException | None = None
        self.rounds = 0
        self.rounds_merged = 0  # rounds whose results reached the host's arrays
        self.merged = threading.Condition()
        self.router: Any = None  # the system's message router (runtime/router.py), run between rounds
        self.generation = 0  # a restart_pump abandons the thread of the previous generation
        self.round_started: float | None = None  # monotonic time the round in progress began
        self.round_lock = threading.Lock()  # orders a round's end against restart_pump
        self.pump_restarts = 0  # ringkernel_pump_restarts_total
        # called (from the pump thread, once the loops are retired) with the error when the device
        # is lost; set by a system with a fallback backend, whose actors then migrate from the
        # host mirror.  Its callers' wakes no longer raise: their actors are on their way elsewhere.
        self.on_device_loss: Any = None
        self.device_lost = False

    # --- ActorRuntime ---

    def alloc(self, words: int) -> np.ndarray:
        return np.zeros(words, dtype=np.uint32)

    @property
    def target(self) -> str:
        return self.device.target

    def compile_options(self, module: Module, kernel: str, lanes: int) -> dict[str, Any]:
        return self.device.compile_options(module, kernel, lanes)

    def host(self, build: KernelBuild, lanes: int) -> PumpedActor:
        return PumpedActor(self, self.device.kernel(build, lanes), build.kernel_name)

    def group_host(self, build: KernelBuild, lanes: int, count: int) -> PumpedActor:
        """The host of a group's turn kernel (``lower_actor(..., "batch", group=True)``) over
        ``count`` instances: all of them are dispatched each round."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"a group has at least one instance, got count={count!r}")
        return PumpedActor(self, self.device.kernel(build, lanes), build.kernel_name, count)

    def close(self, timeout: float = 0.0) -> bool:
        """Ends the pump; False if it is still inside a dispatch after ``timeout`` s.

        A dispatch whose handler never returns cannot be cut short: the pump
        thread (a daemon) is left in it, and the caller keeps this runtime alive.
        """
        self.closing = True
        self.event.set()
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                return False
        self._check_failure()
        return True

    def wake(self) -> None:
        self._check_failure()
        self.event.set()

    def stalled(self, timeout: float) -> bool:
        """Whether the pump has been inside one round for ``timeout`` s or more (a hang)."""
        started = self.round_started
        return started is not None and time.monotonic() - started >= timeout and not self.closing

    def restart_pump(self) -> bool:
        """Abandons the stalled pump thread and starts a new one: every running actor is
        attached again over fresh device buffers uploaded from the host's mirror (the stuck
        thread may hold the old buffers and the old lock), so queued messages are kept.
        False (nothing done) if the round came back meanwhile: it then merges as usual."""
        with self.round_lock:  # the round either ended before this, or never merges
            if self.round_started is None:
                return False
            self.generation += 1
            self.round_started = None
        self.lock = threading.Lock()
        self.pump_restarts += 1
        running = [a for a in self.actors if a.running]
        self.shared = {}
        self.thread = None
        for actor in running:
            assert actor.memory is not None
            actor.running = False
            self.attach(actor, actor.memory)
        return True

    def wait_round(self, seen: int, timeout: float) -> None:
        """Waits up to ``timeout`` s for a round after the ``seen``-th to merge its results
        (a receiver's wait: replies reach the host only when a round merges)."""
        with self.merged:
            self.merged.wait_for(lambda: self.rounds_merged != seen, timeout)

    # --- actors ---

    def attach(self, actor: PumpedActor, memory: ActorMemory) -> None:
        """Gives ``actor`` device buffers (shared by array identity, so K2K stays on the device)."""
        self._check_failure(strict=True)  # (no loop starts on a lost device)
        with self.lock:
            actor.memory = memory
            actor.buffers = tuple(self._shared(a).buffer for a in memory.arrays)
            if actor.count is None:
                actor.dispatch = self.device.bind(actor.kernel, actor.buffers)
            else:
                actor.sent_h2k = actor.sent_out = None  # (re)started: upload every instance's words once
                actor.sent_routed = actor.sent_sends = None
                check_group_memory(memory, actor.count)
                actor.dispatch = self.device.bind(actor.kernel, actor.buffers, grid=actor.grid)
            self.device.write(actor.buffer("ctrl"), 0, memory.ctrl.copy())
            # the loop is not running: the host's copy of the state is the truth (a restart may
            # have put the initial state back)
            self.device.write(actor.buffer("state"), 0, memory.state.copy())
            actor.running = True
            actor.left.clear()
            if actor not in self.actors:
                self.actors.append(actor)
            self.actors = upstream_first(self.actors)
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._pump, args=(self.generation,), name="ringkernel-actor-pump", daemon=True
                )
                self.thread.start()
        self.event.set()

    def _shared(self, array: np.ndarray) -> _Shared:
        entry = self.shared.get(id(array))
        if entry is None or entry.array is not array:
            tail = int(array[L.Q_TAIL]) if array.size >= L.QUEUE_HEADER_WORDS else 0
            fence()
            data = array.copy()
            if array.size >= L.QUEUE_HEADER_WORDS:
                data[L.Q_TAIL] = tail
            entry = _Shared(array, self.device.buffer(array.size), tail)
            self.device.write(entry.buffer, 0, data)
            self.shared[id(array)] = entry
        return entry

    def download(self, memories: Sequence[ActorMemory]) -> None:
        """Reads the K2K queues of paused loops from the device into the host arrays: only the
        device holds their slots, and a migration copies the host arrays."""
        with self.lock:
            arrays = {id(m.k2k): m.k2k for m in memories if id(m.k2k) in self.shared}
            reads = [(self.shared[key].buffer, 0, a.size) for key, a in arrays.items()]
            if not reads:
                return
            words = self.device.run([], reads)
        at = 0
        for array in arrays.values():
            array[:] = words[at : at + array.size]
            at += array.size

    def _check_failure(self, strict: bool = False) -> None:
        """Raises the pump's failure; not to a waker (``strict=False``) once a lost device's
        actors are on their way to a fallback."""
        handled = self.device_lost and self.on_device_loss is not None
        if self.failure is not None and (strict or not handled):
            raise RuntimeError(f"the actor pump failed: {self.failure!r}") from self.failure

    # --- the pump ---

    def _pump(self, generation: int) -> None:
        backoff = self.idle
        try:
            while not self.closing and generation == self.generation:
                self.event.clear()
                if self.pump_round(generation):
                    backoff = self.idle
                    continue
                if self.event.wait(self._until_timer(backoff)):
                    backoff = self.idle
                else:
                    backoff = min(backoff * 2, self.keepalive)
        except BaseException as exc:  # surfaced to the user thread by wake/attach/close
            if generation == self.generation:
                lost = getattr(self.device, "is_device_loss", None)
                self.device_lost = bool(lost is not None and lost(exc))
                self.failure = exc
                self.round_started = None  # a failed pump is not a stalled one: it is not restarted
        if generation != self.generation:
            return  # abandoned by restart_pump: the new pump owns the actors
        with self.lock:  # no loop runs without the pump
            for actor in self.actors:
                self._retire(actor)
        with self.merged:  # receivers waiting for a round look again (at their actor's new runtime)
            self.merged.notify_all()
        report = self.on_device_loss
        if self.device_lost and report is not None:
            report(self.failure)

    def _until_timer(self, backoff: float) -> float:
        """``backoff``, or less when the router holds a timer due sooner."""
        router = self.router
        due = None if router is None else router.next_due_us()
        if due is None:
            return backoff
        now_us = physical_now() >> L.HLC_LOGICAL_BITS
        return max(0.0, min(backoff, (due - now_us) / 1e6))

    def pump_round(self, generation: int | None = None) -> bool:
        """One round (upload, dispatch, read back, merge); True if any actor made progress.
        A round of an abandoned ``generation`` (see :meth:`restart_pump`) merges nothing."""
        generation = self.generation if generation is None else generation
        with self.lock:
            if generation != self.generation:
                return False
            actors = [a for a in self.actors if a.running]
            clock = time.monotonic()
            progressed = False
            plans: list[_Plan] = []
            busy_outputs: set[int] = set()
            for actor in actors:
                m = actor.memory
                assert m is not None
                inputs = _inputs if actor.count is None else _group_inputs
                if m.ctrl[L.C["stop"]] or (m.ctrl[L.C["drain"]] and not inputs(m)):
                    self._retire(actor)
                    progressed = True
                    continue
                fed = id(m.k2k) in busy_outputs
                if not (inputs(m) or fed or clock - actor.last_dispatch >= self.keepalive):
                    continue
                if actor.count is None:
                    self._upload(actor)
                    plans.append(_Plan(actor))
                else:
                    plans.append(_Plan(actor, self._upload_group(actor, fed)))
                busy_outputs.add(id(m.out))
                actor.last_dispatch = clock
                actor.dispatches += 1
            if not plans:
                return self._route() or progressed
            reads = [r for p in plans for r in p.reads]
            self.round_started = clock
            before = [_processed(p.actor) for p in plans]
            words = self.device.run([p.actor.dispatch for p in plans], reads)
            with self.round_lock:
                if generation != self.generation:
                    return False  # restart_pump gave up on this round: the new pump redoes it
                self.round_started = None
            took_us = (time.monotonic() - clock) * 1e6
            self.rounds += 1
            at = 0
            for plan in plans:
                at, moved = self._merge_plan(plan, words, at)
                progressed |= moved
            _time_handlers(plans, before, took_us)
        progressed = self._route() or progressed
        with self.merged:  # receivers waiting in wait_round look now
            self.rounds_merged += 1
            self.merged.notify_all()
        return progressed

    def _merge_plan(self, plan: _Plan, words: np.ndarray, at: int) -> tuple[int, bool]:
        """Merges one actor's read-back; the first time its loops are seen delivering sends
        directly, reads all of its memory back once more (pump_routing's module docstring)."""
        actor = plan.actor
        m = actor.memory
        assert m is not None
        merge = self._merge if actor.count is None else self._merge_group
        before = pump_routing.direct_total(m)
        at, moved = merge(plan, words, at)
        if pump_routing.note_direct(actor, before):
            again = _Plan(actor) if actor.count is None else _Plan(actor, np.ones(actor.count, dtype=bool))
            merge(again, self.device.run([], again.reads), 0)
        if actor.direct:
            pump_routing.after_direct_merge(self, actor)
        return at, moved

    def _route(self) -> bool:
        """The router's round between dispatches: what the loops sent goes into ``routed``
        mirrors, uploaded by the next round; True if it moved anything."""
        router = self.router
        return bool(router is not None and router.route())

    def _retire(self, actor: PumpedActor) -> None:
        if actor.memory is not None:
            actor.memory.ctrl[L.C["state"] :: L.CONTROL_WORDS] = L.ACTOR_EXITED  # every instance's
        actor.running = False
        actor.left.set()

    def _upload(self, actor: PumpedActor) -> None:
        m = actor.memory
        ctrl, h2k, out = actor.buffer("ctrl"), actor.buffer("h2k"), actor.buffer("out")
        assert m is not None
        now = physical_now()
        m.ctrl[L.C["now_lo"]], m.ctrl[L.C["now_hi"]] = now & _MASK32, now >> 32
        self.device.write(ctrl, 0, m.ctrl.copy())
        entry = self.shared[id(m.h2k)]
        tail = int(m.h2k[L.Q_TAIL])
        fence()  # acquire: the slots up to ``tail`` are written
        capacity, slot_words = int(m.h2k[L.Q_CAPACITY]), int(m.h2k[L.Q_SLOT_WORDS])
        fresh = (tail - entry.sent_tail) & _MASK32
        for first, count in ring_ranges(entry.sent_tail & (capacity - 1), fresh, capacity):
            lo = L.QUEUE_HEADER_WORDS + first * slot_words
            self.device.write(h2k, lo, m.h2k[lo : lo + count * slot_words].copy())
        line = m.h2k[PRODUCER_LINE].copy()
        line[L.Q_TAIL - PRODUCER_LINE.start] = tail
        self.device.write(h2k, PRODUCER_LINE.start, line)
        entry.sent_tail = tail
        if m.out_to_host:
            self.device.write(out, CONSUMER_LINE.start, m.out[CONSUMER_LINE].copy())
        if pump_routing.talks(m):
            pump_routing.upload(self, actor)

    def _upload_group(self, actor: PumpedActor, fed: bool) -> np.ndarray:
        """A group's host-written words, in one write per run of instances whose words changed
        (see the module docstring); returns which instances may change this round: those
        with input (all of them when an upstream group feeds this one in the same round)."""
        m = actor.memory
        assert m is not None and actor.count is not None
        n = actor.count
        now = physical_now()
        m.ctrl[L.C["now_lo"]], m.ctrl[L.C["now_hi"]] = now & _MASK32, now >> 32
        m.ctrl[L.C["progress"]] = 0
        self.device.write(actor.buffer("ctrl"), 0, m.ctrl.copy())
        queues = m.h2k.reshape(n, -1)
        tails = queues[:, L.Q_TAIL].copy()
        fence()  # acquire: every slot up to each tail is written
        producer = queues[:, PRODUCER_LINE].copy()
        producer[:, L.Q_TAIL - PRODUCER_LINE.start] = tails  # a slot written after the read waits
        sent = actor.sent_h2k
        changed = np.ones(n, dtype=bool) if sent is None else (producer != sent).any(axis=1)
        for first, end in runs_of(changed):
            data = queues[first:end].copy()
            data[:, L.Q_TAIL] = tails[first:end]
            self.device.write(actor.buffer("h2k"), first * queues.shape[1], data.ravel())
        actor.sent_h2k = producer
        if m.out_to_host:
            outs = m.out.reshape(n, -1)
            consumer = outs[:, CONSUMER_LINE].copy()
            sent = actor.sent_out
            changed = np.ones(n, dtype=bool) if sent is None else (consumer != sent).any(axis=1)
            for first, end in runs_of(changed):
                self.device.write(actor.buffer("out"), first * outs.shape[1], outs[first:end].ravel().copy())
            actor.sent_out = consumer
        routed = pump_routing.upload_group(self, actor) if pump_routing.talks(m) else False
        if fed or actor.direct:  # (a direct group's loops may feed any of its instances)
            return np.ones(n, dtype=bool)
        k2k = m.k2k.reshape(n, -1)
        return (tails != queues[:, L.Q_HEAD]) | (k2k[:, L.Q_TAIL] != k2k[:, L.Q_HEAD]) | routed

    def _merge_group(self, plan: _Plan, words: np.ndarray, at: int) -> tuple[int, bool]:
        """A group's read-back merged into the mirror, each run of instances at once (queue
        protocol order: slots before ``tail``, consumer counters before ``head``)."""
        actor = plan.actor
        m = actor.memory
        assert m is not None and actor.count is not None
        n = actor.count
        parts = []
        for _, _, size in plan.reads:
            parts.append(words[at : at + size])
            at += size
        ctrl, state, rest = parts[0], parts[1], iter(parts[2:])
        m.state[:] = state
        fence()  # release: the state before the counters (`processed`) that say it is there
        mirror = m.ctrl.reshape(n, L.CONTROL_WORDS)
        kernel_words = list(GROUP_KERNEL_CTRL_WORDS)
        mirror[:, kernel_words] = ctrl.reshape(n, L.CONTROL_WORDS)[:, kernel_words]
        moved = bool(mirror[0, L.C["progress"]])
        consumer = [L.Q_DEQUEUED, L.Q_DROPS_DONE, L.Q_DROPPED]
        for name in group_queues(m):
            array = getattr(m, name).reshape(n, -1)
            for first, end in plan.runs:
                q, d = array[first:end], next(rest).reshape(end - first, -1)
                if name in pump_routing.TALK_QUEUES:
                    pump_routing.merge_group_queue(name, q, d, actor.direct)
                elif name in ("h2k", "k2k"):
                    q[:, consumer] = d[:, consumer]
                    fence()  # release: a slot is free only after the consumer is done with it
                    q[:, L.Q_HEAD] = d[:, L.Q_HEAD]
                elif m.out_to_host:
                    q[:, L.QUEUE_HEADER_WORDS :] = d[:, L.QUEUE_HEADER_WORDS :]
                    fence()  # release: the slots before the tails that publish them
                    q[:, L.Q_ENQUEUED] = d[:, L.Q_ENQUEUED]
                    q[:, L.Q_TAIL] = d[:, L.Q_TAIL]
                else:
                    q[:] = d  # device-only (a downstream group's k2k): the mirror follows it
        return at, moved

    def _merge(self, plan: _Plan, words: np.ndarray, at: int) -> tuple[int, bool]:
        m = plan.actor.memory
        assert m is not None
        parts = []
        for _, _, n in plan.reads:
            parts.append(words[at : at + n])
            at += n
        ctrl, state, h2k_head, k2k_head, out_head = parts[:5]
        before = int(m.ctrl[L.C["processed"]]), int(m.h2k[L.Q_DROPPED]), int(m.k2k[L.Q_DROPPED])
        m.state[:] = state
        fence()  # release: the state before the counters (`processed`) that say it is there
        for w in KERNEL_CTRL_WORDS:
            m.ctrl[w] = ctrl[w]
        _take_consumer_words(m.h2k, h2k_head)
        m.k2k[: L.QUEUE_HEADER_WORDS] = k2k_head  # device-only: the header, for stats and fill
        if m.out_to_host:
            capacity, slot_words = int(m.out[L.Q_CAPACITY]), int(m.out[L.Q_SLOT_WORDS])
            slots = m.out[L.QUEUE_HEADER_WORDS :].reshape(capacity, slot_words)
            for (first, count), run in zip(plan.out_slots, parts[5:]):
                slots[first : first + count] = run.reshape(count, slot_words)
            fence()  # release: the slots before the tail that publishes them
            m.out[L.Q_ENQUEUED] = out_head[L.Q_ENQUEUED]
            m.out[L.Q_TAIL] = out_head[L.Q_TAIL]
        else:
            if plan.out_slots:  # mirrored for a tracer: slots first, then the header whose tail covers them
                capacity, slot_words = int(m.out[L.Q_CAPACITY]), int(m.out[L.Q_SLOT_WORDS])
                slots = m.out[L.QUEUE_HEADER_WORDS :].reshape(capacity, slot_words)
                for (first, count), run in zip(plan.out_slots, parts[5:]):
                    slots[first : first + count] = run.reshape(count, slot_words)
                fence()
            m.out[: L.QUEUE_HEADER_WORDS] = out_head
        if plan.send_slots or pump_routing.talks(m):
            pump_routing.merge(m, parts[5 + len(plan.out_slots) :], plan.send_slots)
        after = int(m.ctrl[L.C["processed"]]), int(m.h2k[L.Q_DROPPED]), int(m.k2k[L.Q_DROPPED])
        return at, after != before


def _processed(actor: PumpedActor) -> int:
    """Messages the actor's loop (every instance, for a group) has handled so far."""
    m = actor.memory
    assert m is not None
    return int(m.ctrl[L.C["processed"] :: L.CONTROL_WORDS].astype(np.uint64).sum())


def _time_handlers(plans: list[_Plan], before: list[int], took_us: float) -> None:
    """Host timing of a round (WGSL and MSL have no clock): the round's time, dispatch and
    read-back included, shared evenly by the messages its dispatches handled."""
    handled = [max(_processed(p.actor) - b, 0) for p, b in zip(plans, before)]
    total = sum(handled)
    if not total:
        return
    each = took_us / total
    bucket = L.handler_bucket(int(each))
    for plan, n in zip(plans, handled):
        if n:
            plan.actor.handler_us += round(each * n)
            plan.actor.handler_buckets[bucket] += n


def _inputs(m: ActorMemory) -> bool:
    return bool(_fill(m.h2k) or _fill(m.k2k)) or pump_routing.routed_input(m)


def _group_inputs(m: ActorMemory) -> bool:
    """Whether any instance of a group has a message waiting in either input queue."""
    n = m.ctrl.size // L.CONTROL_WORDS
    for queue in (m.h2k, m.k2k):
        q = queue.reshape(n, -1)
        if np.any(q[:, L.Q_TAIL] != q[:, L.Q_HEAD]):
            return True
    return pump_routing.routed_input(m)


def group_queues(m: ActorMemory) -> tuple[str, ...]:
    """The queue arrays a group's round reads back per run of active instances."""
    return GROUP_QUEUES + pump_routing.TALK_QUEUES if pump_routing.talks(m) else GROUP_QUEUES


def check_group_memory(memory: ActorMemory, count: int) -> None:
    """A ``ValueError`` unless every array of ``memory`` holds ``count`` equal regions and
    block 0 says ``count`` instances (what the turn kernel assumes)."""
    if memory.ctrl.size != count * L.CONTROL_WORDS or int(memory.ctrl[L.C["instances"]]) != count:
        raise ValueError(
            f"a group of {count} instances needs {count * L.CONTROL_WORDS} control words with "
            f"ctrl[{L.C['instances']}] = {count}; got {memory.ctrl.size} words, "
            f"instances = {int(memory.ctrl[L.C['instances']])}"
        )
    for name in ("h2k", "k2k", "out"):
        array = getattr(memory, name)
        region = L.QUEUE_HEADER_WORDS + int(array[L.Q_CAPACITY]) * int(array[L.Q_SLOT_WORDS])
        if array.size != count * region:
            raise ValueError(f"the {name} array of a group of {count} must hold {count} equal queues")
    if memory.state.size < count * int(memory.ctrl[L.C["state_stride"]]):
        raise ValueError(f"the state array of a group of {count} is smaller than count * state_stride")


def _fill(queue: np.ndarray) -> int:
    return (int(queue[L.Q_TAIL]) - int(queue[L.Q_HEAD])) & _MASK32


def _take_consumer_words(queue: np.ndarray, header: np.ndarray) -> None:
    """The device consumer's words of an input queue into the host mirror, ``head`` last."""
    for w in (L.Q_DEQUEUED, L.Q_DROPS_DONE, L.Q_DROPPED):
        queue[w] = header[w]
    fence()  # release: the slot is free only after the consumer is done with it
    queue[L.Q_HEAD] = header[L.Q_HEAD]


def upstream_first(actors: list[PumpedActor]) -> list[PumpedActor]:
    """Orders actors so each K2K producer comes before its consumer (a cycle is cut anywhere)."""
    by_out = {id(a.memory.out): a for a in actors if a.memory is not None}
    order: list[PumpedActor] = []
    for actor in actors:
        chain = [actor]
        while True:
            memory = chain[-1].memory
            assert memory is not None
            upstream = by_out.get(id(memory.k2k))
            if upstream is None or upstream in chain or upstream in order:
                break
            chain.append(upstream)
        order += [a for a in reversed(chain) if a not in order]
    return order

"""``system.spawn(Actor, count=N)``: actor groups, admission control and group metrics.

One kernel serves all ``N`` instances of a group (``lower_actor(..., group=True)``);
the group owns the five word arrays of ``docs/layout.md`` ("Actor groups"),
instance ``i``'s control block, state and queues at ``i`` times a fixed stride.
``group[i]`` is an ordinary :class:`~ringkernel.actors.ActorRef` over
instance ``i``'s parts of those arrays, made on first use, so a group of
100,000 costs no Python objects per instance until they are addressed.

Admission (:func:`admit`): ``ActorSystem(max_actors=, max_memory=)`` bound the
actors (a group counts ``N``) and the bytes of actor memory (control blocks,
state, queues); a spawn that does not fit raises :class:`AdmissionError`
before anything is allocated, so nothing is half-spawned and the system stays
usable.  Memory the machine or the device refuses is an ``AdmissionError`` too.

Metrics aggregate per group (``system.metrics()["groups"]``): a label per
instance would make 100,000 time series.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ringkernel import group_io as bulk
from ringkernel.observability import handler_time
from ringkernel.observability.widen import Widener
from ringkernel.ringir import layout as L
from ringkernel.runtime.actor_host import ActorMemory
from ringkernel.runtime.native_queue import Call
from ringkernel.runtime.queues import RingQueue, fence
from ringkernel.supervision import GroupFlags

if TYPE_CHECKING:
    from ringkernel.actors import ActorRef, ActorSystem, ActorType

COUNT_MAX = L.MAX_GROUP_SIZE  # instances per group (2**24): send_to's index bits in a send's `target` word
PRIORITY_RANGE = (-1_000_000, 1_000_000)
QUANTUM_MAX = 2**32 - 1  # a u32 control word; "huge" turns deficit round robin off
# the group-wide words of block 0 (issue 18 design): ``progress`` reuses the old doorbell word
INSTANCES = L.C["instances"]
QUANTUM = L.C["quantum"]
STATE_STRIDE = L.C["state_stride"]
K2K_CAPACITY, K2K_SLOT_WORDS = 2, 8  # an unconnected instance's actor-to-actor queue (as a single actor's)


class AdmissionError(RuntimeError):
    """A spawn does not fit: ``max_actors``, ``max_memory`` or memory the machine or device
    refuses.  Nothing of it was spawned; the system runs on as before."""


def footprint(count: int, capacity: int, in_words: int, out_words: int, state_words: int,
              messaging: tuple[int, int, int] = (2, 8, 2)) -> int:
    """Words of actor memory ``count`` actors with these queues and state take; ``messaging``:
    the slots and slot words of their ``sends`` queues, and the slots of their ``routed``
    queues (whose slots are as large as the input's)."""
    send_capacity, send_words, routed_capacity = messaging
    per = (L.CONTROL_WORDS + state_words + L.queue_words(capacity, in_words)
           + L.queue_words(K2K_CAPACITY, K2K_SLOT_WORDS) + L.queue_words(capacity, out_words)
           + L.queue_words(send_capacity, send_words) + L.queue_words(routed_capacity, in_words))
    return count * per


def admit(system: ActorSystem, what: str, actors: int, words: int) -> None:
    """Raises :class:`AdmissionError` if ``actors`` more actors of ``words`` words do not fit
    ``system``'s ``max_actors``/``max_memory`` (call holding the system's lock)."""
    if system.max_actors is not None and system.admitted_actors + actors > system.max_actors:
        left = system.max_actors - system.admitted_actors
        raise AdmissionError(
            f"{what} needs {actors} actor(s), but ActorSystem(max_actors={system.max_actors}) has "
            f"{left} left ({system.admitted_actors} spawned)"
        )
    need = words * L.WORD
    if system.max_memory is not None and system.admitted_bytes + need > system.max_memory:
        left = system.max_memory - system.admitted_bytes
        raise AdmissionError(
            f"{what} needs {need:,} bytes of actor memory (control blocks, state and queues), but "
            f"ActorSystem(max_memory={system.max_memory:,}) has {left:,} left; use fewer instances "
            "or a smaller queue_capacity"
        )


def _alloc(runtime: Any, words: int, what: str) -> np.ndarray:
    """``words`` zeroed words of ``runtime``'s memory, or :class:`AdmissionError`."""
    limit = getattr(runtime, "max_buffer_words", None)
    if limit is not None and words > limit:
        raise AdmissionError(
            f"{what} needs {words * L.WORD:,} bytes in one buffer, but this device allows at most "
            f"{limit * L.WORD:,}; use fewer instances or a smaller queue_capacity"
        )
    try:
        return runtime.alloc(words)
    except MemoryError:
        raise AdmissionError(f"{what}: the machine refused {words * L.WORD:,} bytes") from None


def _queues(runtime: Any, count: int, capacity: int, slot_words: int, what: str) -> np.ndarray:
    """``count`` empty queues back to back, headers written, in ``runtime``'s memory."""
    words = L.queue_words(capacity, slot_words)
    array = _alloc(runtime, count * words, what)
    rows = array.reshape(count, words)
    rows[:, L.Q_CAPACITY], rows[:, L.Q_MASK], rows[:, L.Q_SLOT_WORDS] = capacity, capacity - 1, slot_words
    return array


class ActorGroup:
    """``count`` instances of one actor served by one kernel: ``len``, ``group[i]`` (an
    :class:`ActorRef`), iteration, :meth:`broadcast` and :attr:`state` (one row per instance)."""

    def __init__(self, system: ActorSystem, actor_type: ActorType, count: int, capacity: int, policy: str,
                 lanes: int, priority: int, first_id: int, runtime: Any = None) -> None:
        from ringkernel.actors import init_control

        self.system = system
        # the runtime its kernel runs on: the system's, until a migration moves it (ringkernel.migration)
        self.runtime = runtime = runtime or system.runtime
        self.type = actor_type
        self.count = count
        self.capacity = capacity
        self.policy = policy
        self.lanes = lanes
        self.priority = priority
        self.first_id = first_id
        self.id = -first_id  # its key in system.hosts (instances use first_id .. first_id + count - 1)
        self.name = f"{actor_type.__name__}[{count}]#{first_id}"
        info = actor_type.info
        self.in_words, self.out_words = slot_sizes(actor_type)
        mode = group_mode(runtime)
        shadowed = actor_type.abortable(mode, group=True)
        self.state_stride = max(info.state.words, 1) * (2 if shadowed else 1)
        name = f"actor group {self.name}"
        self.ctrl = _alloc(runtime, count * L.CONTROL_WORDS, f"the control blocks of {name}")
        blocks = self.ctrl.reshape(count, L.CONTROL_WORDS)
        init_control(blocks, system, actor_type, shadowed, first_id, runtime)
        blocks[0, INSTANCES], blocks[0, QUANTUM] = count, system.quantum
        blocks[0, STATE_STRIDE] = self.state_stride
        self.state_words = _alloc(runtime, count * self.state_stride, f"the state of {name}")
        if info.state.fields:
            view = self.state_view()
            for field, value in info.defaults.items():
                view[field] = value
        self.initial_state = self.state_words.copy()
        # (count, state words) of its latest checkpoint, periodic or explicit (restart_state)
        self.checkpointed_state: np.ndarray | None = None
        self.h2k = _queues(runtime, count, capacity, self.in_words, f"the input queues of {name}")
        k2k_name = f"the actor-to-actor queues of {name}"
        self.k2k = _queues(runtime, count, K2K_CAPACITY, K2K_SLOT_WORDS, k2k_name)
        self.k2h = _queues(runtime, count, capacity, self.out_words, f"the output queues of {name}")
        self.out = self.k2h
        self.k2k_shape = (K2K_CAPACITY, K2K_SLOT_WORDS)
        from ringkernel.actors import message_capacities

        send_capacity, routed_capacity = message_capacities(info, capacity)
        self.sends_shape = (send_capacity, info.send_slot_words)
        self.sends = _queues(runtime, count, *self.sends_shape, f"the sends queues of {name}")
        self.make_routed(routed_capacity)
        self.upstream: ActorGroup | None = None
        self.downstream: ActorGroup | None = None
        self.abandoned = False
        self.host: Any = None
        self.supervision = GroupFlags(count)  # spawn sets its restart policy; the watchdog the flags
        self._refs: dict[int, ActorRef] = {}
        self._lock = threading.RLock()  # instance refs are made, and broadcasts sent, one at a time

    # --- the group ---

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[ActorRef]:
        return (self[i] for i in range(self.count))

    def __getitem__(self, index: int) -> ActorRef:
        """Instance ``index`` (negative counts from the end) as an :class:`ActorRef`."""
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"{self.name} is indexed by an integer, got {index!r}") from None
        if i < 0:
            i += self.count
        if not 0 <= i < self.count:
            raise IndexError(f"{self.name} has instances 0 to {self.count - 1}, not {index}")
        ref = self._refs.get(i)
        if ref is None:
            with self._lock:
                ref = self._refs.get(i) or self._instance(i)
        return ref

    def make_routed(self, capacity: int) -> None:
        """Fresh, empty ``routed`` queues of ``capacity`` slots for every instance: at spawn, or
        when the router connects a port to the group (its kernel must not be running; instance
        refs made before must be pointed at the new queues by the caller)."""
        self.routed_shape = (capacity, self.in_words)
        what = f"the routed queues of {self.name}"
        self.routed = _queues(self.runtime, self.count, *self.routed_shape, what)

    def repoint_routed(self) -> None:
        """Points the instance refs made so far at the current ``routed`` array (after
        :meth:`make_routed` re-made it for a connect)."""
        for ref in self.refs():
            ref.routed = _view(self.routed, ref.index, self.count, *self.routed_shape, "block",
                               f"the routed queue of {ref.name}")

    @property
    def memory(self) -> ActorMemory:
        """What the backend's group kernel runs over."""
        return ActorMemory(self.ctrl, self.state_words, self.h2k, self.k2k, self.out, self.sends, self.routed,
                           out_to_host=self.out is self.k2h)

    def state_view(self) -> np.ndarray:
        """The live state, one structured row per instance (a view: writes reach the instances)."""
        dtype = self.type.info.state.dtype()
        rows = self.state_words.reshape(self.count, self.state_stride)
        if self.state_stride * L.WORD == dtype.itemsize:
            return rows.view(dtype).reshape(self.count)
        return rows.view(np.uint8)[:, : dtype.itemsize].view(dtype).reshape(self.count)

    @property
    def state(self) -> np.ndarray:
        """A snapshot of every instance's state fields: a structured array, one row per instance
        (consistent once the replies are received)."""
        if not self.type.info.state.fields:
            return np.zeros(self.count, dtype=np.dtype([]))
        return self.state_view().copy()

    def counter(self, name: str) -> np.ndarray:
        """One control word of every instance (``"processed"``, ``"errors"``, ``"heartbeat"`` ...)."""
        return self.ctrl.reshape(self.count, L.CONTROL_WORDS)[:, L.C[name]].copy()

    @property
    def processed(self) -> np.ndarray:
        """Messages each instance has handled."""
        return self.counter("processed")

    def inputs_pending(self) -> int:
        """Messages waiting in the input queues of all instances."""
        return sum(int(_fill(q, self.count).sum()) for q in (self.h2k, self.k2k, self.routed))

    @property
    def status(self) -> str:
        """``"stopped"``, ``"failed"`` (every instance failed), ``"restarting"`` or ``"hung"``
        (an instance is: ``group[i].status`` says which), ``"blocked"`` (an instance is in, or
        held back by, a cycle of full queues), ``"running"`` (work queued) or ``"idle"``, for
        the whole group.  A group with some failed instances serves on with the others."""
        flags = self.supervision
        if flags.failed.all():
            return "failed"
        if self.system.stopped or self.host is None or self.host.join(0):
            return "restarting" if flags.restarting.any() else "stopped"
        if flags.restarting.any():
            return "restarting"
        if flags.hung.any():
            return "hung"
        if self.system.routing.blocked(self):
            return "blocked"
        return "running" if self.inputs_pending() else "idle"

    # --- supervision (ringkernel.supervision.SupervisedGroup) ---

    def busy_instances(self) -> np.ndarray:
        """Per instance: input is queued and its replies and sends have room (it should progress)."""
        count = self.count
        pending = (_fill(self.h2k, count) + _fill(self.k2k, count) + _fill(self.routed, count)) > 0
        sends_capacity = self.sends_shape[0]
        room = 2 * _fill(self.sends, count) <= sends_capacity  # else it waits for the router
        out_capacity = int(self.out.reshape(count, -1)[0, L.Q_CAPACITY])
        return pending & room & (_fill(self.out, count) < out_capacity)

    def restart_state(self, index: int) -> np.ndarray:
        """The state words instance ``index`` restarts from: its words in the group's latest
        checkpoint (periodic or explicit) if one was taken, else its initial state (a restored
        group's is the restored state)."""
        stride = self.state_stride
        words = self.initial_state[index * stride : (index + 1) * stride]
        if self.checkpointed_state is None:
            return words
        words = words.copy()
        saved = self.checkpointed_state[index]
        words[: len(saved)] = saved
        return words

    def restart_instance(self, index: int, grace: float) -> bool:
        """Aborts instance ``index``'s message in progress (``abort_at``, reason ``"watchdog"``)
        and pauses the kernel in one go (the other instances' handlers run to their end, and no
        message of ``index`` runs on the old state), puts back its :meth:`restart_state` and
        starts the kernel again, every queued message kept; False if it did not pause within
        ``grace`` s (it then runs on as it was)."""
        system = self.system
        block = self.ctrl.reshape(self.count, L.CONTROL_WORDS)[index]
        with system._lock:
            if system.closed:
                return False
            self.ctrl[L.C["stop"]] = L.STOP_PAUSE  # first: the turn ends right after the abort
            fence()
            block[L.C["abort_at"]] = block[L.C["serial"]]
            fence()
            try:
                system._pause([self], f"restart {self.type.__name__}[{index}] of {self.name}", grace)
            except TimeoutError:
                return False
            stride = self.state_stride
            self.state_words[index * stride : (index + 1) * stride] = self.restart_state(index)
            system._launch(self)
        return True

    # --- messages ---

    def broadcast(self, msg: Any, timeout: float | None = 1.0) -> int:
        """Sends ``msg`` to every instance; returns how many got it (all, or it raises).

        Instances nobody addressed yet get it in one vectorised copy; instances
        with a full queue (or an :class:`ActorRef` in use) get it through
        ``group[i].send(msg, timeout)``, which applies the queue policy
        (:class:`QueueFull` after ``timeout`` s for ``"block"``).
        """
        from ringkernel.actors import check_timeout, encode

        timeout = check_timeout(timeout)
        info = self.type.message_info(msg)
        system = self.system
        system._check_open()
        with self._lock:
            count = self.count
            rows = self.h2k.reshape(count, -1)
            fence()
            fill = _fill(self.h2k, count)
            free = np.ones(count, dtype=bool)
            free[list(self._refs)] = False
            free &= fill < self.capacity
            chosen = np.flatnonzero(free)
            if len(chosen):
                tail = rows[chosen, L.Q_TAIL].astype(np.uint64)
                first = system.hlc.tick_many(len(chosen))
                stamps = np.uint64(first) + np.arange(len(chosen), dtype=np.uint64)
                slots = np.tile(encode(msg, info, self.in_words, (0, 0, 0, 0)), (len(chosen), 1))
                slots[:, L.ENV_TARGET] = self.first_id + chosen
                slots[:, L.ENV_SEQUENCE] = tail.astype(np.uint32)  # nobody else sent: the tail counts
                slots[:, L.ENV_HLC_LO] = (stamps & np.uint64(0xFFFFFFFF)).astype(np.uint32)
                slots[:, L.ENV_HLC_HI] = (stamps >> np.uint64(32)).astype(np.uint32)
                at = L.QUEUE_HEADER_WORDS + (tail.astype(np.int64) & (self.capacity - 1)) * self.in_words
                rows[chosen[:, None], at[:, None] + np.arange(self.in_words)] = slots
                fence()  # the slots before the tails that publish them
                rows[chosen, L.Q_TAIL] = (tail + 1).astype(np.uint32)
                rows[chosen, L.Q_ENQUEUED] += 1
                fence()
                self.wake()
            rest = np.flatnonzero(~free)
        for i in rest:
            self[int(i)].send(msg, timeout)
        return count

    def send_many(self, indices: Any, messages: Any, timeout: float | None = 1.0) -> np.ndarray:
        """Sends ``messages[k]`` to instance ``indices[k]`` for every k; returns the HLC stamps.

        ``indices`` is an integer array (negative counts from the end), ``messages`` a list
        of messages or a structured array of one handled message's ``Msg.dtype``, as long.
        Each instance gets its messages in the order given.  Instances nobody addressed
        are written in vectorised copies, as many as fit per round; instances with an
        :class:`ActorRef` in use take theirs through ``group[i].send_many``.  A full queue
        follows the group's policy (:class:`QueueFull` whose ``sent`` counts the messages
        enqueued; ``"drop_oldest"`` queues go one instance at a time).
        """
        return bulk.send_many(self, indices, messages, timeout)

    def receive_many(
        self, max_count: int = 1024, timeout: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``max_count`` replies from any instances: ``(indices, replies)``, ``replies`` a
        structured array of the reply's ``Msg.dtype`` (envelope in each record's first 24
        bytes) and ``indices[k]`` the instance ``replies[k]`` came from, each instance's oldest
        first.  Waits up to ``timeout`` s for the first; raises like ``ActorRef.receive_many``
        (an instance's aborted message raises ``HandlerAborted`` when nothing precedes it)."""
        return bulk.receive_many(self, max_count, timeout)

    def checkpoint(self, path: Any) -> None:
        """Writes the whole group (every instance's state, queued messages, unreceived replies,
        clock and counters) to checkpoint ``path`` atomically, its turns paused meanwhile;
        ``system.restore(path)`` spawns it again (``docs/actors.md``, "Checkpoints and restore")."""
        self.system.checkpoint(path, [self])

    def wake(self) -> None:
        if self.host is not None:
            self.host.wake()

    # --- shutdown (ActorSystem._drain/_stop treat a group as one loop) ---

    def _pump(self) -> None:
        """Moves the replies of instances whose output queue is full and who have input left
        to their backlog, so a drain does not wait on them; other replies stay in the queues
        (still receivable) and no instance gets an ``ActorRef`` it does not need."""
        if self.out is not self.k2h:
            return
        stuck = (_fill(self.k2h, self.count) >= self.capacity) & (_fill(self.h2k, self.count) > 0)
        for i in np.flatnonzero(stuck):
            self[int(i)]._pump()

    def refs(self) -> list[ActorRef]:
        """The instances addressed so far."""
        with self._lock:
            return list(self._refs.values())

    def __repr__(self) -> str:
        return f"<ActorGroup {self.name}>"

    # --- instances ---

    def _instance(self, i: int) -> ActorRef:
        from ringkernel.actors import ActorRef, InstanceRegions

        system, host = self.system, self.host
        at = i * L.CONTROL_WORDS
        ctrl = self.ctrl[at : at + L.CONTROL_WORDS]
        state = self.state_words[i * self.state_stride : (i + 1) * self.state_stride]
        base = f"{self.type.__name__}[{i}]#{self.first_id + i}"
        h2k = _view(self.h2k, i, self.count, self.capacity, self.in_words, self.policy,
                    f"the input queue of {base}")
        k2k = _view(self.k2k, i, self.count, *self.k2k_shape, "block", f"the actor-to-actor queue of {base}")
        k2h = _view(self.k2h, i, self.count, self.capacity, self.out_words, "block",
                    f"the output queue of {base}")
        out = k2h
        if self.downstream is not None:
            out = _view(self.out, i, self.count, *self.downstream.k2k_shape, "block", f"the queue to {base}")
        bell = getattr(host, "bell", None)
        sends = _view(self.sends, i, self.count, *self.sends_shape, "block", f"the sends queue of {base}")
        routed = _view(self.routed, i, self.count, *self.routed_shape, "block", f"the routed queue of {base}")
        ref = ActorRef(system, self.type, self.first_id + i, self.capacity, self.policy,
                       InstanceRegions(ctrl, state, h2k, k2k, k2h, out, bell, sends, routed), self.runtime)
        ref.name = base
        ref.group, ref.index, ref.lanes = self, i, self.lanes
        ref.sequence = int(h2k.buffer[L.Q_TAIL])  # what broadcasts sent before it existed
        ref.initial_state = self.initial_state[i * self.state_stride : (i + 1) * self.state_stride]
        ref.policy_state = self.supervision.policy_state  # restarts count per group
        make = getattr(host, "instance", None)
        system.hosts[ref.id] = make(i) if make is not None else host
        self._refs[i] = ref
        if self.downstream is not None:
            ref.downstream = self.downstream[i]
            ref.downstream.upstream = ref
        if self.upstream is not None:
            ref.upstream = self.upstream[i]
            ref.upstream.downstream = ref
        return ref


def _fill(queues: np.ndarray, count: int) -> np.ndarray:
    rows = queues.reshape(count, -1)
    return (rows[:, L.Q_TAIL] - rows[:, L.Q_HEAD]).astype(np.uint32)


# RingQueue's native calls (RingQueue._bind) and what each is bound to
_NATIVE_CALLS: dict[str, Callable[[RingQueue], Call]] = {
    "_push": lambda q: Call("rk_queue_push", q.buffer, None, q._push_args, q.doorbell, q.bell),
    "_push_one": lambda q: Call("rk_queue_push", q.buffer, q.stage, q._one_args, q.doorbell, q.bell),
    "_pop": lambda q: Call("rk_queue_pop", q.buffer, None, q._pop_args),
    "_pop_small": lambda q: Call("rk_queue_pop", q.buffer, q._small, q._pop_args),
}


class _InstanceQueue(RingQueue):
    """A :class:`RingQueue` over one instance's part of a group's queue array whose native
    calls are each bound on first use (as ``RingQueue._bind`` binds them all): binding
    costs tens of microseconds per call, and an instance's queues use one or two of them."""

    def _bind(self) -> None:
        for name in _NATIVE_CALLS:
            self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        bind = _NATIVE_CALLS.get(name)
        if bind is None:
            raise AttributeError(name)
        call = self.__dict__[name] = bind(self)
        return call


def _view(array: np.ndarray, i: int, count: int, capacity: int, slot_words: int, policy: str,
          name: str) -> RingQueue:
    """A :class:`RingQueue` over instance ``i``'s queue in a group's queue array."""
    stride = array.size // count
    queue = _InstanceQueue(capacity, slot_words, policy, name=name)
    queue.attach(array[i * stride : (i + 1) * stride])
    return queue


def slot_sizes(actor_type: ActorType) -> tuple[int, int]:
    """Words per input and per output slot of ``actor_type``'s queues."""
    info = actor_type.info
    in_words = max(h.message.slot_words for h in info.handlers.values())
    out_words = max([m.slot_words for h in info.handlers.values() for m in h.replies], default=8)
    return in_words, out_words


def group_mode(runtime: Any) -> str:
    """The mode a runtime lowers group kernels in (``"turn"`` on cpu; else its loop's mode)."""
    return str(getattr(runtime, "group_mode", runtime.mode))


def single_turns(runtime: Any) -> bool:
    """Whether ``runtime`` serves a single actor as a group of one (its scheduler's turns, no
    thread of its own: the cpu runtime's ``single_host``) rather than with a loop of its own."""
    return hasattr(runtime, "single_host")


def single_kernel(runtime: Any) -> tuple[str, bool]:
    """``(mode, group)`` a single actor's kernel is lowered with on ``runtime``."""
    if single_turns(runtime):
        return group_mode(runtime), True
    return str(runtime.mode), False


def as_group_of_one(ctrl: np.ndarray, quantum: int, state_words: int) -> None:
    """Fills block 0's group words of a single actor served as a group of one."""
    ctrl[INSTANCES], ctrl[QUANTUM], ctrl[STATE_STRIDE] = 1, quantum, state_words


def connect(system: ActorSystem, a: Any, b: Any) -> None:
    """``system.connect`` with a group: instance-wise between two groups of equal size
    (``a[i]``'s replies go to ``b[i]``); a clear ``ValueError`` for any other pairing."""
    from ringkernel.actors import check_connectable

    if not (isinstance(a, ActorGroup) and isinstance(b, ActorGroup)):
        parts = []
        for ref in (a, b):
            if isinstance(ref, ActorGroup):
                parts.append(f"group {ref.name}")
            elif getattr(ref, "group", None) is not None:
                parts.append(f"instance {ref.name} of a group")
            else:
                parts.append(f"actor {getattr(ref, 'name', ref)!r}")
        raise ValueError(
            f"cannot connect {parts[0]} to {parts[1]}: connect() joins two single actors, or two "
            "groups of the same size instance by instance (a[i]'s replies go to b[i]); routing "
            "between a group and single actors or single instances needs typed ports and "
            "self.send_to (issue 23)"
        )
    for label, group in (("first", a), ("second", b)):
        if group.system is not system:
            raise TypeError(f"connect() takes groups spawned by this system; the {label} is {group!r}")
    with system._lock:
        system._check_open()
        if a is b:
            raise ValueError("a group cannot be connected to itself")
        if len(a) != len(b):
            raise ValueError(
                f"cannot connect {a.name} to {b.name}: groups connect instance by instance and need "
                f"the same size ({len(a)} != {len(b)})"
            )
        if a.downstream is not None:
            raise ValueError(f"{a.name} already sends its replies to {a.downstream.name}")
        if b.upstream is not None:
            raise ValueError(f"{b.name} already receives from {b.upstream.name}")
        slot_words = check_connectable(a.name, a.type, b.name, b.type)
        what = f"the queues from {a.name} to {b.name}"
        admit(system, f"connect({a.name}, {b.name})", 0,
              b.count * L.queue_words(b.capacity, slot_words))
        if a.runtime is not b.runtime:
            raise ValueError(f"cannot connect {a.name} to {b.name}: they run on different backends "
                             "(a migration moved one); migrate one to the other's backend first")
        queues = _queues(b.runtime, b.count, b.capacity, slot_words, what)
        system._pause((a, b))
        join(a, b, queues, slot_words)
        system.admitted_bytes += queues.size * L.WORD
        system._launch(b)
        system._launch(a)


def join(a: ActorGroup, b: ActorGroup, queues: np.ndarray, slot_words: int) -> None:
    """Makes ``queues`` (``b.count`` K2K queues of ``b.capacity`` slots) ``b``'s K2K input and
    ``a``'s output, instance by instance, for the group and the instances addressed so far
    (neither loop runs: connect, a migration or a restore)."""
    b.k2k, b.k2k_shape = queues, (b.capacity, slot_words)
    a.out = queues
    a.ctrl.reshape(a.count, L.CONTROL_WORDS)[:, L.C["out_target"]] = np.arange(
        b.first_id, b.first_id + b.count, dtype=np.uint32)
    a.downstream, b.upstream = b, a
    for ref in b.refs():
        ref.k2k = _view(queues, ref.index, b.count, b.capacity, slot_words, "block",
                        f"the actor-to-actor queue of {ref.name}")
        ref._ring_on_send()
    for ref in a.refs():
        ref.out = _view(queues, ref.index, a.count, b.capacity, slot_words, "block",
                        f"the queue from {ref.name}")
        ref.downstream = b[ref.index]
        ref.downstream.upstream = ref


def check_checkpointable(system: ActorSystem, chosen: list[ActorGroup]) -> None:
    """Raises unless every group of ``chosen`` can be checkpointed (``system.checkpoint``)."""
    for group in chosen:
        if group.system is not system:
            raise TypeError(f"checkpoint() takes actors and groups spawned by this system, got {group!r}")
        for peer in (group.upstream, group.downstream):
            if peer is not None and peer not in chosen:
                raise ValueError(f"cannot checkpoint {group.name} without {peer.name}: connect() joined "
                                 f"them; checkpoint both (system.checkpoint(path, [a, b]))")


def check_restorable(system: ActorSystem, image: Any, types: Any, path: str) -> ActorType:
    """The class to restore group ``image`` of checkpoint ``path`` as; ``CheckpointError`` (or
    what spawning it here would raise) before anything of the restore is spawned."""
    from ringkernel import durability
    from ringkernel.runtime.queues import POLICIES

    actor_type = durability.resolve(image.as_image(), types)
    durability.check_compatible(image.as_image(), actor_type)
    if image.policy not in POLICIES:
        raise durability.CheckpointError(f"{image.name}: unknown queue policy {image.policy!r}")
    if image.lanes != max(actor_type.info.threads, 1) and actor_type.info.threads > 1:
        raise durability.CheckpointError(f"{image.name}: lanes={image.lanes}, but {actor_type.__name__} "
                                         f"is @rk.actor(threads={actor_type.info.threads})")
    if image.priority and not getattr(system.runtime, "priorities", False):
        raise ValueError(f"{image.name} of {path} has priority={image.priority}, which the "
                         f"{system.backend} backend has no classes for")
    system._build(actor_type, image.lanes, group=True)  # a kernel that does not compile here raises now
    return actor_type


def admit_restore(system: ActorSystem, what: str, singles: list[tuple[ActorType, int]],
                  groups: list[tuple[ActorType, int, int]]) -> None:
    """Raises :class:`AdmissionError` (before anything is spawned) unless every actor of a
    restore fits: ``singles`` as (type, capacity), ``groups`` as (type, count, capacity)."""
    actors, words = 0, 0
    mode, as_group = single_kernel(system.runtime)
    for actor_type, capacity in singles:
        shadowed = actor_type.abortable(mode, as_group)
        words += footprint(1, capacity, *slot_sizes(actor_type),
                           max(actor_type.info.state.words, 1) * (2 if shadowed else 1))
        actors += 1
    for actor_type, count, capacity in groups:
        shadowed = actor_type.abortable(group_mode(system.runtime), group=True)
        words += footprint(count, capacity, *slot_sizes(actor_type),
                           max(actor_type.info.state.words, 1) * (2 if shadowed else 1))
        actors += count
    admit(system, what, actors, words)


def group_metrics(group: ActorGroup, widener: Widener | None = None) -> dict[str, Any]:
    """One group's numbers, summed (or the maximum) over its instances: no per-instance labels.
    With a ``widener`` each instance's 32-bit counters are widened to 64 bits before the sum."""
    count = group.count
    blocks = group.ctrl.reshape(count, L.CONTROL_WORDS)
    h2k = group.h2k.reshape(count, -1)

    def widened(key: str, words: np.ndarray) -> int:
        if widener is None:
            return int(words.astype(np.uint64).sum())
        return int(widener.values((group.id, key), words).sum())

    def total(name: str) -> int:
        return widened(name, blocks[:, L.C[name]])

    depth = _fill(group.h2k, count) + _fill(group.k2k, count) + _fill(group.routed, count)
    out_depth = _fill(group.k2h, count)
    return {
        "group": group.name,
        "type": group.type.__name__,
        "instances": count,
        "priority": group.priority,
        "status": group.status,
        "processed": total("processed"),
        "sent": widened("sent", h2k[:, L.Q_ENQUEUED]),
        "replies": total("sequence"),
        "unhandled": total("errors"),
        "handler_aborted": total("aborted"),
        "clock_refused": total("clock_refused"),
        "queue_depth": int(depth.sum()),
        "queue_depth_max": int(depth.max()),
        "queue_capacity": group.capacity,
        "output_depth": int(out_depth.sum()),
        "dropped": widened("dropped", h2k[:, L.Q_DROPPED]),
        "rejected": widened("rejected", h2k[:, L.Q_REJECTED]),
        "sends_rejected": widened("sends_rejected", group.sends.reshape(count, -1)[:, L.Q_REJECTED]),
        "hung": int(group.supervision.hung.sum()),
        "failed": int(group.supervision.failed.sum()),
        "restarts": group.supervision.policy_state.count,
        "handler_seconds": handler_time.of(group.ctrl, group.host),
    }


__all__ = ["ActorGroup", "AdmissionError", "admit", "footprint", "connect", "group_metrics"]

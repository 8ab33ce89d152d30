"""Messaging between actors, the actor system's side (issue 23; ``docs/actors.md``, "Actors that talk").

A handler sends with ``self.<port>.send(msg)``, ``self.send_to(i, msg)`` and
``self.schedule(delay_us, msg)``; the loop writes those into the actor's ``sends`` queue and
one :class:`~ringkernel.runtime.router.Router` per system moves them into the receivers'
``routed`` queues.  This module owns what the facade does about it:

- :func:`connect` (``system.connect(a, b, port="out")``): checks the port and the receiver's
  handlers (a ``TypeError`` naming both types), makes the receiver's ``routed`` queue full size,
  and wires the router.  Several connects on one port fan out, in connect order.
  Sources and targets: a single actor, one instance of a group (``group[i]``) or a whole
  group; a group feeds a single actor or instance from every instance, and a group of the
  same size instance by instance (``a[i]`` -> ``b[i]``); a group of another size is refused.
- the router's engine: on cpu the native router (:class:`~ringkernel.runtime.cpu.routing.NativeRouter`:
  the scheduler's workers route right after a turn, a timer thread sleeps on a doorbell); on
  runtimes that re-dispatch (wgpu, metal) the pump runs a round of the Python
  :class:`~ringkernel.runtime.router.Router` between dispatches (``runtime.router``); elsewhere
  (cuda) a :class:`~ringkernel.runtime.router.RouterThread` runs its rounds.
- deadlock reports: :class:`SendCycleError` from ``drain``/``shutdown``/``receive`` once the
  router has seen a cycle of full queues (on cpu also one through a reply link, ``connect(a, b)``:
  ``a`` waits for ``b`` while its ``out``, ``b``'s ``k2k``, is full); ``ref.status == "blocked"``
  for the actors in it or held back by it; ``system.health()`` and ``system.metrics()`` name it.
- drain and timers: :meth:`Routing.idle` given the drain's start counts only the timers due by
  then, so a timer that re-schedules itself does not hold a drain until ``drain_timeout``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from ringkernel.ringir import layout as L
from ringkernel.runtime.cpu.routing import NativeRouter, routes_natively
from ringkernel.runtime.hlc import physical_now
from ringkernel.runtime.router import Member, Router, RouterThread


class SendCycleError(RuntimeError):
    """Actors wait for each other in a cycle of full queues: each one's sends wait for the next
    one's full ``routed`` queue while its own ``sends`` is over half full, so none takes a
    message again.  ``cycle``: the actors' names, in wait order."""

    def __init__(self, cycle: tuple[str, ...]) -> None:
        self.cycle = cycle
        path = " -> ".join((*cycle, cycle[0]))
        super().__init__(
            f"deadlock: a cycle of full queues {path}: each one's sends wait for the next one's full "
            "routed queue while its own sends queue is over half full, so no handler can run; "
            "raise queue_capacity, send fewer messages per handled one, or break the cycle"
        )


def owner_of(ref: Any) -> tuple[Any, int | None]:
    """(the single actor or the group that owns ``ref``'s queues, the instance or None)."""
    group = getattr(ref, "group", None)
    if group is not None:
        return group, ref.index
    return ref, None


def _queue_array(owner: Any, name: str) -> np.ndarray | None:
    """``owner``'s whole ``sends``/``routed`` word array (a group's: every instance's)."""
    queue = getattr(owner, name, None)
    if queue is None:
        return None
    return queue if isinstance(queue, np.ndarray) else queue.buffer


def _instance_names(owner: Any) -> list[str]:
    """Each instance's name as the router's members name them (a single actor: its name)."""
    if getattr(owner, "count", None) is None:
        return [owner.name]
    return [f"{owner.type.__name__}[{i}]#{ident}" for i, ident in enumerate(_actor_ids(owner).tolist())]


def _actor_ids(owner: Any) -> np.ndarray:
    count = getattr(owner, "count", None)
    if count is None:
        return np.array([owner.id], dtype=np.int64)
    return np.arange(owner.first_id, owner.first_id + count, dtype=np.int64)


class Routing:
    """The router of one ``ActorSystem``, the members it serves and its engine."""

    def __init__(self, system: Any) -> None:
        self.system = system
        runtime = system.runtime
        self.native = not hasattr(runtime, "router") and routes_natively(runtime)
        self._router: Router | NativeRouter | None = None
        self.members: dict[int, Member] = {}  # by the owner's id in system.hosts
        self.thread: RouterThread | NativeRouter | None = None  # what runs the rounds (cpu: timers)
        self._lock = threading.Lock()

    @property
    def router(self) -> Any:
        """The system's router (made on first use: a cpu system compiles its native one then)."""
        if self._router is None:
            with self._lock:
                if self._router is None:
                    self._router = self._make_router()
        return self._router

    def _make_router(self) -> Router | NativeRouter:
        runtime = self.system.runtime
        if self.native:
            native = NativeRouter(runtime.scheduler())
            edges = weakref.WeakMethod(self._reply_edges)  # its thread must not keep the system alive
            native.reply_edges = lambda: (edges() or list)()
            # a system collected without a shutdown: its timer thread leaves too
            weakref.finalize(self.system, native.stop)
            return native
        # loops that share memory with the host raise `sent`; a pump's mirror does not keep it
        router = Router(watch_sent=not hasattr(runtime, "router"))
        edges = weakref.WeakMethod(self._reply_edges)  # its thread must not keep the system alive
        router.reply_edges = lambda: (edges() or list)()
        return router

    # --- members ---

    def member(self, owner: Any) -> Member:
        """The router's view of ``owner`` (a single actor or a group), added on first use."""
        router = self.router
        with self._lock:
            found = self.members.get(owner.id)
            if found is not None:
                return found
            sends, routed = _queue_array(owner, "sends"), _queue_array(owner, "routed")
            if sends is None or routed is None:
                raise TypeError(f"{owner.name} has no sends/routed queues: its messages cannot be routed")
            host = self.system.hosts[owner.id]
            ids = _actor_ids(owner)
            names = None if getattr(owner, "count", None) is None else _instance_names(owner)
            made = Member(owner.name, sends, routed, ids, wake=host.wake, names=names)
            if isinstance(router, NativeRouter):
                router.add(made, host)  # its workers route after its turns
            else:
                router.add(made)
            self.members[owner.id] = made
            self._start()
            return made

    def talks(self, owner: Any) -> None:
        """After a spawn: an actor that can send (ports, send_to, schedule) is served from now on."""
        if getattr(owner.type.info, "talks", False):
            self.member(owner)

    def refresh(self, owner: Any) -> None:
        """``owner``'s queue arrays were re-made (a bigger ``routed``): the router takes the new ones."""
        found = self.members.get(owner.id)
        if found is not None:
            sends, routed = _queue_array(owner, "sends"), _queue_array(owner, "routed")
            assert sends is not None and routed is not None
            self.router.update(found, sends, routed)

    def _start(self) -> None:
        runtime = self.system.runtime
        if self.native:  # the workers route; the router's timer thread runs from its first member
            self.thread = self.router
            return
        if hasattr(runtime, "router"):  # a pump: it routes between dispatches
            runtime.router = self.router
        elif self.thread is None:
            self.thread = RouterThread(self.router)
            # a system collected without a shutdown: its router thread leaves too
            weakref.finalize(self.system, self.thread.stop)

    def wake(self) -> None:
        """Route now (a drain, a connect); the pump is woken by its own event."""
        if self.thread is not None:
            self.thread.wake()
        else:
            wake = getattr(self.system.runtime, "wake", None)
            if wake is not None:
                wake()

    # --- state ---

    def check(self, ref: Any = None) -> None:
        """Raises :class:`SendCycleError` when the router reports a cycle (that ``ref`` is in or
        held back by, when given); ``RuntimeError`` if the router failed."""
        if self.thread is not None and self.thread.failure is not None:
            raise RuntimeError(f"the message router failed: {self.thread.failure!r}") from self.thread.failure
        if self._router is None:
            return
        cycle = self._router.cycle
        if cycle is None or (ref is not None and not self.blocked(ref)):
            return
        raise SendCycleError(cycle)

    def blocked(self, ref: Any) -> bool:
        """Whether ``ref`` (an actor, an instance or a group) is in the reported cycle or waits
        behind it."""
        if not self.members or self.router.cycle is None:
            return False
        names = self.router.blocked_names() | set(self.router.cycle)
        owner, index = owner_of(ref)
        mine = _instance_names(owner)  # (a cycle through reply links may name an actor that never sends)
        if index is not None:
            return mine[index] in names
        return any(name in names for name in mine)

    @staticmethod
    def now_us() -> int:
        """The wall clock in physical µs of the HLC epoch (timers' due times)."""
        return physical_now() >> L.HLC_LOGICAL_BITS

    def idle(self, since_us: int | None = None) -> bool:
        """Nothing in any ``sends`` queue, nothing in any ``routed`` queue, and no timer held
        (``since_us``: none due by then, the drain's start; a later one does not count)."""
        if not self.members:
            return True
        router = self.router
        if isinstance(router, NativeRouter):
            pending = router.pending(since_us)
        else:
            pending = router.pending() - router.timers_pending
            due = router.next_due_us()
            pending += due is not None and (since_us is None or due <= since_us)
        if pending:
            return False
        return not any(int(m.rq.fill().sum()) for m in list(self.members.values()))

    def routes_to(self, ref: Any) -> bool:
        """Whether the router serves ``ref``'s queues (it talks, or a port is connected to it)."""
        return owner_of(ref)[0].id in self.members

    def routed_pending(self, owner: Any) -> int:
        """Messages the router delivered to ``owner`` that its loop has not taken yet."""
        member = self.members.get(owner.id)
        return 0 if member is None else int(member.rq.fill().sum())

    def metrics(self) -> dict[str, Any]:
        """``system.metrics()["routing"]``: the router's counters and the cycle, if any."""
        out: dict[str, Any] = dict(self.router.stats())
        out["cycle"] = list(self.router.cycle) if self.router.cycle else None
        return out

    def _reply_edges(self) -> list[tuple[str, str]]:
        """Reply links that wait now, as the router names instances: ``a`` -> ``b`` for
        ``connect(a, b)`` while ``a``'s ``out`` (``b``'s ``k2k``) is full, so ``a`` takes nothing."""
        edges = []
        for owner in [*self.system.actors, *self.system.groups]:
            down = getattr(owner, "downstream", None)
            out = _queue_array(owner, "out")
            if down is None or out is None:
                continue
            count = getattr(owner, "count", 1)
            header = out.reshape(count, -1)[:, : L.QUEUE_HEADER_WORDS].astype(np.int64)
            full = (header[:, L.Q_TAIL] - header[:, L.Q_HEAD]) & 0xFFFFFFFF >= header[:, L.Q_CAPACITY]
            mine, theirs = _instance_names(owner), _instance_names(down)
            edges += [(mine[i], theirs[i]) for i in np.flatnonzero(full).tolist()]
        return edges

    def close(self, timeout: float = 1.0) -> None:
        """Stops the router thread (shutdown, after the loops have left)."""
        if self.thread is not None:
            self.thread.close(timeout)
        runtime = self.system.runtime
        if self._router is not None and getattr(runtime, "router", None) is self._router:
            runtime.router = None


def sends_rejected(ref: Any) -> int:
    """Sends a handler of ``ref`` made that found its ``sends`` queue full (counted, not written)."""
    owner, index = owner_of(ref)
    sends = _queue_array(owner, "sends")
    if sends is None:
        return 0
    count = getattr(owner, "count", 1)
    header = sends.reshape(count, -1)[:, : L.QUEUE_HEADER_WORDS]
    rows = header if index is None else header[index : index + 1]
    return int(rows[:, L.Q_REJECTED].astype(np.int64).sum())


def connect(system: Any, a: Any, b: Any, port: str) -> None:
    """``system.connect(a, b, port=...)``: see the module docstring."""
    from ringkernel.actors import ActorRef
    from ringkernel.groups import ActorGroup

    if not isinstance(port, str) or not port.isidentifier():
        raise TypeError(f"port must be the name of a port attribute such as 'out', got {port!r}")
    for label, ref in (("first", a), ("second", b)):
        if not isinstance(ref, (ActorRef, ActorGroup)) or ref.system is not system:
            raise TypeError(f"connect() takes actors, instances or groups spawned by this system; "
                            f"the {label} is {ref!r}")
    src, src_index = owner_of(a)
    dst, dst_index = owner_of(b)
    ports = dict(getattr(src.type, "ports", None) or {})
    if port not in ports:
        have = ", ".join(ports) or "none"
        raise ValueError(f"{src.type.__name__} has no port {port!r} (its ports: {have}); declare it "
                         f"on the class, e.g. `{port}: rk.Port[Msg]`")
    message = ports[port]
    handled = dst.type.handlers
    if message not in handled:
        names = ", ".join(m.__name__ for m in handled)
        raise TypeError(f"cannot connect {a.name}.{port} to {b.name}: the port sends {message.__name__}, "
                        f"and {dst.type.__name__} has no handler for it (it handles {names})")
    number = src.type.info.ports[port].number
    count_a = 1 if src_index is not None else getattr(src, "count", 1)
    count_b = 1 if dst_index is not None else getattr(dst, "count", 1)
    if count_b > 1 and count_a != count_b:
        raise ValueError(
            f"cannot connect {a.name}.{port} to the group {b.name} of {count_b}: a group receives "
            f"instance by instance from a group of the same size (a[i] -> b[i]), not from {count_a} "
            f"sender(s); connect to one instance ({dst.name}[i]) instead"
        )
    routing: Routing = system.routing
    with system._lock:
        system._check_open()
        _full_size_routed(system, dst)
        source, target = routing.member(src), routing.member(dst)
        routing.router.connect(source, number, target, src_index, dst_index)
    routing.wake()


def _full_size_routed(system: Any, owner: Any) -> None:
    """A receiver's ``routed`` queue gets its spawn's capacity (it starts with two slots when
    nothing routes to it; admitted like a spawn's memory): its loop pauses while the queue is
    re-made, and what was in the old one moves to the new one."""
    from ringkernel import groups

    old = _queue_array(owner, "routed")
    assert old is not None
    count = getattr(owner, "count", 1)
    capacity = int(old[L.Q_CAPACITY])
    if capacity >= owner.capacity:
        return
    slot_words = int(old[L.Q_SLOT_WORDS])
    words = count * (L.queue_words(owner.capacity, slot_words) - L.queue_words(capacity, slot_words))
    groups.admit(system, f"connect(..., {owner.name}, port=...)", 0, words)
    system._pause((owner,))
    with system.routing.router.lock:  # no round writes into the old queue meanwhile
        waiting = _messages(old, count)
        owner.make_routed(owner.capacity)
        new = _queue_array(owner, "routed")
        assert new is not None
        _put_back(new, count, waiting)
        repoint = getattr(owner, "repoint_routed", None)  # a group: its instance refs' views
        if repoint is not None:
            repoint()
        system.routing.refresh(owner)
    system.admitted_bytes += words * L.WORD
    system._launch(owner)


def _messages(array: np.ndarray, count: int) -> list[np.ndarray]:
    """The messages waiting in each of ``count`` queues of ``array``, oldest first."""
    out = []
    for region in array.reshape(count, -1):
        capacity, slot_words = int(region[L.Q_CAPACITY]), int(region[L.Q_SLOT_WORDS])
        head, tail = int(region[L.Q_HEAD]), int(region[L.Q_TAIL])
        slots = region[L.QUEUE_HEADER_WORDS :].reshape(capacity, slot_words)
        out.append(np.array([slots[i % capacity] for i in range(head, tail)], dtype=np.uint32))
    return out


def _put_back(array: np.ndarray, count: int, waiting: list[np.ndarray]) -> None:
    for region, rows in zip(array.reshape(count, -1), waiting, strict=True):
        if len(rows):
            slot_words = int(region[L.Q_SLOT_WORDS])
            region[L.QUEUE_HEADER_WORDS : L.QUEUE_HEADER_WORDS + rows.size] = rows.reshape(-1)[: rows.size]
            assert rows.shape[1] == slot_words
            region[L.Q_TAIL] = region[L.Q_ENQUEUED] = len(rows)


__all__ = ["Routing", "SendCycleError", "connect", "owner_of", "sends_rejected"]

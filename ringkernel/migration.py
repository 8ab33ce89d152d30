"""Live migration of actors between backends, and the device-loss fallback.

An actor's whole self is words whose layout is the same on every backend
(``docs/layout.md``): control block, state and queues.  So moving a live actor
from one runtime to another is: hold its senders (they wait on its send lock,
they never see an error), stop its loop between two messages, copy those words
verbatim into memory of the other runtime, start the loop there.  Queued
messages keep their order and their sequence numbers, nothing is copied twice
(the old loop never runs again), and the :class:`~ringkernel.ActorRef` and
:class:`~ringkernel.ActorGroup` objects stay the ones users hold: only what
they point at changes.

Actors joined by ``connect`` (a device-side K2K queue) move together, as one
chain: a K2K queue lives in one runtime's memory.  Port connections
(``connect(port=)``) need nothing: the router moves their messages on the
host, and it is told the moved actor's new queues.

Device loss: a pump runtime (wgpu) whose device fails stops dispatching; its
host arrays are the *mirror* of the device as of the last round that merged
(``runtime/actor_pump.py``).  With ``ActorSystem(fallback="cpu")`` every
actor of that runtime migrates from the mirror.  What the dispatch in flight
did is lost with the device, but nothing it consumed is: its input queue
heads were never merged back, so those messages are delivered again; its
replies and sends were never merged either, so each is produced once, by the
new loop (``docs/operations.md``, "Runbook: device loss").
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ringkernel.ringir import layout as L
from ringkernel.runtime.actor_host import _RUNTIMES, ActorRuntime, open_runtime
from ringkernel.runtime.queues import fence

if TYPE_CHECKING:
    from ringkernel.actors import ActorRef, ActorSystem
    from ringkernel.groups import ActorGroup

log = logging.getLogger("ringkernel.migration")

# control-block words that are the actor's own (a migration carries them); the others are
# the runtime's (budget, idle_ns, ...) and spawn sets them for the new one
CARRIED_CTRL = (
    "processed", "errors", "sequence", "last_bad_type", "clock_refused", "aborted", "last_abort",
    "hlc_lo", "hlc_hi", "out_target",
)
QUEUES = ("h2k", "k2k", "k2h", "sends", "routed")


class MigrationError(RuntimeError):
    """An actor that cannot migrate (it failed, its system is shut down, ...); nothing moved."""


class Moving(Exception):  # noqa: N818 (a signal between a sender and a migration, never seen by users)
    """Raised into a send waiting for room in a full queue when a migration needs its send
    lock (the loop may be gone with its device): the send lets go and is made again after."""


class DeviceLostWarning(RuntimeWarning):
    """A backend's device failed; its actors migrated to the system's fallback backend."""


@dataclass
class Migration:
    """What one migration did: ``pause_s`` is how long the senders waited."""

    actors: list[str]
    source: str
    target: str
    pause_s: float
    reason: str  # "request" or "device_loss"


@dataclass
class Migrations:
    """A system's migrations: the runtimes it opened, its fallback and what happened."""

    system: Any
    fallback: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # reason -> migrations
    history: list[Migration] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # "<backend>: <error>" of each device loss
    errors: list[BaseException] = field(default_factory=list)  # a fallback that failed
    _done: threading.Condition = field(default_factory=threading.Condition)
    _busy: int = 0

    def __post_init__(self) -> None:
        check_fallback(self.fallback, self.system.backend)
        if self.fallback is not None:
            self._watch(self.system.runtime, self.system.backend)

    # --- runtimes ---

    def runtime(self, backend: str) -> ActorRuntime:
        """The system's runtime on ``backend``, opened on first use (``BackendUnavailable``
        says why it cannot run here)."""
        system = self.system
        if not isinstance(backend, str):
            raise TypeError(f"backend must be a name such as 'cpu' or 'wgpu', got {backend!r}")
        found = system.runtimes.get(backend)
        if found is None:
            chosen = {} if system.workers is None else {"workers": system.workers}
            found = open_runtime(backend, system.idle_ns, **chosen)
            system.runtimes[backend] = found
            if self.fallback is not None and backend != self.fallback:
                self._watch(found, backend)
        return found

    def _watch(self, runtime: ActorRuntime, backend: str) -> None:
        """Asks a runtime that can lose its device to report it (instead of failing its callers)."""
        if hasattr(runtime, "on_device_loss"):
            runtime.on_device_loss = lambda exc: self._device_lost(runtime, backend, exc)

    def backend_of(self, runtime: ActorRuntime) -> str:
        return next(name for name, r in self.system.runtimes.items() if r is runtime)

    # --- migrate ---

    def migrate(self, target: Any, backend: str, reason: str = "request") -> Migration:
        """``system.migrate``: moves ``target`` (and the actors ``connect`` joined to it) to ``backend``."""
        from ringkernel.actors import ActorRef
        from ringkernel.groups import ActorGroup

        system = self.system
        if not isinstance(target, (ActorRef, ActorGroup)) or target.system is not system:
            raise TypeError(f"migrate() takes an actor or a group spawned by this system, got {target!r}")
        if isinstance(target, ActorRef) and target.group is not None:
            raise ValueError(f"{target.name} is an instance of {target.group.name}: migrate the whole group")
        runtime = self.runtime(backend)
        failure = getattr(runtime, "failure", None)
        if failure is not None:
            raise MigrationError(f"cannot migrate to {backend}: its runtime has failed ({failure!r})")
        with system._lock:
            system._check_open()
            units = chain(target)
            for unit in units:
                if getattr(unit, "failed", False) or unit.abandoned:
                    raise MigrationError(f"cannot migrate {unit.name}: it has {unit.status}")
            source = units[0].runtime
            if all(unit.runtime is runtime for unit in units):
                return Migration([u.name for u in units], backend, backend, 0.0, reason)
            # compiled, and hosts made (pipelines, JIT), before the pause: an error moves nothing
            hosts = [host_for(system, unit, runtime) for unit in units]
            lost = getattr(source, "failure", None) is not None
            with _moving(units), _held(units, "send_lock"):
                started = time.perf_counter()
                if not lost:
                    system._pause(units, what=f"migrate to {backend}")
                    download = getattr(source, "download", None)
                    if download is not None:  # device-only words (K2K slots) to the host first
                        download([u.memory for u in units])
                with system.routing.router.lock, _held(units, "receive_lock"):
                    held = [move(system, u, runtime, host) for u, host in zip(units, hosts, strict=True)]
                    rewire(units, held)
                for unit in reversed(units):  # downstream first, as connect starts them
                    system._launch(unit)
                pause = time.perf_counter() - started
            self._use_router_thread(runtime, source)
        for unit in units:
            unit.wake()
        system.routing.wake()
        done = Migration([u.name for u in units], self.backend_of(source), backend, pause, reason)
        with self._done:
            self.counts[reason] = self.counts.get(reason, 0) + 1
            self.history = [*self.history[-99:], done]
        return done

    def _use_router_thread(self, runtime: ActorRuntime, source: ActorRuntime) -> None:
        """Once actors live on two runtimes the router runs on a thread of its own (a pump routes
        only its own rounds) and looks at every member (a pump's mirror keeps no ``sent`` word)."""
        from ringkernel.runtime.router import RouterThread

        routing = self.system.routing
        router = routing.router
        if routing.native:  # the workers route the cpu's turns; a pump routes the rest between rounds
            for r in (runtime, source):
                if hasattr(r, "router"):
                    r.router = router  # noqa: B010 (a pump's attribute, not every runtime's)
            return
        router.watch_sent = False
        for r in (runtime, source):
            if getattr(r, "router", None) is router:
                setattr(r, "router", None)  # noqa: B010 (a pump's attribute, not every runtime's)
        if routing.thread is None and routing.members:  # (nothing to route yet: Routing starts one)
            routing.thread = RouterThread(router)

    # --- device loss ---

    def _device_lost(self, runtime: ActorRuntime, backend: str, exc: BaseException) -> None:
        """Called by the failed runtime's pump thread: the actors move on another thread."""
        with self._done:
            self._busy += 1
            self.lost.append(f"{backend}: {exc}")
        threading.Thread(target=self._fall_back, args=(runtime, backend, exc),
                         name="ringkernel-fallback", daemon=True).start()

    def _fall_back(self, runtime: ActorRuntime, backend: str, exc: BaseException) -> None:
        system = self.system
        try:
            text = (f"the {backend} device failed ({exc}); its actors migrate to the fallback "
                    f"backend {self.fallback!r}")
            log.warning(text)
            warnings.warn(text, DeviceLostWarning, stacklevel=1)
            with system._lock:
                units = [u for u in [*system.actors, *system.groups] if u.runtime is runtime]
                if system.runtime is runtime:  # new spawns go to the fallback from now on
                    assert self.fallback is not None
                    system.runtime, system.backend = self.runtime(self.fallback), self.fallback
            for unit in _distinct_chains(units):
                if system.closed:
                    break
                assert self.fallback is not None
                self.migrate(unit, self.fallback, reason="device_loss")
        except BaseException as error:  # reported by health() and metrics(); the loss is logged
            log.exception("fallback after device loss failed")
            self.errors.append(error)
        finally:
            with self._done:
                self._busy -= 1
                self._done.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until no fallback migration is under way; True if none is."""
        with self._done:
            return self._done.wait_for(lambda: self._busy == 0, timeout)

    # --- reports ---

    def metrics(self) -> dict[str, Any]:
        """``system.metrics()["migrations"]``: totals by reason (``ringkernel_migrations_total``),
        the last pause and the device losses."""
        last = self.history[-1] if self.history else None
        return {
            "total": dict(self.counts),
            "last_pause_s": None if last is None else last.pause_s,
            "device_losses": list(self.lost),
            "fallback": self.fallback,
            "fallback_errors": [repr(e) for e in self.errors],
        }


    def families(self) -> Iterator[Any]:
        """The Prometheus family ``ringkernel_migrations_total{reason=}`` (``ringkernel.observability``)."""
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily("ringkernel_migrations", "Actor migrations between backends.",
                                     labels=["reason"])
        for reason in sorted({"request", "device_loss", *self.counts}):
            family.add_metric([reason], self.counts.get(reason, 0))
        yield family


def check_fallback(fallback: Any, backend: str) -> None:
    """``ValueError`` unless ``fallback`` is None or the name of a backend other than ``backend``."""
    if fallback is None:
        return
    if not isinstance(fallback, str) or fallback not in _RUNTIMES:
        names = ", ".join(_RUNTIMES)
        raise ValueError(f"fallback must be a backend name ({names}) or None, got {fallback!r}")
    if fallback == backend:
        raise ValueError(f"fallback={fallback!r} is the system's own backend: "
                         "name another one, e.g. ActorSystem('wgpu', fallback='cpu')")


def chain(target: Any) -> list[Any]:
    """``target`` and every actor joined to it by ``connect`` (K2K), upstream first."""
    first = target
    seen = {id(first)}
    while first.upstream is not None and id(first.upstream) not in seen:
        first = first.upstream
        seen.add(id(first))
    out = [first]
    while out[-1].downstream is not None and out[-1].downstream not in out:
        out.append(out[-1].downstream)
    return out


def _distinct_chains(units: list[Any]) -> list[Any]:
    out: list[Any] = []
    covered: set[int] = set()
    for unit in units:
        if id(unit) not in covered:
            covered.update(id(u) for u in chain(unit))
            out.append(unit)
    return out


def _refs(units: list[Any]) -> list[Any]:
    return [r for u in units for r in (u.refs() if hasattr(u, "refs") else [u])]


@contextlib.contextmanager
def _moving(units: list[Any]) -> Iterator[None]:
    """Marks the actors of ``units`` as moving: a send waiting for room lets go of its lock."""
    refs = _refs(units)
    for ref in refs:
        ref.moving = True
    try:
        yield
    finally:
        for ref in refs:
            ref.moving = False


def wait_moved(ref: Any, timeout: float = 60.0) -> None:
    """Waits (a sender that made way) until ``ref``'s migration is over."""
    deadline = time.monotonic() + timeout
    while ref.moving and time.monotonic() < deadline:
        time.sleep(0.0005)


@contextlib.contextmanager
def _held(units: list[Any], lock: str) -> Iterator[None]:
    """Holds ``lock`` ("send_lock": senders wait, a group's broadcasts too; "receive_lock":
    receivers) of every actor of ``units``."""
    with contextlib.ExitStack() as stack:
        for unit in units:
            if hasattr(unit, "refs"):
                if lock == "send_lock":
                    stack.enter_context(unit._lock)
                refs = unit.refs()
            else:
                refs = [unit]
            for ref in refs:
                stack.enter_context(getattr(ref, lock))
        yield


def host_for(system: ActorSystem, unit: Any, runtime: ActorRuntime) -> Any:
    """A host on ``runtime`` for the loop kernel of ``unit`` (an actor or a group)."""
    from ringkernel import groups

    if hasattr(unit, "refs"):
        build = system._build(unit.type, unit.lanes, group=True, runtime=runtime)
        extra = {"priority": unit.priority} if unit.priority else {}
        return runtime.group_host(build, unit.lanes, unit.count, **extra)
    build = system._build(unit.type, unit.lanes, group=groups.single_kernel(runtime)[1], runtime=runtime)
    if groups.single_turns(runtime):
        return runtime.single_host(build, unit.lanes)  # type: ignore[attr-defined]
    return runtime.host(build, unit.lanes)


def move(system: ActorSystem, unit: Any, runtime: ActorRuntime, host: Any) -> np.ndarray | None:
    """Re-makes ``unit``'s memory on ``runtime`` with the same words (its loop has left); returns
    its old K2K queue words, which :func:`rewire` puts back once the chain moved."""
    fence()
    if hasattr(unit, "refs"):
        return _move_group(system, unit, runtime, host)
    return _move_actor(system, unit, runtime, host)


def _copy_ctrl(new: np.ndarray, old: np.ndarray, count: int) -> None:
    words = [L.C[k] for k in CARRIED_CTRL]
    new.reshape(count, L.CONTROL_WORDS)[:, words] = old.reshape(count, L.CONTROL_WORDS)[:, words]


def _move_actor(system: ActorSystem, ref: ActorRef, runtime: ActorRuntime, host: Any) -> np.ndarray:
    from ringkernel import groups

    old = {name: getattr(ref, name).buffer.copy() for name in QUEUES}
    old_ctrl, old_state, old_initial = ref.ctrl.copy(), ref.state_words.copy(), ref.initial_state
    routed_capacity = ref.routed.capacity
    in_words, out_words = groups.slot_sizes(ref.type)
    ref.runtime = runtime
    ref._bell = None
    ref._allocate(runtime, ref.capacity, ref.h2k.policy, in_words, out_words)
    if routed_capacity != ref.routed.capacity:
        ref.make_routed(routed_capacity)
    ref.out = ref.k2h
    _copy_ctrl(ref.ctrl, old_ctrl, 1)
    words = ref.type.info.state.words
    ref.state_words[:words] = old_state[:words]
    initial = np.zeros_like(ref.state_words)
    initial[: min(len(initial), len(old_initial))] = old_initial[: len(initial)]
    ref.initial_state = initial
    for name in ("h2k", "k2h", "sends", "routed"):
        getattr(ref, name).buffer[:] = old[name]
    if groups.single_turns(runtime):  # served by the scheduler as a group of one (as spawn does)
        groups.as_group_of_one(ref.ctrl, system.quantum, ref.state_words.size)
        ref._bell = host.bell
        ref._ring_on_send()
    _replace_host(system, ref, host)
    _rejoin_router(system, ref, host)
    return old["k2k"]  # a connected K2K queue is re-made by rewire()


def _move_group(system: ActorSystem, group: ActorGroup, runtime: ActorRuntime, host: Any) -> np.ndarray:
    from ringkernel.groups import ActorGroup

    old_k2k, k2k_shape = group.k2k.copy(), group.k2k_shape  # (connect() made it: rewire re-makes it)

    fresh = ActorGroup(system, group.type, group.count, group.capacity, group.policy, group.lanes,
                       group.priority, group.first_id, runtime)
    if fresh.routed_shape != group.routed_shape:
        fresh.make_routed(group.routed_shape[0])
    _copy_ctrl(fresh.ctrl, group.ctrl, group.count)
    words = group.type.info.state.words
    new_state = fresh.state_words.reshape(group.count, fresh.state_stride)
    new_state[:, :words] = group.state_words.reshape(group.count, group.state_stride)[:, :words]
    new_initial = fresh.initial_state.reshape(group.count, fresh.state_stride)  # (a restored group's)
    new_initial[:, :words] = group.initial_state.reshape(group.count, group.state_stride)[:, :words]
    for name in ("h2k", "k2h", "sends", "routed"):
        getattr(fresh, name)[:] = getattr(group, name)
    if group.upstream is None:
        fresh.k2k[:] = group.k2k
    fresh.host = host
    refs = dict(group._refs)
    for key in ("runtime", "ctrl", "state_words", "state_stride", "initial_state", "h2k", "k2k", "k2h",
                "out", "sends", "routed", "routed_shape", "host", "k2k_shape"):
        setattr(group, key, getattr(fresh, key))
    _replace_host(system, group, group.host)
    for i, ref in refs.items():
        made = group._instance(i)  # a ref over the new regions; the user's ref takes them over
        for key in ("runtime", "ctrl", "state_words", "h2k", "k2k", "k2h", "out", "sends", "routed",
                    "_bell", "initial_state"):
            setattr(ref, key, getattr(made, key))
        ref._ring_on_send()
        group._refs[i] = ref
    _rejoin_router(system, group, group.host)
    group.k2k_shape = k2k_shape  # (the queues themselves: rewire)
    return old_k2k


def _replace_host(system: ActorSystem, unit: Any, host: Any) -> None:
    old = system.hosts.get(unit.id)
    system.hosts[unit.id] = host
    system._loops[:] = [(unit.ctrl, host) if h is old else (c, h) for c, h in system._loops]


def _rejoin_router(system: ActorSystem, unit: Any, host: Any) -> None:
    member = system.routing.members.get(unit.id)
    if member is not None:
        member.wake = host.wake
        system.routing.refresh(unit)


def rewire(units: list[Any], held: list[np.ndarray | None]) -> None:
    """Re-makes the K2K queue of each connected pair of a moved chain, with what it held."""
    from ringkernel import groups
    from ringkernel.actors import _queue

    words = {id(u): w for u, w in zip(units, held, strict=True)}
    for a in units:
        b = a.downstream
        old = words.get(id(b)) if b is not None else None
        if old is None:
            continue
        if hasattr(b, "refs"):  # two groups, instance by instance
            capacity, slot_words = b.k2k_shape
            queues = groups._queues(b.runtime, b.count, capacity, slot_words,
                                    f"the queues from {a.name} to {b.name}")
            queues[:] = old
            groups.join(a, b, queues, slot_words)
            continue
        slot_words = int(old[L.Q_SLOT_WORDS])
        b.k2k = _queue(b.runtime, b.capacity, slot_words, name=f"the queue from {a.name} to {b.name}")
        b.k2k.buffer[:] = old
        b._ring_on_send()
        a.out = b.k2k
        a.ctrl[L.C["out_target"]] = b.id


def close_runtime(runtime: ActorRuntime, timeout: float) -> bool:
    """Closes a runtime at shutdown; a lost device's failure is not raised again there."""
    if getattr(runtime, "failure", None) is not None and getattr(runtime, "on_device_loss", None):
        with contextlib.suppress(Exception):
            runtime.close(timeout)
        return True
    return runtime.close(timeout)


__all__ = ["DeviceLostWarning", "Migration", "MigrationError", "Migrations", "chain"]

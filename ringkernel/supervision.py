"""Supervision: the watchdog that finds hung actors, and the restart policy applied to them.

Today's loops cannot see a runaway handler from the inside: the budget
checks (``ringkernel.ringir.passes.budget``) cut one short only when asked.
The :class:`Watchdog` is the one that asks.  A thread per ``ActorSystem``
looks at every actor about four times per ``watchdog_timeout``: an actor
with work queued and room for its replies that has finished no message for
``watchdog_timeout`` is *hung*.  The watchdog aborts the message in
progress (``ctrl.abort_at``, the handler's checks see it and roll back),
then applies the actor's restart policy (:class:`RestartPolicy`).

It speaks only to :class:`Supervised` (what an ``ActorRef`` offers) and to
:class:`SupervisedGroup` (what an ``ActorGroup`` offers).  A group's
instances are watched all at once, with numpy over the group's control
blocks, so a group of 100,000 costs no Python object per instance: a hung
instance's message is aborted through its own ``abort_at`` (the group-wide
``stop`` cannot single one out), and a restart pauses the group's kernel
(``STOP_PAUSE``: the other instances' handlers run to their end), puts back
that instance's state and starts the kernel again, every queued message kept.
A group's restarts count against one :class:`RestartPolicy` for the whole
group (a storm is a storm whichever instance it hits); :class:`GroupFlags`
holds each instance's ``hung``/``failed``/``restarting`` flags, which
``group[i].status`` reads.  A host pump (wgpu, metal) that stalls inside a
round is restarted (:class:`SupervisedPump`).  ``docs/operations.md`` is the
runbook.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ringkernel.ringir import layout as L
from ringkernel.runtime.queues import fence

RESTART_POLICIES = ("never", "on_failure")


@dataclass
class RestartPolicy:
    """``restart`` and at most ``max_restarts`` restarts within any ``window`` seconds.

    A restart past that is a *restart storm*: the actor is failed instead.
    """

    restart: str = "never"
    max_restarts: int = 3
    window: float = 60.0
    times: deque[float] = field(default_factory=deque)  # monotonic times of recent restarts
    count: int = 0  # restarts so far

    def allows(self, now: float) -> bool:
        """Whether one more restart fits the policy at ``now`` (it then counts)."""
        if self.restart != "on_failure":
            return False
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()
        if len(self.times) >= self.max_restarts:
            return False
        self.times.append(now)
        self.count += 1
        return True


class Supervised(Protocol):
    """What the watchdog needs of one actor."""

    name: str
    ctrl: np.ndarray
    policy_state: RestartPolicy
    hung: bool
    failed: bool
    restarting: bool

    def busy(self) -> bool:
        """Work is queued and its replies have room: it should make progress."""

    def restart_from_initial(self, grace: float) -> bool:
        """Aborts the message in progress and stops the loop (the stop first, so the loop
        leaves right after the abort), puts back the state a restart starts from
        (``restart_state``), starts it again; False if the loop did not stop within ``grace`` s."""

    def fail(self) -> None:
        """Stops the loop for good (its queued messages stay queued)."""

    def wake(self) -> None:
        """Lets the loop see a control flag now."""


class GroupFlags:
    """The supervision flags of every instance of a group, and the group's restart policy."""

    def __init__(self, count: int, policy: RestartPolicy | None = None) -> None:
        self.policy_state = policy if policy is not None else RestartPolicy()
        self.hung = np.zeros(count, dtype=bool)
        self.failed = np.zeros(count, dtype=bool)
        self.restarting = np.zeros(count, dtype=bool)


class SupervisedGroup(Protocol):
    """What the watchdog needs of an actor group (its instances are watched together)."""

    name: str
    count: int
    ctrl: np.ndarray  # count control blocks back to back
    supervision: GroupFlags

    def busy_instances(self) -> np.ndarray:
        """Per instance: work is queued and its replies and sends have room."""

    def restart_instance(self, index: int, grace: float) -> bool:
        """Aborts instance ``index``'s message in progress, pauses the group's kernel, puts
        back that instance's restart state and starts the kernel again; False (the kernel
        left running) if it did not pause within ``grace`` s."""

    def wake(self) -> None:
        """Lets the kernel see a control word now."""


@runtime_checkable
class SupervisedPump(Protocol):
    """What the watchdog needs of a host pump (``runtime.actor_pump.RedispatchRuntime``)."""

    def stalled(self, timeout: float) -> bool:
        """The pump has been inside one round for ``timeout`` s or more."""

    def restart_pump(self) -> bool:
        """Abandons the stuck pump thread and starts a new one, queued messages kept; False if
        the round came back meanwhile (nothing done)."""


# A pump is declared stalled after this fraction of watchdog_timeout inside one round: before
# the actors it serves reach watchdog_timeout without progress, so they are not called hung.
PUMP_STALL_FRACTION = 0.5


class Watchdog:
    """One thread that watches ``actors()``, ``groups()`` and ``pumps()`` until :meth:`close`."""

    def __init__(
        self,
        timeout: float,
        actors: Callable[[], Iterable[Supervised]],
        groups: Callable[[], Iterable[SupervisedGroup]] = tuple,
        pumps: Callable[[], Iterable[SupervisedPump]] = tuple,
    ) -> None:
        self.timeout = timeout
        self.actors = actors
        self.groups = groups
        self.pumps = pumps
        self.closing = threading.Event()
        self.marks: dict[int, tuple[int, float]] = {}  # id(actor) -> (processed seen, since when)
        # id(group) -> (processed seen, since when), one entry per instance
        self.group_marks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.thread = threading.Thread(target=self._run, name="ringkernel-watchdog", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.closing.set()
        if self.thread is not threading.current_thread():
            self.thread.join(self.timeout + 1.0)

    def _run(self) -> None:
        while not self.closing.wait(self.timeout / 4):
            self.look_pumps()
            for actor in list(self.actors()):
                if self.closing.is_set():
                    return
                try:
                    self.look(actor)
                except Exception:  # its runtime broke (a failed pump): the others are still watched
                    actor.failed = True
            for group in list(self.groups()):
                if self.closing.is_set():
                    return
                try:
                    self.look_group(group)
                except Exception:  # as above: every instance of a broken group is failed
                    group.supervision.failed[:] = True

    def look(self, actor: Supervised) -> None:
        """One look at ``actor``: notes progress, or handles a hang."""
        if actor.failed or actor.restarting:
            return
        now = time.monotonic()
        processed = int(actor.ctrl[L.C["processed"]])
        seen, since = self.marks.get(id(actor), (processed, now))
        if processed != seen or not actor.busy():
            self.marks[id(actor)] = (processed, now)
            actor.hung = False
            return
        self.marks[id(actor)] = (seen, since)
        if now - since >= self.timeout:
            self.handle_hang(actor)
            self.marks[id(actor)] = (int(actor.ctrl[L.C["processed"]]), time.monotonic())

    def handle_hang(self, actor: Supervised) -> None:
        """Aborts the message in progress, then restarts, keeps or fails the actor.

        With a restart due, the abort and the stop go out together, so the loop
        leaves right after the aborted message and no message runs on the old
        state; otherwise the actor serves on (``"never"``) or is failed (a
        restart storm, or a handler that did not give up).
        """
        actor.hung = True
        before = int(actor.ctrl[L.C["processed"]])
        policy = actor.policy_state
        if policy.restart == "on_failure":
            if policy.allows(time.monotonic()) and actor.restart_from_initial(self.timeout + 1.0):
                actor.hung = False
            else:
                actor.fail()
            return
        actor.ctrl[L.C["abort_at"]] = actor.ctrl[L.C["serial"]]
        fence()
        actor.wake()
        if self._wait(lambda: int(actor.ctrl[L.C["processed"]]) != before):
            actor.hung = False  # the message was aborted; the actor serves on from its state
        else:
            actor.fail()  # the handler did not give up: nothing more to try

    def look_pumps(self) -> None:
        """Restarts every stalled host pump; its actors' progress marks start afresh (they
        made none because the pump did not run them, not because they hung)."""
        for pump in list(self.pumps()):
            if pump.stalled(self.timeout * PUMP_STALL_FRACTION) and pump.restart_pump():
                self.marks.clear()
                self.group_marks.clear()

    def look_group(self, group: SupervisedGroup) -> None:
        """One look at every instance of ``group``: notes progress, handles each hang."""
        flags = group.supervision
        now = time.monotonic()
        processed = group.ctrl.reshape(group.count, L.CONTROL_WORDS)[:, L.C["processed"]].copy()
        seen, since = self.group_marks.get(id(group), (processed.copy(), np.full(group.count, now)))
        moved = (processed != seen) | ~group.busy_instances() | flags.failed | flags.restarting
        seen[moved], since[moved] = processed[moved], now
        flags.hung[moved & ~flags.failed] = False
        self.group_marks[id(group)] = (seen, since)
        for index in np.flatnonzero(~moved & (now - since >= self.timeout)).tolist():
            if self.closing.is_set():
                return
            self.handle_group_hang(group, index)
            blocks = group.ctrl.reshape(group.count, L.CONTROL_WORDS)
            seen[index], since[index] = blocks[index, L.C["processed"]], time.monotonic()

    def handle_group_hang(self, group: SupervisedGroup, index: int) -> None:
        """Instance ``index`` of ``group`` is hung: aborts its message and restarts it, lets it
        serve on (``"never"``) or fails it (a restart storm, or a handler that did not give up).

        A failed instance takes no more sends; the group's other instances serve on.
        """
        flags = group.supervision
        flags.hung[index] = True
        policy = flags.policy_state
        if policy.restart == "on_failure" and policy.allows(time.monotonic()):
            flags.restarting[index] = True
            try:
                restarted = group.restart_instance(index, self.timeout + 1.0)
            finally:
                flags.restarting[index] = False
            flags.hung[index] = not restarted
            flags.failed[index] = not restarted
            return
        block = group.ctrl.reshape(group.count, L.CONTROL_WORDS)[index]
        before = int(block[L.C["aborted"]])
        block[L.C["abort_at"]] = block[L.C["serial"]]
        fence()
        group.wake()
        aborted = self._wait(lambda: int(block[L.C["aborted"]]) != before)
        flags.hung[index] = False
        # "never": it serves on from its state; "on_failure" past max_restarts: a restart storm
        flags.failed[index] = not aborted or policy.restart == "on_failure"

    def _wait(self, done: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and not self.closing.is_set():
            if done():
                return True
            time.sleep(min(0.005, self.timeout / 10))
        return bool(done())


__all__ = [
    "Watchdog",
    "RestartPolicy",
    "Supervised",
    "SupervisedGroup",
    "SupervisedPump",
    "GroupFlags",
    "RESTART_POLICIES",
]

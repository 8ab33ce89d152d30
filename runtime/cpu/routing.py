"""Native message routing on the cpu backend: the scheduler's workers route, a timer thread sleeps.

The Python :class:`~ringkernel.runtime.router.Router` polls every ``sends`` queue from a thread
(every 2 ms at most when idle); on the cpu, where the loops share memory with the host and run
on the scheduler's native workers, :class:`NativeRouter` replaces it:

- a worker that ran a turn of a talking group routes what the turn sent right after it
  (``lowering/llvm/host_router.py``: the routing table, the MPSC push into ``routed``, the
  head-of-line stop, fan-out in connect order with the copies already made remembered), so a
  send is on its way without a thread switch, and the receiver's turn follows in the same or
  the next round;
- timers go into a native *inbox* the :class:`NativeRouter`'s one Python thread takes them from
  into a heap; that thread sleeps on the inbox's futex doorbell until the next timer is due, a
  router rings it (a timer handed in, a sender newly blocked) or the host does (:meth:`wake`),
  never polling while nothing is due or blocked.  While a sender is blocked it looks for a
  cycle of full queues every :data:`CYCLE_CHECK_S`;
- the tables are replaced whole (``connect``, a re-made ``routed``, a new member) while routing
  is paused (:attr:`NativeRouter.lock`): no worker routes with an old one afterwards.

The semantics, counters and cycle report are those of ``runtime/router.py`` (its docstring,
``docs/actors.md`` "Delivery and ordering guarantees"); the cycle search also follows reply
links (``connect(a, b)``: ``a`` waits for ``b`` while its ``out`` is full), given by the
caller (:attr:`NativeRouter.reply_edges`).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ringkernel.lowering.llvm import host_router as R
from ringkernel.ringir import layout as L
from ringkernel.runtime.cpu.scheduler import Scheduler, sched_functions
from ringkernel.runtime.hlc import physical_now
from ringkernel.runtime.queues import fence
from ringkernel.runtime.router import Member, connection_pairs, find_cycle

H = L.QUEUE_HEADER_WORDS
INBOX_CAPACITY = 1024  # timers handed in and not yet taken by the timer thread
CYCLE_CHECK_S = 0.005  # how often the timer thread looks for a cycle while a sender is blocked
RETRY_S = 0.002  # how soon it tries again a due timer whose actor's routed was full
CONFIRM_CHECKS = 2  # looks in a row that must find the same cycle with nothing moving
_PAUSE_POLL_S = 20e-6
_MASK32 = 0xFFFFFFFF


class _Pause:
    """The router's ``lock``: while held, no routing runs (the timer thread waits for it, and
    the workers skip routing: ``paused``/``busy``, ``host_router``); re-entrant."""

    def __init__(self, router: NativeRouter) -> None:
        self.router = router
        self.mutex = threading.RLock()
        self.depth = 0

    def __enter__(self) -> _Pause:
        self.mutex.acquire()
        self.depth += 1
        if self.depth == 1:
            words = self.router.words
            words[R.PAUSED // 4] = 1
            fence()
            while words[R.BUSY // 4]:
                time.sleep(_PAUSE_POLL_S)
            fence()
        return self

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            fence()
            self.router.words[R.PAUSED // 4] = 0
            fence()
            self.router.scheduler.ring()  # what waited in sends goes now
        self.mutex.release()


class NativeRouter:
    """The cpu's router; the same surface as :class:`~ringkernel.runtime.router.Router` for the
    actor system (``add``/``update``/``connect``, ``lock``, ``cycle``, ``stats``, ``pending``)."""

    def __init__(self, scheduler: Scheduler, clock: Callable[[], int] = physical_now) -> None:
        self.scheduler = scheduler
        self.clock = clock
        self.fns = sched_functions()
        self.ctl = np.zeros(R.CTL_BYTES // 8, dtype=np.uint64)
        self.words = self.ctl.view(np.uint32)
        self.lock = _Pause(self)
        self.members: list[Member] = []
        self._states: dict[Member, np.ndarray] = {}  # per member: STATE_WORDS u32 per instance
        self._hosts: dict[Member, Any] = {}
        self._ports: dict[tuple[int, int], list[int]] = {}  # (sender endpoint, port) -> endpoints
        self._keep: tuple[Any, ...] = ()  # what the current table points into
        self._inbox = self._make_inbox(8)
        self._timers: list[tuple[int, int, int, np.ndarray]] = []  # (due µs, order, endpoint, row)
        self._order = 0
        self.timers_fired = 0
        self.reply_edges: Callable[[], list[tuple[str, str]]] = list  # waits along reply links
        self.cycle: tuple[str, ...] | None = None
        self._suspect: tuple[tuple[str, ...], int] | None = None
        self._seen = 0
        self.failure: BaseException | None = None
        self._poke = False
        self._closing = False
        self.thread: threading.Thread | None = None
        scheduler.attach_router(self.ctl, self)
        self._publish()

    # --- wiring ---

    @property
    def _endpoints(self) -> int:
        return sum(m.count for m in self.members)

    def add(self, member: Member, host: Any = None) -> None:
        """Routes ``member``'s sends from now on; ``host`` (a ``CpuGroupHost``) has its workers
        route after its turns."""
        with self.lock:
            member.base = self._endpoints
            self.members.append(member)
            self._states[member] = np.zeros(member.count * R.STATE_WORDS, dtype=np.uint32)
            self._publish()
        routes_from = getattr(host, "routes_from", None)
        if routes_from is not None:
            self._hosts[member] = host
            routes_from(member.base)
        self._start()
        self.wake()  # it may have sent before it was added

    def update(self, member: Member, sends: np.ndarray, routed: np.ndarray) -> None:
        """``member``'s queue arrays were re-made (their messages moved along by the caller)."""
        with self.lock:
            member.attach(sends, routed)
            self._publish()

    def connect(self, src: Member, port: int, dst: Member, src_index: int | None = None,
                dst_index: int | None = None) -> None:
        """As :meth:`Router.connect <ringkernel.runtime.router.Router.connect>`."""
        pairs = connection_pairs(src, port, dst, src_index, dst_index)
        with self.lock:
            for s, t in pairs:
                self._ports.setdefault((s, port), []).append(t)
            self._publish()

    def ports(self) -> dict[tuple[int, int], list[int]]:
        """As :meth:`Router.ports <ringkernel.runtime.router.Router.ports>`."""
        with self.lock:
            return {key: list(targets) for key, targets in self._ports.items()}

    def timers_of(self, first: int, end: int) -> list[tuple[int, int, np.ndarray]]:
        """As :meth:`Router.timers_of <ringkernel.runtime.router.Router.timers_of>` (the inbox
        taken in first)."""
        with self.lock.mutex:
            self._take_inbox()
            held = sorted(self._timers, key=lambda entry: (entry[0], entry[1]))
            return [(e, due, row.copy()) for due, _, e, row in held if first <= e < end]

    def add_timer(self, endpoint: int, due_us: int, row: np.ndarray) -> None:
        """As :meth:`Router.add_timer <ringkernel.runtime.router.Router.add_timer>`."""
        row = np.ascontiguousarray(row, dtype=np.uint32).copy()
        row[L.ENV_TARGET] = endpoint  # as the inbox's rows are
        with self.lock.mutex:
            heapq.heappush(self._timers, (int(due_us), self._order, int(endpoint), row))
            self._order += 1
        self.wake()  # the timer thread sleeps until the earliest due: this one may be earlier

    def endpoint_name(self, endpoint: int) -> str:
        for m in self.members:
            if m.base <= endpoint < m.base + m.count:
                return m.instance_name(endpoint - m.base)
        raise IndexError(endpoint)

    # --- the tables (holding the lock) ---

    def _make_inbox(self, slot_words: int) -> np.ndarray:
        inbox = np.zeros(L.queue_words(INBOX_CAPACITY, slot_words), dtype=np.uint32)
        inbox[L.Q_CAPACITY], inbox[L.Q_MASK] = INBOX_CAPACITY, INBOX_CAPACITY - 1
        inbox[L.Q_SLOT_WORDS] = slot_words
        return inbox

    def _publish(self) -> None:
        """A new table for the current members and ports (routing is paused, or nothing runs)."""
        n = self._endpoints
        width = max([int(m.sends.reshape(m.count, -1)[0, L.Q_SLOT_WORDS]) for m in self.members] or [8])
        if width > int(self._inbox[L.Q_SLOT_WORDS]):
            self._take_inbox()  # no router writes it now: what it holds goes to the heap
            old, self._inbox = self._inbox, self._make_inbox(width)
            fence()
            self.fns.rk_bell_ring(old.ctypes.data)  # the timer thread may sleep on the old bell
        records = np.zeros((max(n, 1), R.ENDPOINT_BYTES // 8), dtype=np.int64)
        spans: list[int] = []
        targets: list[int] = []
        for m in self.members:
            rows = records[m.base : m.base + m.count]
            sends, routed = m.sends.reshape(m.count, -1), m.routed.reshape(m.count, -1)
            rows[:, R.E_SENDS // 8] = sends.ctypes.data + np.arange(m.count) * sends.strides[0]
            rows[:, R.E_ROUTED // 8] = routed.ctypes.data + np.arange(m.count) * routed.strides[0]
            state = self._states[m]
            rows[:, R.E_STATE // 8] = state.ctypes.data + np.arange(m.count) * (4 * R.STATE_WORDS)
            rows[:, R.E_ACTOR // 8] = m.actor_ids
            rows[:, R.E_BASE // 8] = m.base
            rows[:, R.E_SIZE // 8] = m.count
        by_sender: dict[int, dict[int, list[int]]] = {}
        for (s, port), ts in self._ports.items():
            by_sender.setdefault(s, {})[port] = ts
        for s, ports in sorted(by_sender.items()):
            records[s, R.E_PORTS // 8] = len(spans)
            records[s, R.E_NPORTS // 8] = max(ports) + 1
            for port in range(max(ports) + 1):
                ts = ports.get(port, [])
                spans.append(len(targets) << 32 | len(ts))
                targets.extend(ts)
        target_array = np.array(targets or [0], dtype=np.int64)
        span_array = np.array(spans or [0], dtype=np.int64)
        table = np.zeros(R.TABLE_BYTES // 8, dtype=np.int64)
        table[R.T_COUNT // 8] = n
        table[R.T_RECORDS // 8] = records.ctypes.data
        table[R.T_TARGETS // 8] = target_array.ctypes.data
        table[R.T_PORTS // 8] = span_array.ctypes.data
        table[R.T_INBOX // 8] = self._inbox.ctypes.data
        table[R.T_SCHED // 8] = self.scheduler.words.ctypes.data
        self._keep = (table, records, target_array, span_array, self._inbox,
                      [(m.sends, m.routed) for m in self.members])
        fence()
        self.ctl.view(np.int64)[R.TABLE // 8] = table.ctypes.data
        fence()

    # --- the timer thread ---

    def _start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="ringkernel-timers", daemon=True)
            self.thread.start()

    def wake(self) -> None:
        """Route every member now and look at the timers (a drain, a connect, a host send)."""
        self._poke = True
        fence()
        self.fns.rk_bell_ring(self._inbox.ctypes.data)

    def _run(self) -> None:
        try:
            while not self._closing:
                with self.lock.mutex:  # not a pause: the workers route meanwhile
                    inbox = self._inbox
                    self._poke, poked = False, self._poke
                    if poked:
                        self.fns.rk_route_range(self.ctl.ctypes.data, 0, self._endpoints)
                    self._take_inbox()
                    retry = self._fire_timers()
                    blocked = int(self.words[R.BLOCKED // 4]) > 0
                    self._look_for_cycle(blocked)
                self._sleep(inbox, self._timeout(retry, blocked))
        except BaseException as exc:  # reported by the system's next drain, receive or metrics
            self.failure = exc

    def _timeout(self, retry: bool, blocked: bool) -> float | None:
        """Seconds until the thread must look again by itself (None: only when rung)."""
        waits = []
        if self._timers:
            now_us = self.clock() >> L.HLC_LOGICAL_BITS
            waits.append(max(0.0, (self._timers[0][0] - now_us) / 1e6))
        if retry:
            waits.append(RETRY_S)
        if blocked:
            waits.append(CYCLE_CHECK_S)
        return min(waits) if waits else None

    def _sleep(self, inbox: np.ndarray, seconds: float | None) -> None:
        """The park protocol on the inbox's bell (``docs/layout.md``): announce, fence, look,
        then wait unless something came."""
        bell = int(inbox[L.Q_BELL])
        inbox[L.Q_PARKED] = 1
        fence()
        ready = self._poke or self._closing or inbox[L.Q_TAIL] != inbox[L.Q_HEAD] or inbox is not self._inbox
        if not ready and seconds != 0:
            nanos = -1 if seconds is None else max(1, int(seconds * 1e9))
            self.fns.rk_bell_wait(inbox.ctypes.data + 4 * L.Q_BELL, bell, nanos)
        inbox[L.Q_PARKED] = 0

    def _take_inbox(self) -> None:
        """Moves the published timers of the inbox into the heap (its only consumer)."""
        inbox = self._inbox
        head, tail = int(inbox[L.Q_HEAD]), int(inbox[L.Q_TAIL])
        fence()
        capacity, slot_words = int(inbox[L.Q_CAPACITY]), int(inbox[L.Q_SLOT_WORDS])
        if (tail - head) & _MASK32 >= capacity:
            self._poke = True  # a router may have stopped at a timer for lack of room: route again
        slots = inbox[H:].reshape(capacity, slot_words)
        while head != tail:
            slot = slots[head & (capacity - 1)]
            if slot[L.ENV_TYPE_ID] == 0:
                break  # a router is mid-write: next time
            fence()
            row = slot.copy()
            slot[L.ENV_TYPE_ID] = 0
            stamp = int(row[L.ENV_HLC_LO]) | int(row[L.ENV_HLC_HI]) << 32
            due = (stamp >> L.HLC_LOGICAL_BITS) + int(row[L.ENV_SEQUENCE])
            heapq.heappush(self._timers, (due, self._order, int(row[L.ENV_TARGET]), row))
            self._order += 1
            head = (head + 1) & _MASK32
        fence()
        inbox[L.Q_HEAD] = head

    def _fire_timers(self) -> bool:
        """Delivers the due timers (stamped at delivery); True if one found its actor's routed full."""
        if not self._timers:
            return False
        now = self.clock()
        now_us = now >> L.HLC_LOGICAL_BITS
        kept, full = [], set()
        while self._timers and self._timers[0][0] <= now_us:
            entry = heapq.heappop(self._timers)
            endpoint, row = entry[2], entry[3]
            if endpoint not in full:
                stamp = max(int(row[L.ENV_HLC_LO]) | int(row[L.ENV_HLC_HI]) << 32, now)
                row[L.ENV_HLC_LO], row[L.ENV_HLC_HI] = stamp & _MASK32, stamp >> 32
                if self.fns.rk_route_push(self.ctl.ctypes.data, endpoint, row.ctypes.data, len(row)):
                    self.timers_fired += 1
                    continue
                full.add(endpoint)  # it waits, and so do its later timers (due order)
            kept.append(entry)
        for entry in kept:
            heapq.heappush(self._timers, entry)
        return bool(full)

    def close(self, timeout: float = 1.0) -> bool:
        """Stops the timer thread; True once it has left."""
        self._closing = True
        self.wake()
        if self.thread is None:
            return True
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def stop(self) -> None:
        """Asks the timer thread to leave (without waiting)."""
        self._closing = True
        self.wake()

    # --- deadlock ---

    def _wait_edges(self) -> dict[str, list[str]]:
        """Who waits for whom now: a sender whose ``sends`` is over half full and whose head
        waits for a full ``routed``; and the caller's reply links (``reply_edges``)."""
        edges: dict[str, list[str]] = {}
        for m in self.members:
            state = self._states[m].reshape(m.count, R.STATE_WORDS)
            over = 2 * m.sq.fill() > m.sq.capacity
            for i in np.flatnonzero(over & (state[:, R.S_BLOCKED] != 0)).tolist():
                target = int(state[i, R.S_BLOCKED]) - 1
                edges.setdefault(m.instance_name(i), []).append(self.endpoint_name(target))
        for a, b in self.reply_edges():
            edges.setdefault(a, []).append(b)
        return edges

    def _look_for_cycle(self, blocked: bool) -> None:
        """While a sender is blocked: a cycle seen in :data:`CONFIRM_CHECKS` looks in a row with
        nothing moved in between is reported in :attr:`cycle`."""
        moved = int(self.ctl[R.MOVED // 8])
        found = find_cycle(self._wait_edges()) if blocked else None
        if found is None:
            self._suspect, self._seen, self.cycle = None, 0, None
            return
        if self._suspect == (found, moved):
            self._seen += 1
        else:
            self._suspect, self._seen = (found, moved), 1
            self.cycle = None
        if self._seen >= CONFIRM_CHECKS:
            self.cycle = found

    # --- state ---

    def route(self) -> int:
        """Routes every member's ``sends`` now from the calling thread, and returns the messages
        moved: a pump hosting a member migrated off the cpu calls it between its rounds (no
        worker runs that member's turns).  The per-queue try-lock keeps one router per queue."""
        return int(self.fns.rk_route_range(self.ctl.ctypes.data, 0, self._endpoints))

    @property
    def timers_pending(self) -> int:
        return len(self._timers) + self._inbox_fill()

    def _inbox_fill(self) -> int:
        return (int(self._inbox[L.Q_TAIL]) - int(self._inbox[L.Q_HEAD])) & _MASK32

    def next_due_us(self) -> int | None:
        """Physical µs (HLC epoch) of the earliest held timer, or None."""
        with self.lock.mutex:
            self._take_inbox()
            return self._timers[0][0] if self._timers else None

    def pending(self, due_by_us: int | None = None) -> int:
        """Messages not yet delivered: in ``sends`` queues, and timers held (only those due by
        ``due_by_us``, when given)."""
        with self.lock.mutex:
            self._take_inbox()
            timers = self._timers if due_by_us is None else [t for t in self._timers if t[0] <= due_by_us]
            return int(sum(int(m.sq.fill().sum()) for m in self.members)) + len(timers)

    def blocked_endpoints(self) -> list[str]:
        """Instances whose head message waits for a full ``routed`` now."""
        names = []
        for m in self.members:
            state = self._states[m].reshape(m.count, R.STATE_WORDS)
            names += [m.instance_name(i) for i in np.flatnonzero(state[:, R.S_BLOCKED]).tolist()]
        return names

    def blocked_names(self) -> set[str]:
        """Instances whose sends wait for a full ``routed`` (the cycle's are added by the caller)."""
        return set(self.blocked_endpoints())

    def stats(self) -> dict[str, int]:
        """The router's counters, and what the loops counted in their ``sends`` headers."""
        rejected = sum(int(m.sq.header[:, L.Q_REJECTED].astype(np.int64).sum()) for m in self.members)
        bad = sum(int(m.sq.header[:, L.Q_BAD_TARGET].astype(np.int64).sum()) for m in self.members)
        direct = sum(int(m.sq.header[:, L.Q_DIRECT].astype(np.int64).sum()) for m in self.members)
        return {
            "routed": int(self.ctl[R.ROUTED // 8]) + direct,  # the loops' direct sends too
            "direct": direct,
            "unrouted": int(self.ctl[R.UNROUTED // 8]),
            "invalid": int(self.ctl[R.INVALID // 8]) + bad,
            "rejected": rejected,
            "timers_pending": self.timers_pending,
            "timers_fired": self.timers_fired,
            "blocked": len(self.blocked_endpoints()),
        }


def routes_natively(runtime: Any) -> bool:
    """Whether ``runtime``'s actors are served by a cpu scheduler (so a :class:`NativeRouter` routes)."""
    return callable(getattr(runtime, "scheduler", None)) and getattr(runtime, "group_mode", None) == "turn"


__all__ = ["NativeRouter", "routes_natively", "INBOX_CAPACITY", "CYCLE_CHECK_S"]

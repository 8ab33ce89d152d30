"""The message router: moves what handlers send (``sends`` queues) to the actors that receive it
(``routed`` queues), one :class:`Router` per ``ActorSystem``.

Every actor instance has a ``sends`` queue (its loop produces, the router consumes) and a
``routed`` queue (its loop consumes; the router produces, and so do the loops of its group,
which deliver ``send_to`` sends directly when they can: ``docs/layout.md``, "Routed queue
(MPSC)" and "Direct sends").  The router therefore reserves ``routed`` slots with a CAS
(native ``rk_routed_reserve``/``rk_routed_publish``), writes them, then publishes their type
ids; and it frees the entries a loop already delivered (kind 0, ``SEND_DELIVERED``) without
delivering or counting them.  A message's ``target`` word says where it goes:
``kind << 24 | index`` with kind 1 a port (index: the port's number; the copies go to every
target :meth:`Router.connect` wired to it, in connect order), kind 2 ``send_to`` (index:
the instance in the sender's group) and kind 3 a timer (back to the sender once the wall clock
passes its stamp's physical time plus the delay in ``sequence``, stamped with the delivery time).

Guarantees (``docs/actors.md``, "Delivery and ordering"):

- per sender -> receiver FIFO: each ``sends`` queue is taken in order, and it stops at its first
  message whose target's ``routed`` is full (head-of-line); a fan-out message delivered to some
  of its targets remembers how many (:attr:`Router.skip`), so no copy is sent twice;
- never a silent drop: a full target holds the sender back (its ``sends`` fills up, and its loop
  stops taking messages while ``sends`` is over half full); a message to a port nobody is
  connected to is discarded and counted (``unrouted``), like a reply to nobody; a ``send_to``
  outside the group (the loop refuses those already; the router checks again) or an unknown
  kind is counted as ``invalid``;
- a cycle of full queues (A's sends wait for B's full ``routed`` while B waits for room in its
  own ``sends``, ... back to A) cannot move again: a round that moved nothing looks for one in
  that wait-for graph and, seen in two such rounds in a row, reports it in :attr:`Router.cycle`.

A round (:meth:`Router.route`) is numpy over whole arrays: every non-empty ``sends`` queue's
messages are gathered in one fancy-indexed copy per actor or group, expanded into (message,
target) pairs, cut per sender at the first pair that does not fit, and written into the
``routed`` slots in one copy per receiving actor or group, then the tails published.  Only
timers are Python objects (a heap).  The router never blocks: the cpu runs it on a
:class:`RouterThread`; the wgpu/metal pump calls it between dispatches.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from ringkernel.ringir import layout as L
from ringkernel.runtime.hlc import physical_now
from ringkernel.runtime.native_queue import ROUTED_RECORD, Call
from ringkernel.runtime.queues import fence

_Node = TypeVar("_Node", int, str)  # a wait-for graph's nodes: endpoints or instance names

# the send `target` word and the sends header words (docs/layout.md, "Sends")
SEND_DELIVERED, SEND_PORT, SEND_TO, SEND_TIMER = L.SEND_DELIVERED, L.SEND_PORT, L.SEND_TO, L.SEND_TIMER
KIND_SHIFT, INDEX_MASK = L.TARGET_KIND_SHIFT, L.TARGET_INDEX_MASK
Q_BAD_TARGET = L.Q_BAD_TARGET  # producer: send_to targets outside the group the loop refused
Q_SENT = L.Q_SENT  # instance 0's header: the loop sets it after publishing sends; the router clears it
MAX_PORTS = L.MAX_PORTS
H = L.QUEUE_HEADER_WORDS
_MASK32 = 0xFFFFFFFF
DROP, TIMER = -1, -2  # pair targets that are not actors: discarded (counted), the timer heap
UNROUTED, INVALID = 1, 2  # why a message is discarded
SUBROUNDS = 8  # passes of one round while messages keep moving (each frees room for the next)
CONFIRM_ROUNDS = 2  # idle rounds in a row that must find the same cycle before it is reported


class _Queues:
    """Numpy views of one actor's or group's queue array: ``count`` equal regions."""

    def __init__(self, array: np.ndarray, count: int) -> None:
        if array.dtype != np.uint32 or array.size % count:
            raise ValueError(f"a queue array of {count} instances must be u32 words in {count} equal regions")
        regions = array.reshape(count, -1)
        self.array = array
        self.header = regions[:, :H]
        self.capacity = int(regions[0, L.Q_CAPACITY])
        self.slot_words = int(regions[0, L.Q_SLOT_WORDS])
        if self.capacity < 1 or self.capacity & (self.capacity - 1) or regions.shape[1] != (
            H + self.capacity * self.slot_words
        ):
            raise ValueError("a queue region must be a header and capacity * slot_words words")
        self.slots = regions[:, H:].reshape(count, self.capacity, self.slot_words)
        self.region_words = regions.shape[1]

    def fill(self) -> np.ndarray:
        """``tail - head`` of every region (int64)."""
        tails = self.header[:, L.Q_TAIL].astype(np.int64)
        fence()  # acquire: the slots up to each tail are written
        return (tails - self.header[:, L.Q_HEAD].astype(np.int64)) & _MASK32


@dataclass(eq=False)
class Member:
    """One actor (``count`` 1) or actor group as the router sees it.

    ``sends`` and ``routed`` are the whole word arrays (``count`` regions each);
    ``actor_ids`` the instances' actor ids; ``wake`` rings the loop(s) after the router
    delivered to them or made room in their ``sends``.
    """

    name: str
    sends: np.ndarray
    routed: np.ndarray
    actor_ids: np.ndarray
    wake: Callable[[], None] = lambda: None
    names: list[str] | None = None  # each instance's name (default: ``name[i]``)
    count: int = field(init=False)
    base: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.actor_ids = np.asarray(self.actor_ids, dtype=np.int64).reshape(-1)
        self.count = len(self.actor_ids)
        self.attach(self.sends, self.routed)

    def attach(self, sends: np.ndarray, routed: np.ndarray) -> None:
        """(Re)reads the queue arrays (after a connect re-made ``routed``)."""
        self.sends, self.routed = sends, routed
        self.sq = _Queues(sends, self.count)
        self.rq = _Queues(routed, self.count)
        self.pusher = _RoutedPusher(routed, self.rq.region_words)

    def instance_name(self, index: int) -> str:
        if self.names is not None:
            return self.names[index]
        return self.name if self.count == 1 else f"{self.name}[{index}]"


class Router:
    """Routes every member's ``sends`` into the ``routed`` queues; see the module docstring."""

    def __init__(self, clock: Callable[[], int] = physical_now, watch_sent: bool = False) -> None:
        self.clock = clock  # the wall clock as an HLC value (physical << 16)
        # look only at members whose loops raised `sent` (or that still hold messages): the
        # loops share memory with the router (cpu, cuda), so their `sent` words are current; a
        # pump's mirror of them is not, and it looks at every member
        self.watch_sent = watch_sent
        self._dirty: set[int] = set()  # members that may hold messages in their sends
        self.lock = threading.RLock()
        self.members: list[Member] = []
        self._ports: dict[tuple[int, int], list[int]] = {}  # (sender endpoint, port) -> endpoints
        self._timers: list[tuple[int, int, int, np.ndarray]] = []  # (due µs, order, endpoint, words)
        self._order = 0
        self.skip = np.zeros(0, dtype=np.int64)  # per endpoint: copies of its head message delivered
        self.routed = 0  # copies delivered into routed queues (fan-out counts each)
        self.unrouted = 0
        self.invalid = 0
        self.timers_fired = 0
        self.rounds = 0
        self.blocked: dict[int, int] = {}  # sender endpoint -> the endpoint whose full routed holds it
        self.reply_edges: Callable[[], list[tuple[str, str]]] = list  # waits along reply links (names)
        self.cycle: tuple[str, ...] | None = None
        self._suspect: tuple[str, ...] | None = None
        self._seen = 0
        self._rebuild()

    # --- wiring ---

    def add(self, member: Member) -> None:
        """Serves ``member`` from the next round on."""
        with self.lock:
            member.base = self._endpoints
            self._dirty.add(len(self.members))  # it may have sent before it was added
            self.members.append(member)
            self.skip = np.concatenate([self.skip, np.zeros(member.count, dtype=np.int64)])
            self._rebuild()

    def update(self, member: Member, sends: np.ndarray, routed: np.ndarray) -> None:
        """``member``'s queue arrays were re-made (their messages moved along by the caller)."""
        with self.lock:
            member.attach(sends, routed)
            self._dirty.add(self.members.index(member))
            self._rebuild()

    def connect(
        self, src: Member, port: int, dst: Member, src_index: int | None = None, dst_index: int | None = None
    ) -> None:
        """Wires port ``port`` of ``src`` (its instance ``src_index``, or every instance) to ``dst``
        (its instance ``dst_index``; or ``dst`` itself when it is one actor; or instance i of
        ``dst`` for instance i of ``src`` when both have the same count); connecting the same
        port again adds a target (fan-out, in connect order)."""
        pairs = connection_pairs(src, port, dst, src_index, dst_index)
        with self.lock:
            for s, t in pairs:
                self._ports.setdefault((s, port), []).append(t)
            self._rebuild()

    @property
    def _endpoints(self) -> int:
        return sum(m.count for m in self.members)

    def _rebuild(self) -> None:
        """The endpoint tables and the port table (CSR over sorted keys) the rounds use."""
        n = self._endpoints
        self.member_of = np.zeros(n, dtype=np.int64)
        self.group_base = np.zeros(n, dtype=np.int64)
        self.group_size = np.zeros(n, dtype=np.int64)
        self.actor_id = np.zeros(n, dtype=np.int64)
        for k, m in enumerate(self.members):
            s = slice(m.base, m.base + m.count)
            self.member_of[s], self.group_base[s], self.group_size[s] = k, m.base, m.count
            self.actor_id[s] = m.actor_ids
        keys = sorted(self._ports)
        self._keys = np.array([e * MAX_PORTS + p for e, p in keys], dtype=np.int64)
        lengths = [len(self._ports[k]) for k in keys]
        self._offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
        self._targets = np.array([t for k in keys for t in self._ports[k]], dtype=np.int64)
        self._width = max([m.sq.slot_words for m in self.members] or [L.ENVELOPE_WORDS])

    def endpoint_name(self, endpoint: int) -> str:
        m = self.members[int(self.member_of[endpoint])]
        return m.instance_name(endpoint - m.base)

    def ports(self) -> dict[tuple[int, int], list[int]]:
        """``connect(port=)`` targets: (sender endpoint, port) -> endpoints, in fan-out order."""
        with self.lock:
            return {key: list(targets) for key, targets in self._ports.items()}

    def timers_of(self, first: int, end: int) -> list[tuple[int, int, np.ndarray]]:
        """The held (not yet delivered) timers of endpoints ``first``..``end - 1`` in due order:
        (endpoint, due physical µs of the HLC epoch, message row)."""
        with self.lock:
            held = sorted(self._timers, key=lambda timer: (timer[0], timer[1]))
            return [(e, due, row.copy()) for due, _, e, row in held if first <= e < end]

    def add_timer(self, endpoint: int, due_us: int, row: np.ndarray) -> None:
        """Holds ``row`` for ``endpoint`` until ``due_us`` (a restored timer; one already due goes
        at the next round)."""
        with self.lock:
            heapq.heappush(self._timers, (int(due_us), self._order, int(endpoint), row.astype(np.uint32)))
            self._order += 1

    # --- state ---

    @property
    def timers_pending(self) -> int:
        return len(self._timers)

    def next_due_us(self) -> int | None:
        """Physical µs (HLC epoch) of the earliest held timer, or None."""
        with self.lock:
            return self._timers[0][0] if self._timers else None

    def pending(self) -> int:
        """Messages not yet delivered: in ``sends`` queues, and timers held."""
        with self.lock:
            return int(sum(int(m.sq.fill().sum()) for m in self.members)) + len(self._timers)

    def stats(self) -> dict[str, int]:
        """The router's counters, and what the loops counted in their ``sends`` headers."""
        with self.lock:
            rejected = sum(int(m.sq.header[:, L.Q_REJECTED].astype(np.int64).sum()) for m in self.members)
            bad = sum(int(m.sq.header[:, Q_BAD_TARGET].astype(np.int64).sum()) for m in self.members)
            direct = sum(int(m.sq.header[:, L.Q_DIRECT].astype(np.int64).sum()) for m in self.members)
            return {
                "routed": self.routed + direct,
                "direct": direct,
                "unrouted": self.unrouted,
                "invalid": self.invalid + bad,
                "rejected": rejected,
                "timers_pending": len(self._timers),
                "timers_fired": self.timers_fired,
                "blocked": len(self.blocked),
            }

    def blocked_names(self) -> set[str]:
        """Instances whose sends wait for a full ``routed``, or that are part of the reported cycle."""
        with self.lock:
            return {self.endpoint_name(e) for e in self.blocked}

    # --- rounds ---

    def route(self) -> int:
        """One round: due timers, then the ``sends`` queues (several passes while they move).

        Returns the messages moved (copies delivered, timers taken in, discards).
        """
        with self.lock:
            self.rounds += 1
            woken: set[int] = set()
            for k, m in enumerate(self.members):
                if m.sq.header[0, Q_SENT] or not self.watch_sent:
                    m.sq.header[0, Q_SENT] = 0  # then the tails are read: no publish is missed
                    self._dirty.add(k)
            fence()
            moved = self._fire_timers(woken)
            for _ in range(SUBROUNDS):
                step = self._route_sends(woken)
                moved += step
                if not step:
                    break
            if moved:
                self._suspect, self._seen, self.cycle = None, 0, None
            else:
                self._look_for_cycle()
            members = [self.members[k] for k in sorted(woken)]
        for m in members:
            m.wake()
        return moved

    def _fire_timers(self, woken: set[int]) -> int:
        if not self._timers:
            return 0
        now = self.clock()
        now_us = now >> L.HLC_LOGICAL_BITS
        due: list[tuple[int, int, int, np.ndarray]] = []
        while self._timers and self._timers[0][0] <= now_us:
            due.append(heapq.heappop(self._timers))
        if not due:
            return 0
        want = np.bincount(np.array([e[2] for e in due], dtype=np.int64), minlength=self._endpoints)
        start, got = self._reserve(want)
        room = got.copy()
        taken, keep = [], []
        for entry in due:
            endpoint = entry[2]
            if room[endpoint] > 0:
                room[endpoint] -= 1
                taken.append(entry)
            else:
                keep.append(entry)  # its actor's routed is full: it waits, in order
        for entry in keep:
            heapq.heappush(self._timers, entry)
        if not taken:
            return 0
        rows = np.zeros((len(taken), max(len(e[3]) for e in taken)), dtype=np.uint32)
        for k, e in enumerate(taken):  # (members spawned later may send wider slots)
            rows[k, : len(e[3])] = e[3]
        lo, hi = rows[:, L.ENV_HLC_LO].astype(np.uint64), rows[:, L.ENV_HLC_HI].astype(np.uint64)
        stamps = lo | hi << np.uint64(32)
        stamps = np.maximum(stamps, np.uint64(now))  # stamped at delivery, never before the send
        rows[:, L.ENV_HLC_LO] = (stamps & np.uint64(_MASK32)).astype(np.uint32)
        rows[:, L.ENV_HLC_HI] = (stamps >> np.uint64(32)).astype(np.uint32)
        self._deliver(np.array([e[2] for e in taken], dtype=np.int64), rows, woken, start, got)
        self.timers_fired += len(taken)
        return len(taken)

    def _room(self) -> np.ndarray:
        """Free slots of every endpoint's ``routed`` (int64)."""
        room = np.zeros(self._endpoints, dtype=np.int64)
        for m in self.members:
            room[m.base : m.base + m.count] = m.rq.capacity - m.rq.fill()
        return room

    def _gather(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every pending ``sends`` message, sender by sender in FIFO order: (sender endpoints,
        position in its queue, rows padded to the widest slot, heads)."""
        width = self._width
        srcs, positions, rows = [], [], []
        heads = np.zeros(self._endpoints, dtype=np.int64)
        for k in sorted(self._dirty):
            m = self.members[k]
            q = m.sq
            fill = q.fill()
            if not fill.any():
                self._dirty.discard(k)  # until its loop raises `sent` again
                continue
            local_heads = q.header[:, L.Q_HEAD].astype(np.int64)
            heads[m.base : m.base + m.count] = local_heads
            inst = np.flatnonzero(fill)
            f = fill[inst]
            which = np.repeat(inst, f)
            at = np.arange(int(f.sum()), dtype=np.int64) - np.repeat(np.cumsum(f) - f, f)
            words = q.slots[which, (local_heads[which] + at) & (q.capacity - 1)]
            if words.shape[1] < width:
                words = np.pad(words, ((0, 0), (0, width - words.shape[1])))
            srcs.append(m.base + which)
            positions.append(at)
            rows.append(words)
        if not srcs:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros((0, width), dtype=np.uint32), heads
        return np.concatenate(srcs), np.concatenate(positions), np.concatenate(rows), heads

    def _route_sends(self, woken: set[int]) -> int:
        src, pos, rows, heads = self._gather()
        self.blocked = {}
        if not len(src):
            return 0
        # --- where each message goes: one target, a port's targets, the heap, or nowhere ---
        target = rows[:, L.ENV_TARGET].astype(np.int64)
        kind, index = target >> KIND_SHIFT, target & INDEX_MASK
        single = np.full(len(src), DROP, dtype=np.int64)
        why = np.full(len(src), INVALID, dtype=np.int64)
        to = kind == SEND_TO
        ok = to & (index < self.group_size[src])
        single[ok] = self.group_base[src[ok]] + index[ok]
        single[kind == SEND_TIMER] = TIMER
        why[ok | (kind == SEND_TIMER) | (kind == SEND_DELIVERED)] = 0  # delivered by the loop: freed
        port = kind == SEND_PORT
        copies = np.ones(len(src), dtype=np.int64)
        first = np.zeros(len(src), dtype=np.int64)
        if port.any():
            keys = src[port] * MAX_PORTS + index[port]
            at = np.searchsorted(self._keys, keys)
            found = at < len(self._keys)
            found[found] = self._keys[at[found]] == keys[found]
            n = np.where(found, self._offsets[np.minimum(at + 1, len(self._offsets) - 1)]
                         - self._offsets[np.minimum(at, len(self._offsets) - 1)], 0)
            copies[port] = np.maximum(n, 1)
            first[port] = np.where(found, self._offsets[np.minimum(at, len(self._offsets) - 1)], 0)
            fanned = np.flatnonzero(port)[n > 0]
            why[np.flatnonzero(port)[n == 0]] = UNROUTED
            why[fanned] = 0
        else:
            fanned = np.zeros(0, dtype=np.int64)
        # --- (message, target) pairs, in order; copies already delivered of each head are skipped ---
        row = np.repeat(np.arange(len(src)), copies)
        k = np.arange(len(row), dtype=np.int64) - np.repeat(np.cumsum(copies) - copies, copies)
        tgt = single[row]
        is_fanned = np.zeros(len(src), dtype=bool)
        is_fanned[fanned] = True
        f = is_fanned[row]
        tgt[f] = self._targets[first[row[f]] + k[f]]
        keep = ~((pos[row] == 0) & (k < self.skip[src[row]]))
        row, k, tgt = row[keep], k[keep], tgt[keep]
        psrc = src[row]
        # --- which pairs fit: per sender a prefix, each target's room shared in sender order ---
        real = tgt >= 0
        seg = _segments(psrc)
        deliver = _fits(tgt, real, seg, self._room())
        want = np.bincount(tgt[deliver & real], minlength=self._endpoints)
        start, got = self._reserve(want)
        if (got < want).any():  # loops took some of that room meanwhile: fit into what was reserved
            deliver = _fits(tgt, real, seg, got)
        # --- move ---
        moved = int(deliver.sum())
        sel = np.flatnonzero(deliver & real)
        if len(sel) or got.any():
            self._deliver(tgt[sel], rows[row[sel]].copy(), woken, start, got)
        if moved:
            for i in np.flatnonzero(deliver & (tgt == TIMER)).tolist():
                words = rows[row[i]].copy()
                stamp = int(words[L.ENV_HLC_LO]) | int(words[L.ENV_HLC_HI]) << 32
                due = (stamp >> L.HLC_LOGICAL_BITS) + int(words[L.ENV_SEQUENCE])
                heapq.heappush(self._timers, (due, self._order, int(psrc[i]), words))
                self._order += 1
            dropped = np.flatnonzero(deliver & (tgt == DROP))
            self.unrouted += int((why[row[dropped]] == UNROUTED).sum())
            self.invalid += int((why[row[dropped]] == INVALID).sum())
        self._advance(src, pos, row, k, psrc, deliver, heads, woken)
        if not moved:
            firsts = seg[1]  # each sender's first pair: nothing moved, so its target's routed is full
            self.blocked = {int(psrc[i]): int(tgt[i]) for i in firsts.tolist() if tgt[i] >= 0}
        return moved

    def _advance(self, src: np.ndarray, pos: np.ndarray, row: np.ndarray, k: np.ndarray, psrc: np.ndarray,
                 deliver: np.ndarray, heads: np.ndarray, woken: set[int]) -> None:
        """Frees the ``sends`` slots of every message all of whose copies went; remembers the
        copies of a partly delivered head."""
        pending_rows = np.zeros(len(src), dtype=bool)
        pending_rows[row[~deliver]] = True
        counts = np.bincount(src, minlength=self._endpoints)
        consumed = counts.copy()
        skip = np.zeros(self._endpoints, dtype=np.int64)
        stuck = np.flatnonzero(pending_rows)
        if len(stuck):
            firsts = stuck[np.r_[True, src[stuck][1:] != src[stuck][:-1]]]
            consumed[src[firsts]] = pos[firsts]
            undelivered = np.flatnonzero(~deliver)
            lead = undelivered[np.r_[True, psrc[undelivered][1:] != psrc[undelivered][:-1]]]
            skip[psrc[lead]] = k[lead]
        had = counts > 0
        self.skip[had] = skip[had]
        for kk, m in enumerate(self.members):
            c = consumed[m.base : m.base + m.count]
            if not c.any():
                continue
            hdr = m.sq.header
            was_over = 2 * counts[m.base : m.base + m.count] > m.sq.capacity
            hdr[:, L.Q_DEQUEUED] = (hdr[:, L.Q_DEQUEUED].astype(np.int64) + c) & _MASK32
            fence()  # release: the slots were copied before the heads free them
            hdr[:, L.Q_HEAD] = (heads[m.base : m.base + m.count] + c) & _MASK32
            if (was_over & (c > 0)).any():
                woken.add(kk)  # its loop waits for room in its sends

    def _reserve(self, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reserves up to ``want[e]`` slots of every endpoint's ``routed`` (a CAS on its ``tail``:
        the loops of a group push into the same queues); returns each one's first slot and
        how many it got."""
        start = np.zeros(self._endpoints, dtype=np.int64)
        got = np.zeros(self._endpoints, dtype=np.int64)
        for m in self.members:
            part = want[m.base : m.base + m.count]
            local = np.flatnonzero(part)
            if len(local):
                first, taken = m.pusher.reserve(local, part[local])
                start[m.base + local], got[m.base + local] = first, taken
        return start, got

    def _deliver(self, targets: np.ndarray, rows: np.ndarray, woken: set[int], start: np.ndarray,
                 got: np.ndarray) -> None:
        """Publishes ``rows`` (in order) into the slots reserved for ``targets`` (``start``,
        ``got`` per endpoint, at least as many as each one's rows); reserved slots left over
        are published as skipped (``SKIP_TYPE_ID``)."""
        rows[:, L.ENV_TARGET] = self.actor_id[targets].astype(np.uint32)
        occ = _rank_by(targets, np.ones(len(targets), dtype=bool))
        members = self.member_of[targets]
        for kk in np.flatnonzero(np.bincount(self.member_of[got > 0], minlength=len(self.members))).tolist():
            m = self.members[kk]
            sel = members == kk
            local = targets[sel] - m.base
            q = m.rq
            mine = got[m.base : m.base + m.count]
            slot = (start[m.base + local] + occ[sel]) & (q.capacity - 1)
            width = min(q.slot_words, rows.shape[1])
            q.slots[local, slot, 1:width] = rows[sel, 1:width]  # every word but type_id
            if q.slot_words > width:
                q.slots[local, slot, width:] = 0
            records = np.flatnonzero(mine)
            offsets = np.cumsum(mine[records]) - mine[records]
            ids = np.full(int(mine.sum()), L.SKIP_TYPE_ID, dtype=np.uint32)
            at = np.zeros(m.count, dtype=np.int64)
            at[records] = offsets
            ids[at[local] + occ[sel]] = rows[sel, L.ENV_TYPE_ID]
            m.pusher.publish(records, start[m.base + records], mine[records], ids)
            woken.add(kk)
        self.routed += len(targets)

    # --- deadlock ---

    def _look_for_cycle(self) -> None:
        """After a round that moved nothing: a cycle of instances each waiting for the next one,
        a sender whose ``sends`` is over half full for its target's full ``routed``, or an actor
        for its ``connect()`` downstream whose K2K queue is full (``reply_edges``), as the cpu's
        native router looks for them."""
        if not self.blocked:
            self._suspect, self._seen, self.cycle = None, 0, None
            return
        stalled = {}
        for m in self.members:
            over = 2 * m.sq.fill() > m.sq.capacity
            for i in np.flatnonzero(over).tolist():
                stalled[m.base + i] = True
        edges: dict[str, list[str]] = {}
        for s, t in self.blocked.items():
            if s in stalled:
                edges.setdefault(self.endpoint_name(s), []).append(self.endpoint_name(t))
        for a, b in self.reply_edges():
            edges.setdefault(a, []).append(b)
        found = find_cycle(edges)
        if found is None:
            self._suspect, self._seen, self.cycle = None, 0, None
            return
        if found == self._suspect:
            self._seen += 1
        else:
            self._suspect, self._seen = found, 1
        if self._seen >= CONFIRM_ROUNDS:
            self.cycle = tuple(found)


class _RoutedPusher:
    """The native half of pushing into one member's ``routed`` array by the MPSC protocol
    (``native_queue``'s ``rk_routed_reserve`` and ``rk_routed_publish``)."""

    def __init__(self, routed: np.ndarray, region_words: int) -> None:
        self.region_words = region_words
        self.req = np.zeros(1, dtype=np.uint32)
        self.ids = np.zeros(1, dtype=np.uint32)
        self._reserve = Call("rk_routed_reserve", routed, self.req)
        self._publish = Call("rk_routed_publish", routed, self.req, self.ids)

    def _request(self, local: np.ndarray, *columns: tuple[int, np.ndarray]) -> np.ndarray:
        req = np.zeros(1 + ROUTED_RECORD * len(local), dtype=np.uint32)
        req[0] = len(local)
        records = req[1:].reshape(len(local), ROUTED_RECORD)
        records[:, 0] = local * self.region_words
        for column, values in columns:
            records[:, column] = values & _MASK32
        self.req = req
        return records

    def reserve(self, local: np.ndarray, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``want[i]`` slots of instance ``local[i]``'s queue: (first slot, count) each."""
        records = self._request(local, (1, want))
        self._reserve.set(1, self.req)
        self._reserve.run()
        return records[:, 2].astype(np.int64), records[:, 3].astype(np.int64)

    def publish(self, local: np.ndarray, first: np.ndarray, got: np.ndarray, ids: np.ndarray) -> None:
        """Publishes the reserved slots (their other words written) with ``ids``, in order."""
        self._request(local, (2, first), (3, got))
        self.ids = np.ascontiguousarray(ids, dtype=np.uint32)
        if not len(self.ids):
            return
        self._publish.set(1, self.req)
        self._publish.set(2, self.ids)
        self._publish.run()


def _fits(tgt: np.ndarray, real: np.ndarray, seg: tuple[np.ndarray, np.ndarray],
          room: np.ndarray) -> np.ndarray:
    """Which (message, target) pairs go: per sender a prefix, each target's ``room`` shared in
    sender order; pairs that are not deliveries into a queue (drops, timers) always fit."""
    full = np.zeros(len(tgt), dtype=bool)
    full[real] = room[tgt[real]] == 0
    candidate = _prior_in_segment(full, seg) == 0
    occ = _rank_by(tgt, candidate & real)
    fits = candidate & (~real | (occ < room[np.where(real, tgt, 0)]))
    return _prior_in_segment(~fits, seg) == 0


def connection_pairs(
    src: Member, port: int, dst: Member, src_index: int | None = None, dst_index: int | None = None
) -> list[tuple[int, int]]:
    """The (sender endpoint, receiver endpoint) pairs of ``connect(src, dst, port=)`` (see
    :meth:`Router.connect`), shared by every router; a port number or group sizes that do not
    fit are a ValueError."""
    if not 0 <= port < MAX_PORTS:
        raise ValueError(f"port number {port} outside 0..{MAX_PORTS - 1}")
    sources = range(src.count) if src_index is None else [src_index]
    pairs = []
    for i in sources:
        if dst_index is not None:
            j = dst_index
        elif dst.count == 1:
            j = 0
        elif src_index is None and src.count == dst.count:
            j = i
        else:
            raise ValueError(
                f"cannot connect {src.instance_name(i) if src_index is not None else src.name} "
                f"({len(sources)} sender(s)) to the group {dst.name} of {dst.count}: a group "
                "receives instance by instance from a group of the same size; name one "
                f"instance ({dst.name}[i]) otherwise"
            )
        pairs.append((src.base + i, dst.base + j))
    return pairs


def _segments(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted ``keys``: each element's segment id and the first index of every segment."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    start = np.r_[True, keys[1:] != keys[:-1]]
    return np.cumsum(start) - 1, np.flatnonzero(start)


def _prior_in_segment(flag: np.ndarray, seg: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """How many elements up to and including each one are flagged, within its segment."""
    ids, starts = seg
    if not len(flag):
        return np.zeros(0, dtype=np.int64)
    total = np.cumsum(flag, dtype=np.int64)
    before = total[starts] - flag[starts]
    return total - before[ids]


def _rank_by(keys: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each masked element: how many masked elements before it have the same key (0 elsewhere)."""
    rank = np.zeros(len(keys), dtype=np.int64)
    idx = np.flatnonzero(mask)
    if not len(idx):
        return rank
    order = idx[np.argsort(keys[idx], kind="stable")]
    sorted_keys = keys[order]
    start = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
    rank[order] = np.arange(len(order)) - first
    return rank


def find_cycle(edges: dict[_Node, list[_Node]]) -> tuple[_Node, ...] | None:
    """A cycle of the directed graph ``edges`` (depth first), rotated to start at its smallest
    node: the wait-for graphs of both routers (each blocked sender waits for one receiver here;
    and both graphs have reply links)."""
    seen: dict[_Node, bool] = {}  # True while on the current path, False once done
    for root in sorted(edges):
        if root in seen:
            continue
        path, stack = [root], [iter(edges.get(root, ()))]
        seen[root] = True
        while stack:
            node = next(stack[-1], None)
            if node is None:
                stack.pop()
                seen[path.pop()] = False
            elif seen.get(node):
                cycle = path[path.index(node):]
                low = cycle.index(min(cycle))
                return tuple(cycle[low:] + cycle[:low])
            elif node not in seen:
                seen[node] = True
                path.append(node)
                stack.append(iter(edges.get(node, ())))
    return None


class RouterThread:
    """Runs a :class:`Router`'s rounds on a Python thread (cpu): at once while messages move,
    then polling with a backoff up to ``idle`` s, and never later than the next timer.

    Surfaces a failure of a round in :attr:`failure`; :meth:`close` waits for the thread.
    """

    def __init__(self, router: Router, idle: float = 0.002) -> None:
        self.router = router
        self.idle = idle
        self.event = threading.Event()
        self.closing = False
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="ringkernel-router", daemon=True)
        self.thread.start()

    def wake(self) -> None:
        """Look now (a host send, a connect, a drain)."""
        self.event.set()

    def _run(self) -> None:
        pause = 0.0
        try:
            while not self.closing:
                self.event.clear()
                if self.router.route():
                    pause = 0.0
                    continue
                pause = min(self.idle, max(pause * 2, 2e-5))
                due = self.router.next_due_us()
                if due is not None:
                    wait = (due - (self.router.clock() >> L.HLC_LOGICAL_BITS)) / 1e6
                    pause = max(0.0, min(pause, wait))
                self.event.wait(pause)
        except BaseException as exc:  # reported by the system's next drain, receive or metrics
            self.failure = exc

    def stop(self) -> None:
        """Asks the thread to leave after its current round (without waiting)."""
        self.closing = True
        self.event.set()

    def close(self, timeout: float = 1.0) -> bool:
        """Stops the thread; True once it has left."""
        self.stop()
        self.thread.join(timeout)
        return not self.thread.is_alive()


__all__ = ["Router", "RouterThread", "Member", "SEND_PORT", "SEND_TO", "SEND_TIMER", "Q_BAD_TARGET", "Q_SENT"]

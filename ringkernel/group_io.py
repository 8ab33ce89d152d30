"""Bulk I/O of an actor group: ``group.send_many(indices, messages)`` and ``group.receive_many()``.

A group of 100,000 instances cannot afford a Python object, or a native call,
per instance and message: these work on the group's queue arrays directly,
all instances at once (numpy fancy indexing over the ``(count, words)`` rows
of ``docs/layout.md``, "Actor groups"), with the same memory order as a
queue push or pop: slots before the tail that publishes them (fence), the
head moved only after the copy.

Instances someone addressed as ``group[i]`` have an :class:`ActorRef` with its
own send counter, backlog and ``ask`` claims, so they go through it (one call
per such instance); every other instance is served here under the group's
lock, which ``group[i]`` also takes to make a ref, so the two never race.
An instance's sequence numbers are its queue's tail (nobody else sends to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from ringkernel.ringir import layout as L
from ringkernel.runtime.hlc import HlcDriftError
from ringkernel.runtime.queues import QueueFull, ReceiveTimeout, Waiter, fence

if TYPE_CHECKING:
    from ringkernel.groups import ActorGroup


def _fill(rows: np.ndarray) -> np.ndarray:
    return (rows[:, L.Q_TAIL] - rows[:, L.Q_HEAD]).astype(np.uint32).astype(np.int64)


def _indices(group: ActorGroup, indices: Any, n: int) -> np.ndarray:
    """``indices`` as int64 instance numbers in range (negative from the end), ``n`` of them."""
    array = np.asarray(indices)
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise TypeError(f"indices must be a 1-D integer array of instance numbers, got {array.dtype} "
                        f"with shape {array.shape}")
    if len(array) != n:
        raise ValueError(f"{len(array)} indices for {n} messages: give one instance per message")
    out = array.astype(np.int64)
    out[out < 0] += group.count
    bad = (out < 0) | (out >= group.count)
    if bad.any():
        raise IndexError(f"{group.name} has instances 0 to {group.count - 1}, not {array[bad][0]}")
    return out


def _encode(group: ActorGroup, messages: Any) -> np.ndarray:
    """The ``(n, in_words)`` slot words of ``messages`` (envelopes filled in later)."""
    from ringkernel.actors import as_records, encode_many
    from ringkernel.frontends.actors import message_info

    actor_type, words = group.type, group.in_words
    if isinstance(messages, np.ndarray):
        for cls in actor_type.info.handlers:
            if messages.dtype == cls.dtype:  # type: ignore[attr-defined]
                info = message_info(cls)
                assert info is not None
                return encode_many(messages.reshape(-1), info, words, 0, 0, 0, 0)
        handled = ", ".join(f"{c.__name__}.dtype" for c in actor_type.info.handlers)
        raise TypeError(f"{group.name} takes structured arrays of {handled}; got dtype {messages.dtype}")
    if not isinstance(messages, (list, tuple)):
        got = type(messages).__name__
        raise TypeError(f"send_many takes a list of messages or a structured array, got {got}")
    infos = [actor_type.message_info(m) for m in messages]
    parts, start = [], 0
    for i in range(1, len(messages) + 1):
        if i == len(messages) or infos[i] is not infos[start]:
            records = as_records(messages[start:i], infos[start])
            parts.append(encode_many(records, infos[start], words, 0, 0, 0, 0))
            start = i
    return np.concatenate(parts) if parts else np.zeros((0, words), dtype=np.uint32)


def send_many(group: ActorGroup, indices: Any, messages: Any, timeout: float | None) -> np.ndarray:
    """``ActorGroup.send_many``."""
    from ringkernel.actors import check_timeout

    timeout = check_timeout(timeout)
    system = group.system
    system._check_open()
    slots = _encode(group, messages)
    n = len(slots)
    targets = _indices(group, indices, n)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    first = system.hlc.tick_many(n)
    stamps = np.uint64(first) + np.arange(n, dtype=np.uint64)
    slots[:, L.ENV_TARGET] = group.first_id + targets
    slots[:, L.ENV_HLC_LO] = (stamps & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    slots[:, L.ENV_HLC_HI] = (stamps >> np.uint64(32)).astype(np.uint32)
    order = np.argsort(targets, kind="stable")  # each instance's messages together, in order
    targets, slots = targets[order], slots[order]
    with group._lock:
        own = np.zeros(group.count, dtype=bool)
        own[list(group._refs)] = True
        if group.policy == "drop_oldest":
            own[:] = True  # the drop requests are a queue's own business
        by_ref = own[targets]
        sent = _push_rounds(group, targets[~by_ref], slots[~by_ref], timeout)
    for i in np.unique(targets[by_ref]):
        mine = targets == i
        _send_through_ref(group, int(i), slots[mine], timeout, sent)
        sent += int(mine.sum())
    return stamps


def _send_through_ref(
    group: ActorGroup, i: int, slots: np.ndarray, timeout: float | None, before: int
) -> None:
    """Instance ``i``'s slots through its :class:`ActorRef` (its sequence counter and lock)."""
    ref = group[i]
    with ref.send_lock:
        group.system._check_open()
        slots = slots.copy()
        slots[:, L.ENV_SEQUENCE] = (ref.sequence + np.arange(len(slots))) & 0xFFFFFFFF
        tail = int(ref.h2k.buffer[L.Q_TAIL])
        try:
            ref.h2k.push_many(slots, timeout, interrupt=ref._while_full)
        except QueueFull as full:
            full.sent = before + full.sent
            raise
        finally:
            done = (int(ref.h2k.buffer[L.Q_TAIL]) - tail) & 0xFFFFFFFF
            ref.sequence = (ref.sequence + done) & 0xFFFFFFFF
    group.system._wake(ref)


def _push_rounds(group: ActorGroup, targets: np.ndarray, slots: np.ndarray, timeout: float | None) -> int:
    """Writes sorted ``targets``' slots into their queues as room allows, round after round,
    following the policy; returns how many went (all of them, unless it raises)."""
    n = len(targets)
    if n == 0:
        return 0
    starts = np.flatnonzero(np.r_[True, targets[1:] != targets[:-1]])
    rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))  # k-th message of its instance
    done = np.zeros(n, dtype=bool)
    sent = 0
    waiter = Waiter(timeout)
    while True:
        pushed = _push_once(group, targets, slots, rank, done)
        sent += pushed
        if sent == n:
            return sent
        if pushed:
            waiter = Waiter(timeout)  # the timeout is for one stretch without room
            continue
        if group.policy == "reject" or not waiter.wait():
            rows = group.h2k.reshape(group.count, -1)
            np.add.at(rows[:, L.Q_REJECTED], targets[~done], 1)
            how = "is full" if group.policy == "reject" else f"stayed full for {timeout} s"
            error = QueueFull(f"an input queue of {group.name} {how} ({group.capacity} messages); "
                              f"{n - sent} of {n} messages were not sent")
            error.sent = sent
            raise error
        group.system._check_open()
        group.wake()


def _push_once(group: ActorGroup, targets: np.ndarray, slots: np.ndarray, rank: np.ndarray,
               done: np.ndarray) -> int:
    """One vectorised round: each instance's next messages that fit its queue now."""
    rows = group.h2k.reshape(group.count, -1)
    fence()
    left = ~done
    t = targets[left]
    tail = rows[t, L.Q_TAIL].astype(np.int64)
    room = group.capacity - _fill(rows)[t]  # (a column per word: no copy of whole rows)
    # rank among this instance's messages not yet sent (they are sent in order, a prefix)
    sent_before = np.zeros(group.count, dtype=np.int64)
    np.add.at(sent_before, targets[done], 1)
    k = rank[left] - sent_before[t]
    go = k < room
    if not go.any():
        return 0
    pick = np.flatnonzero(left)[go]
    t, k, tail = t[go], k[go], tail[go]
    words = group.in_words
    batch = slots[pick]
    batch[:, L.ENV_SEQUENCE] = ((tail + k) & 0xFFFFFFFF).astype(np.uint32)
    at = L.QUEUE_HEADER_WORDS + ((tail + k) & (group.capacity - 1)) * words
    rows[t[:, None], at[:, None] + np.arange(words)] = batch
    fence()  # the slots before the tails that publish them
    counts = np.bincount(t, minlength=group.count)
    moved = np.flatnonzero(counts)
    rows[moved, L.Q_TAIL] = (rows[moved, L.Q_TAIL].astype(np.int64) + counts[moved]).astype(np.uint32)
    rows[moved, L.Q_ENQUEUED] = (rows[moved, L.Q_ENQUEUED].astype(np.int64) + counts[moved]).astype(np.uint32)
    fence()
    done[pick] = True
    group.wake()
    return len(pick)


def receive_many(group: ActorGroup, max_count: int, timeout: float | None) -> tuple[np.ndarray, np.ndarray]:
    """``ActorGroup.receive_many``."""
    from ringkernel.actors import ActorSystemStopped, check_setting, check_timeout

    max_count = check_setting("max_count", max_count, 1)
    timeout = check_timeout(timeout)
    info = _reply_info(group)
    if group.out is not group.k2h:
        raise ValueError(f"{group.name} sends its replies to another group: nothing comes back")
    system = group.system
    waiter = Waiter(timeout)
    wait_round = getattr(group.runtime, "wait_round", None)
    while True:
        stopped = system.stopped  # read first: replies published before the stop are taken
        seen = getattr(group.runtime, "rounds_merged", 0)
        found = _take(group, max_count)
        if found is not None:
            indices, rows = found
            dtype = info.layout.dtype(L.ENVELOPE_WORDS)
            data = np.ascontiguousarray(rows.view(np.uint8)[:, : dtype.itemsize])
            return indices, data.view(dtype).reshape(len(rows))
        if stopped:
            raise ActorSystemStopped(f"{group.name} has no replies left: its ActorSystem has shut down")
        if wait_round is None:
            if not waiter.wait():
                raise ReceiveTimeout(f"no reply from {group.name} within {timeout} s")
        else:
            if waiter.expired():
                raise ReceiveTimeout(f"no reply from {group.name} within {timeout} s")
            wait_round(seen, 0.05)


def _reply_info(group: ActorGroup) -> Any:
    replies = {m.type_id: m for h in group.type.info.handlers.values() for m in h.replies}
    if len(replies) != 1:
        names = ", ".join(m.name for m in replies.values()) or "none"
        raise ValueError(
            f"group.receive_many needs an actor with one reply type; {group.name} replies: {names}"
        )
    return next(iter(replies.values()))


def _take(group: ActorGroup, max_count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Up to ``max_count`` replies (instance numbers, rows), or None if none has come."""
    with group._lock:
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        fence()
        waiting = _fill(group.k2h.reshape(group.count, -1)) > 0
        for i, ref in sorted(group._refs.items()):  # addressed instances: their backlogs and claims
            if len(parts) and sum(len(r) for _, r in parts) >= max_count:
                break
            if not (waiting[i] or ref.backlog):
                continue
            rows = ref._take(max_count - sum(len(r) for _, r in parts))
            if len(rows):
                parts.append((np.full(len(rows), i, dtype=np.int64), rows))
        got = sum(len(r) for _, r in parts)
        if got < max_count:
            parts.append(_pop_rows(group, max_count - got))
    indices = np.concatenate([p[0] for p in parts])
    rows = np.concatenate([p[1] for p in parts])
    if not len(rows):
        return None
    return _until_abort(group, indices, rows)


def _pop_rows(group: ActorGroup, max_count: int) -> tuple[np.ndarray, np.ndarray]:
    """The oldest replies of instances nobody addressed, at most ``max_count``, starting at a
    rotating instance so small takes reach every instance in turn (holding the group's lock)."""
    count, words = group.count, group.out_words
    rows = group.k2h.reshape(count, -1)
    fence()
    fill = _fill(rows)
    fill[list(group._refs)] = 0
    start = getattr(group, "_receive_from", 0) % count
    order = np.r_[np.arange(start, count), np.arange(0, start)]
    fill = fill[order]
    before = np.cumsum(fill) - fill
    take = np.clip(max_count - before, 0, fill)
    chosen = np.flatnonzero(take)
    if not len(chosen):
        return np.zeros(0, dtype=np.int64), np.zeros((0, words), dtype=np.uint32)
    inst, n = order[chosen], take[chosen]
    group._receive_from = int(inst[-1]) + 1  # type: ignore[attr-defined]
    index = np.repeat(inst, n)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    head = rows[index, L.Q_HEAD].astype(np.int64)
    at = L.QUEUE_HEADER_WORDS + ((head + k) & (group.capacity - 1)) * words
    out = rows[index[:, None], at[:, None] + np.arange(words)].copy()
    was_full = bool(np.any(fill[chosen] >= group.capacity))
    fence()  # the copy before the heads that free the slots
    rows[inst, L.Q_HEAD] = (rows[inst, L.Q_HEAD].astype(np.int64) + n).astype(np.uint32)
    rows[inst, L.Q_DEQUEUED] = (rows[inst, L.Q_DEQUEUED].astype(np.int64) + n).astype(np.uint32)
    fence()
    if was_full:
        group.wake()  # a turn may have waited for room
    return index, out


def _until_abort(
    group: ActorGroup, indices: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The rows before each instance's first abort record; each instance's abort record and
    what followed go to its ``group[i]`` backlog, and if nothing else came, the first raises."""
    marks = rows[:, L.ENV_TYPE_ID] == L.ABORT_TYPE_ID
    if not marks.any():
        _merge_clocks(group, rows)
        return indices, rows
    keep = np.ones(len(rows), dtype=bool)
    for i in np.unique(indices[marks]):
        mine = np.flatnonzero(indices == i)
        first = mine[np.argmax(marks[mine])]
        later = mine[mine >= first]
        keep[later] = False
        ref = group[int(i)]
        with ref.receive_lock:
            ref.backlog.appendleft(rows[later])
    if keep.any():
        _merge_clocks(group, rows[keep])
        return indices[keep], rows[keep]
    _raise_abort(group, int(indices[np.argmax(marks)]))


def _raise_abort(group: ActorGroup, i: int) -> NoReturn:
    """Raises instance ``i``'s ``HandlerAborted`` (its abort record is first in its backlog)."""
    group[i].receive_many(1, timeout=0)  # takes the abort record off the backlog: it raises
    raise AssertionError(f"{group.name}[{i}]: an abort record did not raise")


def _merge_clocks(group: ActorGroup, rows: np.ndarray) -> None:
    """Merges the newest stamp into the host clock (counted, never fatal, if refused)."""
    high = rows[:, L.ENV_HLC_HI].astype(np.uint64) << np.uint64(32)
    stamps = rows[:, L.ENV_HLC_LO].astype(np.uint64) | high
    try:
        group.system.hlc.receive(int(stamps.max()))
    except (HlcDriftError, OverflowError, ValueError):
        group.system.clock_drift_refused += 1


__all__ = ["send_many", "receive_many"]
